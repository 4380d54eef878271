"""The screen the views live on: the app's default screen, under every other.

Its own type so that "are the views showing?" is a question about the
screen on top (``isinstance(app.screen, ViewsScreen)``), not about how many
screens are stacked: the detail, a peek, the help and the command palette
all cover the views, and each is some other screen.
"""

from __future__ import annotations

from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget

from taskwatch.ui.prompt_frames import PromptFrames


class ViewsScreen(PromptFrames, Screen[None]):
    """The status line, the view tabs, the views, the filter box and the footer."""

    #: Textual's own repaints the whole screen whenever focus moves, and focus
    #: moves with `/`, Esc and Enter in the filter: one of the two full frames
    #: (13.5 KB in all) written for opening the box (the other: see
    #: ui/filter_keys.py). What focus changes on screen (the
    #: box's cursor, `:focus` styles, the footer's keys) redraws itself.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
