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

    def select(self, key: str) -> None:
        if key != self.current:
            self.current = key
            self.refresh()

    def set_counts(self, counts: dict[str, int]) -> None:
        if counts != self.counts:
            self.counts = dict(counts)
            self.refresh()

    def render(self) -> Text:
        # Exact counts when they fit, short ones (95k) when they would not.
        text = self._line(lambda n: f"{n:,}")
        if text.cell_len > (self.size.width or 80):
            text = self._line(count_label)
        return text

    def _line(self, number: Callable[[int], str]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, label in self.items:
            shown = f" {label} {number(self.counts[key])} " if key in self.counts else f" {label} "
            # Two columns between tabs, none after the last: six tabs with
            # short counts fit in 80 columns.
            text.append(shown, style="bold reverse" if key == self.current else "dim")
        return text
