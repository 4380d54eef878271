"""Where the event receiver's time goes, per message, for both message shapes.

    .venv/bin/python bench/profile_receiver.py [--tasks 20000] [--pyinstrument]

A private Redis with no pub/sub output-buffer limit holds a whole stream for
a subscriber that has not read yet; each stage is then timed on its own over
that stream (microseconds per message, best of ``--repeat``):

* ``redis-py get_message``: reading and parsing the pub/sub messages the way
  redis-py's ``PubSub`` does, with its pure-Python RESP parser and with
  hiredis (what the receiver did before the spool);
* ``drain (recv_into)``: only moving the bytes off the socket (the spool's
  reader);
* ``hiredis.Reader``: splitting those bytes into messages (the decoder's
  first step);
* ``decode``: kombu envelope + base64 + event JSON to dicts (old and new);
* ``apply``: ``ClusterState.apply_events`` on the decoded events.

``--pyinstrument`` also profiles the old read loop (redis-py + decode +
apply, in one thread) over the stream and prints the call tree.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hiredis  # noqa: E402
import redis  # noqa: E402
from redis._parsers import _HiredisParser, _RESP2Parser  # noqa: E402

from bench.stream import SHAPES, messages  # noqa: E402
from taskwatch.demo.redis_server import RedisServer  # noqa: E402
from taskwatch.engine.state import ClusterState  # noqa: E402
from taskwatch.sources.event_decode import decode_envelope  # noqa: E402

CHANNEL = "/0.celeryev"


def fill(server_port: int, stream) -> None:
    client = redis.Redis(port=server_port, protocol=2)
    pipe = client.pipeline(transaction=False)
    for i, message in enumerate(stream):
        pipe.publish(message.channel, message.data)
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    client.close()


def subscribed(port: int, parser) -> redis.client.PubSub:
    pool = redis.ConnectionPool(port=port, protocol=2, parser_class=parser)
    pubsub = redis.Redis(connection_pool=pool).pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(CHANNEL + "/*")
    while pubsub.subscribed is False or pubsub.get_message(timeout=0.2) is not None:
        pass
    return pubsub


def time_redis_py(port: int, stream, parser) -> float:
    pubsub = subscribed(port, parser)
    fill(port, stream)
    n = 0
    get = pubsub.get_message
    t0 = time.perf_counter()
    while n < len(stream):
        if get(timeout=1.0) is not None:
            n += 1
    elapsed = time.perf_counter() - t0
    pubsub.close()
    return elapsed


def raw_subscriber(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    pattern = (CHANNEL + "/*").encode()
    sock.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(pattern), pattern))
    reader = hiredis.Reader()
    while True:
        reader.feed(sock.recv(4096))
        if reader.gets() is not False:
            return sock


def time_drain(port: int, stream) -> tuple[float, list[bytes]]:
    sock = raw_subscriber(port)
    fill(port, stream)
    total = sum(len(frame(m)) for m in stream)  # exactly this many bytes will come
    chunks: list[bytes] = []
    got = 0
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    sock.settimeout(1.0)
    t0 = time.perf_counter()
    while got < total:
        try:
            n = sock.recv_into(view)
        except TimeoutError:
            break
        chunks.append(bytes(view[:n]))
        got += n
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed, chunks


def frame(message) -> bytes:
    """The bytes Redis sends a PSUBSCRIBEd client for one published message."""
    parts = [b"pmessage", (CHANNEL + "/*").encode(), message.channel.encode(), message.data]
    return b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def time_split(chunks: list[bytes], feed_size: int = 65536) -> tuple[float, list[bytes]]:
    """hiredis compacts its buffer (a memmove of what is left) after each reply
    once 1 KB is consumed: it is fed in slices, not whole megabytes."""
    reader = hiredis.Reader()
    out = []
    gets = reader.gets
    t0 = time.perf_counter()
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(chunk), feed_size):
            reader.feed(view[start:start + feed_size])
            while (reply := gets()) is not False:
                out.append(reply[3])
    return time.perf_counter() - t0, out


def time_decode(payloads: list[bytes], decode) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = [decode(p) for p in payloads]
    return time.perf_counter() - t0, out


def time_apply(decoded: list, batch_max: int = 500) -> float:
    state = ClusterState(max_tasks=10**7)
    batches, batch = [], []
    for events in decoded:
        batch.extend(events)
        if len(batch) >= batch_max:
            batches.append(batch)
            batch = []
    batches.append(batch)
    t0 = time.perf_counter()
    for batch in batches:
        state.apply_events(batch, 1_795_000_100.0, True)
    return time.perf_counter() - t0


def profile_old_loop(port: int, stream) -> None:
    from pyinstrument import Profiler

    pubsub = subscribed(port, _RESP2Parser)
    fill(port, stream)
    state = ClusterState(max_tasks=10**7)
    get = pubsub.get_message
    n = 0
    profiler = Profiler(interval=0.0005)
    profiler.start()
    while n < len(stream):  # what RedisEventReceiver._read_loop did per message
        batch = []
        while len(batch) < 500 and n < len(stream):
            message = get(timeout=1.0)
            if message is None:
                continue
            n += 1
            batch.extend(decode_envelope(message["data"]) or ())
        state.apply_events(batch, time.time(), True)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    pubsub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args()
    from taskwatch.sources import events as receiver_module

    new_decode = getattr(receiver_module, "decode_payload", None)
    with RedisServer() as server:
        admin = redis.Redis(port=server.port)
        admin.config_set("client-output-buffer-limit", "pubsub 0 0 0")
        for shape in SHAPES:
            stream = messages(args.tasks, shape=shape)
            n = len(stream)
            events = sum(m.events for m in stream)
            size = sum(len(m.data) for m in stream) / n
            rows: dict[str, float] = {}

            def best(label: str, fn, rows=rows, n=n) -> None:
                rows[label] = min(fn() for _ in range(args.repeat)) / n * 1e6

            best("redis-py get_message, pure-Python parser", lambda s=stream: time_redis_py(server.port, s, _RESP2Parser))
            best("redis-py get_message, hiredis parser", lambda s=stream: time_redis_py(server.port, s, _HiredisParser))
            _, chunks = time_drain(server.port, stream)
            best("drain (recv_into, 1 MB buffer)", lambda s=stream: time_drain(server.port, s)[0])
            _, payloads = time_split(chunks)
            assert len(payloads) == n, (len(payloads), n)
            best("hiredis.Reader: split into messages", lambda c=chunks: time_split(c)[0])
            best("decode_envelope (orjson envelope, b64, orjson body)",
                 lambda p=payloads: time_decode(p, decode_envelope)[0])
            if new_decode is not None:
                best("decode_payload (the spool's decoder)", lambda p=payloads: time_decode(p, new_decode)[0])
            _, decoded = time_decode(payloads, decode_envelope)
            best("apply_events (batches of 500 events)", lambda d=decoded: time_apply(d))
            print(f"\n{shape}: {n:,} messages, {events:,} events ({events / n:.1f} per message), "
                  f"{size:,.0f} B per message; µs per message, best of {args.repeat}")
            for label, us in rows.items():
                print(f"  {label:<55} {us:7.2f} µs   ({1e6 / us:>10,.0f} msg/s)")
            if args.pyinstrument:
                profile_old_loop(server.port, stream)


if __name__ == "__main__":
    main()
