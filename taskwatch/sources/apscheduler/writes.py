"""Changing one APScheduler 3.x job from outside its process: pause, resume, run now, remove.

Written straight into the job store (Redis, SQL, MongoDB), the way the
store class itself would write it, because a scheduler without taskwatch's
bridge (:mod:`taskwatch.bridge`) can be reached no other way. What that
means, truthfully (see the NOTES on APScheduler's stores):

* A running scheduler reads its stores only when it wakes up; it cannot be
  woken from outside. A change is seen at its next wakeup, which is its
  earliest next run in the store as it last read it (or never, while every
  job is paused).
* A run more than ``misfire_grace_time`` after its time is skipped as
  missed. So "run now" sets the job's next run to *the scheduler's next
  wakeup as the store shows it* (the store's earliest next run, or now if
  that has passed): the job is due exactly when the scheduler looks, and
  runs. The trigger then continues from that run (an interval re-anchors
  on it), as when the scheduler runs a job itself.
* The scheduler may write the same job back at the same moment (after a
  run it rewrites the job's whole state), overwriting an outside change
  made during that instant. Nothing outside its process can prevent that.

How a job's state is rewritten
------------------------------
The stored state is ``pickle.dumps(job.__getstate__())``: a pickle program
that leaves a dict on the stack. taskwatch never unpickles it for real
(it would import the user's code) and cannot re-pickle what its restricted
unpickler decoded (the user's objects in ``args`` are inert placeholders).
So the original bytes are kept, and only the end changes
(:func:`rewrite_next_run_time`): the final STOP is replaced by

    <"taskwatch:next_run_time"> POP <"next_run_time"> <value> SETITEM STOP

The marker string is pushed and popped again (a no-op that labels the
suffix, so the next rewrite replaces it instead of growing the state); the
key and the new value (a ``datetime`` in the job's time zone, or None) are
pickled on their own by a pickler in fast mode, which writes no memo
opcodes, so nothing in the original's memo is read or overwritten; SETITEM
sets the key on the dict the original left, so ``Job.__setstate__`` sees
the new ``next_run_time`` and every other value exactly as stored. The last
protocol-4+ FRAME, which held the STOP, is lengthened to hold the suffix.
Before anything is written, the new state is decoded again by the
restricted unpickler and must give the same keys and the new value.

Atomicity: Redis ``WATCH`` on the jobs hash and the run-times sorted set,
then ``MULTI``/``EXEC``, retried a few times when another client wrote
first; SQL one transaction, ``SELECT … FOR UPDATE`` (SQLite: ``BEGIN
IMMEDIATE``); MongoDB a compare-and-set on the stored bytes. Only the one
job's hash field, sorted-set member, row or document is written.
"""

from __future__ import annotations

import calendar
import io
import math
import pickle
import pickletools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from taskwatch.records import ActionOutcome, WorkerReply
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import describe
from taskwatch.sources.pickle_policies import APSCHEDULER_JOBS
from taskwatch.sources.safe_pickle import Opaque, loads
from taskwatch.text import clean

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa

__all__ = [
    "MARKER",
    "StateError",
    "StoreControl",
    "decode_state",
    "job_timezone",
    "rewrite_next_run_time",
    "utc_timestamp",
]

#: The string that labels taskwatch's suffix in a rewritten state.
MARKER = "taskwatch:next_run_time"
#: Tries of a Redis write that another client's write to the same keys interrupted.
REDIS_TRIES = 8
#: "run now" that would wait longer than this for the scheduler to wake says so.
LONG_WAIT = 60.0

_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET"})
_STRING_OPS = frozenset({"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"})


class StateError(ValueError):
    """A job's stored state taskwatch will not rewrite; ``str()`` is one line."""


# -- the state ---------------------------------------------------------------


