"""The task detail: long traceback lines wrapped, or whole and panned (recorded stream, no network)."""

from __future__ import annotations

import asyncio

from textual.containers import ScrollableContainer

from taskwatch.ui.screens.task_detail import TaskDetail
from tests.ui.test_snapshots import recorded_app


def test_w_shows_long_lines_whole_and_h_l_pan():
    asyncio.run(_scenario())


async def _scenario() -> None:
    app = recorded_app()
    failed = next(t.uuid for t in app.state.tasks.values() if t.traceback and len(max(
        t.traceback.splitlines(), key=len)) > 80)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        app.push_screen(TaskDetail(app.state, failed))
        await pilot.pause(0.3)
        scroller = app.screen.query_one("#detail-scroll", ScrollableContainer)
        wrapped_height = scroller.virtual_size.height
        assert scroller.max_scroll_x == 0  # wrapped: nothing to pan
        await pilot.press("w")
        await pilot.pause(0.3)
        assert scroller.max_scroll_x > 0 and scroller.virtual_size.height < wrapped_height
        await pilot.press("l", "l")
        await pilot.pause(0.1)
        assert scroller.scroll_x == 16
        await pilot.press("h")
        await pilot.pause(0.1)
        assert scroller.scroll_x == 8
        await pilot.press("w")
        await pilot.pause(0.3)
        assert scroller.max_scroll_x == 0 and scroller.scroll_x == 0
