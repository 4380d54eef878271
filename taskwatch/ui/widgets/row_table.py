"""A table of rows by key, drawn through the Line API (the workers, queues,
task names and upcoming views).

Textual's ``DataTable`` re-renders every cell of the table, cell by cell
through Rich, whenever any one cell changes: its caches are keyed by a
table-wide update counter. Under a stream of events something changes on
every redraw, so showing a view cost 10-20 ms of drawing on the UI thread
(measured over the task names view: 18 ms a paint for five rows), and a key
waited for it. Here each row is drawn once into a :class:`Strip` when what it
shows changes, and kept: a repaint, a view switch or a cursor move copies
lines, and only rows whose cells changed are repainted (on an SSH link an
unchanged row costs no bytes).

Rows are given whole, in display order, by key (:meth:`RowTable.apply_rows`);
the cursor stays on the same key when rows move. The first line is the
column titles and does not scroll. Cells are ``rich.text.Text``: untrusted
text is never read as markup; line breaks and tabs are flattened and
terminal control sequences taken out, whatever the caller cleaned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.reactive import Reactive, reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from taskwatch.text import clean

#: (key, title, content width, or None: as wide as the widest cell shown so far)
Column = tuple[str, str, int | None]
PADDING = 1  # blank cells on each side of a cell, as DataTable's default
SIDEWAYS = 12  # columns per h/l in a table wider than its pane
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _signature(cell: Text) -> tuple:
    return cell.plain, str(cell.style), tuple(cell.spans), cell.justify


class RowTable(ScrollView, can_focus=False):
    """Rows by key; each row drawn once per change of what it shows."""

    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor"}
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .row-table--header { background: ansi_bright_blue; color: ansi_default; }
        /* The views never take focus (keys go to the app): the cursor shows as focused. */
        & > .row-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    #: the columns of the table; a subclass that changes them at run time calls set_columns
    COLUMNS: Sequence[Column] = ()

    cursor_row: reactive[int] = reactive(0)
    # As the tasks list's: a new length must not lay the screen out again.
    virtual_size = Reactive(Size(0, 0), layout=False, repaint=False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._columns: tuple[Column, ...] = tuple(self.COLUMNS)
        self._widths: dict[str, int] = {}
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, dict[str, Text]] = {}
        self._signatures: dict[str, tuple] = {}
        # key -> (how it was drawn, the line, the style it is extended with to the pane's width)
        self._strips: dict[str, tuple[tuple, Strip, Style]] = {}
        self._header: tuple[tuple, Strip, Style] | None = None
        self._selected: str | None = None
        self._overflows = (False, False)  # wider, taller than the widget
        self._measure()

    # -- columns ----------------------------------------------------------------
    def set_columns(self, columns: Sequence[Column]) -> None:
        """New columns (the rows are given again by the next apply_rows)."""
        self._columns = tuple(columns)
        self._cells.clear()
        self._signatures.clear()
        self._measure()
        self._forget_drawing()

    def _measure(self) -> None:
        self._widths = {key: width if width is not None else len(title) for key, title, width in self._columns}

    def _grow(self, cells: dict[str, Text]) -> bool:
        grown = False
        for key, _, width in self._columns:
            if width is None and (n := cells[key].cell_len) > self._widths[key]:
                self._widths[key] = n
                grown = True
        return grown

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(key for key, _, _ in self._columns)

    @property
    def line_width(self) -> int:
        return sum(w + 2 * PADDING for w in self._widths.values())

    # -- rows -------------------------------------------------------------------
    def apply_rows(self, rows: Iterable[tuple[str, Sequence[Text]]]) -> None:
        """``rows``: (row key, one cell per column) in display order. Only rows
        whose cells changed (and rows that moved) are repainted."""
        keys: list[str] = []
        changed: set[str] = set()
        grown = False
        columns = self.columns
        for key, row in rows:
            keys.append(key)
            signature = tuple(_signature(cell) for cell in row)
            if self._signatures.get(key) != signature:
                self._signatures[key] = signature
                cells = self._cells[key] = dict(zip(columns, row, strict=True))
                grown |= self._grow(cells)
                changed.add(key)
        if keys != self._keys:
            for gone in set(self._keys).difference(keys):
                self._cells.pop(gone, None)
                self._signatures.pop(gone, None)
                self._strips.pop(gone, None)
            moved = True
            self._keys = keys
            self._index = {key: i for i, key in enumerate(keys)}
        else:
            moved = False
        self._resize_virtual()
        if grown:
            self._forget_drawing()
        selected = self._selected
        if selected is not None and selected in self._index:
            self.cursor_row = self._index[selected]
        else:
            self.cursor_row = min(self.cursor_row, max(len(keys) - 1, 0))
            self._selected = self.selected_key
        if grown or moved:
            self.refresh()
        else:
            for key in changed:
                self._refresh_row(self._index[key])

    def _resize_virtual(self) -> None:
        size = Size(self.line_width, len(self._keys) + 1)
        if self.virtual_size != size:
            self.virtual_size = size
            region = self.size
            overflows = (size.width > region.width, size.height > region.height)
            if overflows != self._overflows:
                # A scrollbar comes or goes: that needs a layout (rarely: a
                # table outgrowing its pane); a longer table alone does not.
                self._overflows = overflows
                self.refresh(layout=True)
            bar = self.vertical_scrollbar
            bar.window_virtual_size = size.height
            bar.window_size = self.scrollable_content_region.height
            if self.scroll_y > self.max_scroll_y:
                self.scroll_to(y=self.max_scroll_y, animate=False)

    def _forget_drawing(self) -> None:
        self._strips.clear()
        self._header = None

    def _refresh_row(self, index: int) -> None:
        y = index - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def row_keys(self) -> list[str]:
        return list(self._keys)

    def get_cell(self, key: str, column: str) -> Text:
        return self._cells[key][column]

    @property
    def selected_key(self) -> str | None:
        return self._keys[self.cursor_row] if 0 <= self.cursor_row < len(self._keys) else None

    # -- cursor -----------------------------------------------------------------
    def watch_cursor_row(self, old: int, new: int) -> None:
        self._selected = self.selected_key
        rows = max(self.scrollable_content_region.height - 1, 1)
        if new < self.scroll_y:
            self.scroll_to(y=new, animate=False)
        elif new >= self.scroll_y + rows:
            self.scroll_to(y=new - rows + 1, animate=False)
        self._refresh_row(old)
        self._refresh_row(new)

    def move_cursor(self, row: int) -> None:
        if self._keys:
            self.cursor_row = max(0, min(len(self._keys) - 1, row))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(self.scrollable_content_region.height - 2, 1))

    def action_jump(self, where: int) -> None:
        self.move_cursor(0 if where == 0 else len(self._keys) - 1)

    def action_sideways(self, direction: int) -> None:
        self.scroll_relative(x=direction * SIDEWAYS, animate=False)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_y) + event.y - 1)

    # -- drawing ----------------------------------------------------------------
    def on_resize(self) -> None:
        self._resize_virtual()
        size, region = self.virtual_size, self.size
        self._overflows = (size.width > region.width, size.height > region.height)  # laid out now

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_drawing()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        x = int(self.scroll_x)
        if y == 0:
            _, strip, fill = self._header_strip()
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, self.rich_style)
            _, strip, fill = self._row_strip(self._keys[index], index == self.cursor_row)
        return strip.crop_extend(x, x + width, fill)

    def _header_strip(self) -> tuple[tuple, Strip, Style]:
        how = (tuple(self._widths.items()), self.rich_style)
        if self._header is None or self._header[0] != how:
            line = Text(no_wrap=True)
            for key, title, _ in self._columns:
                line.append(self._pad(Text(title), self._widths[key]))
            self._header = (how, *self._strip(line, self.get_component_rich_style("row-table--header")))
        return self._header

    def _row_strip(self, key: str, cursor: bool) -> tuple[tuple, Strip, Style]:
        how = (self._signatures.get(key), cursor)
        drawn = self._strips.get(key)
        if drawn is not None and drawn[0] == how:
            return drawn
        cells = self._cells[key]
        line = Text(no_wrap=True)
        for column, _, _ in self._columns:
            line.append_text(self._pad(cells[column], self._widths[column]))
        if cursor:
            # One block in the cursor's colours (as the tasks list): coloured
            # cells on top of it were unreadable in 16 colours.
            line = Text(line.plain, no_wrap=True)
            drawn = self._strips[key] = (how, *self._strip(line, self.get_component_rich_style("row-table--cursor")))
        else:
            drawn = self._strips[key] = (how, *self._strip(line, None))
        return drawn

    @staticmethod
    def _pad(cell: Text, width: int) -> Text:
        text = cell.copy()
        if _CONTROL.search(text.plain):  # a line break, a tab, or a terminal escape: never written raw
            text = Text(clean(text.plain, None, single_line=True), style=text.style, justify=text.justify)
        text.no_wrap = True
        text.truncate(width, overflow="ellipsis")
        spare = width - text.cell_len
        if spare > 0:
            if text.justify == "right":
                text.pad_left(spare)
            elif text.justify == "center":
                text.pad_left(spare // 2)
                text.pad_right(spare - spare // 2)
            else:
                text.pad_right(spare)
        text.pad(PADDING)
        return text

    def _strip(self, line: Text, style: Style | None) -> tuple[Strip, Style]:
        """The line drawn over the widget's style (and ``style``), and the style
        that fills the pane past the last column (the header's and the
        cursor's bars run the whole width)."""
        base = self.rich_style if style is None else self.rich_style + style
        segments = [Segment(s.text, base + s.style if s.style else base, s.control)
                    for s in line.render(self.app.console)]
        return Strip(segments, line.cell_len).extend_cell_length(self.line_width, base), base
