"""The AMQP event receiver under a burst: RabbitMQ, a publisher at full speed, taskwatch.

    .venv/bin/python bench/amqp_receiver.py [--tasks 30000] [--shape single --shape batched]
                                            [--repeat 1] [--profile]

A private vhost on the machine's RabbitMQ (created through the management
API, guest/guest on 15672, and deleted afterwards: other receivers on ``/``
never see the burst). For each shape (``single``: one event per message;
``batched``: workers' ``task.multi`` of about 12 events) a fresh taskwatch
``Monitor`` (with the management API, so drops are confirmed) listens in a
child process while the whole stream, built before timing, is published at
the publisher's full speed with py-amqp. Reported:

* tasks seen, of those sent; the messages the receiver read off its socket,
  of those published (the rest were never read: RabbitMQ dropped them from
  the event queue past its 5 s TTL, or the receiver was stuck), and the
  messages the receiver itself dropped (its spool full);
* gaps recorded (their reasons), once the management API had its say;
* how far behind it fell: the largest lag the header showed (the age of the
  events applied over the caught-up baseline), and the peak of what it had
  read and not yet applied;
* how fast it read: messages per second from the first message read to the
  last; with ``--backlog`` the receiver's connection goes through a relay
  frozen while the whole stream is published (the event queue's TTL raised
  so nothing expires) and thawed after: the reading thread's own speed on a
  backlog, whatever the publisher's;
* the reading thread's CPU time per message read (``time.thread_time``), and
  with ``--profile`` where it goes (cProfile of that thread only, timed by
  its CPU clock, the top functions by own time, µs per message read; the
  profiler slows the thread several times over, so the other figures of a
  ``--profile`` run are not comparable).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API = "http://127.0.0.1:15672"
AUTH = ("guest", "guest")


def receiver_class() -> type:
    try:
        from taskwatch.sources.events_amqp import AmqpEventReceiver
    except ImportError:  # before the receiver had its own module
        from taskwatch.sources.events import AmqpEventReceiver
    return AmqpEventReceiver


# -- the receiver (a child process) ---------------------------------------------

def subject(args: argparse.Namespace) -> dict:
    import cProfile
    import io
    import pstats
    import threading

    from celery import Celery

    from bench.end_to_end import wait_until
    from taskwatch.config import Settings
    from taskwatch.monitor import Monitor

    url, events, idle, hold, read_ahead = args.url, args.events, args.idle, args.hold, args.read_ahead
    cls = receiver_class()
    if read_ahead is not None:  # bytes py-amqp's recv() may take (0: exactly what it asks for)
        import taskwatch.sources.events_amqp as events_amqp

        events_amqp.READ_AHEAD = read_ahead
    read_loop = cls._read_loop
    cpu = {"seconds": 0.0}
    profiler = cProfile.Profile(time.thread_time) if args.profile else None  # CPU, not waiting

    def measured(self) -> None:  # the reading thread's own CPU time, and its profile
        t0 = time.thread_time()
        try:
            if profiler is not None:
                profiler.runcall(read_loop, self)
            else:
                read_loop(self)
        finally:
            cpu["seconds"] += time.thread_time() - t0

    cls._read_loop = measured
    decode_loop = getattr(cls, "_decode_loop", None)
    if decode_loop is not None:  # the decoder thread's CPU time (read first, decode behind)
        def decoding(self) -> None:
            t0 = time.thread_time()
            try:
                decode_loop(self)
            finally:
                cpu["decoder"] = cpu.get("decoder", 0.0) + time.thread_time() - t0

        cls._decode_loop = decoding
    settings = Settings(broker_url=url, rabbitmq_api=f"http://{AUTH[0]}:{AUTH[1]}@127.0.0.1:15672")
    app = Celery("bench", set_as_current=False)
    if args.backlog:  # the whole stream waits at RabbitMQ while the link is frozen: none may expire
        app.conf.event_queue_ttl = 3600
    monitor = Monitor.from_settings(settings, app, max_tasks=10**7, backfill=0).start()
    deadline = time.monotonic() + 20
    while not monitor.events_connected and time.monotonic() < deadline:
        time.sleep(0.01)
    print("READY", flush=True)
    state, receiver = monitor.state, monitor.receiver
    peak = {"unapplied": 0, "events": 0, "at": time.time(), "read": 0, "read_from": 0.0, "read_to": 0.0}
    typing = threading.Event()
    if hold:  # someone typing: each key holds the events while it is drawn
        def keys() -> None:
            while not typing.wait(hold * 2):
                monitor.hold_events(hold)
        threading.Thread(target=keys, daemon=True).start()

    def count() -> int:
        peak["unapplied"] = max(peak["unapplied"], receiver.unapplied())
        read = receiver.messages_read
        if read != peak["read"]:  # when reading began and when it last moved
            peak["read"], peak["read_to"] = read, time.perf_counter()
            peak["read_from"] = peak["read_from"] or peak["read_to"]
        n = state.counters.events_received
        if n != peak["events"]:
            peak["events"], peak["at"] = n, time.time()
        return n

    wait_until(count, events, idle)
    typing.set()
    # The management API confirms (or not) drops a statistics interval or
    # more after the receiver caught up, on a thread of its own.
    settle = time.monotonic() + 30
    while (any(t.name == "taskwatch-event-loss" for t in threading.enumerate())
           and time.monotonic() < settle):
        time.sleep(0.1)
    read = receiver.messages_read
    dropped_here = getattr(receiver, "dropped_messages", 0)
    monitor.stop()
    receiver.join(10)  # its reading thread's CPU time is counted when the loop returns
    decoder = getattr(receiver, "_decoder", None)
    if decoder is not None:
        decoder.join(10)
    result = {
        "tasks": state.counters.tasks_seen,
        "events": state.counters.events_received,
        "read": read,
        "dropped_here": dropped_here,
        "gaps": [g.reason for g in state.gaps],
        "false_alarms": monitor.expiry_false_alarms,
        "max_lag": state.counters.max_lag,
        "peak_unapplied": peak["unapplied"],
        "done_at": peak["at"],  # the last event applied
        "reading": peak["read_to"] - peak["read_from"],  # seconds from the first message read to the last
        "reader_cpu": cpu["seconds"],
        "decoder_cpu": cpu.get("decoder"),
    }
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        rows = []
        for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
            rows.append((tottime, cumtime, calls, f"{Path(path).name}:{line}({name})"))
        rows.sort(reverse=True)
        result["profile"] = [(f, tt, ct, calls) for tt, ct, calls, f in rows[:18]]
    return result


# -- the driver ----------------------------------------------------------------------

class PrivateVhost:
    """A vhost of its own on the machine's RabbitMQ, for guest, deleted afterwards."""

    def __init__(self) -> None:
        import httpx

        self.name = f"taskwatch-bench-{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(base_url=API, auth=AUTH, timeout=10)

    def __enter__(self) -> PrivateVhost:
        self.http.put(f"/api/vhosts/{self.name}").raise_for_status()
        self.http.put(f"/api/permissions/{self.name}/{AUTH[0]}",
                      json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return self

    @property
    def url(self) -> str:
        return f"amqp://{AUTH[0]}:{AUTH[1]}@127.0.0.1:5672/{self.name}"

    def consumers(self, prefix: str) -> int:
        """Consumers of the vhost's queues whose names start with ``prefix``."""
        from urllib.parse import quote

        queues = self.http.get(f"/api/queues/{quote(self.name, safe='')}").raise_for_status().json()
        return sum(q.get("consumers") or 0 for q in queues if q.get("name", "").startswith(prefix))

    def __exit__(self, *exc: object) -> None:
        self.http.delete(f"/api/vhosts/{self.name}")
        self.http.close()


def publish(vhost: str, stream: list[tuple[str, Any, int]]) -> tuple[float, float]:
    """Publish the whole stream as fast as py-amqp can, each event stamped with
    the time it is published (so the lag the receiver measures is real);
    returns messages per second, and when the last one was sent."""
    import amqp
    import orjson

    # Without connection.blocked, py-amqp polls the socket before every
    # publish (drain_events(timeout=0)): slower, and a write can then time
    # out. Its default TCP_USER_TIMEOUT (1 s) ends the connection when
    # RabbitMQ holds the publisher back (flow control) longer than that.
    conn = amqp.Connection("127.0.0.1:5672", userid=AUTH[0], password=AUTH[1], virtual_host=vhost,
                           client_properties={"capabilities": {}},
                           socket_settings={socket.TCP_USER_TIMEOUT: 0})
    conn.connect()
    channel = conn.channel()
    channel.exchange_declare("celeryev", "topic", passive=True)  # the receiver declared it
    send, dumps, now, message = channel.basic_publish, orjson.dumps, time.time, amqp.Message
    t0 = time.perf_counter()
    for key, body, _events in stream:
        stamp = now()
        for event in body if type(body) is list else (body,):
            event["timestamp"] = stamp
        send(message(dumps(body), content_type="application/json", content_encoding="utf-8", delivery_mode=1),
             exchange="celeryev", routing_key=key)
    elapsed = time.perf_counter() - t0
    done = time.time()
    conn.close()
    return len(stream) / elapsed, done


def run(shape: str, args: argparse.Namespace) -> dict:
    from contextlib import nullcontext

    from bench.stream import bodies
    from tests.proxy import FreezableLink

    stream = [(key, body, n) for key, _host, body, n in bodies(args.tasks, shape=shape)]
    events = sum(n for _key, _body, n in stream)
    with PrivateVhost() as vhost, (FreezableLink(("127.0.0.1", 5672)) if args.backlog else nullcontext()) as link:
        url = vhost.url if link is None else vhost.url.replace(":5672/", f":{link.port}/")
        command = [sys.executable, __file__, "--subject", "--url", url, "--events", str(events),
                   "--idle", str(args.idle), "--hold", str(args.hold)] + (["--profile"] if args.profile else []) \
            + (["--backlog"] if args.backlog else []) \
            + ([f"--read-ahead={args.read_ahead}"] if args.read_ahead is not None else [])
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"the receiver did not start ({line!r})")
        if link is not None:
            link.freeze()
        rate, published_at = publish(vhost.name, stream)
        if link is not None:
            link.thaw()
        out, _ = child.communicate(timeout=900)
    result = json.loads(out.strip().splitlines()[-1])
    result["behind_at_end"] = result.pop("done_at") - published_at
    result.update(published=len(stream), sent_events=events, rate=rate, shape=shape, sent_tasks=args.tasks)
    return result


