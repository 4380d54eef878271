"""The TUI as a terminal sees it: start to first paint, idle output, key latency.

    .venv/bin/python bench/tui.py

Runs taskwatch and the peer, ``celery events`` (Celery's curses monitor), on
a pseudo-terminal at 80x24 against the demo's two workers on a private Redis
(no traffic producer: an idle cluster, apart from beat and heartbeats), and
measures, for each:

* start to first paint of the workers: from spawning the process until both
  workers' names are on screen;
* bytes written to the terminal per second on the idle cluster (what an SSH
  link carries while nobody touches the keyboard);
* key to screen update while 20,000 events/s flow in, in both message
  shapes (``--shape``: ``single``, one event per message, the costly one for
  a receiver; ``batched``, workers' ``task.multi``): taskwatch switches views
  (keys 4, 3, 2: task names, the tasks list over the ~100k tasks it retains
  by then, queues) and the time until the new view's content is on screen
  counts (its header; for the tasks list, a task's state); then it types into
  the ``/`` filter, each character timed until it is on screen (``typing``);
  ``celery events`` moves its selection (key j) and the time until its first
  output byte counts (a lower bound in its favour);
* with ``--quiet-typing``, the same keys once the load stopped, and the bytes
  taskwatch writes to open its ``/`` box (with no load, so that only the
  clock is drawn besides).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.terminal import ANSI, Terminal  # noqa: E402
from taskwatch.demo.cluster import DemoCluster  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def taskwatch_argv(url: str) -> list[str]:
    return [sys.executable, "-m", "taskwatch", "-b", url, "--config", "/dev/null"]


def celery_events_argv(url: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-b", url, "events"]


def first_paint(argv: list[str], hosts: list[str]) -> tuple[float, Terminal]:
    term = Terminal(argv, cwd=str(ROOT))
    pattern = "".join(f"(?=[\\s\\S]*{h.split('@')[0]}@)" for h in hosts)
    return term.wait_for(pattern, timeout=30), term


def idle_rate(term: Terminal, settle: float, seconds: float) -> float:
    end = time.monotonic() + settle
    while time.monotonic() < end:
        term.read(0.05)
    start_bytes = len(term.raw)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        term.read(0.05)
    return (len(term.raw) - start_bytes) / seconds


def _publisher(url: str, rate: float, shape: str, started, stop, report) -> None:
    """Publish at ``rate`` until ``stop`` is set; report (events, seconds, achieved rate)."""
    import redis

    from bench.stream import messages

    # Enough distinct tasks for a minute (single-event messages: 20 s, they
    # take 7x the memory per event); past that the stream repeats (re-sent
    # events update known tasks, which costs the same to apply).
    seconds = 60 if shape == "batched" else 20
    stream = messages(int(rate * seconds / 3), workers=2, shape=shape)
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    per_tick = rate * 0.01
    started.set()
    t0 = time.perf_counter()
    sent = 0
    budget = 0.0
    i = 0
    while not stop.is_set():
        budget += per_tick
        while budget > 0:
            message = stream[i % len(stream)]
            pipe.publish(message.channel, message.data)
            budget -= message.events
            sent += message.events
            i += 1
        pipe.execute()
        delay = t0 + sent / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - t0
    client.close()
    report.put((sent, elapsed, sent / elapsed))


class Load:
    """A paced event publisher in its own process, running while in the ``with`` block."""

    def __init__(self, url: str, rate: float, shape: str = "batched") -> None:
        context = multiprocessing.get_context("spawn")
        self.started, self.stop, self.report = context.Event(), context.Event(), context.Queue()
        self.process = context.Process(target=_publisher,
                                       args=(url, rate, shape, self.started, self.stop, self.report),
                                       daemon=True)
        self.achieved = 0.0

    def __enter__(self) -> Load:
        self.process.start()
        if not self.started.wait(60):
            raise SystemExit("the load publisher did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        _sent, _elapsed, self.achieved = self.report.get(timeout=30)
        self.process.join()


def shown_tasks(term: Terminal) -> str:
    """How many tasks taskwatch last said it retains (its tasks view's "All" tab)."""
    found = re.findall(r"All ([\d,.]+[kM]?)", term.text)
    return found[-1] if found else "none"


def shown_rate(term: Terminal) -> str:
    """The events/s figure taskwatch last drew in its status line."""
    found = re.findall(r"([\d,]+) ev/s", term.text)
    return found[-1] if found else "none"


def pauses(samples: int) -> list[float]:
    """Seconds between keys, as a person reading the screen leaves them: 0.15 to 1 s.

    The same sequence for both subjects. Not a fixed short beat: taskwatch
    puts garbage collection off while keys arrive, and a fixed quick rhythm
    would keep it off for the whole measurement.
    """
    rng = random.Random(5)
    return [rng.uniform(0.15, 1.0) for _ in range(samples)]


def taskwatch_key_latency(term: Terminal, samples: int, when: str = "") -> list[float]:
    latencies = []
    by_view: dict[str, list[float]] = {}
    views = [("4", "Task name"), ("3", "SUCCESS"), ("2", "By priority")]
    for i, pause in enumerate(pauses(samples)):
        key, marker = views[i % len(views)]
        term.read(0.0)
        before = len(term.raw)
        start = time.monotonic()
        term.send(key)
        while True:
            term.read(0.01)
            tail = term.raw[before:].decode("utf-8", "replace")
            if marker in tail:
                latencies.append(time.monotonic() - start)
                break
            if time.monotonic() - start > 5:
                latencies.append(5.0)
                break
        by_view.setdefault(key, []).append(latencies[-1])
        time.sleep(pause)
    print(f"     taskwatch: by view{when}: " + ", ".join(
        f"{key}: p50 {statistics.median(v) * 1000:.0f} ms max {max(v) * 1000:.0f} ms" for key, v in by_view.items()))
    return latencies


#: Typed into the filter: letters drawn nowhere else on taskwatch's screen
#: (no state, name or header has them), looked for with escape sequences
#: taken out (J, K, X and H end some of those).
TYPED = "QZXJWQZX"


def taskwatch_typing_latency(term: Terminal, samples: int) -> list[float]:
    """Open the ``/`` filter on the tasks list and type; each character timed
    until it is on screen. Escape closes the filter after each word.

    ``TUI_BENCH_PYSPY=FILE``: py-spy records taskwatch meanwhile (every
    thread, idle ones left out), collapsed stacks into FILE."""
    latencies: list[float] = []
    term.send("3")
    term.wait_for("SUCCESS", timeout=30)
    profile = os.environ.get("TUI_BENCH_PYSPY")
    spy = None
    if profile:
        import subprocess

        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                str(term.process.pid), "--format", "raw", "--output", profile,
                                "--threads", "--rate", "250", "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    delays = pauses(samples)
    retried = 0
    while len(latencies) < samples:
        term.read(0.0)
        before = len(term.raw)
        term.send("/")
        deadline = time.monotonic() + 30
        retry_at = time.monotonic() + 3
        while "filter:" not in ANSI.sub("", term.raw[before:].decode("utf-8", "replace")):
            if time.monotonic() > retry_at and retried < 5:
                # The Esc that closed the last word was read with this `/` as
                # one Alt-/ (a lone ESC waits for what follows; on a loaded
                # machine the app's input thread can miss that wait): the
                # word is still in the box. Close it again, as a person would.
                retried += 1
                term.send("\x1b")
                time.sleep(0.5)
                term.read(0.0)
                before = len(term.raw)
                term.send("/")
                retry_at = time.monotonic() + 3
            if time.monotonic() > deadline:
                state = "running" if term.process.poll() is None else f"exited with {term.process.returncode}"
                raise SystemExit(f"the filter did not open (taskwatch {state}); "
                                 f"last output: {ANSI.sub('', term.raw[-2000:].decode('utf-8', 'replace'))!r}")
            term.read(0.02)
        for char in TYPED:
            if len(latencies) >= samples:
                break
            term.read(0.0)
            before = len(term.raw)
            start = time.monotonic()
            term.send(char)
            while True:
                term.read(0.005)
                if char in ANSI.sub("", term.raw[before:].decode("utf-8", "replace")):
                    latencies.append(time.monotonic() - start)
                    break
                if time.monotonic() - start > 5:
                    latencies.append(5.0)
                    break
            time.sleep(delays[len(latencies) - 1] / 3)  # typing is quicker than reading
        term.send("\x1b")
        time.sleep(0.3)
    if retried:
        print(f"     taskwatch: Esc sent again {retried} time(s): the filter had not closed")
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    if os.environ.get("TUI_BENCH_VERBOSE"):
        print("typing:", " ".join(f"{c}{v * 1000:.0f}" for c, v in zip(TYPED * samples, latencies, strict=False)))
    return latencies


def taskwatch_filter_bytes(term: Terminal, times: int = 10) -> list[int]:
    """Bytes written to the terminal for opening the ``/`` box: from the key
    until 0.2 s after the box shows (the footer greys its keys meanwhile).
    Measured with no load, so that nothing else is drawn but the clock."""
    sizes = []
    for _ in range(times):
        term.read(0.3)
        before = len(term.raw)
        term.send("/")
        deadline = time.monotonic() + 30
        while "filter:" not in ANSI.sub("", term.raw[before:].decode("utf-8", "replace")):
            if time.monotonic() > deadline:
                raise SystemExit("the filter did not open")
            term.read(0.01)
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            term.read(0.02)
        sizes.append(len(term.raw) - before)
        term.send("\x1b")
    term.read(0.3)
    return sizes


def first_byte_latency(term: Terminal, key: str, samples: int) -> list[float]:
    latencies = []
    for pause in pauses(samples):
        while term.read(0.0):
            pass
        start = time.monotonic()
        term.send(key)
        while not term.read(0.005):
            if time.monotonic() - start > 5:
                break
        latencies.append(time.monotonic() - start)
        time.sleep(pause)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--no-peer", action="store_true", help="measure taskwatch only (for quick iterations)")
    parser.add_argument("--shape", choices=("single", "batched"), action="append",
                        help="message shape of the load (default: both)")
    parser.add_argument("--quiet-typing", action="store_true",
                        help="switch views and type into the filter again once the load stopped "
                             "(what decoding costs the keys)")
    args = parser.parse_args()
    shapes = args.shape or ["single", "batched"]
    with DemoCluster(producer=False) as cluster:
        url = cluster.broker_url
        from taskwatch.sources.inspect import Inspector

        inspector = Inspector(url)
        deadline = time.monotonic() + 90
        while len(inspector.poll_workers(details=False).pings) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("demo workers did not come up")
        inspector.close()
        hosts = list(cluster.worker_hostnames)
        results: dict[tuple[str, str], dict[str, float]] = {}
        subjects = [("taskwatch", taskwatch_argv(url)), ("celery events", celery_events_argv(url))]
        for name, argv in subjects[:1] if args.no_peer else subjects:
            for i, shape in enumerate(shapes):
                # A fresh process per shape: each starts from no task retained.
                paint, term = first_paint(argv, hosts)
                typing: list[float] = []
                quiet_typing: list[float] = []
                quiet_keys: list[float] = []
                slash_bytes: list[int] = []
                try:
                    idle = idle_rate(term, settle=3.0, seconds=args.idle_seconds) if i == 0 else None
                    with Load(url, args.rate, shape) as load:
                        time.sleep(2.0)  # the receiver is in its steady state
                        if name == "taskwatch":
                            latencies = taskwatch_key_latency(term, args.samples)
                            typing = taskwatch_typing_latency(term, args.samples)
                            shown = f"{shown_rate(term)} ev/s, {shown_tasks(term)} tasks retained"
                        else:
                            latencies = first_byte_latency(term, "j", args.samples)
                            shown = "n/a"
                    if name == "taskwatch" and args.quiet_typing:
                        # The same tasks retained, no events coming: what the
                        # keys cost without any decoding beside them.
                        time.sleep(3.0)
                        quiet_keys = taskwatch_key_latency(term, args.samples, " once the load stopped")
                        quiet_typing = taskwatch_typing_latency(term, args.samples)
                        slash_bytes = taskwatch_filter_bytes(term)
                finally:
                    term.close()
                r = results[name, shape] = {"paint": paint, "idle": idle, "p50": statistics.median(latencies),
                                            "p95": pct(latencies, 0.95)}
                label = f"{name} [{shape}]"
                print(f"{label:>24}: load published at {load.achieved:,.0f} ev/s (target {args.rate:,.0f}); "
                      f"on its screen at the end: {shown}")
                if load.achieved < 0.95 * args.rate:
                    print(f"{label:>24}: WARNING: the publisher fell short of the target rate; "
                          "this run does not show behaviour at that rate")
                if idle is not None:
                    print(f"{label:>24}: first paint {paint:.2f} s, idle output {idle:,.0f} B/s")
                print(f"{label:>24}: key→screen at {args.rate:,.0f} ev/s p50 {r['p50'] * 1000:.0f} ms "
                      f"p95 {r['p95'] * 1000:.0f} ms")
                if typing:
                    r["typing_p50"], r["typing_p95"] = statistics.median(typing), pct(typing, 0.95)
                    print(f"{label:>24}: typing into the filter, char→screen p50 {r['typing_p50'] * 1000:.0f} ms "
                          f"p95 {r['typing_p95'] * 1000:.0f} ms (max {max(typing) * 1000:.0f} ms)")
                if quiet_keys:
                    print(f"{label:>24}: view switches once the load stopped, key→screen "
                          f"p50 {statistics.median(quiet_keys) * 1000:.0f} ms "
                          f"p95 {pct(quiet_keys, 0.95) * 1000:.0f} ms")
                if slash_bytes:
                    print(f"{label:>24}: opening the / box wrote {statistics.median(slash_bytes):,.0f} bytes "
                          f"(median of {len(slash_bytes)}; max {max(slash_bytes):,})")
                if quiet_typing:
                    print(f"{label:>24}: the same once the load stopped (no events to decode), char→screen "
                          f"p50 {statistics.median(quiet_typing) * 1000:.0f} ms "
                          f"p95 {pct(quiet_typing, 0.95) * 1000:.0f} ms")
    if args.no_peer:
        return
    first = shapes[0]
    ours, theirs = results["taskwatch", first], results["celery events", first]
    print(f"ratios (celery events / taskwatch): first paint {theirs['paint'] / ours['paint']:.2f}x, "
          f"idle bytes {theirs['idle'] / max(ours['idle'], 1):.2f}x")
    for shape in shapes:
        ours, theirs = results["taskwatch", shape], results["celery events", shape]
        print(f"ratios [{shape}]: key p95 {theirs['p95'] / ours['p95']:.2f}x")

if __name__ == "__main__":
    main()
