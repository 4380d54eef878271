"""Fixtures for the UI tests: the app over a recorded event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.ui.app import TaskwatchApp

EVENTS = Path(__file__).resolve().parent.parent / "data" / "demo-events.jsonl"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC, so times on screen do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def recorded_app(utc: None) -> Callable[[], TaskwatchApp]:
    """Builds the app over a state made from the recording (tests/data/demo-events.jsonl);
    it asks no broker. Call it for each app a test runs."""

    def build() -> TaskwatchApp:
        events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
        end = max(e["timestamp"] for e in events) + 1.0
        settings = Settings(broker_url="redis://:secret@recorded.invalid:6379/0", profile="recorded")
        monitor = Monitor.from_settings(settings, events=False, backfill=0)
        monitor.state.apply_events(events, received_at=end)
        app = TaskwatchApp(settings, monitor=monitor, poll=False)
        app._asked = True  # as after a first round
        return app

    return build
