"""The TUI against real workers on a private Redis, driven with Textual's Pilot."""

from __future__ import annotations

import asyncio
import time

from taskwatch.config import Settings
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.widgets.status_bar import StatusBar
from taskwatch.ui.widgets.workers_table import WorkersTable


def settings(broker_url: str, **extra) -> Settings:
    return Settings(broker_url=broker_url, refresh_interval=0.5, **extra)


async def wait_until(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.1)


def rows(app: TaskwatchApp) -> dict[str, list[str]]:
    table = app.query_one(WorkersTable)
    return {
        row.key.value: [str(cell) for cell in table.get_row(row.key)]
        for row in table.ordered_rows
    }


def status(app: TaskwatchApp) -> str:
    return app.query_one(StatusBar).render().plain  # type: ignore[union-attr]


def test_workers_appear_at_80x24_and_q_exits_zero(demo_workers):
    async def scenario() -> None:
        app = TaskwatchApp(settings(demo_workers.broker_url, read_only=True))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: set(demo_workers.hostnames) <= set(rows(app))
                             and "2/2 workers" in status(app))
            shown = rows(app)
            for host in demo_workers.hostnames:
                assert shown[host][1] == "online"
            assert "2/2 workers" in status(app)
            assert "READ-ONLY" in status(app)
            # Nothing wider than the terminal: no horizontal scrolling needed.
            table = app.query_one(WorkersTable)
            assert table.virtual_size.width <= 80
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    asyncio.run(scenario())


def test_broker_outage_is_shown_and_recovers(fresh_redis):
    async def scenario() -> None:
        app = TaskwatchApp(settings(fresh_redis.url(0)))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "connected" in status(app))
            fresh_redis.kill()
            await wait_until(pilot, lambda: "broker unreachable" in status(app))
            # The UI stays responsive while the broker is down.
            started = time.monotonic()
            await pilot.press("r")
            await pilot.pause()
            assert time.monotonic() - started < 0.5
            fresh_redis.restart()
            await wait_until(pilot, lambda: "● connected" in status(app))
            await pilot.press("q")

    asyncio.run(scenario())
