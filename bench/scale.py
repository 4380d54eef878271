"""taskwatch at scale, against a private redis-server: many workers, a deep queue, many tasks.

    .venv/bin/python bench/scale.py [--part heartbeats --part queue --part tasks]
                                    [--hosts 200] [--messages 1000000] [--tasks 100000]

Three parts, each on a fresh server:

* ``heartbeats``: ``--hosts`` hostnames send real ``worker-heartbeat``
  events (kombu's envelope on ``/0.celeryev/worker.heartbeat``, as Celery
  workers do) at Celery's 2 s rhythm, spread over the 2 s. None of them
  answers inspect: they are heartbeats only, like workers whose broker
  connection for control is stuck. Measured: the workers a monitor counts
  online; the time of its poll rounds (``Monitor.poll``: ping, the task
  inspects, queue depths) with that many expected hosts, at
  ``--inspect-timeout``; and the TUI on a pseudo-terminal at 80x24: when
  its status line says ``N/N workers``, and its CPU (user + system, every
  thread) over ``--cpu-seconds``.
* ``queue``: ``--messages`` real Celery task messages (protocol 2 JSON,
  each its own id) LPUSHed into the ``celery`` list in pipelines of
  prebuilt messages. Measured: the depth the queue probe and
  ``taskwatch snapshot --json`` report (exact or not), the time of a depth
  read and of a poll round, and a peek of 10 messages: its time and the
  bytes Redis sent for it (``INFO stats``' ``total_net_output_bytes``).
* ``tasks``: ``--tasks`` tasks (received, started, succeeded or failed:
  3 events each, ``task.multi`` batches from 4 workers) published through
  Redis at ``--rate`` events/s to the TUI on a pseudo-terminal, whose
  ``--max-tasks`` is ``--tasks``; then as many tasks again. Measured: RSS
  over the idle baseline per retained task; RSS once twice ``max_tasks``
  have arrived (the bound); key latency with that many tasks retained
  (bench/tui.py's measure: keys 4, 3, 2, time until the new view's content
  is drawn).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.end_to_end import rss_bytes  # noqa: E402
from bench.stream import heartbeat, messages  # noqa: E402
from bench.terminal import Terminal  # noqa: E402
from bench.tui import pct, shown_tasks, taskwatch_argv, taskwatch_key_latency  # noqa: E402
from taskwatch.demo.redis_server import RedisServer  # noqa: E402

HEARTBEAT_CHANNEL = "/0.celeryev/worker.heartbeat"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, every thread, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(values: list[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 0.95) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms")


def profile(pid: int) -> subprocess.Popen | None:
    """``SCALE_PYSPY=FILE``: py-spy records the TUI while its CPU is measured
    (collapsed stacks, every thread, idle ones left out)."""
    out = os.environ.get("SCALE_PYSPY")
    if not out:
        return None
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format",
                             "raw", "--output", out, "--threads", "--rate", "200", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- heartbeats ------------------------------------------------------------------

class Heartbeats:
    """``hosts`` workers' heartbeats every ``freq`` seconds, spread evenly, from a thread."""

    def __init__(self, url: str, hosts: list[str], freq: float = 2.0) -> None:
        self.client = redis.Redis.from_url(url)
        self.hosts, self.freq = hosts, freq
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        step = self.freq / len(self.hosts)
        clock = 0
        while not self.stop.is_set():
            for i, host in enumerate(self.hosts):
                due = t0 + clock // len(self.hosts) * self.freq + i * step
                if (delay := due - time.monotonic()) > 0 and self.stop.wait(delay):
                    return
                clock += 1
                self.client.publish(HEARTBEAT_CHANNEL, heartbeat(host, clock, time.time()))
                self.sent += 1

    def __enter__(self) -> Heartbeats:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


