"""The event receiver's spool, its frame splitter and its decoder, on plain bytes."""

from __future__ import annotations

import base64
import json

from taskwatch.sources.event_decode import decode_envelope, decode_payload
from taskwatch.sources.spool import Break, PubSubFrames, Spool


def frame(payload: bytes, channel: bytes = b"/0.celeryev/task.received") -> bytes:
    parts = [b"pmessage", b"/0.celeryev/*", channel, payload]
    return b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


SUBSCRIBED = b"*3\r\n$10\r\npsubscribe\r\n$13\r\n/0.celeryev/*\r\n:1\r\n"
PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def kombu_envelope(event: object) -> bytes:
    """What kombu's Redis transport publishes for an event (prepare_message,
    encode_body, its json.dumps), built by kombu's own code."""
    from kombu import Connection
    from kombu.utils.json import dumps

    with Connection("memory://") as conn:
        channel = conn.default_channel
        message = channel.prepare_message(
            json.dumps(event), 0, "application/json", "utf-8", {"hostname": "w@h"},
            {"delivery_info": {"exchange": "celeryev", "routing_key": "task.multi"}})
        message["body"], message["properties"]["body_encoding"] = channel.encode_body(
            message["body"], channel.body_encoding)
        return dumps(message).encode()


def test_kombus_envelope_is_read_for_its_body_alone():
    one = {"type": "task-received", "uuid": "u1", "args": "(1, 'é')", "hostname": "w@h", "timestamp": 1.5}
    for body in (one, [one, {**one, "uuid": "u2"}]):
        data = kombu_envelope(body)
        assert data.startswith(b'{"body": "')  # the fast path's layout
        assert decode_payload(data) == decode_envelope(data) == (body if isinstance(body, list) else [body])


def test_decode_payload_refuses_what_decode_envelope_refuses():
    pickled = kombu_envelope({"type": "x"}).replace(b"application/json", b"application/x-python-serialize")
    assert decode_payload(pickled) is None
    assert decode_payload(b'{"body": "!!!", "content-type": "application/json"}') is None
    assert decode_payload(b"\x80\x04not json") is None
    bad_base64 = b'{"body": "%%%%", "content-type": "application/json", "properties": {"body_encoding": "base64"}}'
    assert decode_payload(bad_base64) is None
    # Invalid UTF-8 in the body: replacement characters, as on the full path.
    raw = base64.b64encode(b'{"type": "task-received", "uuid": "u", "args": "\xff"}')
    data = b'{"body": "%s", "content-type": "application/json", "properties": {"body_encoding": "base64"}}' % raw
    assert decode_payload(data) == [{"type": "task-received", "uuid": "u", "args": "\ufffd"}]


def test_frames_cut_anywhere_give_every_payload_once():
    payloads = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i * 37 % 300)) for i in range(40)]
    stream = SUBSCRIBED + b"".join(frame(p) for p in payloads[:20]) + PONG + b"".join(
        frame(p) for p in payloads[20:])
    for cut in (1, 2, 7, 64, 1000, len(stream)):
        frames, out = PubSubFrames(), []
        for start in range(0, len(stream), cut):
            frames.feed(memoryview(stream)[start:start + cut], out)
        assert out == payloads, cut


def test_after_dropped_bytes_the_next_message_start_is_found():
    payloads = [b'{"n": %d}' % i for i in range(10)]
    stream = b"".join(frame(p) for p in payloads)
    third = stream.index(frame(payloads[3]))
    for resume in range(third - 30, third + 1):  # dropped up to anywhere in message 2
        frames, out = PubSubFrames(), []
        frames.feed(stream[:25], out)  # half of message 0, then the drop
        frames.reset(resync=True)
        for start in range(resume, len(stream), 5):
            frames.feed(stream[start:start + 5], out)
        assert out[-7:] == payloads[3:], resume
        assert len(out) == (8 if resume <= third - len(frame(payloads[2])) else 7)


def test_protocol_garbage_is_counted_and_the_parser_recovers():
    """Not a published message's doing (payloads are length-prefixed): a server
    bug, or a resync misled by a payload that is not JSON. What was fed with
    the garbage is lost; the next message start is found after it."""
    frames, out = PubSubFrames(), []
    frames.feed(frame(b'{"a": 1}') + b"!garbage\r\n" + frame(b'{"lost": 2}'), out)
    frames.feed(b"more garbage" + frame(b'{"b": 3}') + frame(b'{"c": 4}'), out)
    assert out == [b'{"a": 1}', b'{"b": 3}', b'{"c": 4}']
    assert frames.errors == 1


def test_spool_hands_over_in_order_and_frees_what_was_read():
    spool = Spool(limit=1 << 20, block=4096)
    written = b""
    for i in range(100):
        chunk = b"%03d-" % i * 20
        room = spool.room()
        room[:len(chunk)] = chunk[:len(room)]
        spool.commit(min(len(chunk), len(room)))
        written += chunk[:len(room)]
        del room
    got = b"".join(bytes(v) for v in spool.take(0.0))
    assert got == written and spool.pending == 0
    spool.take(0.0)
    assert len(spool._items) <= 1  # read blocks are gone (unmapped)


def test_a_full_spool_drops_counts_and_marks_where_it_resumes():
    spool = Spool(limit=8192, block=4096)

    def write(n: int) -> None:
        room = spool.room()
        room[:n] = b"x" * n
        spool.commit(n)

    for _ in range(4):
        write(2048)
    assert spool.pending == 8192 and not spool.full
    write(1000)  # over the limit: dropped
    assert spool.full and spool.dropped == 1000 and spool.overflows == 1
    first = spool.take(0.0)
    assert sum(len(v) for v in first) == 8192
    write(100)  # the spool drained: reading resumes, after a break that asks to resync
    assert not spool.full and spool.pending == 100
    second = spool.take(0.0)
    assert second[0] == Break(resync=True) and len(second[1]) == 100
    assert spool.take(0.0) == []


def test_the_spool_size_is_a_setting(tmp_path):
    from taskwatch.config import resolve
    from taskwatch.monitor import Monitor

    empty = tmp_path / "empty.toml"
    empty.write_text("")
    settings = resolve({}, env={"TASKWATCH_EVENT_SPOOL_MB": "64", "TASKWATCH_BROKER_URL": "redis://127.0.0.1:1/0"},
                       config_file=empty)
    assert settings.event_spool_mb == 64
    monitor = Monitor.from_settings(settings, backfill=0)  # nothing connects before start()
    assert monitor.receiver.spool.limit == 64 * 1024 * 1024
    assert Monitor.from_settings(resolve({}, env={"TASKWATCH_BROKER_URL": "redis://127.0.0.1:1/0"},
                                         config_file=empty), backfill=0).receiver.spool.limit == 256 * 1024 * 1024
