"""A one-line bar of named choices, the current one highlighted.

Used for the views (1-5) and the task state tabs. A plain line, not
Textual's animated Tabs: switching or relabelling repaints one line and
sends a few dozen bytes, which matters over SSH.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TabBar(Widget):
    DEFAULT_CSS = """
    TabBar { height: 1; }
    """

    def __init__(self, items: list[tuple[str, str]], current: str, **kwargs) -> None:
        """``items``: (key, label) in order."""
        super().__init__(**kwargs)
        self.items = list(items)
        self.current = current
        self.extra: dict[str, str] = {}  # key -> a suffix such as a count

    def select(self, key: str) -> None:
        if key != self.current:
            self.current = key
            self.refresh()

    def set_extra(self, extra: dict[str, str]) -> None:
        if extra != self.extra:
            self.extra = dict(extra)
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, label in self.items:
            shown = f" {label}{(' ' + self.extra[key]) if key in self.extra else ''} "
            if key == self.current:
                text.append(shown, style="bold reverse")
            else:
                text.append(shown, style="dim")
            text.append(" ")
        return text
