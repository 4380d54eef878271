"""Keep the cyclic garbage collector out of the way of a keypress.

With 100k tasks retained, a full (generation 2) collection walks every
tracked object and holds the GIL for 50-100 ms. CPython starts one whenever
the objects that survived since the last full pass reach a quarter of those
it walked then: under a stream of events, every few seconds, at whatever
moment an allocation trips it, a keypress as likely as any.

The first answer (up to stop 19) switched collection off while keys came and
back on when they paused. That kept full passes away from keys, but what was
allocated meanwhile piled up in the youngest generation, and the pass that
came next walked all of it: measured under 20,000 events/s, young passes of
10-20 ms on the UI thread, the slowest keys of a run waiting behind them.

Now collection stays on, and a few times a second (:meth:`tick`) everything
alive is moved into the permanent generation (``gc.freeze()``, constant
time), which no collection walks. Young passes walk what was allocated since
the last one, as usual (well under a millisecond); a full pass walks only
what survived since the last tick. Nothing is kept from being freed by
reference counting, which frees nearly all of ours (tasks hold no cycles).

What freezing does put off: reference cycles that were alive at a tick and
died later, and cyclic garbage not yet found when the tick came. Under
20,000 events/s that was about 1,300 objects a second, nearly all Textual's
(a Strip's caches form cycles; strips of rows drawn anew are dropped). A
sweep (:meth:`sweep`: unfreeze, one full collection, freeze again) collects
them every ``sweep_every`` seconds, at a moment when no key has come for
``quiet`` seconds; a user who never stops typing gets one every ``longest``
seconds anyway. A sweep is the one long pause left (200-260 ms at 100k
tasks): it comes once a minute, ``quiet`` seconds into a pause of the keys.
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
    def __init__(self, sweep_every: float = 60.0, quiet: float = 5.0, longest: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep_every = sweep_every
        self.quiet = quiet
        self.longest = longest
        self._clock = clock
        self._last_key = -quiet
        self._swept = clock()
        self.sweeps = 0

    def key(self) -> None:
        """A key arrived: no sweep until keys have paused."""
        self._last_key = self._clock()

    def tick(self) -> None:
        """Call a few times a second: freeze what is alive, or sweep when it is time."""
        now = self._clock()
        due = now - self._swept >= self.sweep_every
        if due and (now - self._last_key >= self.quiet or now - self._swept >= self.longest):
            self.sweep()
        else:
            gc.freeze()

    def sweep(self) -> None:
        """One full collection over everything, cycles frozen since the last sweep included."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._swept = self._clock()
        self.sweeps += 1

    def release(self) -> None:
        """The app is done: what it froze goes back to the collector."""
        gc.unfreeze()
