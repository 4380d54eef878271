"""A view's table painted after one cell changed: RowTable vs Textual's DataTable.

    .venv/bin/python bench/tables.py

Under a stream of events some cell of a view changes on every redraw (a
count, a rate). Both tables get the same 20 rows of 8 cells; each round
changes one cell through the table's own update path (DataTable.update_cell,
RowTable.apply_rows) and paints the whole visible table, as a view switch
or a redraw does. Prints the UI thread's time per paint and the ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.text import Text  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.geometry import Region  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from taskwatch.ui.widgets.row_table import RowTable  # noqa: E402

COLUMNS = (("name", "Task name", None), ("running", "Running", 7), ("rate", "/min", 5), ("ok", "OK", None),
           ("failed", "Failed", None), ("ratio", "Fail%", 5), ("p50", "p50", 6), ("p95", "p95", 6))
ROWS, ROUNDS, SIZE = 20, 200, (100, 24)


def cells(i: int, tick: int) -> list[Text]:
    changed = tick if i == tick % ROWS else 0
    return [Text(f"tasks.name_{i}"), Text(str(i % 3), justify="right"), Text(str(10 + i), justify="right"),
            Text(f"{1000 + i + changed:,}", justify="right"), Text(str(i), justify="right", style="red"),
            Text(f"{i % 20}%", justify="right"), Text("1.5s", justify="right"), Text("2.1s", justify="right")]


class Rows(RowTable):
    COLUMNS = COLUMNS


class Cells(DataTable):
    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        for i in range(ROWS):
            self.add_row(*cells(i, 0), key=f"k{i}")


class Bench(App):
    def compose(self) -> ComposeResult:
        yield Rows(id="rows")
        yield Cells(id="cells")


def paint(widget) -> None:
    """Every visible line, as the compositor asks for them after a change."""
    widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))


async def measure() -> dict[str, list[float]]:
    app = Bench()
    times: dict[str, list[float]] = {"RowTable": [], "DataTable": []}
    async with app.run_test(size=SIZE) as pilot:
        rows, table = app.query_one(Rows), app.query_one(Cells)
        rows.apply_rows([(f"k{i}", cells(i, 0)) for i in range(ROWS)])
        for widget in (rows, table):
            widget.styles.height = SIZE[1] // 2
        await pilot.pause()
        for tick in range(1, ROUNDS + 1):
            i = tick % ROWS
            start = time.perf_counter()
            rows.apply_rows([(f"k{j}", cells(j, tick)) for j in range(ROWS)])
            rows._styles_cache.clear()  # the compositor's cache of the widget's lines: a repaint drops it
            paint(rows)
            times["RowTable"].append(time.perf_counter() - start)
            start = time.perf_counter()
            table.update_cell(f"k{i}", "ok", cells(i, tick)[3])
            table._styles_cache.clear()
            paint(table)
            times["DataTable"].append(time.perf_counter() - start)
            if tick % 20 == 0:
                await pilot.pause()
    return times


def main() -> None:
    times = asyncio.run(measure())
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    for name, values in times.items():
        ordered = sorted(values)
        print(f"{name:>10}: one cell changed, table painted: p50 {medians[name]:.2f} ms, "
              f"p95 {ordered[int(0.95 * len(ordered))] * 1000:.2f} ms ({len(values)} rounds, {ROWS} rows)")
    print(f"ratio (DataTable / RowTable, p50): {medians['DataTable'] / medians['RowTable']:.1f}x")


if __name__ == "__main__":
    main()
