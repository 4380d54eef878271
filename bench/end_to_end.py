"""End to end: a private Redis, a publisher of Celery events, and three receivers
on the same stream: taskwatch's, Celery's own EventReceiver + State (what
``celery events`` runs), and Flower (``pip install 'taskwatch[bench]'``).

    .venv/bin/python bench/end_to_end.py [--tasks 100000] [--rate 40000 --rate 0]
                                         [--shape batched --shape single] [--only taskwatch]

Both message shapes: ``batched`` (workers' ``task.multi`` messages of about
12 events) and ``single`` (one event per message: producers' ``task-sent``,
beat, lightly loaded workers). ``--rate 0`` publishes at the publisher's full
speed (the messages are built before timing starts). Each receiver runs in
its own process, against a fresh server, one after the other, on the same
stream. Reported per receiver:

* tasks seen, out of those sent: taskwatch's and Celery's states counted in
  their process, Flower's through its own HTTP API (``/api/tasks``);
* gaps: the times the server cut the subscriber off for its output buffer
  (from the server's log), plus, for taskwatch, the gaps it recorded itself
  (a spool overflow is one);
* memory per retained task: the process's RSS growth over its idle baseline
  once everything it received is applied (after a full collection in the
  Python receivers), divided by the tasks it holds.

Then the ratios against taskwatch, per shape and rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as f:
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
    spool = getattr(monitor.receiver, "spool", None)
    peak_spool = [0]

    def count() -> int:
        if spool is not None:
            peak_spool[0] = max(peak_spool[0], spool.pending)
        return state.counters.events_received

    wait_until(count, expect_events, idle)
    monitor.stop()
    gc.collect()
    return {
        "events": state.counters.events_received,
        "tasks": state.counters.tasks_seen,
        "retained": len(state.tasks),
        "gaps": len(state.gaps),
        "rss_growth": rss_bytes() - baseline,
        "peak_spool": peak_spool[0],
        "dropped": spool.dropped if spool is not None else 0,
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
    gc.collect()
    baseline = rss_bytes()
    print("READY", flush=True)  # the driver waits until it has subscribed
    wait_until(lambda: counter["events"], expect_events, idle)
    gc.collect()
    return {
        "events": counter["events"],
        "tasks": len(state.tasks),
        "retained": len(state.tasks),
        "gaps": 0,  # the cut-offs the server logged are added by the driver
        "reconnects": counter["gaps"],
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


# -- Flower (its own process, read through its HTTP API) -----------------------

def _http(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own 127.0.0.1
        return response.read()


def flower_events(base: str) -> int:
    """Events Flower counted (its Prometheus counter ``flower_events_total``)."""
    total = 0.0
    for line in _http(base + "/metrics").decode().splitlines():
        if line.startswith("flower_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


class Flower:
    def __init__(self, url: str) -> None:
        from taskwatch.demo.redis_server import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-b", url, "flower", "--address=127.0.0.1",
             f"--port={self.port}", "--max_tasks=10000000", "--inspect_timeout=100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            try:
                flower_events(self.base)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("flower did not start") from None
                time.sleep(0.2)
        self.baseline = rss_bytes(self.process.pid)

    def result(self, expect_events: int, idle: float) -> dict:
        wait_until(lambda: flower_events(self.base), expect_events, idle)
        rss = rss_bytes(self.process.pid)  # before /api/tasks builds its answer
        tasks = json.loads(_http(self.base + "/api/tasks", timeout=300))
        return {"events": flower_events(self.base), "tasks": len(tasks), "retained": len(tasks),
                "gaps": 0, "rss_growth": rss - self.baseline}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the driver -------------------------------------------------------------------

def publish(url: str, stream, rate: float) -> float:
    """Publish the stream paced at ``rate`` events/s (0: as fast as it can); returns
    the achieved rate."""
    import redis

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    t0 = time.perf_counter()
    sent_events = 0
    if not rate:
        for i, message in enumerate(stream):
            pipe.publish(message.channel, message.data)
            sent_events += message.events
            if i % 200 == 199:
                pipe.execute()
        pipe.execute()
    else:
        per_tick = rate * 0.01
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
            delay = t0 + (sent_events / rate) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    elapsed = time.perf_counter() - t0
    client.close()
    return sent_events / elapsed


def wait_subscribed(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while not client.pubsub_numpat() and not client.pubsub_channels():
        if time.monotonic() > deadline:
            raise SystemExit("the receiver did not subscribe")
        time.sleep(0.02)
    time.sleep(0.2)  # its subscription confirmed on its side too
    client.close()


def cut_offs(server) -> int:
    """Subscribers the server cut off for their output buffer: its log says so
    (Redis 7.0's INFO has no counter for it yet)."""
    log = server.log_path
    text = log.read_text(errors="replace") if log is not None and log.exists() else ""
    return text.count("closed ASAP for overcoming of output buffer limits")


def run_subject(name: str, server, stream, rate: float, total_events: int, idle: float) -> dict:
    url = server.url(0)
    if name == "flower":
        flower = Flower(url)
        try:
            wait_subscribed(url)
            achieved = publish(url, stream, rate)
            result = flower.result(total_events, idle)
        finally:
            flower.close()
    else:
        child = subprocess.Popen(
            [sys.executable, __file__, "--subject", name, "--url", url, "--expect", str(total_events),
             "--idle", str(idle)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"{name}: receiver did not start ({line!r})")
        wait_subscribed(url)
        achieved = publish(url, stream, rate)
        out, _ = child.communicate(timeout=600)
        result = json.loads(out.strip().splitlines()[-1])
    result["cut_offs"] = cut_offs(server)
    result["gaps"] += result["cut_offs"] if name != "taskwatch" else 0
    result["publish_rate"] = achieved
    return result


def flower_installed() -> bool:
    try:
        import flower  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rate", type=float, action="append",
                        help="events/s; 0 = the publisher's full speed (default: 40000 and 0)")
    parser.add_argument("--shape", choices=("batched", "single"), action="append")
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--subject", choices=sorted(SUBJECTS))
    parser.add_argument("--url")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--only", choices=("taskwatch", "celery", "flower"), action="append")
    args = parser.parse_args()
    if args.subject:
        print(json.dumps(SUBJECTS[args.subject](args.url, args.expect, args.idle)), flush=True)
        return

    from bench.stream import messages
    from taskwatch.demo.redis_server import RedisServer

    subjects = args.only or ["taskwatch", "celery", "flower"]
    if "flower" in subjects and not flower_installed():
        print("flower: not installed (pip install 'taskwatch[bench]'): left out")
        subjects.remove("flower")
    print(time.strftime("%Y-%m-%d %H:%M"), f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for shape in args.shape or ["single", "batched"]:
        stream = messages(args.tasks, fail_ratio=0.05, shape=shape)
        total = sum(m.events for m in stream)
        for rate in args.rate or [40_000, 0]:
            target = f"{rate:,.0f} events/s" if rate else "the publisher's full speed"
            print(f"\n{shape}: {args.tasks:,} tasks, {total:,} events in {len(stream):,} messages, "
                  f"at {target}")
            results = {}
            for name in subjects:
                with RedisServer() as server:  # a fresh server each: same conditions
                    results[name] = r = run_subject(name, server, stream, rate, total, args.idle)
                r["per_task"] = r["rss_growth"] / max(r["retained"], 1)
                extra = ""
                if name == "taskwatch":
                    extra = f", spool peak {r['peak_spool'] / 2**20:,.0f} MB"
                    if r["dropped"]:
                        extra += f", {r['dropped']:,} B dropped (spool full)"
                print(f"  {name:>9}: published at {r['publish_rate']:,.0f} ev/s; "
                      f"{r['tasks']:,}/{args.tasks:,} tasks, {r['events']:,}/{total:,} events, "
                      f"gaps {r['gaps']} (Redis cut it off {r['cut_offs']}x), "
                      f"{r['per_task']:,.0f} B per retained task{extra}")
            ours = results.get("taskwatch")
            if ours is not None:
                for name, theirs in results.items():
                    if name == "taskwatch":
                        continue
                    print(f"  ratio taskwatch/{name}: tasks seen {ours['tasks'] / max(theirs['tasks'], 1):.2f}x, "
                          f"memory per task {theirs['per_task'] / max(ours['per_task'], 1):.1f}x less")


if __name__ == "__main__":
    main()
