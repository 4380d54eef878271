"""Celery events off the wire: kombu's JSON envelope, a base64 body, and a
JSON event or (``task.multi``) a list of events.

orjson does the JSON; a kombu envelope is read for its body only
(:func:`decode_payload`), the rest of it is never parsed. Bodies that are not
JSON (a cluster configured with a pickle or msgpack ``event_serializer``)
are counted, never unpickled. Every event is data.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson

_b64decode = base64.b64decode
_loads = orjson.loads


def _json(data: bytes | str) -> Any:
    try:
        return _loads(data)
    except orjson.JSONDecodeError:
        # orjson insists on valid UTF-8; events are untrusted: decode what
        # can be decoded and keep the rest as replacement characters.
        # (orjson also refuses nesting past 1024: json then recurses until
        # Python's limit, which is as undecodable as bad JSON.)
        if isinstance(data, bytes):
            try:
                return json.loads(data.decode("utf-8", errors="replace"))
            except RecursionError:
                raise ValueError("JSON nested too deep") from None
        raise


def decode_envelope(data: bytes | str) -> list[dict[str, Any]] | None:
    """Events in one kombu message from Redis pub/sub; None if undecodable."""
    try:
        envelope = _json(data)
        body = envelope["body"]
        if envelope.get("content-type", "application/json") != "application/json":
            return None
        properties = envelope.get("properties")
        if properties and properties.get("body_encoding") == "base64":
            body = _b64decode(body)
        return _events(_json(body))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# kombu writes its envelope with the body first and these two as they are
# (kombu.transport.virtual.Channel.prepare_message, json.dumps defaults).
_BODY_HEAD = b'{"body": "'
_JSON_CONTENT = b'"content-type": "application/json"'
_BASE64_BODY = b'"body_encoding": "base64"'
_a2b_base64 = binascii.a2b_base64


def decode_payload(data: bytes) -> list[dict[str, Any]] | None:
    """:func:`decode_envelope`, reading only the body of a kombu-written envelope.

    The envelope's headers and properties are never parsed (the engine keeps
    nothing of them): the base64 body is cut out, decoded and parsed. Any
    other layout takes the full path. Either way the events are data.
    """
    if data[:10] == _BODY_HEAD and _JSON_CONTENT in data and _BASE64_BODY in data:
        end = data.find(b'"', 10)
        if end > 0:
            try:
                return _events(_json(_a2b_base64(data[10:end])))
            except (ValueError, TypeError):  # binascii.Error is a ValueError
                pass
    return decode_envelope(data)


def decode_body(body: bytes | str, content_type: str | None) -> list[dict[str, Any]] | None:
    """Events in an AMQP message body (no envelope); None if undecodable."""
    if content_type not in (None, "application/json"):
        return None
    try:
        return _events(_json(body))
    except (ValueError, TypeError):
        return None


def _events(payload: Any) -> list[dict[str, Any]] | None:
    if type(payload) is dict:
        return [payload]
    if type(payload) is list:
        return [e for e in payload if type(e) is dict]
    return None
