"""The TUI against real workers on a private Redis, driven with Textual's Pilot."""

from __future__ import annotations

import asyncio
import threading

from taskwatch.config import Settings
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.widgets.status_bar import StatusBar
from taskwatch.ui.widgets.workers_table import WorkersTable
from tests.waiting import pilot_wait_until


def settings(broker_url: str, **extra) -> Settings:
    return Settings(broker_url=broker_url, refresh_interval=0.5, **extra)


def rows(app: TaskwatchApp) -> dict[str, list[str]]:
    table = app.query_one(WorkersTable)
    return {key: [table.get_cell(key, column).plain for column in table.columns] for key in table.row_keys}


def status(app: TaskwatchApp) -> str:
    return app.query_one(StatusBar).render().plain  # type: ignore[union-attr]


def test_workers_appear_at_80x24_and_q_exits_zero(demo_workers):
    async def scenario() -> None:
        app = TaskwatchApp(settings(demo_workers.broker_url, read_only=True))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot_wait_until(pilot, lambda: set(demo_workers.hostnames) <= set(rows(app))
                                   and "2/2 workers" in status(app),
                                   what="both demo workers listed and counted",
                                   detail=lambda: f"{rows(app)}\n{status(app)}")
            shown = rows(app)
            for host in demo_workers.hostnames:
                assert shown[host][1] == "online"
            assert "2/2 workers" in status(app)
            assert "READ-ONLY" in status(app)
            # Nothing wider than the terminal: no horizontal scrolling needed.
            table = app.query_one(WorkersTable)
            assert table.virtual_size.width <= 80
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def test_broker_outage_is_shown_and_recovers(fresh_redis):
    async def scenario() -> None:
        app = TaskwatchApp(settings(fresh_redis.url(0)))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot_wait_until(pilot, lambda: "connected" in status(app),
                                   what="the header to say connected")
            fresh_redis.kill()
            await pilot_wait_until(pilot, lambda: "broker unreachable" in status(app),
                                   what="the header to say the broker is unreachable")
            # r asks again at once, and the UI answers keys while that poll is
            # out: polls are held here until the view key has been answered, as
            # a broker that takes its time would hold them.
            real_poll = app.monitor.poll
            calls: list[int] = []
            blocked: list[int] = []
            answer = threading.Event()

            def held_poll():
                calls.append(1)
                if not answer.wait(30):  # only if the key waited for the poll
                    blocked.append(1)
                return real_poll()

            app.monitor.poll = held_poll
            # The timer's next poll comes and is held; no other is armed until it ends.
            await pilot_wait_until(pilot, lambda: len(calls) == 1, what="the next timed poll")
            await pilot.press("r")
            await pilot_wait_until(pilot, lambda: len(calls) == 2, what="r to ask again")
            await pilot.press("2")
            assert app.view == "queues" and app.query_one("#switcher").current == "queues"
            assert "broker unreachable" in status(app)
            assert not blocked  # the key was answered while the poll was held
            app.monitor.poll = real_poll
            answer.set()
            await pilot.press("1")
            fresh_redis.restart()
            await pilot_wait_until(pilot, lambda: "● connected" in status(app),
                                   what="the header to say connected again")
            await pilot.press("q")

    asyncio.run(scenario())