def decode_state(blob: bytes) -> dict[str, Any]:
    """The job state in ``blob``, decoded by the restricted unpickler; StateError if not a job's."""
    try:
        state = loads(blob, allow=APSCHEDULER_JOBS)
    except pickle.UnpicklingError as exc:
        raise StateError(f"its stored state cannot be decoded safely ({describe(exc)})") from None
    if not isinstance(state, dict):
        raise StateError(f"its stored state is not a job's (a {type(state).__name__}, not a dict)")
    version = state.get("version", 1)
    if version != 1 or not isinstance(state.get("id"), str):
        raise StateError(f"its stored state is not an APScheduler 3 job's (version {version!r})")
    return state


def job_timezone(state: dict[str, Any]) -> tzinfo:
    """The zone the job's times are in: its next run's, else its trigger's, else UTC.

    Only a real ``tzinfo`` the restricted unpickler could build counts (a
    placeholder for an unknown zone class does not), so the state written
    back stays readable by taskwatch too.
    """
    current = state.get("next_run_time")
    candidates = [current.tzinfo if isinstance(current, datetime) else None,
                  getattr(state.get("trigger"), "timezone", None)]
    for zone in candidates:
        if isinstance(zone, tzinfo) and not isinstance(zone, Opaque):
            return zone
    return UTC


def utc_timestamp(value: datetime) -> float:
    """APScheduler's ``datetime_to_utc_timestamp``, so the store's number matches the state's time."""
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1_000_000


def next_fire(state: dict[str, Any], now: datetime) -> datetime | None:
    """The trigger's next fire time from ``now``, as ``resume_job`` computes it; StateError if it cannot."""
    trigger = state.get("trigger")
    if isinstance(trigger, Opaque) or not callable(getattr(trigger, "get_next_fire_time", None)):
        name = trigger.qualified_name if isinstance(trigger, Opaque) else type(trigger).__name__
        raise StateError(f"its trigger ({name}) is not one taskwatch can compute a next run for")
    try:
        value = trigger.get_next_fire_time(None, now.astimezone(job_timezone(state)))
    except Exception as exc:  # noqa: BLE001 - a trigger built from hostile or odd state
        raise StateError(f"its trigger cannot compute a next run ({describe(exc)})") from None
    if value is not None and not isinstance(value, datetime):
        raise StateError(f"its trigger gave {type(value).__name__}, not a time")
    if value is not None and finished(trigger, value, now):
        raise StateError(f"its trigger has no next run: its last run time ({value.isoformat(timespec='seconds')}) "
                         "has passed (a date job that already ran or was missed); nothing to resume")
    return value


def finished(trigger: Any, value: datetime, now: datetime) -> bool:
    """``value`` (the trigger's next fire time from ``now``) is in the past and none follows it.

    A ``DateTrigger`` answers its run date however long ago it was: resumed,
    the job would be skipped as missed and then deleted by the scheduler.
    """
    if value >= now:
        return False
    try:
        return trigger.get_next_fire_time(value, now) is None
    except Exception:  # noqa: BLE001 - cannot tell: let the caller's value stand
        return False


