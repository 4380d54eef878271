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

    _shown: tuple | None = None  # the keys as they are now (greyed or not)
    _built: tuple | None = None  # the keys the last rebuild mounted

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
        shown = [(key, active) for key, active in screen.active_bindings.items() if active.binding.show]
        signature = tuple(
            (key, active.binding.action, active.binding.description, active.enabled, active.tooltip)
            for key, active in shown
        )
        if signature == self._shown and self.is_attached:
            return
        if self._keys_on_screen(signature) and self.is_attached:
            # The same keys, or fewer: grey or light them where they are. A
            # view switch greys x, R...; the `/` filter box takes the letter
            # keys while it has focus (they type), and they come back with
            # Esc or Enter. A rebuild re-mounts every key and lays the screen
            # out: after `/`, the first character typed waited 15-25 ms for it.
            self._shown = signature
            enabled: dict[str, bool] = {}
            for _key, active in shown:
                enabled.setdefault(active.binding.action, active.enabled)
            built = {action for _, action, _, _, _ in self._built or ()}
            for widget in self.query("FooterKey"):
                action = getattr(widget, "action", None)
                if action not in built:
                    continue  # the command palette's key, docked right: always there
                on = enabled.get(action, False)
                # What FooterKey's constructor does with disabled= (the
                # class greys it; _disabled makes a click ring the bell).
                widget._disabled = not on
                widget.set_class(not on, "-disabled")
            return
        self._shown = self._built = signature
        super().bindings_changed(screen)

    def _keys_on_screen(self, signature: tuple) -> bool:
        """Every key of ``signature`` is one of the keys built, with the same words."""
        if self._built is None:
            return False
        built = {(key, action, description) for key, action, description, _, _ in self._built}
        return all((key, action, description) in built for key, action, description, _, _ in signature)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)  # the new keys have their places then
