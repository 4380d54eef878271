"""SVG snapshots of the views, fed a recorded event stream (no network, frozen clocks).

The stream in tests/data/demo-events.jsonl was recorded from `taskwatch demo`
(timestamps and ETAs moved to a fixed epoch) plus one hostile task. Regenerate the
snapshots after a deliberate UI change with `pytest tests/ui/test_snapshots.py
--snapshot-update` and look at them before committing.
"""

from __future__ import annotations

from taskwatch.engine.query import select_tasks
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.task_detail import TaskDetail
from taskwatch.ui.views.names import NamesTable
from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until

SIZE = (100, 30)


async def _freeze(pilot) -> None:
    """Fix the task list's clock, once the app's start-up work is done."""
    task_list = pilot.app.query_one(TaskList)
    task_list.clock = lambda: 1_795_000_100.0
    await pilot.app.workers.wait_for_complete()  # the monitor's start, on a thread


def _tasks_selected(app: TaskwatchApp) -> bool:
    """The task list shows the selection for the tab and filter on screen, at the state's version."""
    key = (app.task_tab, app.needle)
    return (app._selected_key == key and app._selected_version == app.state.version
            and not app._selecting
            and app.query_one(TaskList).ids == select_tasks(app.state, *key))


def test_tasks_view(snap_compare, recorded_app):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("3")
        # The selection runs on a worker thread.
        await pilot_wait_until(pilot, lambda: _tasks_selected(pilot.app), what="the tasks selected")

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)


def test_failed_tasks_filtered_and_detail(snap_compare, recorded_app):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("3")
        pilot.app.show_task_tab("failed")
        await pilot.press("slash", "p", "w", "n", "e", "d", "enter")
        await pilot_wait_until(
            pilot, lambda: pilot.app.needle == "pwned" and _tasks_selected(pilot.app),
            what="the failed tasks matching 'pwned' selected")
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(pilot.app.screen, TaskDetail),
                               what="the task detail opened")

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)


def test_task_names_view(snap_compare, recorded_app):
    async def run_before(pilot):
        await _freeze(pilot)
        await pilot.press("4")
        table = pilot.app.query_one(NamesTable)
        await pilot_wait_until(pilot, lambda: table.row_count == len(pilot.app.state.names) and table.counted,
                               what="every task name in the names view, with its running count")

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)
