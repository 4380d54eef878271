"""In 16 colours (TERM=xterm, linux, screen) the list reads as the README says."""

from __future__ import annotations

import asyncio

from rich.color import ColorType

from taskwatch.ui.format import theme_for
from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until

RED = {1, 9}


def test_sixteen_colour_terminals_get_the_ansi_theme():
    assert theme_for("standard") == "ansi-dark"
    assert theme_for("256") is None and theme_for("truecolor") is None and theme_for(None) is None


def test_cursor_row_is_one_readable_block_and_etas_stay_yellow(recorded_app):
    app = recorded_app()

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            app.theme = theme_for("standard")
            await pilot.press("3")
            tasks = app.query_one(TaskList)
            await pilot_wait_until(pilot, lambda: len(tasks.ids) > 5, what="the recorded tasks listed")
            tasks.cursor = 0
            await pilot.pause()
            styles = {seg.style for seg in tasks.render_line(0) if seg.text.strip()}
            assert len(styles) == 1, styles  # no state colour, no dim column inside the cursor
            (style,) = styles
            assert style.bgcolor is not None and style.bgcolor.type == ColorType.STANDARD
            assert style.bgcolor.number not in RED and style.color.number not in RED
            # A task waiting for its ETA, away from the cursor: its "@time" in ANSI yellow.
            segments = [seg for y in range(1, tasks.scrollable_content_region.height)
                        for seg in tasks.render_line(y) if seg.text.startswith("@")]
            assert segments, "the recording has tasks waiting for an ETA on screen"
            assert {seg.style.color.name for seg in segments} == {"yellow"}, segments

    asyncio.run(scenario())
