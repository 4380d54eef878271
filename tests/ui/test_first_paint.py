"""The first paint agrees with itself: no question about workers before a round has ended."""

from __future__ import annotations

import asyncio
import time

from taskwatch.config import Settings
from taskwatch.monitor import Monitor, PollReport
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.messages import Polled
from taskwatch.ui.widgets.status_bar import StatusBar
from tests.ui.test_views import plain
from tests.waiting import pilot_wait_until


def test_workers_view_asks_until_the_first_round_has_ended():
    # No round runs by itself (poll=False), and none is armed within the test.
    settings = Settings(broker_url="redis://unused.invalid:6379/0", refresh_interval=3600)
    monitor = Monitor.from_settings(settings, events=False, backfill=0)
    app = TaskwatchApp(settings, monitor=monitor, poll=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            empty = app.query_one("#empty")
            await pilot.pause()
            app._redraw(force=True)  # as every redraw tick before the round ends
            await pilot.pause()
            assert "connecting" in plain(app.query_one(StatusBar))
            assert "Asking the workers" in plain(empty)
            assert "No worker answered" not in plain(empty)

            app.post_message(Polled(PollReport(started_at=time.time())))  # a round ended, nobody answered
            await pilot_wait_until(pilot, lambda: "No worker answered yet" in plain(empty),
                                   what="the question once the round has ended")
            assert "connecting" not in plain(app.query_one(StatusBar))

    asyncio.run(scenario())
