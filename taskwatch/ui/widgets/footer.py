"""Textual's Footer, minus the rebuilds that change nothing.

The stock Footer re-mounts every key whenever focus moves, even when the
keys it shows stay the same; on a busy cluster that rebuild is most of the
cost of a keypress. This one compares what it would show and skips it.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class QuietFooter(Footer):
    """Also: the command palette's key, docked right, is hidden when the keys
    reach it (at 60 columns it covered them: ``x Re▏: paletter``)."""

    DEFAULT_CSS = """
    QuietFooter.-narrow FooterKey.-command-palette { display: none; }
    """

    _shown: tuple | None = None

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        palette = [w for w in self.children if w.has_class("-command-palette")]
        keys = [w for w in self.children if not w.has_class("-command-palette")]
        if not palette or not keys:
            return
        needed = max(w.virtual_region_with_margin.right for w in keys) - self.virtual_region.x
        needed += palette[0].outer_size.width
        self.set_class(needed > self.size.width, "-narrow")

    def bindings_changed(self, screen: Screen) -> None:
        # Only the keys it shows (as Footer.compose picks them): a hidden
        # key turning on or off (a view switch greys `space`, `X`, `t`, `P`,
        # `c`...) changes nothing on screen, and a rebuild costs a layout.
        signature = tuple(
            (key, active.binding.action, active.binding.description, active.enabled, active.tooltip)
            for key, active in screen.active_bindings.items() if active.binding.show
        )
        if signature == self._shown and self.is_attached:
            return
        self._shown = signature
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)  # the new keys have their places then
