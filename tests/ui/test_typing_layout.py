"""Keys answered without re-arranging the screen (issue 13).

A layout pass re-arranges and repaints every widget on the screen; under a
burst of events one per character typed into the filter (and one per new
selection of the tasks list) was most of a keystroke's time.
"""

from __future__ import annotations

import asyncio

from textual.widgets import Input

from taskwatch.engine.query import select_with_counts
from taskwatch.engine.state import FAILURE
from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until


def test_typing_into_the_filter_and_its_new_selection_lay_nothing_out(recorded_app):
    asyncio.run(_typing(recorded_app()))


async def _typing(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: tasks.ids, what="the tasks listed")
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        await pilot_wait_until(pilot, lambda: box.has_focus, what="the filter box focused")
        await pilot.pause()
        layouts: list[object] = []
        app.screen.screen_layout_refresh_signal.subscribe(app, layouts.append, immediate=True)
        wanted, _, _ = select_with_counts(app.state, "all", "process_report")
        assert 0 < len(wanted) < len(tasks.ids)
        await pilot.press(*"process_report")
        await pilot_wait_until(pilot, lambda: tasks.ids == wanted, what="the filtered tasks listed",
                               detail=lambda: f"{len(tasks.ids)} listed, {len(wanted)} wanted")
        assert box.value == "process_report"
        assert not layouts, f"{len(layouts)} layout passes while typing 14 characters"
        # No layout, yet the scrollbar follows the list's new length.
        assert tasks.vertical_scrollbar.window_virtual_size == len(wanted)
        assert tasks.max_scroll_y == max(0, len(wanted) - tasks.scrollable_content_region.height)


def test_a_row_is_drawn_anew_when_its_task_changes_and_only_then(recorded_app):
    asyncio.run(_rows(recorded_app()))


async def _rows(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("F")  # failed tasks: none running, whose runtime would tick on
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: app.task_tab == "failed" and tasks.ids and
                               all(app.state.tasks[i].state == FAILURE for i in tasks.ids),
                               what="the failed tasks listed")
        drawn: list[str] = []
        render_row = tasks.render_row

        def counted(task, now, widths):
            drawn.append(task.uuid)
            return render_row(task, now, widths)

        tasks.render_row = counted  # the real drawing, counted
        tasks.refresh()
        await pilot_wait_until(pilot, lambda: tasks._painted, what="the list painted")
        await pilot.pause()
        assert drawn == [], "rows drawn before are taken from the cache"
        second = app.state.tasks[tasks.ids[1]]
        app.state.apply_events([{"type": "task-failed", "uuid": second.uuid, "hostname": second.worker or "w",
                                 "timestamp": second.state_ts + 1, "exception": "KeyError('gone')",
                                 "traceback": "", "clock": 10**9}], received_at=second.state_ts + 1)
        assert second.exception == "KeyError('gone')"
        tasks.refresh()
        await pilot_wait_until(pilot, lambda: second.uuid in drawn, what="the changed row drawn")
        assert drawn == [second.uuid]
        assert "FAILURE" in tasks.render_line(1).text and "KeyError('gone')" in tasks.render_line(1).text


def test_the_footer_greys_the_keys_that_do_not_apply_to_the_view_switched_to(recorded_app):
    asyncio.run(_footer(recorded_app()))


async def _footer(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        def greyed() -> dict[str, bool]:
            return {key.key: key.has_class("-disabled") for key in app.query("FooterKey") if key.key in ("x", "R")}

        await pilot_wait_until(pilot, lambda: greyed() == {"x": True, "R": True},
                               what="revoke and retry greyed in the workers view", detail=greyed)
        keys = list(app.query("FooterKey"))
        for view, wanted in (("3", {"x": False, "R": False}), ("2", {"x": True, "R": True}),
                             ("4", {"x": True, "R": False})):
            await pilot.press(view)
            await pilot_wait_until(pilot, lambda wanted=wanted: greyed() == wanted,
                                   what=f"the footer's keys after {view}: {wanted}", detail=greyed)
        # Greyed and lit where they stand: a rebuild (every key re-mounted,
        # the screen laid out) was a view switch's largest cost.
        assert list(app.query("FooterKey")) == keys


def test_opening_the_filter_greys_the_letter_keys_in_place_and_lays_nothing_out(recorded_app):
    asyncio.run(_filter_footer(recorded_app()))


async def _filter_footer(app) -> None:
    """While the box has focus, letters type: the footer greys their keys where
    they stand. It used to re-mount its keys (and lay the screen out) after
    `/` and again after Esc; the first character typed waited for it."""
    async with app.run_test(size=(100, 30)) as pilot:
        def greyed() -> dict[str, bool]:
            return {key.key: key.has_class("-disabled") for key in app.query("FooterKey")
                    if key.key in ("x", "q", "slash")}

        await pilot.press("3")
        await pilot_wait_until(pilot, lambda: greyed() == {"x": False, "q": False, "slash": False},
                               what="the tasks view's keys lit", detail=greyed)
        keys = list(app.query("FooterKey"))
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        await pilot_wait_until(pilot, lambda: box.has_focus and greyed() == {"x": True, "q": True, "slash": False},
                               what="letter keys greyed while the filter has focus", detail=greyed)
        layouts: list[object] = []
        app.screen.screen_layout_refresh_signal.subscribe(app, layouts.append, immediate=True)
        await pilot.press("q", "x")
        await pilot_wait_until(pilot, lambda: box.value == "qx", what="the letters typed into the box")
        await pilot.pause()
        assert not layouts, f"{len(layouts)} layout passes while typing after /"
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: not box.has_focus and greyed() == {"x": False, "q": False, "slash": False},
                               what="the keys lit again after Esc", detail=greyed)
        assert list(app.query("FooterKey")) == keys, "the footer's keys were re-mounted"


