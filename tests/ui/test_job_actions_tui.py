"""APScheduler jobs acted on from the Upcoming view, against a live scheduler process:
run now through the bridge (it runs within a second), pause through the store (the
confirmation is honest about when the scheduler sees it), every action audited, and
a read-only session that changes nothing."""

from __future__ import annotations

import asyncio
import json
import time

import redis

from taskwatch.config import Settings
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.confirm import Confirm
from tests.integration.aps_process import start_app
from tests.waiting import pilot_wait_until


def _app(broker: str, jobstore: str, **extra) -> TaskwatchApp:
    settings = Settings(broker_url=broker, jobstores=(jobstore,), refresh_interval=0.5, backfill=0, **extra)
    return TaskwatchApp(settings)


async def _select(pilot, app: TaskwatchApp, name: str) -> None:
    await pilot.press("5")
    await pilot_wait_until(pilot, lambda: any(r.job.name == name for r in app.monitor.schedules.rows()),
                           what=f"{name} in Upcoming")
    table = app.query_one("#upcoming-table")
    for _ in range(30):
        key = app.selected_in("upcoming")
        if key and key.endswith("\x1f" + name.lower()):
            return
        await pilot.press("j")
        await pilot.pause()
    raise AssertionError(f"{name} not selectable: {table.selected_key!r}")


def _confirm_text(app: TaskwatchApp) -> str:
    return str(app.screen.query_one("#confirm-body").render())


def test_run_now_through_the_bridge_runs_the_job_within_a_second(fresh_redis, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    jobstore = fresh_redis.url(2)
    scheduler = start_app(jobstore, jobs="fast", bridge=jobstore)
    try:
        app = _app(fresh_redis.url(0), jobstore)

        async def scenario() -> float:
            async with app.run_test(size=(80, 24)) as pilot:
                await _select(pilot, app, "Hourly")
                await pilot_wait_until(pilot, lambda: any(s.bridged for s in app.monitor.schedules.stores()),
                                       what="the bridge to be found")
                await pilot.press("t")
                await pilot_wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
                assert "Through taskwatch.bridge" in _confirm_text(app)
                before = len(scheduler.runs("hourly"))
                asked = time.time()
                await pilot.press("y")
                await pilot_wait_until(pilot, lambda: len(scheduler.runs("hourly")) > before, timeout=10,
                                       what="the hourly job to run", detail=scheduler.log_tail)
                return scheduler.runs("hourly")[-1] - asked

        took = asyncio.run(scenario())
        print(f"run now through the bridge: ran {took:.3f} s after the key")
        assert took < 1.0
        (line,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert line["action"] == "run" and line["targets"] == ["hourly"] and line["via"] == "tui"
        assert line["arguments"]["via"] == "bridge"
    finally:
        scheduler.stop()


def test_pause_through_the_store_says_when_the_scheduler_sees_it_and_is_seen(fresh_redis, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    jobstore = fresh_redis.url(2)
    scheduler = start_app(jobstore, jobs="fast")  # no bridge
    try:
        scheduler.wait_for_runs("fast", 1)
        app = _app(fresh_redis.url(0), jobstore)

        async def scenario() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await _select(pilot, app, "Fast")
                await pilot.press("p")
                await pilot_wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
                text = _confirm_text(app)
                assert "Written into the job store" in text and "next wakeup" in text
                await pilot.press("y")
                await pilot_wait_until(pilot, lambda: any(r.job.name == "Fast" and r.job.paused
                                                          for r in app.monitor.schedules.rows()),
                                       what="Fast to show paused")

        asyncio.run(scenario())
        assert redis.Redis.from_url(jobstore).zscore("apscheduler.run_times", "fast") is None
        paused_at = time.time()
        # The live scheduler stops running it (a run already under way may still land).
        runs = scheduler.wait_for_runs("boom", len(scheduler.runs("boom")) + 2)
        assert not [t for t in scheduler.runs("fast") if t > paused_at + 0.5], runs
        (line,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert line["action"] == "pause" and line["arguments"]["via"] == "store"
    finally:
        scheduler.stop()


def test_read_only_greys_the_job_keys_and_changes_nothing(fresh_redis, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKWATCH_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    jobstore = fresh_redis.url(2)
    scheduler = start_app(jobstore, jobs="fast", bridge=jobstore)
    try:
        client = redis.Redis.from_url(jobstore)
        app = _app(fresh_redis.url(0), jobstore, read_only=True)

        async def scenario() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await _select(pilot, app, "Hourly")
                # Only "hourly" is acted on (the fast jobs' states change with every run).
                before = (client.hget("apscheduler.jobs", "hourly"), client.zscore("apscheduler.run_times", "hourly"))
                for key in ("t", "p", "D"):
                    await pilot.press(key)
                    await pilot.pause()
                    assert not isinstance(app.screen, Confirm), key
                await pilot.press("enter")
                await pilot.pause()
                for key in ("t", "p", "D"):  # the detail's keys are greyed too
                    await pilot.press(key)
                    await pilot.pause()
                    assert not isinstance(app.screen, Confirm), key
                assert (client.hget("apscheduler.jobs", "hourly"),
                        client.zscore("apscheduler.run_times", "hourly")) == before

        asyncio.run(scenario())
        assert not (tmp_path / "audit.jsonl").exists()
    finally:
        scheduler.stop()
