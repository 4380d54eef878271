"""Keyboard scrolling for screens that show one long text (detail, help, peek).

Nothing on those screens takes focus (keys go to bindings), so the scroll
container's own keys never fire: these bindings move it instead.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from taskwatch.ui.prompt_frames import PromptFrames


def scroll_bindings(prefix: str) -> list[Binding]:
    return [
        Binding("j,down", "scroll(1)", "Down", show=False, id=f"{prefix}.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id=f"{prefix}.up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id=f"{prefix}.page-down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id=f"{prefix}.page-up"),
        Binding("g,home", "top", "Top", show=False, id=f"{prefix}.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id=f"{prefix}.bottom"),
    ]


class ScrollKeys:
    """Actions for :func:`scroll_bindings`, on the screen's first ``VerticalScroll``."""

    def _scroller(self) -> VerticalScroll:
        return self.query_one(VerticalScroll)  # type: ignore[attr-defined]

    def action_scroll(self, delta: int) -> None:
        self._scroller().scroll_relative(y=delta, animate=False)

    def action_page(self, direction: int) -> None:
        scroller = self._scroller()
        scroller.scroll_relative(y=direction * max(scroller.size.height - 1, 1), animate=False)

    def action_top(self) -> None:
        self._scroller().scroll_home(animate=False)

    def action_bottom(self) -> None:
        self._scroller().scroll_end(animate=False)


class TextDetail(PromptFrames, ScrollKeys, Screen[None]):
    """A detail screen: one long Text, scrollable, redrawn every second
    (:meth:`refresh_body`), Esc back to where it was opened."""

    def compose(self) -> ComposeResult:
        with ScrollableContainer(id="detail-scroll"):
            yield Static(id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_body()
        self.set_interval(1.0, self.refresh_body)

    def refresh_body(self) -> None:
        raise NotImplementedError

    def _scroller(self) -> ScrollableContainer:  # type: ignore[override]
        return self.query_one("#detail-scroll", ScrollableContainer)

    def action_back(self) -> None:
        self.dismiss(None)
