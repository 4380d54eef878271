"""A one-line bar of named choices, the current one highlighted.

Used for the views (1-5) and the task state tabs. A plain line, not
Textual's animated Tabs: switching or relabelling repaints one line and
sends a few dozen bytes, which matters over SSH.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widget import Widget

from taskwatch.ui.format import count_label


class TabBar(Widget):
    DEFAULT_CSS = """
    TabBar { height: 1; }
    """

    def __init__(self, items: list[tuple[str, str]], current: str, **kwargs) -> None:
        """``items``: (key, label) in order."""
        super().__init__(**kwargs)
        self.items = list(items)
        self.current = current
        self.counts: dict[str, int] = {}  # key -> a count shown after the label
        self.filtered: dict[str, int] | None = None  # key -> the count a filter matches (3/11)

    def select(self, key: str) -> None:
        if key != self.current:
            self.current = key
            self.refresh()

    def set_counts(self, counts: dict[str, int], filtered: dict[str, int] | None = None) -> None:
        """``filtered``: with a filter on, what it matches per key, shown as ``3/11``."""
        if counts != self.counts or filtered != self.filtered:
            self.counts = dict(counts)
            self.filtered = None if filtered is None else dict(filtered)
            self.refresh()

    def render(self) -> Text:
        # Exact counts when they fit, short ones (95k) when they would not.
        text = self._line(lambda n: f"{n:,}")
        if text.cell_len > (self.size.width or 80):
            text = self._line(count_label)
        return text

    def _line(self, number: Callable[[int], str]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        filtered = self.filtered
        for key, label in self.items:
            if key not in self.counts:
                shown = f" {label} "
            elif filtered is not None and key in filtered:
                shown = f" {label} {number(filtered[key])}/{number(self.counts[key])} "
            else:
                shown = f" {label} {number(self.counts[key])} "
            # Two columns between tabs, none after the last: six tabs with
            # short counts fit in 80 columns.
            text.append(shown, style="bold reverse" if key == self.current else "dim")
        return text
