"""The Line API table of the workers, queues, names and upcoming views.

Each row is drawn once per change of what it shows; a repaint, a view switch
or a cursor move copies lines (DataTable drew every cell again after any
change: 18 ms a paint of the task names view under a stream of events).
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult

from taskwatch.engine.entities import WorkerInfo
from taskwatch.ui.widgets.row_table import RowTable
from taskwatch.ui.widgets.workers_table import _cells
from tests.waiting import pilot_wait_until


class Fruits(RowTable):
    COLUMNS = (("name", "Fruit", None), ("count", "Count", 5), ("note", "Note", 30), ("end", "End", 3))


class One(App):
    def compose(self) -> ComposeResult:
        yield Fruits()


def rows(n: int, changed: dict[int, str] | None = None) -> list[tuple[str, list[Text]]]:
    changed = changed or {}
    return [(f"k{i}", [Text(f"fruit {i}"), Text(str(i), justify="right"), Text(changed.get(i, "fresh")), Text("e")])
            for i in range(n)]


def screen_line(table: RowTable, y: int) -> str:
    return table.render_line(y).text


def test_only_rows_whose_cells_changed_are_drawn_again():
    asyncio.run(_only_changed())


async def _only_changed() -> None:
    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(Fruits)
        table.apply_rows(rows(5))
        await pilot.pause()
        assert screen_line(table, 0).split() == ["Fruit", "Count", "Note", "End"]
        assert screen_line(table, 3).split() == ["fruit", "2", "2", "fresh", "e"]
        drawn: list[str] = []
        draw = table._row_strip

        def counted(key: str, cursor: bool):
            before = table._strips.get(key)
            result = draw(key, cursor)
            if result is not before:
                drawn.append(key)
            return result

        table._row_strip = counted  # the real drawing, counted
        table.refresh()
        await pilot.pause()
        assert drawn == [], "an unchanged table is copied, not drawn"
        table.apply_rows(rows(5, {3: "ripe"}))
        await pilot.pause()
        assert drawn == ["k3"]
        assert screen_line(table, 4).split() == ["fruit", "3", "3", "ripe", "e"]


def test_the_cursor_stays_on_its_row_when_rows_move_and_the_header_never_scrolls():
    asyncio.run(_cursor())


async def _cursor() -> None:
    app = One()
    async with app.run_test(size=(60, 8)) as pilot:  # 1 header line + 7 rows
        table = app.query_one(Fruits)
        table.apply_rows(rows(30))
        await pilot.pause()
        table.action_cursor(12)
        await pilot.pause()
        assert table.selected_key == "k12"
        assert table.scroll_y > 0, "the cursor row scrolled into view"
        assert screen_line(table, 0).split() == ["Fruit", "Count", "Note", "End"]
        visible = [screen_line(table, y).split()[1] for y in range(1, table.size.height)]
        assert "12" in visible
        # The same rows, newest first: the cursor follows k12 to its new place.
        table.apply_rows(list(reversed(rows(30))))
        await pilot.pause()
        assert table.selected_key == "k12" and table.cursor_row == 17
        # A row gone: the cursor stays in range.
        table.apply_rows(rows(3))
        await pilot.pause()
        assert table.selected_key == "k2"
        table.action_jump(0)
        assert table.selected_key == "k0"
        table.action_page(1)
        assert table.selected_key == "k2"


def test_cells_are_text_never_markup_and_control_sequences_never_pass():
    asyncio.run(_hostile())


async def _hostile() -> None:
    app = One()
    async with app.run_test(size=(70, 6)) as pilot:
        table = app.query_one(Fruits)
        table.apply_rows([("evil", [Text("[bold red]x[/]"), Text("1"), Text("two\nlines\there"),
                                    Text("\x1b]0;pwn\x07\x1b[31m\x9b")])])
        await pilot.pause()
        line = screen_line(table, 1)
        assert "[bold red]x[/]" in line
        assert "two lines here" in line
        assert not any(c in line for c in "\x1b\x07\x9b"), repr(line)
        assert screen_line(table, 2).strip() == ""


def test_a_table_wider_than_its_pane_scrolls_sideways():
    asyncio.run(_sideways())


async def _sideways() -> None:
    app = One()
    async with app.run_test(size=(30, 6)) as pilot:
        table = app.query_one(Fruits)
        table.apply_rows(rows(2))
        await pilot_wait_until(pilot, lambda: table.show_horizontal_scrollbar,
                               what="a scrollbar under the table, wider than 30 columns")
        assert "End" not in screen_line(table, 0)
        for press in (1, 2):  # as l pressed twice
            table.action_sideways(1)
            await pilot_wait_until(pilot, lambda p=press: table.scroll_x == min(12 * p, table.max_scroll_x),
                                   what=f"scrolled sideways {press} time(s)", detail=lambda: table.scroll_x)
        assert "End" in screen_line(table, 0) and "Fruit" not in screen_line(table, 0)


def test_an_offline_workers_active_count_is_not_shown():
    """Its last heartbeat's count would contradict its tasks, shown lost."""
    worker = WorkerInfo("beta@h")
    worker.freq, worker.active = 2.0, 1
    worker.last_heartbeat = 1000.0
    assert _cells(worker, 1001.0, 20)["active"].plain == "1"
    assert _cells(worker, 1100.0, 20)["active"].plain == "-"
