"""The action keys, driven with Pilot against real prefork workers on a private Redis:
retry the newest failure in three keys and terminate a running task. A read-only
session pressing every action key, on the wire, is test_read_only_wire.py."""

from __future__ import annotations

import asyncio
import json

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