def test_the_filter_box_opens_over_the_views_and_a_kept_filter_hides_no_row(recorded_app):
    asyncio.run(_filter_overlay(recorded_app()))


async def _filter_overlay(app) -> None:
    """`/` opens the box on a layer of its own: no other widget changes size,
    so one layout pass, not a second one that the first character waited for.
    Kept with Enter, the box gets a line of its own below the list."""
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: tasks.ids, what="the tasks listed")
        await pilot.pause()
        height = tasks.size.height
        box = app.query_one("#filter", Input)
        layouts: list[object] = []
        app.screen.screen_layout_refresh_signal.subscribe(app, layouts.append, immediate=True)
        await pilot.press("slash")
        await pilot_wait_until(pilot, lambda: box.has_focus and box.region.height == 1, what="the box open")
        await pilot.pause()
        assert len(layouts) == 1, f"{len(layouts)} layout passes to open the box"
        assert tasks.size.height == height, "the list kept its size under the box"
        await pilot.press(*"email", "enter")
        await pilot_wait_until(pilot, lambda: not box.has_focus and tasks.size.height == height - 1,
                               what="the kept filter's own line", detail=lambda: tasks.size.height)
        assert box.visible and not box.region.overlaps(tasks.region)
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: not box.visible and tasks.size.height == height,
                               what="the box gone and the list whole again")


def test_opening_and_closing_the_filter_repaints_only_what_changed(recorded_app, monkeypatch):
    """Opening the box wrote 13.5 KB to the terminal, two frames of the
    whole screen: Textual repaints everything when focus moves, and showing
    the box with ``display`` moved every widget's place in the paint order."""
    from textual._compositor import Compositor

    frames: list[int] = []  # cells each frame repainted; -1: the whole screen
    render_full_update = Compositor.render_full_update
    render_partial_update = Compositor.render_partial_update

    def full(self, *args, **kwargs):
        frames.append(-1)
        return render_full_update(self, *args, **kwargs)

    def partial(self, *args, **kwargs):
        frames.append(len({(x, y) for region in self._dirty_regions
                           for y in range(region.y, region.bottom) for x in range(region.x, region.right)}))
        return render_partial_update(self, *args, **kwargs)

    monkeypatch.setattr(Compositor, "render_full_update", full)
    monkeypatch.setattr(Compositor, "render_partial_update", partial)
    asyncio.run(_filter_frames(recorded_app(), frames))


async def _filter_frames(app, frames: list[int]) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: tasks.ids, what="the tasks listed")
        await pilot.pause()
        box = app.query_one("#filter", Input)
        screen = 100 * 30
        for keys, done, what in ((["slash"], lambda: box.has_focus and box.visible, "the box open"),
                                 (["escape"], lambda: not box.visible, "the box closed"),
                                 (["slash"], lambda: box.has_focus, "the box open again"),
                                 (["x", "enter"], lambda: not box.has_focus and box.visible, "the filter kept"),
                                 (["escape"], lambda: not box.visible, "the filter cleared")):
            await pilot.pause()
            frames.clear()
            await pilot.press(*keys)
            await pilot_wait_until(pilot, done, what=what)
            await pilot.pause()
            assert -1 not in frames, f"{what}: a frame of the whole screen"
            if keys == ["slash"]:
                # The box's line and the footer's keys. (Closing it draws the
                # list again: its filter changed, and its rows' times moved on.)
                assert max(frames, default=0) < screen / 6, f"{what}: frames repainted {frames} cells of {screen}"


def test_the_tasks_list_is_selected_before_its_first_visit(recorded_app):
    asyncio.run(_first_visit(recorded_app()))


async def _first_visit(app) -> None:
    """The first switch to the tasks view draws rows at once: the selection
    (a pass over every task, on a thread) ran while another view showed."""
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.view == "workers"
        tasks = app.query_one(TaskList)
        await pilot_wait_until(pilot, lambda: tasks.ids, what="the tasks selected while the workers view shows")
        wanted, _, _ = select_with_counts(app.state, "all", "")
        assert tasks.ids == wanted
        await pilot.press("3")
        assert tasks.ids == wanted, "the first frame of the tasks view has its rows"