def _fragment(value: Any, protocol: int) -> bytes:
    """The opcodes that push ``value``: no PROTO, FRAME, STOP, and no memo opcodes."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol)
    pickler.fast = True  # no memo: nothing of the original's memo is read or overwritten
    pickler.dump(value)
    data = out.getvalue()
    ops = list(pickletools.genops(data))
    body = bytearray()
    for index, (op, _arg, pos) in enumerate(ops):
        if op.name in ("PROTO", "FRAME", "STOP"):
            continue
        if op.name in _MEMO_OPS:
            raise StateError(f"cannot write {type(value).__name__} without memo opcodes")
        end = ops[index + 1][2] if index + 1 < len(ops) else len(data)
        body += data[pos:end]
    return bytes(body)


def rewrite_next_run_time(blob: bytes, value: datetime | None) -> bytes:
    """``blob`` with its dict's ``next_run_time`` set to ``value``; every other byte kept.

    See the module docstring. Raises StateError for a pickle this cannot
    rewrite safely (not ending in STOP, odd framing).
    """
    data = bytes(blob)
    try:
        ops = list(pickletools.genops(data))
    except Exception as exc:  # noqa: BLE001 - ValueError and friends for a broken stream
        raise StateError(f"its stored state is not a whole pickle ({describe(exc)})") from None
    if not ops or ops[-1][0].name != "STOP" or ops[-1][2] != len(data) - 1:
        raise StateError("its stored state does not end where its pickle ends")
    protocol = ops[0][1] if ops[0][0].name == "PROTO" else 0
    cut = _previous_suffix(ops) or ops[-1][2]
    suffix = b"".join((
        _fragment(MARKER, protocol), pickle.POP, _fragment("next_run_time", protocol),
        _fragment(value, protocol), pickle.SETITEM, pickle.STOP,
    ))
    head = bytearray(data[:cut])
    frames = [(pos, arg) for op, arg, pos in ops if op.name == "FRAME" and pos < cut]
    if frames:
        pos, length = frames[-1]
        start, end = pos + 9, pos + 9 + length
        if end == len(data):  # the usual case: the last frame holds the STOP; make it hold the suffix
            head[pos + 1:pos + 9] = (cut - start + len(suffix)).to_bytes(8, "little")
        elif end > cut:
            raise StateError("its stored state is framed in a way taskwatch does not rewrite")
    return bytes(head) + suffix


def _previous_suffix(ops: list[tuple[Any, Any, int]]) -> int | None:
    """Where taskwatch's own earlier suffix starts, if the pickle ends with one."""
    for index in range(len(ops) - 1, -1, -1):
        op, arg, pos = ops[index]
        if op.name in _STRING_OPS and arg == MARKER:
            tail = ops[index:]
            if (len(tail) >= 5 and tail[1][0].name == "POP" and tail[2][0].name in _STRING_OPS
                    and tail[2][1] == "next_run_time" and tail[-2][0].name == "SETITEM"
                    and not any(o.name in _MEMO_OPS or o.name == "FRAME" for o, _, _ in tail)):
                return pos
            return None
    return None


def _checked(blob: bytes, value: datetime | None, original: dict[str, Any]) -> bytes:
    """The rewritten state, proven to decode to the original's keys with the new value."""
    new = rewrite_next_run_time(blob, value)
    try:
        state = loads(new, allow=APSCHEDULER_JOBS)
    except pickle.UnpicklingError as exc:  # never expected: refuse rather than write it
        raise StateError(f"the rewritten state does not decode ({describe(exc)})") from None
    if not isinstance(state, dict) or set(state) != set(original) | {"next_run_time"} \
            or state.get("next_run_time") != value or state.get("id") != original.get("id"):
        raise StateError("the rewritten state does not decode to the same job")
    return new


# -- the stores ------------------------------------------------------------------


class _Gone(Exception):
    """The job is not in the store."""


@dataclass(frozen=True)
class _Change:
    state: bytes
    next_run: datetime | None
    #: the job had no next run before (paused)
    was_paused: bool = False


#: (stored state, the store's earliest next run time as epoch seconds, asked lazily) -> the change
Plan = Callable[[bytes, Callable[[], float | None]], _Change]


class _RedisStore:
    def __init__(self, location: StoreLocation, timeout: float) -> None:
        from taskwatch.sources.redis_url import connect

        assert location.redis is not None
        self.jobs_key = location.jobs_key
        self.run_times_key = location.run_times_key
        self.client: redis.Redis = connect(location.redis, timeout=timeout)

    def update(self, job_id: str, plan: Plan) -> _Change:
        import redis

        for _ in range(REDIS_TRIES):
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(self.jobs_key, self.run_times_key)
                    blob = pipe.hget(self.jobs_key, job_id)
                    if blob is None:
                        raise _Gone

                    def earliest(pipe: Any = pipe) -> float | None:
                        first = pipe.zrange(self.run_times_key, 0, 0, withscores=True)
                        return float(first[0][1]) if first else None

                    change = plan(bytes(blob), earliest)
                    pipe.multi()
                    pipe.hset(self.jobs_key, job_id, change.state)
                    if change.next_run is None:
                        pipe.zrem(self.run_times_key, job_id)
                    else:
                        pipe.zadd(self.run_times_key, {job_id: utc_timestamp(change.next_run)})
                    pipe.execute()
                    return change
                except redis.WatchError:
                    continue
        raise StateError(f"the store kept changing under {REDIS_TRIES} tries (a busy scheduler?)")

    def delete(self, job_id: str) -> bool:
        import redis

        for _ in range(REDIS_TRIES):
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(self.jobs_key)
                    if not pipe.hexists(self.jobs_key, job_id):
                        return False
                    pipe.multi()
                    pipe.hdel(self.jobs_key, job_id)
                    pipe.zrem(self.run_times_key, job_id)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        raise StateError(f"the store kept changing under {REDIS_TRIES} tries (a busy scheduler?)")

    def close(self) -> None:
        self.client.close()


