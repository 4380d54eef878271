"""After a resize the tasks list's column titles and its rows agree at once."""

from __future__ import annotations

import asyncio

from taskwatch.ui.widgets.task_list import TaskList
from tests.ui.test_views import screen_text
from tests.waiting import pilot_wait_until


def test_headings_follow_the_rows_after_a_resize(recorded_app):
    app = recorded_app()

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("3")
            tasks = app.query_one(TaskList)
            await pilot_wait_until(pilot, lambda: tasks.ids and "Worker" in screen_text(app, "#task-header"),
                                   what="the tasks listed with a Worker column")
            for size in ((80, 24), (120, 30), (70, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                await pilot.pause()
                # No new selection runs here (the recording does not change):
                # the titles must follow the list's own resize.
                assert screen_text(app, "#task-header").rstrip() == tasks.header().plain.rstrip(), size

    asyncio.run(scenario())
