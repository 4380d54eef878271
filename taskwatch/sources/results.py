"""Reading Celery result backends, read-only: what finished, failed or is retrying.

Two backends are read directly (never through Celery, which would decode
with the user's serializers and unpickle what it finds):

* Redis (``redis://``, ``rediss://``): keys ``celery-task-meta-<id>`` (see
  ``celery/backends/base.py`` ``BaseKeyValueStoreBackend``), each a serialized
  dict ``status, result, traceback, children, date_done, task_id`` plus
  ``name, args, kwargs, worker, retries, queue`` with ``result_extended``.
* SQL databases (``db+postgresql://``, ``db+sqlite://``): table
  ``celery_taskmeta`` (``celery/backends/database/models.py``) whose
  ``result``, ``children``, ``args`` and ``kwargs`` columns hold bytes in the
  result serializer (or a raw pickle in rows from before celery#3025).

Stored values are untrusted. They are decoded by content, whatever the
backend was configured with: JSON (Celery's default, with kombu's
``{"__type__", "__value__"}`` markers for datetimes, decimals, UUIDs and
bytes); pickle (recognised by its protocol 2-5 header) through
:mod:`taskwatch.sources.safe_pickle` with :data:`~.safe_pickle.PRIMITIVES`
only, so other objects (exceptions too) come back as inert placeholders that
are shown by name and arguments; msgpack, YAML and anything else are not
decoded and show as ``<msgpack value, N bytes, not decoded>`` with status
``UNKNOWN``. Nothing is ever ``eval``-ed, ``literal_eval``-ed or unpickled
by anything else.

Everything that reaches a :class:`StoredResult` is text made safe by
:func:`taskwatch.text.clean`: control sequences stripped, bounded, one line
except the traceback. Values (result, arguments) are rendered like Python
reprs, as Celery's own events show them, by a renderer that stops at the
length limit however large or self-referencing the value is.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from taskwatch.records import ExactCall, StoredResult
from taskwatch.reprs import Full, Writer, render, write_call
from taskwatch.sources import safe_pickle
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.protocols import ResultBackend
from taskwatch.sources.redis_url import RedisURLError, connect, glob_escape, parse_redis_url
from taskwatch.text import clean, mask_url

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa

__all__ = [
    "EXCEPTION_STATES",
    "UNKNOWN",
    "StoredResult",
    "DatabaseResultBackend",
    "RedisResultBackend",
    "ResultBackend",
    "ResultBackendError",
    "UnsupportedBackend",
    "result_backend",
]

#: Celery states whose ``result`` is a serialized exception.
EXCEPTION_STATES = frozenset({"FAILURE", "RETRY", "REVOKED"})
#: Status of a stored value taskwatch could not decode.
UNKNOWN = "UNKNOWN"

TRACEBACK_LIMIT = 16 * 1024
VALUE_LIMIT = 4096
EXCEPTION_LIMIT = 2048
FIELD_LIMIT = 255
ID_LIMIT = 155  # celery_taskmeta.task_id is String(155)
MAX_CHILDREN = 1000
#: Default cap on the bytes read of one stored value.
MAX_VALUE_BYTES = 1 << 20

SUPPORTED = "redis://, rediss://, db+postgresql://, db+sqlite://"


class ResultBackendError(SourceError):
    """The result backend could not be read; ``str()`` is one masked line."""


class UnsupportedBackend(ResultBackendError):
    """taskwatch cannot read this kind of result backend."""


def result_backend(url: str, **kwargs: Any) -> ResultBackend:
    """A reader for Celery's ``result_backend`` URL, chosen by its scheme.

    Raises :class:`UnsupportedBackend` for schemes taskwatch cannot read.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return RedisResultBackend(url, **kwargs)
    if scheme.startswith("db+"):
        return DatabaseResultBackend(url, **kwargs)
    if scheme == "rpc":
        reason = "rpc:// results travel in the caller's reply queue and cannot be read from outside"
    elif not scheme:
        reason = "it has no scheme"
    else:
        reason = f"{scheme}:// is not supported"
    raise UnsupportedBackend(
        f"cannot read result backend {mask_url(url)!r}: {reason} (supported: {SUPPORTED})"
    )


# -- decoding -----------------------------------------------------------------

