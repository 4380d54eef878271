"""Task names lists every name seen, with how many of its tasks run now (issue 15 item 12)."""

from __future__ import annotations

import asyncio

from taskwatch.engine.query import running_by_name
from taskwatch.engine.state import ClusterState
from taskwatch.records import TaskPoll
from taskwatch.sources.inspect import held_tasks
from taskwatch.ui.views.names import NamesTable
from tests.waiting import pilot_wait_until

T0 = 1_795_000_000.0
LONG = "reports.nightly_export"


def running_only(state: ClusterState) -> None:
    """A 600 s task running (known from inspect only) and an e-mail task seen only as sent."""
    state.apply_task_poll(TaskPoll(T0, tasks=tuple(held_tasks("active", "w@h", [
        {"id": "long-1", "name": LONG, "args": [], "kwargs": {}, "hostname": "w@h", "time_start": T0}]))))
    state.apply_events([{"type": "task-sent", "uuid": "mail-1", "timestamp": T0, "name": "mail.retrying",
                         "args": "()"}])


def test_names_of_unfinished_tasks_are_listed_with_their_running_count():
    state = ClusterState()
    running_only(state)
    assert set(state.names) == {LONG, "mail.retrying"}
    assert running_by_name(state) == {LONG: 1}


def test_the_names_view_shows_running_counts_within_80_columns(recorded_app):
    app = recorded_app()
    running_only(app.state)
    asyncio.run(_scenario(app))


async def _scenario(app) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        table = app.query_one(NamesTable)
        await pilot_wait_until(pilot, lambda: table.row_count == len(app.state.names),
                               what="every task name listed")
        # Running tasks are counted on a thread: the rows come first, their counts right after.
        await pilot_wait_until(pilot, lambda: table.get_cell(LONG, "running").plain == "1",
                               what="the running count", detail=lambda: table.get_cell(LONG, "running").plain)
        assert table.get_cell("mail.retrying", "running").plain == "-"
        await pilot_wait_until(pilot, lambda: table.virtual_size.width and table.max_scroll_x == 0,
                               what="the table laid out within 80 columns",
                               detail=lambda: f"width={table.virtual_size.width}")
