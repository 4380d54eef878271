"""A selection of the tasks list that arrives while a detail is on top, or with no views at all.

The selection runs on a thread; its answer may come while a task's detail
covers the views, or once the app is closing and its screens are gone (seen
once in CI: NoMatches for the tasks list, the app crashed).
"""

from __future__ import annotations

import asyncio

from taskwatch.engine.query import select_with_counts
from taskwatch.ui.messages import TasksSelected
from taskwatch.ui.screens.task_detail import TaskDetail
from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until


def test_a_selection_arriving_under_a_detail_screen_updates_the_list_behind_it(recorded_app):
    asyncio.run(_under_detail(recorded_app()))


async def _under_detail(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: tasks.ids, what="the tasks listed")
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, TaskDetail), what="a task's detail")
        failed, counts, _ = select_with_counts(app.state, "failed", "")
        assert failed and failed != tasks.ids
        app.task_tab = "failed"
        app.post_message(TasksSelected("failed", "", app.state.version, failed, counts))
        await pilot_wait_until(pilot, lambda: tasks.ids == failed, what="the list behind the detail updated")
        assert isinstance(app.screen, TaskDetail) and app.is_running
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, TaskDetail), what="the detail closed")
        assert app.is_running


def test_a_selection_arriving_when_the_views_are_gone_is_dropped(recorded_app):
    """While the app starts or closes there is no tasks list: the answer is dropped, not a crash."""
    app = recorded_app()
    assert not app.screen_stack  # not running: no screen, as after closing
    app.task_tab = "failed"
    app._tasks_selected(TasksSelected("failed", "", app.state.version, ["x"], {"failed": 1}))
    assert app._selected_key == ("failed", "")