_JSON_START = frozenset(b'{["-0123456789tfn \t\r\n')
_PICKLE_HEADER = re.compile(rb"\x80[\x02-\x05]")
_MSGPACK_MAP = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_STATUS_PREFIX = re.compile(rb'^\s*\{\s*"status"\s*:\s*"([A-Z_]{1,30})"')


@dataclass
class _Decoded:
    value: Any
    encoding: str
    problem: str | None = None
    ok: bool = True


def _decode(raw: bytes | None, size: int | None = None) -> _Decoded:
    """Decode one stored value by its content; never raises."""
    if raw is None:
        return _Decoded(None, "json")
    if size is not None and size > len(raw):
        return _Decoded(
            None, _sniff(raw), f"value of {size} bytes is over the read limit", ok=False
        )
    if _PICKLE_HEADER.match(raw):
        try:
            return _Decoded(safe_pickle.loads(raw, allow=safe_pickle.PRIMITIVES), "pickle")
        except Exception as exc:  # noqa: BLE001 - UnpicklingError and the size check
            return _Decoded(None, "pickle", f"undecodable pickle: {describe(exc)}", ok=False)
    if raw[:1] and raw[0] in _JSON_START:
        try:
            # The hook costs a Python call per object: only when there are markers.
            hook = _json_object if b'"__type__"' in raw else None
            return _Decoded(json.loads(raw, object_hook=hook), "json")
        except (ValueError, RecursionError) as exc:
            return _Decoded(None, "json", f"undecodable JSON: {describe(exc)}", ok=False)
    kind = _sniff(raw)
    return _Decoded(None, kind, f"{kind} value, {len(raw)} bytes, not decoded", ok=False)


def _sniff(raw: bytes) -> str:
    if _PICKLE_HEADER.match(raw):
        return "pickle"
    if raw[:1] and raw[0] in _MSGPACK_MAP:
        return "msgpack"
    if raw[:1] and raw[0] in _JSON_START:
        return "json"
    return "unknown"


def _json_object(obj: dict[str, Any]) -> Any:
    """kombu's JSON type markers, decoded safely; unknown markers stay dicts."""
    if len(obj) != 2 or "__type__" not in obj or "__value__" not in obj:
        return obj
    kind, value = obj["__type__"], obj["__value__"]
    try:
        if kind == "datetime" and isinstance(value, str):
            return datetime.fromisoformat(value)
        if kind == "date" and isinstance(value, str):
            return datetime.fromisoformat(value).date()
        if kind == "time" and isinstance(value, str):
            return dtime.fromisoformat(value)
        if kind == "decimal" and isinstance(value, str) and len(value) <= 100:
            return Decimal(value)
        if kind == "uuid" and isinstance(value, dict) and isinstance(value.get("hex"), str):
            return uuid.UUID(hex=value["hex"])
        if kind == "bytes" and isinstance(value, str):
            return value.encode("utf-8", errors="surrogatepass")
        if kind == "base64" and isinstance(value, str):
            return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, TypeError, InvalidOperation, OverflowError, UnicodeError):
        pass
    return obj


def _exception_text(value: Any) -> str:
    """``ValueError('report 17 has no rows')`` from Celery's serialized exception."""
    if isinstance(value, Mapping) and isinstance(value.get("exc_type"), str):
        module = value.get("exc_module")
        message = value.get("exc_message", ())
        args = message if isinstance(message, list | tuple) else (message,)
        writer = Writer(EXCEPTION_LIMIT + 1)
        try:
            write_call(
                writer, module if isinstance(module, str) else "", value["exc_type"], args, {}, 0
            )
        except Full:
            pass
        return clean("".join(writer.parts), EXCEPTION_LIMIT, single_line=True)
    return render(value, EXCEPTION_LIMIT)


def _plain(value: Any, budget: int = 100_000) -> bool:
    """True if ``value`` is plain data (no placeholders, no cycles) a retry can resend."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > budget or depth > 100:
            return False
        if item is None or isinstance(item, bool | int | float | str | bytes):
            continue
        if isinstance(item, datetime | date | dtime | Decimal | uuid.UUID):
            continue
        if isinstance(item, list | tuple | set | frozenset):
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            stack.extend((x, depth + 1) for kv in item.items() for x in kv)
        else:
            return False
    return True


def _one_line(value: Any, limit: int = FIELD_LIMIT) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value, limit, single_line=True)
    return render(value, limit)


def _optional_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return clean(value, ID_LIMIT, single_line=True)
    return None


def _epoch(value: Any) -> float | None:
    """Celery's ``date_done``: ISO text (Redis), a datetime (SQL) or a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()[:64])
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:  # Celery stores UTC
            value = value.replace(tzinfo=UTC)
        try:
            return value.timestamp()
        except (OverflowError, ValueError, OSError):
            return None
    return None