class _SQLStore:
    def __init__(self, location: StoreLocation, timeout: float) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise StateError("changing a SQL job store needs SQLAlchemy (pip install sqlalchemy), "
                             "as APScheduler's SQLAlchemyJobStore does") from None
        self.sa = sa
        self.engine = _sql_engine(location.sql_url or "", timeout)
        self.table = sa.Table(
            location.table, sa.MetaData(),
            sa.Column("id", sa.Unicode(191), primary_key=True),
            sa.Column("next_run_time", sa.Float(25)),
            sa.Column("job_state", sa.LargeBinary, nullable=False),
            schema=location.schema,
        )

    def update(self, job_id: str, plan: Plan) -> _Change:
        sa, t = self.sa, self.table
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.c.job_state).where(t.c.id == job_id).with_for_update()).first()
            if row is None:
                raise _Gone

            def earliest() -> float | None:
                value = conn.execute(sa.select(sa.func.min(t.c.next_run_time))).scalar()
                return float(value) if value is not None else None

            change = plan(bytes(row.job_state), earliest)
            when = utc_timestamp(change.next_run) if change.next_run is not None else None
            result = conn.execute(sa.update(t).where(t.c.id == job_id)
                                  .values(next_run_time=when, job_state=change.state))
            if result.rowcount != 1:
                raise _Gone
            return change

    def delete(self, job_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(self.sa.delete(self.table).where(self.table.c.id == job_id)).rowcount)

    def close(self) -> None:
        self.engine.dispose()


def _sql_engine(sql_url: str, timeout: float) -> sa.engine.Engine:
    """An engine that fails within ``timeout``: connecting, waiting for a lock, a statement."""
    import sqlalchemy as sa

    from taskwatch.sources.sql_engine import available_mysql_driver, available_pg_driver

    parsed = sa.engine.make_url(sql_url)
    dialect = parsed.get_backend_name()
    seconds = max(1, math.ceil(timeout))
    if dialect == "sqlite":
        return _sqlite_engine(parsed, timeout)
    connect_args: dict[str, Any] = {}
    if dialect == "postgresql":
        if "+" not in parsed.drivername:
            parsed = available_pg_driver(parsed)
        ms = max(1, int(timeout * 1000))
        connect_args = {
            "connect_timeout": max(2, seconds),  # libpq rounds anything under 2 s up to 2 s
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms} "
                       f"-c idle_in_transaction_session_timeout={ms * 4}",
            "application_name": "taskwatch",
        }
    elif dialect in ("mysql", "mariadb"):
        parsed = available_mysql_driver(parsed)
    if dialect in ("mysql", "mariadb") and parsed.get_driver_name() in ("pymysql", "mysqldb"):
        connect_args = {
            "connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds,
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {seconds}",
        }
    return sa.create_engine(parsed, connect_args=connect_args, pool_size=1, max_overflow=0,
                            pool_timeout=timeout, pool_pre_ping=True, pool_recycle=300)


