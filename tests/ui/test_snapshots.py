"""SVG snapshots of the views, fed a recorded event stream (no network, frozen clocks).

The stream in tests/data/demo-events.jsonl was recorded from `taskwatch demo`
(timestamps and ETAs moved to a fixed epoch) plus one hostile task. Regenerate the
snapshots after a deliberate UI change with `pytest tests/ui/test_snapshots.py
--snapshot-update` and look at them before committing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.widgets.task_list import TaskList

EVENTS = Path(__file__).resolve().parent.parent / "data" / "demo-events.jsonl"
SIZE = (100, 30)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def recorded_app() -> TaskwatchApp:
    """The app over a state built from the recording; it asks no broker."""
    events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
    end = max(e["timestamp"] for e in events) + 1.0
    settings = Settings(broker_url="redis://:secret@recorded.invalid:6379/0", profile="recorded")
    monitor = Monitor.from_settings(settings, events=False, backfill=0)
    monitor.state.apply_events(events, received_at=end)
    app = TaskwatchApp(settings, monitor=monitor, poll=False)
    app._asked = True  # as after a first round
    return app


async def _freeze(pilot) -> None:
    task_list = pilot.app.query_one(TaskList)
    task_list.clock = lambda: 1_795_000_100.0
    await pilot.pause(0.3)


def test_tasks_view(snap_compare):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("3")
        await pilot.pause(2.5)  # the selection runs on a worker thread

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)


def test_failed_tasks_filtered_and_detail(snap_compare):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("3")
        pilot.app.show_task_tab("failed")
        await pilot.press("slash", "p", "w", "n", "e", "d", "enter")
        await pilot.pause(2.5)
        await pilot.press("enter")
        await pilot.pause(0.5)

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)


def test_task_names_view(snap_compare):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("4")
        await pilot.pause(0.5)

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)
