"""Keyed tables for the small views: queues and task names.

Rows are keyed by queue / task name; each redraw touches only the cells
whose text or style changed, inside one ``batch_update`` (dolphie's process
list), and re-sorts only when the order changed, keeping the cursor on the
same row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable


class KeyedTable(DataTable, can_focus=False):
    """A DataTable fed whole rows by key; applies only the differences."""

    # (key, label, width or None for auto)
    COLUMNS: Sequence[tuple[str, str, int | None]] = ()

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._shown: dict[str, tuple[str, ...]] = {}
        self._widest: dict[str, int] = {}  # per column: the widest text shown so far
        # The first cell object each row holds: DataTable.sort shows its key
        # function cells, not row keys, and two rows may show the same text.
        self._first: dict[str, object] = {}

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def apply_rows(self, rows: Iterable[tuple[str, Sequence[Text]]]) -> None:
        """``rows``: (row key, cells) in display order."""
        rows = list(rows)
        keys = [k for k, _ in rows]
        wanted = set(keys)
        with self.app.batch_update():
            for gone in [k for k in self._shown if k not in wanted]:
                self.remove_row(gone)
                del self._shown[gone]
                del self._first[gone]
            for key, cells in rows:
                signature = tuple(f"{c.plain}\0{c.style}" for c in cells)
                shown = self._shown.get(key)
                if shown is None:
                    self.add_row(*cells, key=key)
                    self._first[key] = cells[0]
                    for (column, _, _), cell in zip(self.COLUMNS, cells, strict=True):
                        self._widest[column] = max(self._widest.get(column, 0), cell.cell_len)
                elif shown != signature:
                    for (column, _, _), old, new, cell in zip(self.COLUMNS, shown, signature, cells, strict=True):
                        if old != new:
                            # Re-measuring a column repaints the whole table: only when it must grow.
                            grow = cell.cell_len > self._widest.get(column, 0)
                            if grow:
                                self._widest[column] = cell.cell_len
                            self.update_cell(key, column, cell, update_width=grow)
                            if column == self.COLUMNS[0][0]:
                                self._first[key] = cell
                self._shown[key] = signature
            current = [row.key.value for row in self.ordered_rows]
            if current != keys:
                selected = self.selected_key
                position = {k: i for i, k in enumerate(keys)}
                row_of = {id(cell): k for k, cell in self._first.items()}
                self.sort(self.COLUMNS[0][0], key=lambda cell: position.get(row_of.get(id(cell)), len(position)))
                if selected in position:
                    self.move_cursor(row=self.get_row_index(selected), animate=False)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return self.ordered_rows[self.cursor_row].key.value

