"""The header through outages: a frozen broker, a hung result backend (real
redis-servers stopped with SIGSTOP), driven with Textual's Pilot."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import datetime

from taskwatch.demo.redis_server import RedisServer
from taskwatch.ui.app import TaskwatchApp
from tests.ui.test_workers_view import settings, status
from tests.waiting import pilot_wait_until


def test_a_frozen_broker_and_a_hung_backend_each_keep_a_lasting_state(fresh_redis):
    """The hung result backend is shown for as long as it hangs (not a passing
    toast); the frozen broker is named as the one not answering, with the time
    it last really answered, never blamed on the workers; keys keep working;
    both come back on their own."""
    with RedisServer() as backend:
        app = TaskwatchApp(settings(fresh_redis.url(0), result_backend=backend.url(1)))

        async def scenario() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot_wait_until(pilot, lambda: "● connected" in status(app),
                                       what="the header to say connected")
                os.kill(backend.pid, signal.SIGSTOP)
                try:
                    await pilot_wait_until(pilot, lambda: "✖ results timed out" in status(app),
                                           what="the header to say the result backend timed out",
                                           detail=lambda: status(app))
                    rounds = app.monitor._rounds
                    await pilot_wait_until(pilot, lambda: app.monitor._rounds >= rounds + 3,
                                           what="three more rounds")
                    assert "✖ results timed out" in status(app)  # lasting, while it hangs
                finally:
                    os.kill(backend.pid, signal.SIGCONT)
                await pilot_wait_until(pilot, lambda: "results" not in status(app),
                                       what="the result backend back", detail=lambda: status(app))

                stopped = time.time()
                os.kill(fresh_redis.pid, signal.SIGSTOP)
                try:
                    await pilot_wait_until(pilot, lambda: "✖ broker not answering" in status(app),
                                           what="the header to say the broker stopped answering",
                                           detail=lambda: status(app))
                    line = status(app)
                    assert "workers" not in line and "connected" not in line, line
                    last = re.search(r"last reply (\d\d:\d\d:\d\d)", line)
                    assert last, line
                    # The last real contact, not the moment the silence was noticed.
                    assert last.group(1) <= datetime.fromtimestamp(stopped).strftime("%H:%M:%S"), line
                    await pilot.press("2")  # keys answered while the broker is frozen
                    assert app.view == "queues"
                    assert "✖ broker not answering" in status(app)
                finally:
                    os.kill(fresh_redis.pid, signal.SIGCONT)
                await pilot_wait_until(pilot, lambda: "● connected" in status(app),
                                       what="the header to say connected again", detail=lambda: status(app))
                await pilot.press("q")

        asyncio.run(scenario())
