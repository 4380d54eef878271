"""Long task names in the tasks list keep their own name, not their module prefix."""

from __future__ import annotations

import asyncio

from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until

NAME = "myapp.tasks.process_report"
TASK_ID = "7f3c1d2e-0000-4000-8000-00000000abcd"


def _row_text(tasks: TaskList, task_id: str) -> str:
    task = tasks.state.tasks[task_id]
    return tasks.render_row(task, tasks.clock(), tasks.widths()).plain


def test_at_100_columns_a_long_name_drops_its_module_not_its_end(recorded_app):
    app = recorded_app()
    last = max(t.received or t.sent or 0 for t in app.state.tasks.values())
    app.state.apply_events([{
        "type": "task-received", "uuid": TASK_ID, "name": NAME, "args": "(1,)", "kwargs": "{}",
        "hostname": "alpha@demo-host", "timestamp": last + 0.5, "clock": 10_000, "utcoffset": 0.0,
        "retries": 0, "eta": None, "expires": None, "root_id": TASK_ID, "parent_id": None, "pid": 1,
    }], received_at=last + 0.6)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.press("3")
            tasks = app.query_one(TaskList)
            await pilot_wait_until(pilot, lambda: TASK_ID in tasks.ids, what="the task in the list")
            row = _row_text(tasks, TASK_ID)
            assert "…process_report" in row, row
            assert "myapp.tasks.proce" not in row
            # The filter still matches the whole name, module included.
            await pilot.press("slash", *"myapp.tasks", "enter")
            await pilot_wait_until(pilot, lambda: tasks.ids == [TASK_ID],
                                   what="the filter on the module to find the task")

    asyncio.run(scenario())