def _child_ids(children: Any) -> list[str]:
    """Task ids from Celery's ``children``: ``[[[id, parent], None], ...]`` (as_tuple)."""
    ids: list[str] = []
    if not isinstance(children, list | tuple):
        return ids
    for entry in children[:MAX_CHILDREN]:
        node = entry
        if isinstance(node, list | tuple) and node and isinstance(node[0], list | tuple):
            node = node[0]
        if isinstance(node, list | tuple) and node:
            node = node[0]
        if isinstance(node, str) and node:
            ids.append(clean(node, ID_LIMIT, single_line=True))
    return ids


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() < 64:
        return value
    return None


def _build(
    task_id: str, meta: Mapping[str, Any], encoding: str, problem: str | None
) -> StoredResult:
    """A :class:`StoredResult` from a decoded Celery meta dict."""
    status = _status(meta.get("status"))
    value = meta.get("result")
    exception = text = ""
    if status in EXCEPTION_STATES and value is not None:
        exception = text = _exception_text(value)
    elif "result" in meta:
        text = render(value)
    args_text = kwargs_text = ""
    call = None
    args, kwargs = meta.get("args"), meta.get("kwargs")
    if "args" in meta or "kwargs" in meta:
        args_list = list(args) if isinstance(args, list | tuple) else None
        kwargs_dict = kwargs if isinstance(kwargs, dict) else ({} if kwargs is None else None)
        if args_list is not None:
            args_text = render(tuple(args_list))
        elif args is not None:
            args_text = render(args)
        if kwargs is not None:
            kwargs_text = render(kwargs)
        if (
            args_list is not None
            and kwargs_dict is not None
            and all(isinstance(k, str) for k in kwargs_dict)
            and _plain([args_list, kwargs_dict])
        ):
            call = ExactCall(tuple(args_list), kwargs_dict)
    return StoredResult(
        task_id=clean(task_id, ID_LIMIT, single_line=True),
        status=status,
        result=text,
        exception=exception,
        traceback=clean(meta.get("traceback"), TRACEBACK_LIMIT)
        if isinstance(meta.get("traceback"), str)
        else "",
        date_done=_epoch(meta.get("date_done")),
        name=_one_line(meta.get("name")),
        args=args_text,
        kwargs=kwargs_text,
        call=call,
        worker=_one_line(meta.get("worker")),
        retries=_int_or_none(meta.get("retries")),
        queue=_one_line(meta.get("queue")),
        children=tuple(_child_ids(meta.get("children"))),
        parent_id=_optional_id(meta.get("parent_id")),
        root_id=_optional_id(meta.get("root_id")),
        group_id=_optional_id(meta.get("group_id")),
        encoding=encoding,
        problem=problem,
    )


def _undecodable_status(raw: bytes, decoded: _Decoded) -> str:
    """A cut JSON value still starts with Celery's ``{"status": "..."``."""
    if decoded.encoding == "json":
        match = _STATUS_PREFIX.match(raw[:256])
        if match:
            return match.group(1).decode("ascii")
    return UNKNOWN


def _undecodable(task_id: str, raw: bytes, decoded: _Decoded) -> StoredResult:
    text = decoded.problem or "not decoded"
    return StoredResult(
        task_id=clean(task_id, ID_LIMIT, single_line=True),
        status=_undecodable_status(raw, decoded),
        result=clean(f"<{text}>", VALUE_LIMIT, single_line=True),
        encoding=decoded.encoding,
        problem=clean(text, FIELD_LIMIT, single_line=True),
    )


def _from_stored(task_id: str, raw: bytes, size: int | None) -> StoredResult:
    return _from_decoded(task_id, raw, _decode(raw, size))


