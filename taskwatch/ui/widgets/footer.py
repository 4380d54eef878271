"""Textual's Footer, minus the rebuilds that change nothing.

The stock Footer re-mounts every key whenever focus moves, even when the
keys it shows stay the same; on a busy cluster that rebuild is most of the
cost of a keypress. This one compares what it would show and skips it.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class QuietFooter(Footer):
    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        signature = tuple(
            (key, active.binding.action, active.binding.description, active.binding.show, active.enabled)
            for key, active in screen.active_bindings.items()
        )
        if signature == self._shown and self.is_attached:
            return
        self._shown = signature
        super().bindings_changed(screen)
