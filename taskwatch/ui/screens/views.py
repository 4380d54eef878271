"""The screen the views live on: the app's default screen, under every other.

Its own type so that "are the views showing?" is a question about the
screen on top (``isinstance(app.screen, ViewsScreen)``), not about how many
screens are stacked: the detail, a peek, the help and the command palette
all cover the views, and each is some other screen.
"""

from __future__ import annotations

from textual.screen import Screen


class ViewsScreen(Screen[None]):
    """The status line, the view tabs, the views, the filter box and the footer."""
