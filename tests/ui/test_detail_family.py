"""P and C in the detail never reopen the task shown; Esc once per screen opened (issue 15 item 1)."""

from __future__ import annotations

import asyncio

from taskwatch.ui.screens.task_detail import TaskDetail
from tests.waiting import pilot_wait_until


def test_p_and_c_on_a_retried_task_do_not_stack_it_again(recorded_app):
    asyncio.run(_scenario(recorded_app()))


async def _scenario(app) -> None:
    retried = next(t.uuid for t in app.state.tasks.values() if t.retries and t.root_id == t.uuid)
    async with app.run_test(size=(80, 24)) as pilot:
        base = app.screen
        app.push_screen(TaskDetail(app.state, retried))
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, TaskDetail), what="the detail open")
        await pilot.press("P", "C", "P")
        await pilot.pause()
        assert len(app.screen_stack) == 2, [type(s).__name__ for s in app.screen_stack]
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: app.screen is base, what="one Esc back to the list",
                               detail=lambda: [type(s).__name__ for s in app.screen_stack])


def test_a_task_that_succeeded_after_retries_shows_each_attempt_and_no_stale_failure(recorded_app):
    from taskwatch.ui.screens.task_detail import render_task

    app = recorded_app()
    state = app.state
    task = next(t for t in state.tasks.values() if t.retries and t.state == "SUCCESS")
    text = render_task(task, state).plain
    assert "\nException" not in text
    assert "retried (attempt 1): SMTPServerDisconnected(" in text and "success" in text
    assert "Traceback of attempt 1 (retried)" in text
