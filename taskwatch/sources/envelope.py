"""Reading kombu's message envelope without executing anything in it.

A message waiting in a Redis queue is kombu's JSON envelope::

    {"body": "<base64>", "content-type": "application/json",
     "content-encoding": "utf-8",
     "headers": {"task": ..., "id": ..., "argsrepr": ..., ...},
     "properties": {"priority": 0, "body_encoding": "base64",
                    "delivery_info": {"exchange": ..., "routing_key": ...}, ...}}

* Task protocol 2 (Celery's default, ``celery/app/amqp.py`` ``as_task_v2``)
  puts the task's name, id, ``argsrepr``/``kwargsrepr`` and the rest in the
  headers; the body is ``[args, kwargs, embed]``.
* Task protocol 1 (``as_task_v1``) leaves the headers empty; the body is a
  dict with ``task, id, args, kwargs, retries, eta, expires, ...``.
* A body may be compressed (header ``compression``, ``kombu/compression.py``).

Only JSON bodies are decoded, with the standard library's ``json`` (never
``pickle.loads``, never ``yaml.load``): a pickle-, msgpack- or YAML-serialized
message shows its headers only. Every text field is passed through
:func:`taskwatch.text.clean`: no terminal control sequences, one line,
bounded length. :func:`decode_message` never raises on bad input; what it
could not read is named in ``PeekedMessage.error``.

Arguments: for a JSON body the exact values are kept (``call``) and shown
the way Celery's reprs show arguments, ``(7, 'pdf')`` (``exact_args``). Otherwise ``args``/``kwargs`` are the producer's
``argsrepr``/``kwargsrepr`` headers (``exact_args=False``). Both header texts
are kept in ``argsrepr``/``kwargsrepr`` as well: producers that hide
sensitive arguments do it by overriding those headers, and a UI that wants to
honour that should show them instead of the exact values.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import json
import lzma
import re
import zlib
from dataclasses import fields
from types import SimpleNamespace
from typing import Any

from taskwatch.records import ExactCall, PeekedMessage
from taskwatch.reprs import render
from taskwatch.text import clean

__all__ = [
    "ARGS_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_ENVELOPE_BYTES",
    "PeekedMessage",
    "decode_message",
]

#: Characters kept of the args / kwargs texts.
ARGS_LIMIT = 4096
#: Characters kept of ids, task names, origins and other header values.
FIELD_LIMIT = 256
#: Envelopes larger than this are not parsed at all (only their size is reported).
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
#: Bodies (after base64 and decompression) larger than this are not decoded.
MAX_BODY_BYTES = 4 * 1024 * 1024

_JSON_TYPES = ("application/json", "text/json")
# kombu/compression.py: content types and aliases it registers.
_ZLIB = ("application/x-gzip", "gzip", "zlib")
_BZ2 = ("application/x-bz2", "bzip2", "bzip")
_LZMA = ("application/x-lzma", "lzma", "xz")
_SURROGATES = re.compile("[\ud800-\udfff]")


def decode_message(raw: bytes | str, *, queue: str | None = None) -> PeekedMessage:
    """Decode one kombu envelope (as stored in a Redis list) for display.

    Never raises for malformed input: bad JSON, bad base64, wrong shapes,
    invalid UTF-8 and oversized values give a :class:`PeekedMessage` with
    what could be read and ``error`` set.
    """
    message = _Draft(**_BLANK)
    message.queue = _field(queue)
    try:
        _decode_into(message, raw)
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        # Belt and braces: every known failure is handled where it happens.
        message.error = _field(f"cannot decode message: {type(exc).__name__}: {exc}")
    return PeekedMessage(**vars(message))


# The record is frozen; the steps below fill in a draft of its fields.
_Draft = SimpleNamespace
_BLANK = {f.name: f.default for f in fields(PeekedMessage)}


# -- steps ------------------------------------------------------------------


def _decode_into(message: _Draft, raw: bytes | str) -> None:
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        size = len(raw)
    elif isinstance(raw, str):
        size = len(raw)
    else:
        message.error = f"not a message: {type(raw).__name__}"
        return
    if size > MAX_ENVELOPE_BYTES:
        message.error = f"message of {size:,} bytes is too large to decode"
        return
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError) as exc:
        message.error = _field(f"not a JSON message: {exc}")
        return
    if not isinstance(envelope, dict):
        message.error = f"not a kombu message: a JSON {_json_type(envelope)}"
        return

    headers = envelope.get("headers")
    headers = headers if isinstance(headers, dict) else {}
    properties = envelope.get("properties")
    properties = properties if isinstance(properties, dict) else {}

    message.content_type = _field(envelope.get("content-type"))
    message.content_encoding = _field(envelope.get("content-encoding"))
    message.priority = _int(properties.get("priority"))
    delivery_info = properties.get("delivery_info")
    message.redelivered = bool(
        headers.get("redelivered") is True
        or (isinstance(delivery_info, dict) and delivery_info.get("redelivered") is True)
    )
    _read_headers(message, headers, properties)

    body = _body_bytes(message, envelope, properties)
    if body is None:
        return
    message.body_size = len(body)
    compression = headers.get("compression")
    if compression is not None:
        message.compression = _field(compression)
        body = _decompress(message, body, compression)
        if body is None:
            return
    if not _is_json(envelope.get("content-type")):
        # pickle, msgpack, yaml, raw bytes: headers only, the body is never decoded.
        return
    if len(body) > MAX_BODY_BYTES:
        message.error = f"body of {len(body):,} bytes is too large to decode"
        return
    try:
        decoded = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as exc:
        message.error = _field(f"body is not valid JSON: {exc}")
        return
    _read_body(message, decoded)


def _read_headers(
    message: _Draft, headers: dict[str, Any], properties: dict[str, Any]
) -> None:
    message.task = _field(headers.get("task"))
    message.id = _field(headers.get("id") or properties.get("correlation_id"))
    message.eta = _field(headers.get("eta"))
    message.expires = _field(headers.get("expires"))
    message.retries = _int(headers.get("retries"))
    message.root_id = _field(headers.get("root_id"))
    message.parent_id = _field(headers.get("parent_id"))
    message.origin = _field(headers.get("origin"))
    message.argsrepr = _args_text(headers.get("argsrepr"))
    message.kwargsrepr = _args_text(headers.get("kwargsrepr"))
    message.args, message.kwargs = message.argsrepr, message.kwargsrepr
    if "task" in headers:
        message.protocol = 2


def _body_bytes(
    message: _Draft, envelope: dict[str, Any], properties: dict[str, Any]
) -> bytes | None:
    body = envelope.get("body")
    if body is None:
        message.error = "message has no body"
        return None
    encoding = properties.get("body_encoding")
    if isinstance(encoding, str) and encoding.lower() == "base64":
        if not isinstance(body, str):
            message.error = f"base64 body is a JSON {_json_type(body)}, not a string"
            return None
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            message.error = _field(f"body is not valid base64: {exc}")
            return None
    if encoding not in (None, "") and not (
        isinstance(encoding, str) and encoding.lower() == "utf-8"
    ):
        message.error = _field(f"unknown body encoding {encoding!r}")
        return None
    if isinstance(body, str):
        return _surrogates_out(body).encode("utf-8")
    # kombu stores an unencoded body as the serialized text; anything else
    # is a message kombu did not write.
    message.error = f"body is a JSON {_json_type(body)}, not a string"
    return None


def _decompress(message: _Draft, body: bytes, compression: object) -> bytes | None:
    name = compression.lower() if isinstance(compression, str) else ""
    try:
        if name in _ZLIB:
            out = zlib.decompressobj().decompress(body, MAX_BODY_BYTES + 1)
        elif name in _BZ2:
            out = bz2.BZ2Decompressor().decompress(body, MAX_BODY_BYTES + 1)
        elif name in _LZMA:
            out = lzma.LZMADecompressor().decompress(body, MAX_BODY_BYTES + 1)
        else:
            message.error = _field(f"body compressed with {compression!s}: not decoded")
            return None
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        message.error = _field(f"cannot decompress body ({compression!s}): {exc}")
        return None
    if len(out) > MAX_BODY_BYTES:
        message.error = f"body decompresses to more than {MAX_BODY_BYTES:,} bytes: not decoded"
        return None
    return out


def _read_body(message: _Draft, body: Any) -> None:
    if message.protocol == 2 or isinstance(body, list):
        # Protocol 2: [args, kwargs, embed].
        if (
            isinstance(body, list)
            and len(body) >= 2
            and isinstance(body[0], list)
            and isinstance(body[1], dict)
        ):
            _set_exact_args(message, body[0], body[1])
            message.protocol = message.protocol or 2
        else:
            message.error = f"unexpected body: a JSON {_json_type(body)}, not [args, kwargs, embed]"
        return
    if isinstance(body, dict) and "task" in body:
        # Protocol 1: everything is in the body.
        message.protocol = 1
        message.task = _field(body.get("task"))
        message.id = _field(body.get("id")) or message.id
        message.retries = _int(body.get("retries"))
        message.eta = _field(body.get("eta"))
        message.expires = _field(body.get("expires"))
        args, kwargs = body.get("args", []), body.get("kwargs", {})
        if isinstance(args, list) and isinstance(kwargs, dict):
            _set_exact_args(message, args, kwargs)
        else:
            message.error = "unexpected body: args is not a list or kwargs not a dict"
        return
    message.error = f"unexpected body: a JSON {_json_type(body)} without a task"


def _set_exact_args(message: _Draft, args: list[Any], kwargs: dict[str, Any]) -> None:
    if not all(type(k) is str for k in kwargs):
        message.error = "unexpected body: kwargs has keys that are not strings"
        return
    message.call = ExactCall(tuple(args), kwargs)
    message.args = _args_text(render(tuple(args), ARGS_LIMIT))
    message.kwargs = _args_text(render(kwargs, ARGS_LIMIT))


# -- small helpers ----------------------------------------------------------


def _surrogates_out(text: str) -> str:
    """Lone surrogates (JSON ``"\\udcff"``) cannot be printed: make them U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def _field(value: object, limit: int = FIELD_LIMIT) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > limit * 4:
        text = text[: limit * 4]  # clean() would cut here too; don't scan the rest
    return clean(_surrogates_out(text), limit, single_line=True)


def _args_text(value: object) -> str | None:
    if value is None:
        return None
    return _field(value, ARGS_LIMIT)


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _is_json(content_type: object) -> bool:
    if not isinstance(content_type, str):
        return False
    base = content_type.split(";", 1)[0].strip().lower()
    return base in _JSON_TYPES or base.endswith("+json")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__