def _sqlite_engine(parsed: sa.engine.URL, timeout: float) -> sa.engine.Engine:
    """A SQLite file opened read-write but never created, writes serialized by ``BEGIN IMMEDIATE``.

    (pysqlite would start the transaction only at the first write, after
    the read it depends on; SQLite has no ``SELECT … FOR UPDATE``.)
    """
    import sqlite3
    from pathlib import Path

    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    database = parsed.database
    if not database or database == ":memory:":
        raise StateError("an in-memory SQLite store cannot be changed from outside")
    uri = Path(database).absolute().as_uri() + "?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False,
                               isolation_level=None)

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.engine.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _MongoStore:
    def __init__(self, location: StoreLocation, timeout: float) -> None:
        try:
            import pymongo
        except ImportError:
            raise StateError("changing a MongoDB job store needs pymongo (pip install pymongo), "
                             "as APScheduler's MongoDBJobStore does") from None
        ms = max(1, int(timeout * 1000))
        self.client: Any = pymongo.MongoClient(location.mongo_url, serverSelectionTimeoutMS=ms,
                                               connectTimeoutMS=ms, socketTimeoutMS=ms,
                                               appname="taskwatch")
        self.collection = self.client[location.database][location.collection]

    def update(self, job_id: str, plan: Plan) -> _Change:
        from bson.binary import Binary

        for _ in range(REDIS_TRIES):
            document = self.collection.find_one({"_id": job_id}, ["job_state"])
            if document is None:
                raise _Gone
            stored = document["job_state"]

            def earliest() -> float | None:
                first = self.collection.find_one({"next_run_time": {"$ne": None}}, ["next_run_time"],
                                                 sort=[("next_run_time", 1)])
                return float(first["next_run_time"]) if first else None

            change = plan(bytes(stored), earliest)
            when = utc_timestamp(change.next_run) if change.next_run is not None else None
            # Compare-and-set on the bytes read: a write in between makes this match nothing.
            result = self.collection.update_one(
                {"_id": job_id, "job_state": stored},
                {"$set": {"next_run_time": when, "job_state": Binary(change.state)}})
            if result.matched_count == 1:
                return change
        raise StateError(f"the store kept changing under {REDIS_TRIES} tries (a busy scheduler?)")

    def delete(self, job_id: str) -> bool:
        return bool(self.collection.delete_one({"_id": job_id}).deleted_count)

    def close(self) -> None:
        self.client.close()


# -- the controller ----------------------------------------------------------------------