def report(r: dict) -> None:
    lost = r["published"] - r["read"]
    print(f"\n{r['shape']}: {r['sent_tasks']:,} tasks, {r['sent_events']:,} events in {r['published']:,} "
          f"messages, published at {r['rate']:,.0f} msg/s")
    print(f"  tasks seen {r['tasks']:,}/{r['sent_tasks']:,}, events {r['events']:,}/{r['sent_events']:,}; "
          f"messages read {r['read']:,} (never read: {lost:,}), dropped by the receiver "
          f"{r['dropped_here']:,}")
    print(f"  behind: max lag {r['max_lag']:.1f} s, peak unapplied {r['peak_unapplied'] / 2**20:.1f} MB, "
          f"last event applied {r['behind_at_end']:.1f} s after the last publish; reading thread {r['reader_cpu'] / max(r['read'], 1) * 1e6:.1f} "
          f"µs CPU per message read" + (f", decoding thread {r['decoder_cpu'] / max(r['events'], 1) * 1e6:.1f} µs "
                                        "per event applied" if r.get("decoder_cpu") is not None else ""))
    if r["reading"] > 0:
        print(f"  read {r['read'] / r['reading']:,.0f} msg/s from the first message read to the last "
              f"({r['reading']:.2f} s)")
    print(f"  gaps {len(r['gaps'])}" + "".join(f"\n    - {g}" for g in r["gaps"])
          + (f"; expiry false alarms {r['false_alarms']}" if r["false_alarms"] else ""))
    for name, tottime, cumtime, calls in r.get("profile", ()):
        per = 1e6 / max(r["read"], 1)
        print(f"    {tottime * per:7.2f} µs own {cumtime * per:7.2f} µs cum {calls:>9,}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30_000)
    parser.add_argument("--shape", choices=("single", "batched"), action="append")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--idle", type=float, default=8.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--read-ahead", type=int,
                        help="bytes py-amqp's recv() may take (events_amqp.READ_AHEAD; 0: exact reads)")
    parser.add_argument("--backlog", action="store_true",
                        help="the receiver's link is frozen while the stream is published, then thawed: "
                             "how fast it reads a backlog, whatever the publisher's speed")
    parser.add_argument("--subject", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds the events are held (a key being drawn) every 2x that long; 0: none")
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    if args.subject:
        print(json.dumps(subject(args)), flush=True)
        return
    print(time.strftime("%Y-%m-%d %H:%M"), f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
          f"hold {args.hold:g} s of every {2 * args.hold:g} s" if args.hold else "no hold",
          "; backlog (frozen link while publishing)" if args.backlog else "")
    for _ in range(args.repeat):
        for shape in args.shape or ["single", "batched"]:
            report(run(shape, args))


if __name__ == "__main__":
    main()
