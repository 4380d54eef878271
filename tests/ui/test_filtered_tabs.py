"""The tasks view's tabs count what the filter matches (issue 15 item 5)."""

from __future__ import annotations

import asyncio

from taskwatch.engine.query import select_with_counts
from taskwatch.ui.widgets.tab_bar import TabBar
from tests.waiting import pilot_wait_until


def test_a_filter_shows_filtered_of_total_in_the_tabs(recorded_app):
    asyncio.run(_scenario(recorded_app()))


async def _scenario(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        bar = app.query_one("#task-tabs", TabBar)
        _, totals, _ = select_with_counts(app.state, "all")
        await pilot_wait_until(pilot, lambda: f" Failed {totals['failed']} " in bar.render().plain,
                               what="the unfiltered counts", detail=lambda: bar.render().plain)
        await pilot.press("slash", *"process_report", "enter")
        _, _, filtered = select_with_counts(app.state, "all", "process_report")
        assert 0 < filtered["all"] < totals["all"]
        wanted = f" Failed {filtered['failed']}/{totals['failed']} "
        await pilot_wait_until(pilot, lambda: wanted in bar.render().plain and
                               f" All {filtered['all']}/{totals['all']} " in bar.render().plain,
                               what=f"{wanted!r} in the tabs", detail=lambda: bar.render().plain)
        await pilot.press("slash", "escape")
        await pilot_wait_until(pilot, lambda: f" Failed {totals['failed']} " in bar.render().plain,
                               what="the unfiltered counts again", detail=lambda: bar.render().plain)
