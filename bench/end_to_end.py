"""End to end: a private Redis, a publisher of worker-format events at a
fixed rate, and a receiver counting what it got: taskwatch's, then Celery's
own EventReceiver + State (what ``celery events`` runs), then Flower when it
is installed.

    .venv/bin/python bench/end_to_end.py [--tasks 100000] [--rate 40000]

Each receiver runs in its own process, on the same stream, one after the
other. Reported per receiver: tasks seen out of those sent, gaps (pub/sub
connections the server cut), and memory per retained task (RSS growth over
its idle baseline, after a full collection).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the receivers (run in child processes) -----------------------------------

def subject_taskwatch(url: str, expect_events: int, idle: float) -> dict:
    import gc

    from taskwatch.config import Settings
    from taskwatch.monitor import Monitor

    monitor = Monitor.from_settings(Settings(broker_url=url), max_tasks=10**7, backfill=0).start()
    deadline = time.monotonic() + 10
    while not monitor.events_connected and time.monotonic() < deadline:
        time.sleep(0.01)
    gc.collect()
    baseline = rss_bytes()
    print("READY", flush=True)
    state = monitor.state
    wait_until(lambda: state.counters.events_received, expect_events, idle)
    monitor.stop()
    gc.collect()
    return {
        "events": state.counters.events_received,
        "tasks": state.counters.tasks_seen,
        "retained": len(state.tasks),
        "gaps": len(state.gaps),
        "rss_growth": rss_bytes() - baseline,
    }


def subject_celery(url: str, expect_events: int, idle: float) -> dict:
    import gc
    import threading

    from celery import Celery
    from celery.events.state import State

    app = Celery("bench", broker=url, set_as_current=False)
    state = State(max_tasks_in_memory=10**7)
    counter = {"events": 0, "gaps": 0}

    def on_event(event: dict) -> None:
        counter["events"] += 1
        state.event(event)

    def capture() -> None:
        while True:
            try:
                with app.connection_for_read() as conn:
                    receiver = app.events.Receiver(conn, handlers={"*": on_event})
                    receiver.capture(limit=None, timeout=None, wakeup=False)
            except Exception:  # noqa: BLE001 - what `celery events` does: reconnect
                counter["gaps"] += 1
                time.sleep(0.1)

    threading.Thread(target=capture, daemon=True).start()
    time.sleep(1.0)  # no readiness signal from the receiver: give it a second
    gc.collect()
    baseline = rss_bytes()
    print("READY", flush=True)
    wait_until(lambda: counter["events"], expect_events, idle)
    gc.collect()
    return {
        "events": counter["events"],
        "tasks": len(state.tasks),
        "retained": len(state.tasks),
        "gaps": counter["gaps"],
        "rss_growth": rss_bytes() - baseline,
    }


def wait_until(count, expect: int, idle: float) -> None:
    """Until everything arrived, or nothing new came for ``idle`` seconds."""
    last, last_change = -1, time.monotonic()
    while True:
        now_count = count()
        if now_count >= expect:
            return
        if now_count != last:
            last, last_change = now_count, time.monotonic()
        elif time.monotonic() - last_change > idle:
            return
        time.sleep(0.05)


SUBJECTS = {"taskwatch": subject_taskwatch, "celery": subject_celery}


# -- the driver -------------------------------------------------------------------

def publish(url: str, stream, rate: float) -> float:
    """Publish the stream paced at ``rate`` events/s; returns the achieved rate."""
    import redis

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    tick = 0.01
    per_tick = rate * tick
    t0 = time.perf_counter()
    sent_events = 0
    budget = 0.0
    i = 0
    while i < len(stream):
        budget += per_tick
        while i < len(stream) and budget > 0:
            message = stream[i]
            pipe.publish(message.channel, message.data)
            budget -= message.events
            sent_events += message.events
            i += 1
        pipe.execute()
        target = t0 + (sent_events / rate)
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - t0
    client.close()
    return sent_events / elapsed


def run_subject(name: str, url: str, stream, rate: float, total_events: int, idle: float) -> dict:
    child = subprocess.Popen(
        [sys.executable, __file__, "--subject", name, "--url", url, "--expect", str(total_events),
         "--idle", str(idle)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "READY":
        raise SystemExit(f"{name}: receiver did not start ({line!r})")
    achieved = publish(url, stream, rate)
    out, _ = child.communicate(timeout=300)
    result = json.loads(out.strip().splitlines()[-1])
    result["publish_rate"] = achieved
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=40_000)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--subject", choices=sorted(SUBJECTS))
    parser.add_argument("--url")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--only", choices=sorted(SUBJECTS), action="append")
    args = parser.parse_args()
    if args.subject:
        print(json.dumps(SUBJECTS[args.subject](args.url, args.expect, args.idle)), flush=True)
        return

    from bench.stream import messages
    from taskwatch.demo.redis_server import RedisServer

    stream = messages(args.tasks, fail_ratio=0.05)
    total = sum(m.events for m in stream)
    print(f"stream: {args.tasks:,} tasks, {total:,} events in {len(stream):,} messages, "
          f"target {args.rate:,.0f} events/s")
    results = {}
    for name in args.only or ("taskwatch", "celery"):
        with RedisServer() as server:  # a fresh server each: same conditions
            results[name] = r = run_subject(name, server.url(0), stream, args.rate, total, args.idle)
        per_task = r["rss_growth"] / max(r["retained"], 1)
        print(f"{name:>10}: published at {r['publish_rate']:,.0f} ev/s; got {r['events']:,}/{total:,} events, "
              f"{r['tasks']:,}/{args.tasks:,} tasks, gaps {r['gaps']}, "
              f"{per_task:,.0f} B per retained task")
    try:
        import flower  # noqa: F401
    except ImportError:
        print("    flower: not installed (pip install flower to compare)")
    if "taskwatch" in results and "celery" in results:
        ours, theirs = results["taskwatch"], results["celery"]
        print(f"ratio: tasks seen {ours['tasks'] / max(theirs['tasks'], 1):.2f}x, memory per task "
              f"{(theirs['rss_growth'] / max(theirs['retained'], 1)) / max(ours['rss_growth'] / max(ours['retained'], 1), 1):.1f}x less")


if __name__ == "__main__":
    main()
