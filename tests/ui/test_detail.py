"""The task detail: long traceback lines wrapped, or whole and panned (recorded stream, no network)."""

from __future__ import annotations

import asyncio

from textual.containers import ScrollableContainer
from textual.css.query import NoMatches

from taskwatch.ui.screens.task_detail import TaskDetail
from tests.waiting import pilot_wait_until


def test_w_shows_long_lines_whole_and_h_l_pan(recorded_app):
    asyncio.run(_scenario(recorded_app()))


async def _scenario(app) -> None:
    failed = next(t.uuid for t in app.state.tasks.values() if t.traceback and len(max(
        t.traceback.splitlines(), key=len)) > 80)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TaskDetail(app.state, failed))

        def laid_out() -> ScrollableContainer | None:
            if not isinstance(app.screen, TaskDetail):
                return None
            try:
                scroller = app.screen.query_one("#detail-scroll", ScrollableContainer)
            except NoMatches:  # not composed yet
                return None
            return scroller if scroller.size.height and scroller.virtual_size.height else None

        scroller = await pilot_wait_until(pilot, laid_out, what="the task detail laid out")
        wrapped_height = scroller.virtual_size.height
        assert scroller.max_scroll_x == 0  # wrapped: nothing to pan
        await pilot.press("w")
        await pilot_wait_until(pilot, lambda: scroller.max_scroll_x > 0,
                               what="w to lay the lines out whole")
        assert scroller.virtual_size.height < wrapped_height
        await pilot.press("l", "l")
        await pilot_wait_until(pilot, lambda: scroller.scroll_x == 16, what="l l to pan 16 columns",
                               detail=lambda: f"scroll_x={scroller.scroll_x}")
        await pilot.press("h")
        await pilot_wait_until(pilot, lambda: scroller.scroll_x == 8, what="h to pan back 8 columns",
                               detail=lambda: f"scroll_x={scroller.scroll_x}")
        await pilot.press("w")
        await pilot_wait_until(pilot, lambda: scroller.max_scroll_x == 0 and scroller.scroll_x == 0,
                               what="w again to wrap and scroll back to column 0")