class Answering:
    """``hosts`` answer inspect and ping as Celery workers do, from one thread:
    it takes the broadcasts off the ``celery.pidbox`` fanout (Redis pub/sub) and
    puts each host's reply, in kombu's envelope with the asker's ticket, on the
    asker's reply queue (found through kombu's binding table, as kombu routes a
    direct exchange), all of a broadcast's replies in one pipeline: 200 workers
    answer at once, which one Python process publishing each reply through
    kombu could not imitate (about 1 ms a reply here). Replies are empty (no
    tasks held): the cost measured is that of 200 answers."""

    REPLIES = {"ping": {"ok": "pong"}, "active": [], "reserved": [], "scheduled": [], "revoked": [],
               "stats": {"pid": 4242, "pool": {"implementation": "celery.concurrency.prefork:TaskPool",
                                               "max-concurrency": 4}, "total": {}},
               "active_queues": [{"name": "celery"}]}

    def __init__(self, url: str, hosts: list[str]) -> None:
        self.url, self.hosts = url, hosts
        self.stop = threading.Event()
        self.answered = 0
        self.busy = 0.0  # seconds spent answering
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def reply(host: str, answer: object, exchange: str, routing_key: str, ticket: str, clock: int) -> bytes:
        body = base64.b64encode(json.dumps({host: answer}).encode()).decode()
        return json.dumps({"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                           "headers": {"ticket": ticket, "clock": clock},
                           "properties": {"delivery_mode": 1, "priority": 0, "body_encoding": "base64",
                                          "delivery_info": {"exchange": exchange, "routing_key": routing_key},
                                          "delivery_tag": str(uuid.uuid4())}}).encode()

    def _queue(self, client: redis.Redis, exchange: str, routing_key: str) -> str | None:
        for member in client.smembers(f"_kombu.binding.{exchange}"):
            key, _pattern, queue = member.decode().split("\x06\x16")
            if key == routing_key:
                return queue
        return None

    def _run(self) -> None:
        client = redis.Redis.from_url(self.url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("/0.celery.pidbox")
        self.ready.set()
        clock = 0
        while not self.stop.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            t0 = time.perf_counter()
            body = json.loads(base64.b64decode(json.loads(message["data"])["body"]))
            reply_to, method = body.get("reply_to"), body.get("method")
            if not reply_to or method not in self.REPLIES:
                continue
            queue = self._queue(client, reply_to["exchange"], reply_to["routing_key"])
            if queue is None:
                continue
            pipe = client.pipeline(transaction=False)
            for host in body.get("destination") or self.hosts:
                if host in self.hosts:
                    clock += 1
                    pipe.lpush(queue, self.reply(host, self.REPLIES[method], reply_to["exchange"],
                                                 reply_to["routing_key"], body.get("ticket"), clock))
                    self.answered += 1
            pipe.execute()
            self.busy += time.perf_counter() - t0
        pubsub.close()
        client.close()

    def __enter__(self) -> Answering:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def poll_rounds(url: str, hosts: list[str], args: argparse.Namespace) -> tuple[list, int, int]:
    """A monitor's poll rounds once every host is alive by heartbeat: the
    rounds, the workers online in its state and the workers it knows."""
    from taskwatch.config import Settings
    from taskwatch.monitor import Monitor

    monitor = Monitor.from_settings(Settings(broker_url=url, inspect_timeout=args.inspect_timeout),
                                    backfill=0).start()
    try:
        deadline = time.monotonic() + 30
        while len(monitor.state.hosts_alive_by_heartbeat(time.time())) < len(hosts):
            if time.monotonic() > deadline:
                raise SystemExit("the heartbeats did not all arrive")
            time.sleep(0.05)
        rounds = [monitor.poll() for _ in range(args.rounds)]
        with monitor.state.lock:
            online = sum(1 for w in monitor.state.workers.values() if w.online(time.time()))
            total = len(monitor.state.workers)
    finally:
        monitor.stop()
    return rounds, online, total


def part_heartbeats(args: argparse.Namespace) -> None:
    hosts = [f"bench{i:03d}@node-{i:03d}" for i in range(args.hosts)]
    with RedisServer() as server, Heartbeats(server.url(0), hosts):
        url = server.url(0)
        with Answering(url, hosts) as answering:
            rounds, online, total = poll_rounds(url, hosts, args)
        pinged = statistics.median(len(r.workers.pings) for r in rounds)
        print(f"heartbeats [{len(hosts)} hosts answering inspect ({answering.answered:,} answers sent, "
              f"{answering.busy:.2f} s spent sending them)]: "
              f"{online}/{total} online; poll round ({args.rounds} rounds, inspect timeout "
              f"{args.inspect_timeout:g} s): {ms([r.duration for r in rounds])}; median {pinged:.0f} pongs a round")
        rounds, online, total = poll_rounds(url, hosts, args)
        waited = sum(r.duration >= args.inspect_timeout for r in rounds)
        print(f"heartbeats [{len(hosts)} hosts, none answering inspect]: {online}/{total} online in the state; "
              f"poll round ({args.rounds} rounds, inspect timeout {args.inspect_timeout:g} s): "
              f"{ms([r.duration for r in rounds])}; {waited} of {args.rounds} rounds waited the timeout")
        term = Terminal([*taskwatch_argv(url), "--inspect-timeout", str(args.inspect_timeout)], cwd=str(ROOT))
        try:
            shown = term.wait_for(rf"{len(hosts)}/{len(hosts)} workers", timeout=30)
            term.read(1.0)
            spy = profile(term.process.pid)
            cpu0, t0 = cpu_seconds(term.process.pid), time.monotonic()
            end = t0 + args.cpu_seconds
            while time.monotonic() < end:
                term.read(0.1)
            cpu = (cpu_seconds(term.process.pid) - cpu0) / (time.monotonic() - t0)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            still = re.findall(r"(\d+)/(\d+) workers", term.text)[-1]
        finally:
            term.close()
        print(f"heartbeats [{len(hosts)} hosts]: TUI shows {len(hosts)}/{len(hosts)} workers "
              f"{shown:.1f} s after start; CPU {cpu * 100:.1f}% of a core over {args.cpu_seconds:g} s "
              f"(last shown {still[0]}/{still[1]})")


# -- a deep queue ------------------------------------------------------------------

def task_message(task_id: str, n: int, queue: str = "celery") -> bytes:
    """A Celery protocol 2 task message as kombu stores it in a Redis list."""
    body = base64.b64encode(json.dumps([[n, "pdf"], {}, {"callbacks": None, "errbacks": None,
                                                         "chain": None, "chord": None}]).encode()).decode()
    return json.dumps({
        "body": body, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": "reports.process_report", "id": task_id, "shadow": None, "eta": None,
                    "expires": None, "group": None, "group_index": None, "retries": 0,
                    "timelimit": [None, None], "root_id": task_id, "parent_id": None,
                    "argsrepr": f"({n}, 'pdf')", "kwargsrepr": "{}", "origin": "gen1@bench",
                    "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}},
        "properties": {"correlation_id": task_id, "reply_to": str(uuid.uuid4()), "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    }).encode()


def fill_queue(url: str, count: int, queue: str = "celery", chunk: int = 10_000) -> float:
    """LPUSH ``count`` distinct task messages into ``queue``; returns the seconds the pushes took."""
    client = redis.Redis.from_url(url)
    template = task_message("00000000-0000-4000-8000-000000000000", 0, queue)
    prebuilt = [template.replace(b"00000000-0000-4000-8000-000000000000", f"{i:08x}-0000-4000-8000-{i:012x}".encode())
                for i in range(count)]
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, chunk):
        pipe.lpush(queue, *prebuilt[start:start + chunk])
        pipe.execute()
    took = time.perf_counter() - t0
    client.close()
    return took


def net_out(client: redis.Redis) -> int:
    return int(client.info("stats")["total_net_output_bytes"])


def part_queue(args: argparse.Namespace) -> None:
    from taskwatch.config import Settings
    from taskwatch.monitor import Monitor

    with RedisServer() as server:
        url = server.url(0)
        pushed = fill_queue(url, args.messages)
        client = redis.Redis.from_url(url)
        print(f"queue: {client.llen('celery'):,} messages LPUSHed in {pushed:.1f} s "
              f"({client.memory_usage('celery') / 1e6:,.0f} MB in Redis)")
        monitor = Monitor.from_settings(Settings(broker_url=url, inspect_timeout=args.inspect_timeout),
                                        events=False, backfill=0)
        try:
            probe = monitor._probe()
            reads = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                (depth,) = [d for d in probe.depths(["celery"]) if d.name == "celery"]
                reads.append(time.perf_counter() - t0)
            rounds = [monitor.poll().duration for _ in range(3)]
            shown = monitor.state.queues["celery"].messages
            peeks, sizes = [], []
            for _ in range(args.rounds):
                before = net_out(client)
                t0 = time.perf_counter()
                peeked = monitor.peek("celery", 10)
                peeks.append(time.perf_counter() - t0)
                sizes.append(net_out(client) - before)
        finally:
            monitor.stop()
        print(f"queue: depth read {depth.messages:,} ({'exact' if depth.messages == args.messages else 'WRONG'}), "
              f"{ms(reads)}; state after a poll round {shown:,}; poll round (no workers: its ping waits "
              f"the {args.inspect_timeout:g} s timeout) {ms(rounds)}")
        print(f"queue: peek of {len(peeked)} messages {ms(peeks)}, {statistics.median(sizes):,.0f} bytes from Redis "
              f"(first {peeked[0].id}, the oldest pushed)")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "taskwatch", "snapshot", "--json", "-b", url, "--config",
                               os.devnull, "--inspect-timeout", str(args.inspect_timeout), "--backfill", "0"],
                              capture_output=True, text=True, timeout=120, env=env)
        took = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"snapshot failed: {done.stderr.strip()}")
        (row,) = [q for q in json.loads(done.stdout)["queues"] if q["name"] == "celery"]
        print(f"queue: taskwatch snapshot --json says {row['messages']:,} "
              f"({'exact' if row['messages'] == args.messages else 'WRONG'}) in {took:.2f} s (process start included)")
        client.close()