def _from_decoded(task_id: str, raw: bytes, decoded: _Decoded) -> StoredResult:
    if decoded.ok and isinstance(decoded.value, dict):
        return _build(task_id, decoded.value, decoded.encoding, None)
    if decoded.ok:
        decoded = _Decoded(None, decoded.encoding, "stored value is not a result dict", ok=False)
    return _undecodable(task_id, raw, decoded)


_STATE_NAME = re.compile(r"[A-Z_]{1,30}")


def _status(value: Any) -> str:
    if isinstance(value, str) and _STATE_NAME.fullmatch(value):
        return value
    if isinstance(value, str) and value.strip():
        return clean(value, 50, single_line=True)
    return UNKNOWN


def _peek(raw: bytes, decoded: _Decoded) -> tuple[str, float | None]:
    """Status and ``date_done`` of a stored value, without rendering anything."""
    meta = decoded.value
    if decoded.ok and isinstance(meta, dict):
        return _status(meta.get("status")), _epoch(meta.get("date_done"))
    return _undecodable_status(raw, decoded), None


# -- Redis --------------------------------------------------------------------

class RedisResultBackend:
    """Reads ``celery-task-meta-*`` keys; never writes.

    Every call has socket timeouts and no retries, so an unreachable server
    fails within ``timeout`` with a :class:`ResultBackendError`.
    """

    #: keys per pipelined batch (one round trip each)
    chunk = 500

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        key_prefix: str = "celery-task-meta-",
        *,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:

        self.url = url
        self.timeout = timeout
        self.key_prefix = key_prefix
        self.max_value_bytes = max_value_bytes
        self._prefix = key_prefix.encode()
        try:
            parsed = parse_redis_url(url, what="result backend URL")
        except RedisURLError as exc:
            raise UnsupportedBackend(str(exc)) from None
        self._client: redis.Redis = connect(parsed, timeout=timeout)
        #: what the last ``recent`` call looked at: keys seen, complete scan, seconds
        self.last_scan: dict[str, Any] = {}

    def close(self) -> None:
        self._client.close()

    def _error(self, exc: BaseException) -> ResultBackendError:
        return ResultBackendError(
            f"cannot read result backend {mask_url(self.url)}: {describe(exc)}"
        )

    def get(self, ids: Sequence[str]) -> dict[str, StoredResult]:
        """The stored results of ``ids``; ids without a result are absent."""
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        keys = [
            self._prefix + task_id.encode("utf-8", errors="surrogateescape") for task_id in wanted
        ]
        found: dict[str, StoredResult] = {}
        for task_id, (raw, size) in zip(wanted, self._read(keys), strict=True):
            if raw is not None:
                found[task_id] = _from_stored(task_id, raw, size)
        return found

    def recent(
        self, limit: int, *, states: set[str] | None = None, scan_budget: int = 50_000
    ) -> list[StoredResult]:
        """The newest ``limit`` results (in ``states``, if given), newest first.

        "Newest" is decided by ``date_done``, which only the stored value
        holds: keys are found with ``SCAN MATCH <prefix>*`` until about
        ``scan_budget`` keys have been examined (``last_scan["complete"]``
        says whether the whole keyspace was covered), every value found is
        read (pipelined ``MGET`` batches) and decoded, and the newest
        ``limit`` are kept. Results without a ``date_done`` (STARTED, RETRY)
        come after all finished ones. With ``states``, values whose leading
        ``{"status": ...`` (Celery writes it first) is not wanted are skipped
        undecoded. The cost grows with the number of result keys scanned,
        not with ``limit``; ``scan_budget`` bounds it (about 1 s for 50,000
        keys here, 0.6 s with a ``states`` filter). Values are read whole but
        one over ``max_value_bytes`` is not decoded (its status still shows).
        """
        if limit <= 0:
            return []
        started = time.monotonic()
        keys, complete = self._scan(scan_budget)
        wanted = None if states is None else {s.upper() for s in states}
        # Keep (rank, -seq, ...) of the best `limit`; only those are rendered.
        heap: list[tuple[tuple[bool, float], int, bytes, bytes, _Decoded]] = []
        for seq, (key, raw) in enumerate(zip(keys, self._read_whole(keys), strict=True)):
            if not raw:
                continue
            if wanted is not None and UNKNOWN not in wanted:
                match = _STATUS_PREFIX.match(raw, 0, 256)
                if match is not None and match.group(1).decode("ascii") not in wanted:
                    continue
            decoded = _decode(raw[: self.max_value_bytes], len(raw))
            status, date_done = _peek(raw, decoded)
            if wanted is not None and status not in wanted:
                continue
            entry = ((date_done is not None, date_done or 0.0), -seq, key, raw, decoded)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
        heap.sort(key=lambda e: e[:2], reverse=True)
        self.last_scan = {
            "keys": len(keys),
            "complete": complete,
            "seconds": time.monotonic() - started,
        }
        return [_from_decoded(self._task_id(key), raw, decoded) for _, _, key, raw, decoded in heap]

    def _task_id(self, key: bytes) -> str:
        return key[len(self._prefix) :].decode("utf-8", errors="replace")

    # -- I/O -----------------------------------------------------------------
    def _scan(self, budget: int) -> tuple[list[bytes], bool]:
        """Result keys, and whether the scan got through the whole keyspace."""
        import redis

        count = 1000
        match = glob_escape(self._prefix) + b"*"
        seen: dict[bytes, None] = {}
        cursor = 0
        examined = 0
        try:
            while True:
                cursor, batch = self._client.scan(cursor, match=match, count=count)
                examined += count
                seen.update(dict.fromkeys(batch))
                if cursor == 0:
                    return list(seen), True
                if examined >= budget:
                    return list(seen), False
        except redis.RedisError as exc:
            raise self._error(exc) from None

    def _read_whole(self, keys: Sequence[bytes]) -> Iterator[bytes | None]:
        """Each key's value (None if missing or not a string), MGET in batches.

        Three times faster than a GET per key with redis-py's parser.
        """
        import redis

        step = self.chunk * 4
        for start in range(0, len(keys), step):
            try:
                pipe = self._client.pipeline(transaction=False)
                for first in range(start, min(start + step, len(keys)), self.chunk):
                    pipe.mget(keys[first : first + self.chunk])
                batches = pipe.execute()
            except redis.RedisError as exc:
                raise self._error(exc) from None
            for values in batches:
                yield from values

    def _read(self, keys: Sequence[bytes]) -> Iterator[tuple[bytes | None, int | None]]:
        """(value or None, full size when cut) per key, in pipelined batches."""
        import redis

        cap = self.max_value_bytes
        for start in range(0, len(keys), self.chunk):
            batch = keys[start : start + self.chunk]
            try:
                pipe = self._client.pipeline(transaction=False)
                for key in batch:
                    pipe.getrange(key, 0, cap - 1)
                values = pipe.execute(raise_on_error=False)
                cut = [
                    k
                    for k, v in zip(batch, values, strict=True)
                    if isinstance(v, bytes) and len(v) >= cap
                ]
                sizes: dict[bytes, int] = {}
                if cut:
                    pipe = self._client.pipeline(transaction=False)
                    for key in cut:
                        pipe.strlen(key)
                    sizes = dict(zip(cut, pipe.execute(raise_on_error=False), strict=True))
            except redis.RedisError as exc:
                raise self._error(exc) from None
            for key, value in zip(batch, values, strict=True):
                if not isinstance(value, bytes) or not value:
                    # Missing (GETRANGE of a missing key is empty), or not a
                    # string at all (WRONGTYPE): not a Celery result.
                    yield (None, None)
                else:
                    size = sizes.get(key)
                    yield (value, size if isinstance(size, int) else None)


