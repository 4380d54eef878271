"""A key's answer is drawn as soon as it is ready, not at the next frame slot.

Textual draws a screen at most 60 times a second: after a frame, whatever
becomes dirty waits for the next slot of a fixed 16.7 ms grid. Under load the
app redraws a few times a second (the clock, rates, rows changing), so a key
pressed just after one of those frames waited up to 16.7 ms before its
answer could even start to be drawn: measured under 20,000 events/s, the
slowest characters typed into the filter were those (18-28 ms from the key
to the frame, 2-3 ms of it drawing).

While a key is being answered (``KEY_WINDOW`` seconds after it arrived) a
screen with :class:`PromptFrames` draws whatever is dirty as soon as its
message queue is idle, i.e. once the key's handlers have run. Frames
outside that window are paced as Textual paces them, so a stream of events
still costs no more than 60 frames a second.

This reaches into two of Textual's private members: the screen's idle
handler and its update-timer callback (``Screen._on_idle``,
``Screen._on_timer_update``) and the flags that say a screen is dirty.
Without them (:data:`SUPPORTED`), frames are paced as usual;
``tests/ui/test_prompt_frames.py`` fails if a Textual upgrade takes any away
or stops the early frame.
"""

from __future__ import annotations

import time

from textual import events
from textual.screen import Screen

#: seconds after a key during which frames are drawn without waiting for their slot
KEY_WINDOW = 0.1

#: The Textual members this leans on are there; where a later Textual has
#: them no more, frames are paced as Textual paces them, rather than failing.
SUPPORTED = all(callable(getattr(Screen, name, None)) for name in ("_on_idle", "_on_timer_update"))


class KeyClock:
    """When the last key arrived (the app tells it; its screens ask)."""

    def __init__(self) -> None:
        self.last_key = -1.0

    def key(self) -> None:
        self.last_key = time.monotonic()

    def answering(self) -> bool:
        return time.monotonic() - self.last_key < KEY_WINDOW


class PromptFrames:
    """Mix into a :class:`~textual.screen.Screen` (before it); the app has a ``key_clock``."""

    async def _on_idle(self, event: events.Idle) -> None:
        app = self.app  # type: ignore[attr-defined]
        clock: KeyClock | None = getattr(app, "key_clock", None)
        if (SUPPORTED and clock is not None and clock.answering() and not getattr(app, "_batch_count", 0)
                and self.is_current and self._needs_frame()):  # type: ignore[attr-defined]
            self._on_timer_update()  # type: ignore[attr-defined]  # draws now; the timer finds nothing left
        await super()._on_idle(event)  # type: ignore[misc]  # then call_after_refresh callbacks run

    def _needs_frame(self) -> bool:
        return any(getattr(self, flag, False) for flag in
                   ("_layout_required", "_scroll_required", "_repaint_required", "_dirty_widgets"))
