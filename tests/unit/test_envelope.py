"""Decoding kombu envelopes for display: plain data, no broker."""

from __future__ import annotations

import base64
import bz2
import dataclasses
import json
import lzma
import pickle
import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from taskwatch.records import ExactCall
from taskwatch.sources.envelope import (
    ARGS_LIMIT,
    MAX_BODY_BYTES,
    MAX_ENVELOPE_BYTES,
    PeekedMessage,
    decode_message,
)

TASK_ID = "5ab98527-4d2f-4024-9da7-b024a61ecaa2"


def envelope(
    body: Any = None,
    *,
    headers: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    content_type: str = "application/json",
    raw_body: bytes | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A protocol 2 message shaped exactly like the ones Celery 5.7 puts in Redis."""
    if raw_body is None:
        raw_body = json.dumps(body if body is not None else [[1, "a"], {"k": 2}, {}]).encode()
    doc = {
        "body": base64.b64encode(raw_body).decode(),
        "content-encoding": "utf-8" if content_type == "application/json" else "binary",
        "content-type": content_type,
        "headers": {
            "lang": "py",
            "task": "tasks.add",
            "id": TASK_ID,
            "shadow": None,
            "eta": "2026-11-27T14:24:35.807476+00:00",
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 2,
            "timelimit": [None, None],
            "root_id": "root-1",
            "parent_id": "parent-1",
            "argsrepr": "[1, 'a']",
            "kwargsrepr": "{'k': 2}",
            "origin": "gen13553@vm",
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
            **(headers or {}),
        },
        "properties": {
            "correlation_id": TASK_ID,
            "reply_to": "0e942729-2074-302a-bf00-67539a8a5e39",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": "celery"},
            "priority": 3,
            "body_encoding": "base64",
            "delivery_tag": "ff3fe15d-0f4b-4df0-aae8-20d8ebbeb06d",
            **(properties or {}),
        },
    }
    doc.update(extra)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def assert_display_safe(message: PeekedMessage) -> None:
    for name, value in ((f.name, getattr(message, f.name)) for f in dataclasses.fields(message)):
        if isinstance(value, str):
            assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value), (name, value)
            assert not any(0xD800 <= ord(c) <= 0xDFFF for c in value), (name, value)


# -- well-formed messages ------------------------------------------------------


def test_protocol_2_json_gives_exact_args_and_every_header():
    message = decode_message(encode(envelope([[1, "é", 2**70, 1.5, None], {"k": [True]}, {}])))
    assert message == PeekedMessage(
        id=TASK_ID,
        task="tasks.add",
        args="(1, 'é', 1180591620717411303424, 1.5, None)",
        kwargs="{'k': [True]}",
        call=ExactCall((1, "é", 2**70, 1.5, None), {"k": [True]}),
        eta="2026-11-27T14:24:35.807476+00:00",
        expires=None,
        priority=3,
        retries=2,
        root_id="root-1",
        parent_id="parent-1",
        origin="gen13553@vm",
        content_type="application/json",
        content_encoding="utf-8",
        body_size=len(json.dumps([[1, "é", 2**70, 1.5, None], {"k": [True]}, {}]).encode()),
        queue=None,
        argsrepr="[1, 'a']",
        kwargsrepr="{'k': 2}",
        protocol=2,
        redelivered=False,
        compression=None,
        error=None,
    )


def test_str_input_and_queue_name():
    message = decode_message(encode(envelope()).decode(), queue="emails")
    assert (message.queue, message.args, message.error) == ("emails", "(1, 'a')", None)


def test_protocol_1_body_carries_the_task():
    body = {
        "task": "tasks.old",
        "id": "v1-id",
        "args": [4],
        "kwargs": {"x": 1},
        "retries": 1,
        "eta": None,
        "expires": "2030-01-01T00:00:00",
        "utc": True,
        "callbacks": None,
        "errbacks": None,
        "timelimit": [None, None],
        "taskset": None,
        "chord": None,
    }
    doc = envelope(body)
    doc["headers"] = {}
    message = decode_message(encode(doc))
    assert (message.protocol, message.task, message.id) == (1, "tasks.old", "v1-id")
    assert (message.args, message.kwargs, message.exact_args) == ("(4,)", "{'x': 1}", True)
    assert (message.retries, message.expires, message.error) == (1, "2030-01-01T00:00:00", None)


def test_redelivered_flag_from_kombus_restore():
    doc = envelope(headers={"redelivered": True})
    assert decode_message(encode(doc)).redelivered is True
    doc = envelope(properties={"delivery_info": {"redelivered": True}})
    assert decode_message(encode(doc)).redelivered is True


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("application/x-gzip", zlib.compress),
        ("bzip2", bz2.compress),
        ("application/x-lzma", lzma.compress),
    ],
)
def test_compressed_bodies_are_decoded(name, compress):
    raw = compress(json.dumps([[7], {}, {}]).encode())
    message = decode_message(encode(envelope(raw_body=raw, headers={"compression": name})))
    assert (message.args, message.exact_args, message.compression) == ("(7,)", True, name)
    assert message.body_size == len(raw) and message.error is None


def test_unknown_compression_keeps_the_headers():
    doc = envelope(raw_body=b"\x00\x01", headers={"compression": "application/x-brotli"})
    message = decode_message(encode(doc))
    assert message.task == "tasks.add" and message.args == "[1, 'a']"
    assert message.exact_args is False
    assert message.error == "body compressed with application/x-brotli: not decoded"


def test_a_compression_bomb_is_not_inflated():
    bomb = zlib.compress(b"[" + b" " * (MAX_BODY_BYTES * 8) + b"]", 9)
    doc = envelope(raw_body=bomb, headers={"compression": "zlib"})
    message = decode_message(encode(doc))
    assert message.error and "more than" in message.error
    assert message.task == "tasks.add"


# -- other serializers: headers only --------------------------------------------


class _Trap:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # runs Path.touch(marker) if anyone unpickles it
        return (Path.touch, (self.marker,))


def test_pickle_body_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    raw = pickle.dumps(([_Trap(marker)], {}, {}))
    message = decode_message(
        encode(envelope(raw_body=raw, content_type="application/x-python-serialize"))
    )
    assert not marker.exists()
    assert (message.task, message.args, message.exact_args) == ("tasks.add", "[1, 'a']", False)
    assert message.body_size == len(raw) and message.error is None


@pytest.mark.parametrize(
    "content_type", ["application/x-msgpack", "application/x-yaml", "application/data"]
)
def test_other_serializers_show_headers_only(content_type):
    message = decode_message(
        encode(envelope(raw_body=b"!!python/object:os.system", content_type=content_type))
    )
    assert (message.args, message.exact_args, message.error) == ("[1, 'a']", False, None)
    assert message.content_type == content_type


# -- malformed input ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "not a JSON message"),
        (b"{not json", "not a JSON message"),
        (b"[1, 2, 3]", "not a kombu message: a JSON array"),
        (b'"just a string"', "not a kombu message: a JSON string"),
        (b"null", "not a kombu message: a JSON null"),
        (b"[" * 100_000 + b"]" * 100_000, "not a JSON message"),
        (b'{"a": 1' + b"9" * 5000 + b"}", "not a JSON message"),
        (b"\xff\xfe\x00garbage", "not a JSON message"),
    ],
)
def test_garbage_envelopes_give_an_error_not_an_exception(raw, error):
    message = decode_message(raw)
    assert message.error and message.error.startswith(error)
    assert "\n" not in message.error


def test_non_bytes_input_is_an_error():
    message = decode_message(12345)  # type: ignore[arg-type]
    assert message.error == "not a message: int"


def test_bad_base64_body_keeps_the_headers():
    doc = envelope()
    doc["body"] = "not base64 !!!"
    message = decode_message(encode(doc))
    assert message.task == "tasks.add" and message.args == "[1, 'a']" and not message.exact_args
    assert message.error and message.error.startswith("body is not valid base64")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"args": [1]}, "unexpected body: a JSON object, not [args, kwargs, embed]"),
        ([1, 2, 3], "unexpected body: a JSON array, not [args, kwargs, embed]"),
        ("text", "unexpected body: a JSON string, not [args, kwargs, embed]"),
        ([{"a": 1}, [1]], "unexpected body: a JSON array, not [args, kwargs, embed]"),
    ],
)
def test_wrong_body_shapes(body, error):
    message = decode_message(encode(envelope(body)))
    assert message.error == error
    assert message.args == "[1, 'a']" and message.exact_args is False


def test_protocol_1_shapes():
    doc = envelope({"args": [1]})
    doc["headers"] = {}
    assert decode_message(encode(doc)).error == "unexpected body: a JSON object without a task"
    doc = envelope({"task": "t", "args": "no", "kwargs": {}})
    doc["headers"] = {}
    message = decode_message(encode(doc))
    assert message.task == "t"
    assert message.error == "unexpected body: args is not a list or kwargs not a dict"


def test_body_that_is_not_json_or_not_a_string():
    assert decode_message(encode(envelope(raw_body=b"\x80\x81{"))).error.startswith(
        "body is not valid JSON"
    )
    doc = envelope()
    doc["body"] = {"nested": "object"}
    assert decode_message(encode(doc)).error == "base64 body is a JSON object, not a string"
    doc = envelope()
    del doc["body"]
    assert decode_message(encode(doc)).error == "message has no body"


def test_unencoded_body_is_read_as_text():
    doc = envelope()
    doc["body"] = json.dumps([[1], {}, {}])
    doc["properties"]["body_encoding"] = None
    message = decode_message(encode(doc))
    assert (message.args, message.exact_args, message.error) == ("(1,)", True, None)


def test_headers_and_properties_of_the_wrong_type_are_ignored():
    doc = envelope()
    doc["headers"] = ["not", "a", "dict"]
    doc["properties"] = "nope"
    message = decode_message(encode(doc))
    # No body_encoding property any more: the body is taken as text and is not JSON.
    assert message.task is None and message.priority is None
    assert message.error is not None


def test_field_types_are_checked():
    doc = envelope(
        headers={"retries": "3", "task": ["a", "list"], "eta": {"x": 1}, "id": 42},
        properties={"priority": True},
    )
    message = decode_message(encode(doc))
    assert message.retries is None and message.priority is None
    assert message.task == '["a", "list"]' and message.eta == '{"x": 1}' and message.id == "42"


def test_oversized_envelope_is_not_parsed():
    raw = b" " * (MAX_ENVELOPE_BYTES + 1)
    message = decode_message(raw)
    assert message.error == f"message of {len(raw):,} bytes is too large to decode"


def test_oversized_body_falls_back_to_argsrepr():
    body = json.dumps([["x" * (MAX_BODY_BYTES + 10)], {}, {}]).encode()
    message = decode_message(encode(envelope(raw_body=body)))
    assert message.args == "[1, 'a']" and message.exact_args is False
    assert message.error and "too large" in message.error


def test_long_values_are_cut_with_an_ellipsis():
    doc = envelope(
        [["y" * 100_000], {}, {}], headers={"argsrepr": "z" * 100_000, "task": "t" * 10_000}
    )
    message = decode_message(encode(doc))
    assert message.args is not None and len(message.args) == ARGS_LIMIT
    assert message.args.endswith("…")
    assert message.argsrepr is not None and len(message.argsrepr) == ARGS_LIMIT
    assert message.task is not None and len(message.task) == 256


# -- hostile text ---------------------------------------------------------------


def test_control_sequences_are_stripped_and_markup_stays_literal():
    hostile = "[bold red]X[/] \x1b]0;title\x07\x1b[2J\x9b31m\r\nnext\tline\x00"
    doc = envelope(
        [[hostile], {"k": "\x1b[31m"}, {}],
        headers={
            "argsrepr": hostile,
            "task": "\x1b]8;;http://evil\x07click\x1b]8;;\x07",
            "origin": "host\x1bP+q\x1b\\name",
        },
    )
    message = decode_message(encode(doc))
    assert message.argsrepr == "[bold red]X[/]  next line"
    assert message.task == "click"
    assert message.origin == "hostname"
    # Exact values: a repr writes control characters as escapes, which is plain text.
    assert (
        message.args
        == "('[bold red]X[/] \\x1b]0;title\\x07\\x1b[2J\\x9b31m\\r\\nnext\\tline\\x00',)"
    )

    assert message.kwargs == "{'k': '\\x1b[31m'}"
    assert_display_safe(message)


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters():
    raw = encode(envelope(headers={"argsrepr": "PLACEHOLDER", "kwargsrepr": "\udcff"}))
    raw = raw.replace(b"PLACEHOLDER", b"bad \xff\xfe bytes")
    message = decode_message(raw)
    assert message.argsrepr == "bad \ufffd\ufffd bytes"
    assert message.kwargsrepr == "\ufffd"
    body = b'[["\\ud800 lone", "\xc3\x28"], {}, {}]'
    message = decode_message(encode(envelope(raw_body=body)))
    assert message.args == "('\\ud800 lone', '\ufffd(')"
    assert_display_safe(message)


def test_random_corruption_never_raises():
    """Mutated copies of a real envelope: never an exception, always display-safe text."""
    rng = random.Random(20261127)
    seed = encode(envelope([["a" * 50, {"b": [1, 2, 3]}], {"k": "v"}, {}]))
    alphabet = b'{}[]",:\\0123456789abcdefu \x00\x1b\xff\xc3'
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            action = rng.random()
            if action < 0.5:
                data[position] = rng.choice(alphabet)
            elif action < 0.75:
                del data[position : position + rng.randint(1, 20)]
            else:
                data[position:position] = bytes(
                    rng.choice(alphabet) for _ in range(rng.randint(1, 5))
                )
        message = decode_message(bytes(data))
        assert isinstance(message, PeekedMessage)
        assert_display_safe(message)
