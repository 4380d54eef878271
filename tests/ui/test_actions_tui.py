"""The action keys, driven with Pilot against real prefork workers on a private Redis:
retry the newest failure in three keys, terminate a running task, and a read-only
session that presses every action key in every view while Redis MONITOR records
what reaches the broker."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid

import redis

from taskwatch.config import Settings
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.confirm import Confirm
from tests.cluster import producer, stored
from tests.waiting import pilot_wait_until, wait_until

LONG = "ü" * 1500 + "x" * 1500
DEEP = {"a": [{"b": [{"c": ["deep", None]}]}]}




def make_app(workers, **extra) -> TaskwatchApp:
    settings = Settings(broker_url=workers.broker_url, result_backend=workers.result_backend,
                        refresh_interval=0.5, backfill=0, **extra)
    return TaskwatchApp(settings)


def test_the_newest_failure_is_retried_in_three_keys(demo_workers, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    app = make_app(demo_workers)

    async def scenario() -> str:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot_wait_until(pilot, lambda: app.monitor.events_connected, what="events to connect")
            failed = producer(demo_workers).send_task("tasks.add", args=[[DEEP, LONG], "é"])
            await pilot_wait_until(pilot, lambda: failed.id in app.state.tasks
                                   and app.state.tasks[failed.id].state == "FAILURE",
                                   what="the failure to reach the TUI")
            await pilot.press("F")  # the Failed tab, newest first: it is selected
            await pilot_wait_until(pilot, lambda: app.selected_in("tasks") == failed.id,
                                   what="the newest failure, selected")
            await pilot.press("R")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
            assert "with exactly" in str(app.screen.query_one("#confirm-body").render())
            await pilot.press("y")
            await pilot_wait_until(pilot, lambda: app.state.retried_as.get(failed.id),
                                   what="the retry to be sent and linked")
            return failed.id

    old = asyncio.run(scenario())
    (new,) = app.state.retried_as[old]
    assert app.state.retry_of[new] == old
    wait_until(lambda: stored(demo_workers, new).get("status") == "FAILURE", what="the twin to run")
    original, twin = stored(demo_workers, old), stored(demo_workers, new)
    assert twin["args"] == original["args"] and twin["args"][0][1] == LONG
    (line,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert (line["via"], line["action"], line["targets"], line["created"]) == ("tui", "retry", [old], [new])


def test_terminate_a_running_task_from_the_list(demo_workers, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    app = make_app(demo_workers)

    async def scenario() -> str:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot_wait_until(pilot, lambda: app.monitor.events_connected, what="events to connect")
            running = producer(demo_workers).send_task("tasks.crunch_numbers", args=[60])
            await pilot_wait_until(pilot, lambda: running.id in app.state.tasks
                                   and app.state.tasks[running.id].state == "STARTED",
                                   what="the slow task to start")
            await pilot.press("3")
            app.show_task_tab("active")
            app.set_filter(running.id)
            await pilot_wait_until(pilot, lambda: app.selected_in("tasks") == running.id,
                                   what="the running task, selected")
            await pilot.press("X")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
            assert app.screen.choice == "SIGTERM"
            await pilot.press("y")
            await pilot_wait_until(pilot, lambda: (tmp_path / "audit.jsonl").exists(), what="the audit line")
            return running.id

    task_id = asyncio.run(scenario())
    wait_until(lambda: stored(demo_workers, task_id).get("status") == "REVOKED",
               what="the terminated task to be REVOKED",
               detail=lambda: (tmp_path / "audit.jsonl").read_text())
    line = json.loads((tmp_path / "audit.jsonl").read_text())
    assert line["action"] == "terminate" and any(task_id in r["text"] for r in line["replies"])


# -- read-only, on the wire -----------------------------------------------------

INSPECT_METHODS = {"ping", "stats", "active_queues", "active", "reserved", "scheduled", "query_task",
                   "registered", "revoked", "report", "conf"}
READS = {"PING", "GET", "MGET", "GETRANGE", "STRLEN", "EXISTS", "TYPE", "LLEN", "LRANGE", "HLEN", "HGET",
         "HGETALL", "HSCAN", "HVALS", "HKEYS", "SMEMBERS", "SCARD", "SSCAN", "ZCARD", "ZRANGE", "ZRANGEBYSCORE",
         "SCAN", "KEYS", "INFO", "CLIENT", "CONFIG", "SELECT", "HELLO", "PSUBSCRIBE", "SUBSCRIBE",
         "PUNSUBSCRIBE", "UNSUBSCRIBE", "BRPOP", "RPOP", "LPOP", "MULTI", "EXEC", "WATCH", "UNWATCH",
         "ECHO", "TIME", "DBSIZE", "AUTH", "QUIT", "READONLY", "COMMAND", "SCRIPT"}
REPLY = ".reply.celery.pidbox"


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


def test_a_read_only_session_sends_only_reads_and_inspect_broadcasts(fresh_redis, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    client = redis.Redis.from_url(fresh_redis.url(0), socket_timeout=5)
    seen: list[str] = []

    def watch() -> None:
        try:
            with client.monitor() as monitor:
                while True:
                    seen.append(monitor.next_command()["command"])
        except redis.RedisError:
            pass

    threading.Thread(target=watch, daemon=True).start()
    wait_until(lambda: client.ping() and seen, what="MONITOR to see our own PING")
    settings = Settings(broker_url=fresh_redis.url(0), result_backend=fresh_redis.url(1),
                        refresh_interval=0.5, read_only=True)
    app = TaskwatchApp(settings)
    failed = str(uuid.uuid4())

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot_wait_until(pilot, lambda: app.monitor.events_connected, what="events to connect")
            # Something for every key to act on: a failed task the list selects.
            app.state.apply_events([{"type": "task-failed", "uuid": failed, "hostname": "w@h", "name": "n",
                                     "timestamp": 1.8e9, "exception": "E()"}])
            for view in "12345":
                await pilot.press(view)
                for key in ("x", "X", "R", "t", "P", "c", "space", "F", "3", "enter", "escape"):
                    await pilot.press(key)
                    assert not isinstance(app.screen, Confirm)  # greyed: never even asked
            app.action_refresh()
            await pilot_wait_until(pilot, lambda: any("pidbox" in c for c in seen[-50:]),
                                   what="a round of asking after the keys")

    asyncio.run(scenario())
    client.ping()
    wait_until(lambda: any(c.split()[0].upper() == "PING" for c in seen[-5:]), what="the marker")
    refused = [c for c in seen if not allowed(c)]
    assert refused == [], refused[:5]
    assert any(c.startswith("PUBLISH") for c in seen)  # it did ask: the proof is not vacuous
    assert not (tmp_path / "audit.jsonl").exists()
