"""``?``: every key, grouped by where it applies."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from taskwatch.ui.prompt_frames import PromptFrames
from taskwatch.ui.screens.scrolling import ScrollKeys, scroll_bindings


class HelpScreen(PromptFrames, ScrollKeys, ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
                *scroll_bindings("help")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 100%; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def __init__(self, groups: list[tuple[str, list[tuple[str, str, bool]]]]) -> None:
        """``groups``: (title, [(keys, description, available now)])."""
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("taskwatch keys", style="bold")
        text.append("   (greyed: not available here or not yet)\n", style="dim")
        for title, rows in self.groups:
            text.append(f"\n{title}\n", style="bold underline")
            for keys, description, enabled in rows:
                style = "" if enabled else "dim"
                text.append(f"  {keys:<16}", style="bold " + style if enabled else style)
                text.append(f"{description}\n", style=style)
        with VerticalScroll():
            yield Static(text)
        yield Footer(compact=True)  # this window's keys, not the views'

    def action_dismiss(self) -> None:
        self.dismiss(None)
