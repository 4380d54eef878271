"""The ``/`` filter box: Textual's Input, minus a layout pass per character.

Input records its text's width as its virtual size, and a virtual size is a
layout reactive in Textual: every character typed re-arranged the whole
screen (2-50 ms under a burst of events, most of a keystroke's time). The
box has a fixed size (one line, the screen's width): what it shows depends
only on its text and scroll, so a repaint of the box is enough.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input


class FilterBox(Input):
    virtual_size = Reactive(Size(0, 0), layout=False)