# -- SQL databases ------------------------------------------------------------

_DIALECTS = ("postgresql", "sqlite")
_PG_DRIVERS = ("psycopg2", "psycopg")


def _available_pg_driver(parsed: sa.engine.URL) -> sa.engine.URL:
    """``postgresql://`` means psycopg (3) to SQLAlchemy 2.1 and psycopg2 to 2.0:
    use whichever of the two is installed, the default one first."""
    import importlib.util

    default = parsed.get_driver_name()
    for driver in (default, *_PG_DRIVERS):
        if driver in _PG_DRIVERS and importlib.util.find_spec(driver) is not None:
            return parsed.set(drivername=f"postgresql+{driver}")
    return parsed


class DatabaseResultBackend:
    """Reads Celery's ``celery_taskmeta`` table through SQLAlchemy; only SELECTs.

    The URL is Celery's ``db+<sqlalchemy url>``. PostgreSQL sessions are
    opened with ``default_transaction_read_only=on`` and a statement
    timeout; SQLite files are opened read-only. The pickled and serialized
    columns are read as raw bytes (never through SQLAlchemy's PickleType)
    and decoded like Redis values. ``table``/``schema`` follow Celery's
    ``database_table_names``/``database_table_schemas``.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        *,
        table: str = "celery_taskmeta",
        schema: str | None = None,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise ResultBackendError(
                "reading a db+ result backend needs SQLAlchemy (pip install sqlalchemy), "
                "as Celery's database backend does"
            ) from None
        self.url = url
        self.timeout = timeout
        self.table = table
        self.schema = schema
        self.max_value_bytes = max_value_bytes
        self._sa = sa
        self._lock = threading.Lock()
        self._columns: set[str] | None = None
        self._engine = self._make_engine(url[3:] if url.lower().startswith("db+") else url)

    def _make_engine(self, sa_url: str) -> sa.engine.Engine:
        sa = self._sa
        try:
            parsed = sa.engine.make_url(sa_url)
        except Exception as exc:  # noqa: BLE001 - ArgumentError, ValueError
            raise UnsupportedBackend(
                f"bad result backend URL {mask_url(self.url)!r}: {describe(exc)}"
            ) from None
        dialect = parsed.get_backend_name()
        if dialect == "postgresql" and "+" not in parsed.drivername:
            parsed = _available_pg_driver(parsed)
        driver = parsed.get_driver_name()
        if dialect not in _DIALECTS or dialect == "postgresql" and driver not in _PG_DRIVERS:
            raise UnsupportedBackend(
                f"cannot read result backend {mask_url(self.url)!r}: "
                f"{parsed.drivername} is not supported (supported: {SUPPORTED}; "
                f"PostgreSQL through {' or '.join(_PG_DRIVERS)})"
            )
        if dialect == "sqlite":
            return self._sqlite_engine(parsed)
        options = " ".join(
            filter(
                None,
                [
                    parsed.query.get("options")
                    if isinstance(parsed.query.get("options"), str)
                    else None,
                    f"-c statement_timeout={max(1, int(self.timeout * 1000))}",
                    "-c default_transaction_read_only=on",
                ],
            )
        )
        seconds = max(1, math.ceil(self.timeout))
        connect_args = {
            # libpq rounds anything under 2 s up to 2 s
            "connect_timeout": max(2, seconds),
            "options": options,
            "application_name": "taskwatch",
            # A server that vanishes mid-query is noticed in seconds, not
            # after the kernel's two hours.
            "keepalives": 1,
            "keepalives_idle": seconds,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": seconds * 1000 + 3000,
        }
        try:
            return sa.create_engine(
                parsed,
                connect_args=connect_args,
                pool_size=1,
                max_overflow=1,
                pool_timeout=self.timeout,
                pool_pre_ping=True,
                pool_recycle=300,
            )
        except Exception as exc:  # noqa: BLE001 - a missing DB-API driver, bad options
            raise ResultBackendError(
                f"cannot use result backend {mask_url(self.url)}: {describe(exc)}"
            ) from None

    def _sqlite_engine(self, parsed: sa.engine.URL) -> sa.engine.Engine:
        import sqlite3
        from pathlib import Path

        from sqlalchemy.pool import NullPool

        database = parsed.database
        if not database or database == ":memory:":
            raise UnsupportedBackend(
                f"cannot read result backend {mask_url(self.url)!r}: no database file"
            )
        uri = Path(database).absolute().as_uri() + "?mode=ro"
        timeout = self.timeout

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

        return self._sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)

    def close(self) -> None:
        self._engine.dispose()

    def _error(self, exc: BaseException) -> ResultBackendError:
        orig = getattr(exc, "orig", None)
        return ResultBackendError(
            f"cannot read result backend {mask_url(self.url)}: {describe(orig or exc)}"
        )

    # -- queries -------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, StoredResult]:
        """The stored rows of ``ids``; ids without a row are absent."""
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        found: dict[str, StoredResult] = {}
        if not wanted:
            return found

        def query(table: Any, select: Any) -> Iterator[Any]:
            for start in range(0, len(wanted), 500):
                yield select.where(table.c.task_id.in_(wanted[start : start + 500]))

        asked = set(wanted)
        for result in self._run(query):
            if result.task_id in asked:
                found[result.task_id] = result
        return found

    def recent(self, limit: int, *, states: set[str] | None = None) -> list[StoredResult]:
        """The ``limit`` rows with the newest ``date_done`` (in ``states``), newest first."""
        if limit <= 0:
            return []

        def query(table: Any, select: Any) -> Iterator[Any]:
            if states is not None:
                select = select.where(table.c.status.in_(sorted(s.upper() for s in states)))
            order = [table.c.date_done.desc().nulls_last()]
            if "id" in (self._columns or ()):
                order.append(table.c.id.desc())
            yield select.order_by(*order).limit(limit)

        return self._run(query)

    def _run(self, queries: Callable[[Any, Any], Iterator[Any]]) -> list[StoredResult]:
        sa = self._sa
        results: list[StoredResult] = []
        with self._lock:
            try:
                with self._engine.connect() as conn:
                    table, select = self._select(conn)
                    for statement in queries(table, select):
                        for row in conn.execute(statement).mappings():
                            results.append(self._from_row(row))
                    conn.rollback()
            except ResultBackendError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc) from None
            except OSError as exc:
                raise self._error(exc) from None
        return results

    def _select(self, conn: Any) -> tuple[Any, Any]:
        """The table and a SELECT of its columns, values cut at the read limit."""
        sa = self._sa
        if self._columns is None:
            inspector = sa.inspect(conn)
            if not inspector.has_table(self.table, schema=self.schema):
                where = f"{self.schema}.{self.table}" if self.schema else self.table
                raise ResultBackendError(
                    f"result backend {mask_url(self.url)} has no table {where} "
                    "(no task has stored a result there yet?)"
                )
            self._columns = {
                c["name"] for c in inspector.get_columns(self.table, schema=self.schema)
            }
        present = self._columns
        table = sa.table(
            self.table, *(sa.column(name) for name in sorted(present)), schema=self.schema
        )
        cap = self.max_value_bytes
        columns: list[Any] = [table.c.task_id, table.c.status]
        for name in ("result", "children", "args", "kwargs"):
            if name in present:
                column = table.c[name]
                columns += [
                    sa.func.substr(column, 1, cap).label(name),
                    sa.func.length(column).label(f"{name}_size"),
                ]
        if "traceback" in present:
            columns.append(
                sa.func.substr(table.c.traceback, 1, TRACEBACK_LIMIT * 4).label("traceback")
            )
        if "date_done" in present:
            if self._engine.dialect.name == "postgresql":
                # A naive timestamp column: Celery wrote UTC through the session
                # time zone, so read it back through the same one.
                epoch = sa.extract("epoch", sa.cast(table.c.date_done, sa.DateTime(timezone=True)))
            else:
                epoch = table.c.date_done
            columns.append(epoch.label("date_done"))
        for name in ("name", "worker", "retries", "queue"):
            if name in present:
                columns.append(table.c[name])
        return table, sa.select(*columns)

    def _from_row(self, row: Mapping[str, Any]) -> StoredResult:
        task_id = str(row["task_id"] or "")
        meta: dict[str, Any] = {
            "status": row["status"],
            "traceback": row.get("traceback"),
            "date_done": row.get("date_done"),
            "name": row.get("name"),
            "worker": row.get("worker"),
            "retries": row.get("retries"),
            "queue": row.get("queue"),
        }
        encoding = "json"
        problems: list[str] = []
        for name in ("result", "children", "args", "kwargs"):
            if name not in row:
                continue
            raw = row[name]
            if raw is None:
                meta[name] = None
                continue
            raw = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8")
            decoded = _decode(raw, row.get(f"{name}_size"))
            if name == "result":
                encoding = decoded.encoding
            if decoded.ok:
                meta[name] = decoded.value
            else:
                problems.append(f"{name}: {decoded.problem}")
        result = _build(task_id, meta, encoding, None)
        if not problems:
            return result
        changes = {"problem": clean("; ".join(problems), FIELD_LIMIT, single_line=True)}
        if "result" in row and row["result"] is not None and "result" not in meta:
            changes["result"] = clean(f"<{problems[0]}>", VALUE_LIMIT, single_line=True)
            if result.status in EXCEPTION_STATES:
                changes["exception"] = changes["result"]
        return dataclasses.replace(result, **changes)
