"""Stored Celery results decoded by content, whatever the backend was configured with.

JSON (Celery's default, with kombu's ``{"__type__", "__value__"}`` markers for
datetimes, decimals, UUIDs and bytes); pickle (recognised by its protocol 2-5
header) through :mod:`taskwatch.sources.safe_pickle` with the
:data:`~taskwatch.sources.pickle_policies.CELERY_RESULTS` policy only; msgpack, YAML and anything else are sniffed, never decoded. A
decoded meta dict becomes a :class:`~taskwatch.records.StoredResult` of
bounded, cleaned text (:func:`build`), with the exact arguments kept when
they are plain data a retry can resend (:func:`plain`). Never raises.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from taskwatch.records import ExactCall, StoredResult
from taskwatch.reprs import VALUE_LIMIT, Full, Writer, render, write_call
from taskwatch.sources import safe_pickle
from taskwatch.sources.errors import describe
from taskwatch.sources.pickle_policies import CELERY_RESULTS
from taskwatch.sources.results.common import (
    EXCEPTION_LIMIT,
    EXCEPTION_STATES,
    FIELD_LIMIT,
    ID_LIMIT,
    MAX_CHILDREN,
    TRACEBACK_LIMIT,
    UNKNOWN,
)
from taskwatch.text import clean

if TYPE_CHECKING:
    pass

_JSON_START = frozenset(b'{["-0123456789tfn \t\r\n')
_PICKLE_HEADER = re.compile(rb"\x80[\x02-\x05]")
_MSGPACK_MAP = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
STATUS_PREFIX = re.compile(rb'^\s*\{\s*"status"\s*:\s*"([A-Z_]{1,30})"')


@dataclass
class Decoded:
    value: Any
    encoding: str
    problem: str | None = None
    ok: bool = True


def decode(raw: bytes | None, size: int | None = None) -> Decoded:
    """Decode one stored value by its content; never raises."""
    if raw is None:
        return Decoded(None, "json")
    if size is not None and size > len(raw):
        return Decoded(
            None, _sniff(raw), f"value of {size} bytes is over the read limit", ok=False
        )
    if _PICKLE_HEADER.match(raw):
        try:
            return Decoded(safe_pickle.loads(raw, allow=CELERY_RESULTS), "pickle")
        except Exception as exc:  # noqa: BLE001 - UnpicklingError and the size check
            return Decoded(None, "pickle", f"undecodable pickle: {describe(exc)}", ok=False)
    if raw[:1] and raw[0] in _JSON_START:
        try:
            # The hook costs a Python call per object: only when there are markers.
            hook = _json_object if b'"__type__"' in raw else None
            return Decoded(json.loads(raw, object_hook=hook), "json")
        except (ValueError, RecursionError) as exc:
            return Decoded(None, "json", f"undecodable JSON: {describe(exc)}", ok=False)
    kind = _sniff(raw)
    return Decoded(None, kind, f"{kind} value, {len(raw)} bytes, not decoded", ok=False)


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


def exception_text(value: Any) -> str:
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


def plain(value: Any, budget: int = 100_000) -> bool:
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


def build(
    task_id: str, meta: Mapping[str, Any], encoding: str, problem: str | None
) -> StoredResult:
    """A :class:`StoredResult` from a decoded Celery meta dict."""
    status = _status(meta.get("status"))
    value = meta.get("result")
    exception = text = ""
    if status in EXCEPTION_STATES and value is not None:
        exception = text = exception_text(value)
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
            and plain([args_list, kwargs_dict])
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


def _undecodable_status(raw: bytes, decoded: Decoded) -> str:
    """A cut JSON value still starts with Celery's ``{"status": "..."``."""
    if decoded.encoding == "json":
        match = STATUS_PREFIX.match(raw[:256])
        if match:
            return match.group(1).decode("ascii")
    return UNKNOWN


def _undecodable(task_id: str, raw: bytes, decoded: Decoded) -> StoredResult:
    text = decoded.problem or "not decoded"
    return StoredResult(
        task_id=clean(task_id, ID_LIMIT, single_line=True),
        status=_undecodable_status(raw, decoded),
        result=clean(f"<{text}>", VALUE_LIMIT, single_line=True),
        encoding=decoded.encoding,
        problem=clean(text, FIELD_LIMIT, single_line=True),
    )


def from_stored(task_id: str, raw: bytes, size: int | None) -> StoredResult:
    return from_decoded(task_id, raw, decode(raw, size))


def from_decoded(task_id: str, raw: bytes, decoded: Decoded) -> StoredResult:
    if decoded.ok and isinstance(decoded.value, dict):
        return build(task_id, decoded.value, decoded.encoding, None)
    if decoded.ok:
        decoded = Decoded(None, decoded.encoding, "stored value is not a result dict", ok=False)
    return _undecodable(task_id, raw, decoded)


_STATE_NAME = re.compile(r"[A-Z_]{1,30}")


def _status(value: Any) -> str:
    if isinstance(value, str) and _STATE_NAME.fullmatch(value):
        return value
    if isinstance(value, str) and value.strip():
        return clean(value, 50, single_line=True)
    return UNKNOWN


def peek_status(raw: bytes, decoded: Decoded) -> tuple[str, float | None]:
    """Status and ``date_done`` of a stored value, without rendering anything."""
    meta = decoded.value
    if decoded.ok and isinstance(meta, dict):
        return _status(meta.get("status")), _epoch(meta.get("date_done"))
    return _undecodable_status(raw, decoded), None

