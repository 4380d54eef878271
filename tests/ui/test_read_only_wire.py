"""Read-only, proven on the wire: a read-only session presses every action key in
every view and in every window they open, with something for each to act on (a
worker, a queue holding a message, a failed task, APScheduler jobs in a real Redis
job store served by a live scheduler with the bridge attached), while Redis
MONITOR records the one server that is broker, result backend, job store and
bridge. Only reads and inspect broadcasts reach it; the bridge is sent nothing;
every refused key is greyed and, pressed, says why. The read-only ``taskwatch job`` commands
refuse in one line, sending nothing either."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from celery import Celery

from taskwatch.bridge import PREFIX
from taskwatch.config import Settings
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.views.registry import VIEW_ACTIONS
from tests.cluster import descendants
from tests.integration.aps_process import start_app
from tests.procnet import tcp_ports
from tests.waiting import pilot_wait_until, wait_until

INSPECT_METHODS = {"ping", "stats", "active_queues", "active", "reserved", "scheduled", "query_task",
                   "registered", "revoked", "report", "conf"}
READS = {"PING", "GET", "MGET", "GETRANGE", "STRLEN", "EXISTS", "TYPE", "LLEN", "LRANGE", "HLEN", "HGET",
         "HGETALL", "HSCAN", "HVALS", "HKEYS", "HEXISTS", "SMEMBERS", "SCARD", "SSCAN", "ZCARD", "ZRANGE",
         "ZRANGEBYSCORE", "ZSCORE", "XRANGE", "XREVRANGE", "XLEN", "SCAN", "KEYS", "INFO", "CLIENT", "CONFIG",
         "SELECT", "HELLO", "PSUBSCRIBE", "SUBSCRIBE", "PUNSUBSCRIBE", "UNSUBSCRIBE", "BRPOP", "RPOP", "LPOP",
         "MULTI", "EXEC", "WATCH", "UNWATCH", "ECHO", "TIME", "DBSIZE", "AUTH", "QUIT", "READONLY", "COMMAND",
         "SCRIPT"}
REPLY = ".reply.celery.pidbox"
#: Every action key of the views, and of the windows Enter opens (task detail,
#: queue peek, schedule detail), with the state-changing actions they are bound to.
VIEW_KEYS = {"x": "revoke", "X": "terminate", "R": "retry", "t": "trigger", "P": "purge", "c": "worker_control",
             "p": "pause", "D": "remove_job"}
WINDOW_KEYS = ("x", "X", "R", "t", "p", "D", "P", "c")


def allowed(command: str) -> bool:
    """Reads, inspect broadcasts, and kombu's plumbing for the replies to them.

    ``command`` as redis-py's MONITOR gives it: arguments joined by spaces
    (a PUBLISH payload keeps its own spaces: it is the rest of the line)."""
    if command.upper().startswith("PUBLISH "):
        _, channel, payload = command.split(" ", 2)
        args = ["PUBLISH", channel, payload]
    else:
        args = command.split()
    name = args[0].upper()
    if name in READS:
        # Popping is how replies are read: only from our own reply queues.
        return name not in ("BRPOP", "RPOP", "LPOP") or all(REPLY in a for a in args[1:-1] or args[1:])
    if name == "PUBLISH" and args[1].endswith("celery.pidbox"):
        body = json.loads(base64.b64decode(json.loads(args[2])["body"]))
        return body["method"] in INSPECT_METHODS
    if name in ("SADD", "SREM") and args[1] in ("_kombu.binding.reply.celery.pidbox",
                                              "_kombu.binding_permanent.reply.celery.pidbox"):
        return True
    if name == "ZADD" and args[1] == "_kombu.binding_deadlines":
        return True
    if name == "EVALSHA":  # kombu's binding-deadline scripts and its mutex release
        return args[3] in ("_kombu.binding.reply.celery.pidbox", "_kombu.binding_deadlines", "unacked_mutex")
    if name == "DEL":
        return all(REPLY in a or a == "unacked_mutex" for a in args[1:])
    if name == "SET":  # kombu's mutex around restoring unacked messages (it restores none: limit 0)
        return args[1] == "unacked_mutex"
    return False


class Wire:
    """Redis MONITOR in a thread: every command, and whether a process of
    ``others`` (the scheduler's) sent it, looked up as each client first shows."""

    def __init__(self, url: str, others: int) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.others = others
        self.owner: dict[int, bool] = {}  # client port -> sent by one of ``others``
        self.seen: list[tuple[bool, str]] = []
        threading.Thread(target=self._watch, daemon=True).start()
        wait_until(lambda: self.client.ping() and self.seen, what="MONITOR to see our own PING")

    def _watch(self) -> None:
        try:
            with self.client.monitor() as monitor:
                while True:
                    entry = monitor.next_command()
                    port = int(entry.get("client_port") or 0)
                    if port not in self.owner:
                        self.owner[port] = port in tcp_ports([self.others, *descendants(self.others)])
                    self.seen.append((self.owner[port], entry["command"]))
        except (redis.RedisError, ValueError):
            pass

    def ours(self) -> list[str]:
        """What everyone but the scheduler sent, up to a marker of ours."""
        marker = f"wire-marker-{time.monotonic_ns()}"
        self.client.echo(marker)
        wait_until(lambda: any(marker in c for _, c in self.seen[-50:]), what="the marker")
        return [c for theirs, c in self.seen if not theirs]


def _to_the_bridge(commands: list[str]) -> list[str]:
    """Commands that touch a request to the bridge (a request's key, a bridge's
    request list), other than the bridge's own wait for one (BRPOP)."""
    out = []
    for command in commands:
        name, _, rest = command.partition(" ")
        key = rest.split(" ", 1)[0]
        if name.upper() != "BRPOP" and (key.startswith(f"{PREFIX}:request:") or key.endswith(":requests")):
            out.append(command)
    return out


async def _select_a_row(pilot, app: TaskwatchApp) -> None:
    """Wait for the view to have a row, and select one (j moves onto the first)."""
    deadline = time.monotonic() + 30
    while not app.selected_in(app.view):
        assert time.monotonic() < deadline, f"no row to select in {app.view}"
        await pilot.press("j")
        await pilot.pause(0.05)


def _job_cli(*args: str, audit: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env.update(TASKWATCH_CONFIG=os.devnull, TASKWATCH_AUDIT_LOG=str(audit))
    return subprocess.run([sys.executable, "-m", "taskwatch", "job", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_read_only_session_and_job_commands_send_only_reads_and_inspect_broadcasts(
        fresh_redis, tmp_path, monkeypatch):
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(audit))
    broker, jobstore = fresh_redis.url(0), fresh_redis.url(2)
    # Something for the queue keys to act on: a real task message waiting.
    Celery("wire", broker=broker, set_as_current=False).send_task("tasks.add", args=(2, 2), queue="celery")
    scheduler = start_app(jobstore, jobs="classic", bridge=jobstore)  # none due during the test
    try:
        runs_before = scheduler.runs()
        wire = Wire(broker, scheduler.process.pid)
        settings = Settings(broker_url=broker, result_backend=fresh_redis.url(1), jobstores=(jobstore,),
                            refresh_interval=0.5, read_only=True, backfill=0)
        app = TaskwatchApp(settings)
        pressed: list[str] = []
        notes: list[str] = []  # what the app said (it says it still)
        notify = app.notify

        def recording(message, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            notes.append(str(message))
            return notify(message, *args, **kwargs)

        app.notify = recording
        said_why: set[tuple[str, str]] = set()

        async def press(pilot, key: str) -> None:
            depth, before, where = len(app.screen_stack), len(notes), type(app.screen).__name__
            await pilot.press(key)
            await pilot.pause()
            pressed.append(key)
            assert len(app.screen_stack) == depth, (key, app.screen)  # greyed: nothing opened, never asked
            if any("read-only" in note for note in notes[before:]):
                said_why.add((where if depth > 1 else app.view, key))

        async def scenario() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot_wait_until(pilot, lambda: app.monitor.events_connected, what="events to connect")
                await pilot_wait_until(pilot, lambda: any(s.bridged for s in app.monitor.schedules.stores()),
                                       what="the bridge to be found")
                await pilot_wait_until(pilot, lambda: "celery" in app.state.queues, what="the celery queue")
                # A worker and a failed task for the keys to act on.
                app.state.apply_events([
                    {"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "timestamp": time.time()},
                    {"type": "task-received", "uuid": "f" * 32, "hostname": "w@h", "name": "n",
                     "args": "(1,)", "kwargs": "{}", "timestamp": time.time()},
                    {"type": "task-failed", "uuid": "f" * 32, "hostname": "w@h",
                     "timestamp": time.time(), "exception": "E()"}])
                for view in "12345":
                    await pilot.press(view)
                    await _select_a_row(pilot, app)
                    for key, action in VIEW_KEYS.items():
                        await press(pilot, key)
                        rule = VIEW_ACTIONS[action]
                        if rule.applies_to(app.view):  # greyed for being read-only, not for the view
                            assert app.check_action(action, ()) is None, (view, key)
                    await pilot.press("enter")  # the view's window: detail, peek, the job's detail
                    await pilot.pause()
                    for key in WINDOW_KEYS:
                        await press(pilot, key)
                    while len(app.screen_stack) > 1:
                        await pilot.press("escape")
                        await pilot.pause()
                    await pilot.press("escape")  # Enter on a task name filtered the tasks by it
                    await press(pilot, "space")
                # Why they are greyed: each key says so where it would act, the status
                # line says READ-ONLY and the keys' list says so per key.
                expected = {(view, key) for key, action in VIEW_KEYS.items()
                            for view in ("workers", "queues", "tasks", "names", "upcoming")
                            if VIEW_ACTIONS[action].applies_to(view)}
                expected |= {("ScheduleDetail", "t"), ("ScheduleDetail", "p"), ("ScheduleDetail", "D"),
                             ("QueuePeek", "x")}
                assert said_why == expected, (said_why ^ expected)
                assert "READ-ONLY" in str(app.query_one("StatusBar").render())
                await pilot.press("question_mark")
                await pilot_wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the keys' list")
                rows = {desc for _, group in app.screen.groups for _, desc, on in group if not on}
                for description in ("Revoke", "Terminate", "Retry", "Run now", "Purge", "Control",
                                    "Pause/resume", "Remove job"):
                    assert f"{description}  (read-only)" in rows, (description, rows)
                await pilot.press("escape")
                app.action_refresh()
                await pilot_wait_until(pilot, lambda: any("pidbox" in c for _, c in wire.seen[-50:]),
                                       what="a round of asking after the keys")

        asyncio.run(scenario())
        assert len(pressed) > 5 * (len(VIEW_KEYS) + len(WINDOW_KEYS))
        # The read-only job commands refuse in one line, before they send anything.
        for action in ("pause", "resume", "run", "remove"):
            done = _job_cli(action, "every-15-min", "-b", broker, "--jobstore", jobstore, "--read-only", "--yes",
                            audit=audit)
            assert done.returncode == 2 and "read-only" in done.stderr, (action, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        ours = wire.ours()
        refused = [c for c in ours if not allowed(c)]
        assert refused == [], refused[:5]
        assert _to_the_bridge([c for _, c in wire.seen]) == []
        assert any(c.startswith("PUBLISH") for c in ours)  # it did ask: the proof is not vacuous
        assert any("apscheduler.jobs" in c for c in ours)  # and read the job store
        assert any(f"{PREFIX}:runs:" in c for c in ours)  # and the bridge's run history
        assert scheduler.runs() == runs_before and not audit.exists()
    finally:
        scheduler.stop()