class StoreControl:
    """Changes one job at a time in one APScheduler job store (:class:`ScheduleControl`, ``via = "store"``).

    Read-only: every call returns an outcome with an error and writes
    nothing. A job whose state cannot be decoded safely, a job that is gone,
    and a resume whose trigger has no next run are refused the same way.
    """

    via = "store"

    def __init__(self, location: StoreLocation, *, read_only: bool, timeout: float = 3.0) -> None:
        self.location = location
        self.read_only = read_only
        self.timeout = timeout
        self.label = location.label
        self._store: _RedisStore | _SQLStore | _MongoStore | None = None
        self._lock = threading.Lock()

    # -- the actions ---------------------------------------------------------------
    def pause(self, job_id: str) -> ActionOutcome:
        """Clear the job's next run (Redis: out of the run-times set); its state keeps everything else."""

        def plan(blob: bytes, earliest: Callable[[], float | None]) -> _Change:
            state = decode_state(blob)
            return _Change(_checked(blob, None, state), None)

        return self._update("pause", job_id, plan, lambda change: (
            "paused (no next run); a running scheduler sees it when it next wakes"))

    def resume(self, job_id: str) -> ActionOutcome:
        """Set the next run the trigger gives from now, as ``scheduler.resume_job`` does."""

        def plan(blob: bytes, earliest: Callable[[], float | None]) -> _Change:
            state = decode_state(blob)
            when = next_fire(state, datetime.now(UTC))
            if when is None:
                raise StateError("its trigger has no next run (a date job that already ran, "
                                 "or a trigger past its end date); nothing to resume")
            return _Change(_checked(blob, when, state), when)

        return self._update("resume", job_id, plan, lambda change: (
            f"resumed: next run {_iso(change.next_run)}; "
            "a running scheduler sees it when it next wakes"))

    def run_now(self, job_id: str) -> ActionOutcome:
        """Make the job due when the scheduler next wakes (see the module docstring)."""
        now = datetime.now(UTC)

        def plan(blob: bytes, earliest: Callable[[], float | None]) -> _Change:
            state = decode_state(blob)
            first = earliest()
            at = max(now.timestamp(), first if first is not None and math.isfinite(first) else 0.0)
            when = datetime.fromtimestamp(at, job_timezone(state))
            return _Change(_checked(blob, when, state), when, state.get("next_run_time") is None)

        def said(change: _Change) -> str:
            assert change.next_run is not None
            wait = change.next_run.timestamp() - now.timestamp()
            if wait < 0.5:
                text = (f"next run set to now ({_iso(change.next_run)}); a running scheduler runs it "
                        "when it next wakes")
            else:
                text = (f"next run set to {_iso(change.next_run)}, in {wait:.0f} s: the scheduler's next "
                        "wakeup as the store shows it (it cannot be woken from outside, and a run "
                        "later than misfire_grace_time would be skipped)")
            if wait > LONG_WAIT:
                text += "; attach taskwatch's bridge to run jobs at once"
            if change.was_paused:
                text += "; it was paused: after this run its trigger schedules it again"
            return text

        return self._update("run", job_id, plan, said)

    def remove(self, job_id: str) -> ActionOutcome:
        """Delete the job (Redis: HDEL and ZREM; SQL: DELETE), whatever its state holds."""
        arguments = self._arguments(job_id)
        if self.read_only:
            return self._refused("remove", job_id)
        try:
            with self._lock:
                removed = self._open().delete(job_id)
        except StateError as exc:
            return ActionOutcome("remove", (job_id,), arguments, error=self._refusal(job_id, exc))
        except Exception as exc:  # noqa: BLE001 - the store failed: say so
            return ActionOutcome("remove", (job_id,), arguments, error=self._store_error(exc))
        if not removed:
            return ActionOutcome("remove", (job_id,), arguments, error=self._gone(job_id))
        return ActionOutcome("remove", (job_id,), arguments, replies=(WorkerReply(
            self.label, True, "removed from the store; a running scheduler no longer finds it"),))

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                try:
                    self._store.close()
                except Exception:  # noqa: BLE001 - closing only
                    pass
                self._store = None

    # -- plumbing --------------------------------------------------------------------
    def _open(self) -> _RedisStore | _SQLStore | _MongoStore:
        if self._store is None:
            kind = {"redis": _RedisStore, "sql": _SQLStore, "mongo": _MongoStore}[self.location.kind]
            self._store = kind(self.location, self.timeout)
        return self._store

    def _arguments(self, job_id: str, **more: Any) -> dict[str, Any]:
        return {"store": self.label, "job": job_id, "via": self.via, **more}

    def _update(self, action: str, job_id: str, plan: Plan,
                said: Callable[[_Change], str]) -> ActionOutcome:
        if self.read_only:
            return self._refused(action, job_id)
        try:
            with self._lock:
                change = self._open().update(job_id, plan)
        except _Gone:
            return ActionOutcome(action, (job_id,), self._arguments(job_id), error=self._gone(job_id))
        except StateError as exc:
            return ActionOutcome(action, (job_id,), self._arguments(job_id),
                                 error=self._refusal(job_id, exc))
        except Exception as exc:  # noqa: BLE001 - the store failed: say so, nothing was written
            return ActionOutcome(action, (job_id,), self._arguments(job_id), error=self._store_error(exc))
        arguments = self._arguments(job_id, next_run=_iso(change.next_run) if change.next_run else None)
        return ActionOutcome(action, (job_id,), arguments,
                             replies=(WorkerReply(self.label, True, clean(said(change), 500, single_line=True)),))

    def _refused(self, action: str, job_id: str) -> ActionOutcome:
        return ActionOutcome(action, (job_id,), self._arguments(job_id),
                             error=f"{action}: refused, taskwatch is read-only (--read-only); nothing was written")

    def _refusal(self, job_id: str, exc: StateError) -> str:
        return clean(f"job {job_id!r}: {exc}; nothing was written", 400, single_line=True)

    def _gone(self, job_id: str) -> str:
        return clean(f"job {job_id!r} is not in the store {self.label}: nothing was written", 400,
                     single_line=True)

    def _store_error(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None)
        return clean(f"job store {self.label}: {describe(orig or exc)}; nothing was written", 400,
                     single_line=True)


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""
