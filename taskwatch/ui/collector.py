"""Keep the cyclic garbage collector out of the way of a keypress.

With 100k tasks retained, a full (generation 2) collection walks every
tracked object and holds the GIL for 50-100 ms; it is triggered by
allocation, and answering a key (restyling and repainting a view) allocates a
lot, so a key was the likeliest moment for it to start. Measured under
20k events/s: every key that took over 70 ms coincided with one.

So: collection is switched off when a key arrives and back on once the key's
frame has had time to reach the screen (``quiet`` seconds after the last
key), from a timer rather than from a key, so the collection that was put off
runs between keys. A user who keeps a key held down still gets collections:
after ``longest`` seconds the timer switches the collector back on, and the
next key switches it off again. ``longest`` is short on purpose: the longer
collection is off, the more young objects the next pass must walk (3 s of a
20k events/s burst made a 30-60 ms young pass). Objects freed by reference
counting (nearly all of ours: tasks hold no cycles) are freed as usual
meanwhile; only cyclic garbage waits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def freeze_startup_objects() -> None:
    """Move what imports and start-up made into the permanent generation.

    Modules, classes and functions live as long as the process; no collection
    needs to walk them again (about 36k objects: 13 ms off every full pass).
    """
    gc.collect()
    gc.freeze()


class QuietCollector:
    def __init__(self, quiet: float = 0.25, longest: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.longest = longest
        self._clock = clock
        self._held_since: float | None = None
        self._last_key = 0.0
        self._was_enabled = True

    @property
    def holding(self) -> bool:
        return self._held_since is not None

    def key(self) -> None:
        """A key arrived: no collection until its answer is on screen."""
        now = self._clock()
        self._last_key = now
        if self._held_since is None:
            self._was_enabled = gc.isenabled()
            if self._was_enabled:
                gc.disable()
            self._held_since = now

    def tick(self) -> None:
        """Call a few times a second: collection back on once keys pause, or have gone on for long."""
        if self._held_since is None:
            return
        now = self._clock()
        if now - self._last_key >= self.quiet or now - self._held_since >= self.longest:
            self.release()

    def release(self) -> None:
        if self._held_since is None:
            return
        self._held_since = None
        if self._was_enabled:
            gc.enable()
