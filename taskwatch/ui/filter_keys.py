"""Mixed into the app: the `/` filter box opened, kept, set and cleared.

The box is Textual's Input (``widgets/filter_box.py``); what is typed is the
app's ``needle``. It is always laid out, on a layer of its own over the
views' last line, and shown or hidden with ``visible``: showing a widget
with ``display`` lays the screen out again, and Textual then repaints every
widget whose place in the paint order moved, which was all of them (a
frame of the whole screen, 6.9 KB at 80x24, written to open the box).
``bench/tui.py --quiet-typing`` reports the bytes opening the box writes.

Its two message handlers (typing, Enter) stay in the app: Textual finds
``@on`` handlers only on its own classes.
"""

from __future__ import annotations

from textual.widgets import Input


class FilterBoxKeys:
    """Needs ``needle``, ``query_one``, ``screen_stack``, ``_redraw``,
    ``_current_view``, ``_maybe_select`` and ``_focus_view`` (the app's)."""

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.visible = True
        box.value = self.needle
        box.focus()

    def set_filter(self, text: str) -> None:
        box = self.query_one("#filter", Input)
        box.value = text
        self._keep_filter(box, bool(text))
        self.needle = text
        self._maybe_select(force=True)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not self.needle and not box.visible:
            return
        box.value = ""
        self.needle = ""
        self._keep_filter(box, False)
        self._focus_view()
        self._redraw(force=True)
        if self._current_view().selects_tasks:
            self._maybe_select(force=True)

    def _keep_filter(self, box: Input, kept: bool) -> None:
        """Show the box with the filter kept, in a line of its own below the
        views; or no box. (Opened with `/`, it covers the views' last line
        while it is typed in: see taskwatch.css.)"""
        box.visible = kept
        self.screen_stack[0].set_class(kept, "-filter-kept")