# -- many tasks ------------------------------------------------------------------

def publish(url: str, stream: list, rate: float) -> float:
    """Publish ``stream`` at ``rate`` events/s; returns the rate achieved."""
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    t0 = time.perf_counter()
    sent = 0
    for i, message in enumerate(stream):
        pipe.publish(message.channel, message.data)
        sent += message.events
        if i % 50 == 49:
            pipe.execute()
            if (delay := t0 + sent / rate - time.perf_counter()) > 0:
                time.sleep(delay)
    pipe.execute()
    client.close()
    return sent / (time.perf_counter() - t0)


def shown_count(term: Terminal) -> int | None:
    """The tasks taskwatch's "All" tab last said it retains, as a number
    (a ``100k`` label as 100,000: exact to the label's precision)."""
    text = shown_tasks(term).replace(",", "")
    if text == "none":
        return None
    scale = {"k": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return round(float(text.rstrip("kM")) * scale)


def wait_shown(term: Terminal, count: int, timeout: float) -> None:
    """Switch to the tasks view until its All tab shows ``count`` tasks."""
    deadline = time.monotonic() + timeout
    while shown_count(term) != count:
        if time.monotonic() > deadline:
            tail = term.text[-4000:].splitlines()[-30:]
            raise SystemExit(f"the TUI shows {shown_tasks(term)} tasks, not {count:,}:\n" + "\n".join(tail))
        term.send("3")
        term.read(0.5)


def part_tasks(args: argparse.Namespace) -> None:
    with RedisServer() as server:
        url = server.url(0)
        term = Terminal([*taskwatch_argv(url), "--max-tasks", str(args.tasks), "--backfill", "0"], cwd=str(ROOT))
        try:
            term.wait_for(r"● connected", timeout=30)  # subscribed: nothing published is missed
            term.read(2.0)
            pid = term.process.pid
            baseline = rss_bytes(pid)
            achieved = publish(url, messages(args.tasks, seed=11), args.rate)
            wait_shown(term, args.tasks, 120)
            term.read(3.0)
            held = rss_bytes(pid)
            print(f"tasks: {args.tasks:,} published at {achieved:,.0f} events/s; RSS {baseline / 1e6:.0f} MB idle, "
                  f"{held / 1e6:.0f} MB with {args.tasks:,} retained: {(held - baseline) / args.tasks:,.0f} B per task")
            spy = profile(pid)
            latencies = taskwatch_key_latency(term, args.samples)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            print(f"tasks: key→screen with {args.tasks:,} retained (keys 4, 3, 2, no load): {ms(latencies)}")
            for batch in range(1, args.batches):
                achieved = publish(url, messages(args.tasks, seed=11 + batch), args.rate)
                term.read(5.0)
                wait_shown(term, args.tasks, 120)
                for _ in range(6):
                    term.read(0.5)
                after = rss_bytes(pid)
                print(f"tasks: {(batch + 1) * args.tasks:,} published in all (max_tasks {args.tasks:,}, the last "
                      f"batch at {achieved:,.0f} events/s): {shown_count(term):,} retained, RSS {after / 1e6:.0f} MB "
                      f"({(after - held) / 1e6:+.0f} MB over {args.tasks:,} retained)")
        finally:
            term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("heartbeats", "queue", "tasks"), action="append")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=40_000, help="events/s for the tasks part")
    parser.add_argument("--batches", type=int, default=3, help="batches of --tasks tasks in the tasks part")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=30, help="keys timed in the tasks part")
    parser.add_argument("--cpu-seconds", type=float, default=20)
    parser.add_argument("--inspect-timeout", type=float, default=1.0)
    args = parser.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M"), f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for part in args.part or ["heartbeats", "queue", "tasks"]:
        {"heartbeats": part_heartbeats, "queue": part_queue, "tasks": part_tasks}[part](args)


if __name__ == "__main__":
    main()
