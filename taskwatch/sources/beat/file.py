"""The default scheduler's schedule file (``celery beat -s celerybeat-schedule``), read from a copy.

Beat keeps the file open and rewrites it (``shelve`` over ``dbm``, synced
every few minutes or after ``beat_sync_every`` sends). taskwatch never opens
the live file for anything but reading bytes: each read copies the file and
every dbm companion (``.dat``/``.dir``/``.bak`` of ``dbm.dumb``, ``.db``/
``.pag`` of ``dbm.ndbm``, SQLite's ``-wal``/``-shm``/``-journal`` of
``dbm.sqlite3``) into a private directory, checks that none of them changed
while it copied (else copies again), and opens the copy with ``dbm.open(...,
"r")``, the flavour ``dbm.whichdb`` names.

Never ``shelve``: it unpickles with the real pickle. The copy's values are
decoded by the restricted unpickler with the ``CELERY_BEAT`` policy
(:mod:`taskwatch.sources.pickle_policies`), and the entries checked one by
one (:mod:`.stored`). Shelve keys are ``str`` encoded as UTF-8.
"""

from __future__ import annotations

import dbm
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskwatch.sources.beat.schedules import (
    FILE_SYNC_EVERY,
    BeatEntry,
    BeatSource,
    zone_or_utc,
)
from taskwatch.sources.beat.stored import entry_from_call
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.pickle_policies import CELERY_BEAT
from taskwatch.sources.safe_pickle import loads
from taskwatch.text import clean

#: What dbm flavours write next to the name they are given (PersistentScheduler's
#: ``known_suffixes`` plus ndbm's ``.pag`` and SQLite's side files).
COMPANIONS = ("", ".db", ".dat", ".dir", ".bak", ".pag", "-wal", "-shm", "-journal")
#: The whole file set may be this big; the entries pickle this big.
MAX_FILE_BYTES = 64 << 20
MAX_ENTRIES_BYTES = 16 << 20
_COPY_ATTEMPTS = 5


class BeatFileError(SourceError):
    """The schedule file cannot be read; one line."""


def _stat_set(path: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for suffix in COMPANIONS:
        try:
            st = os.stat(f"{path}{suffix}")
        except FileNotFoundError:
            continue
        found[suffix] = (st.st_size, st.st_mtime_ns)
    return found


def copy_schedule(path: Path, into: Path) -> Path:
    """Copy ``path`` and its dbm companions into ``into``; return the copy's name.

    Only ever reads the live files. Raises :class:`BeatFileError` when there is
    no such schedule, it is too big, or it kept changing while being copied.
    """
    target = into / "celerybeat-schedule"
    for _ in range(_COPY_ATTEMPTS):
        before = _stat_set(path)
        if not before:
            raise BeatFileError(f"no beat schedule file at {clean(str(path), 200)}")
        if sum(size for size, _ in before.values()) > MAX_FILE_BYTES:
            raise BeatFileError(f"beat schedule file {clean(str(path), 200)} is over "
                                f"{MAX_FILE_BYTES >> 20} MB")
        for suffix in before:
            shutil.copyfile(f"{path}{suffix}", f"{target}{suffix}")
        if _stat_set(path) == before:
            return target
        for suffix in before:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        time.sleep(0.05)  # beat is writing it: its sync takes milliseconds
    raise BeatFileError(f"beat schedule file {clean(str(path), 200)} kept changing while copied")


def read_values(copy: Path) -> dict[str, bytes]:
    """Every key of the copied shelve with its raw (still pickled) value."""
    flavour = dbm.whichdb(str(copy))
    if not flavour:
        raise BeatFileError("not a dbm database (dbm.whichdb does not recognise it)")
    try:
        db: Any = dbm.open(str(copy), "r")
    except ImportError as exc:
        raise BeatFileError(f"it is a {flavour} database, which this Python cannot open "
                            f"({describe(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - dbm.error and OSError, per flavour
        raise BeatFileError(f"cannot open it as {flavour}: {describe(exc)}") from None
    try:
        values: dict[str, bytes] = {}
        for key in db.keys():
            raw = key if isinstance(key, bytes) else str(key).encode()
            values[raw.decode("utf-8", errors="replace")] = bytes(db[key])
        return values
    except Exception as exc:  # noqa: BLE001 - a corrupt database, per flavour
        raise BeatFileError(f"cannot read it as {flavour}: {describe(exc)}") from None
    finally:
        db.close()


class BeatFileSource(BeatSource):
    """Beat's entries, last runs and run counts from a copy of its schedule file."""


    def __init__(self, path: str | os.PathLike[str], conf: Any = None) -> None:
        self.path = Path(path).expanduser().absolute()
        self.conf = conf
        self.label = clean(f"beat file {self.path}", 300, single_line=True)
        sync_every = conf.get("beat_sync_every") if conf is not None else None
        #: how stale the file may be: beat syncs after every send only with beat_sync_every=1
        self.lag = 0.0 if sync_every == 1 else FILE_SYNC_EVERY
        #: what the last read found in the file's own keys
        self.version: str | None = None
        self.timezone: Any = None
        self.utc_enabled: bool | None = None

    def _fail(self, reason: str) -> BeatFileError:
        return BeatFileError(clean(f"cannot read {self.label}: {reason}", 400, single_line=True))

    def entries(self) -> list[BeatEntry]:
        """The file's entries as plain records (one with ``problem`` per undecodable one)."""
        with tempfile.TemporaryDirectory(prefix="taskwatch-beat-") as tmp:
            try:
                copy = copy_schedule(self.path, Path(tmp))
                values = read_values(copy)
            except BeatFileError as exc:
                raise self._fail(str(exc)) from None
            except OSError as exc:
                raise self._fail(describe(exc)) from None
        self.version = self._small(values, "__version__", str)
        self.timezone = self._small(values, "tz", object)
        self.utc_enabled = self._small(values, "utc_enabled", bool)
        raw = values.get("entries")
        if raw is None:
            return []
        try:
            decoded = loads(raw, allow=CELERY_BEAT, max_size=MAX_ENTRIES_BYTES)
        except pickle.UnpicklingError as exc:
            return [BeatEntry(name="entries", problem=f"cannot decode the entries: {describe(exc)}")]
        if type(decoded) is not dict:
            return [BeatEntry(name="entries", problem="the entries are not a dict")]
        return [entry_from_call(key, value) for key, value in decoded.items()]

    @staticmethod
    def _small(values: dict[str, bytes], key: str, kind: type) -> Any:
        raw = values.get(key)
        if raw is None:
            return None
        try:
            value = loads(raw, allow=CELERY_BEAT, max_size=4096)
        except pickle.UnpicklingError:
            return None
        return value if isinstance(value, kind) else None

    def zone(self) -> tuple[Any, str | None]:
        """The zone beat computed in: the file's ``tz``/``utc_enabled``, else the app's."""
        timezone, utc = self.timezone, self.utc_enabled
        if timezone is None and utc is None and self.conf is not None:
            timezone, utc = self.conf.get("timezone"), self.conf.get("enable_utc")
        return zone_or_utc(timezone, utc)



def file_source(path: str, conf: Any) -> Callable[[], BeatFileSource]:
    return lambda: BeatFileSource(path, conf)
