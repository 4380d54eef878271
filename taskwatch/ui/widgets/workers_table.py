"""The workers pane: one row per hostname, updated in place.

Columns drop by priority as the terminal narrows (pool first, then load),
the queues column takes what is left: at 80x24 nothing needs scrolling.
"""

from __future__ import annotations

import time

from rich.text import Text

from taskwatch.engine.state import ClusterState, WorkerInfo
from taskwatch.ui.format import coarse_age
from taskwatch.ui.widgets.row_table import PADDING, Column, RowTable

# (key, label, width or 0 for the flexible one, narrowest terminal that shows it)
COLUMNS: tuple[tuple[str, str, int, int], ...] = (
    ("host", "Worker", 22, 0),
    ("state", "State", 12, 0),
    ("seen", "Seen", 4, 0),
    ("active", "Active", 6, 0),
    ("processed", "Done", 8, 0),
    ("load", "Load", 5, 88),
    ("pool", "Pool", 10, 100),
    ("queues", "Queues", 0, 0),
)
FLEXIBLE = "queues"


def _cells(worker: WorkerInfo, now: float, queues_width: int) -> dict[str, Text]:
    online = worker.online(now)
    seen = worker.last_seen()
    style = "" if online else "dim"
    # Offline, why: it said so (worker-offline: a warm shutdown), or it went silent.
    state = Text("online", style="green") if online else Text(worker.down_cause(now) or "offline",
                                                              style="dim red")
    if worker.error:
        state = Text("error", style="bold yellow")
    pool = worker.pool or "-"
    if worker.concurrency is not None:
        pool = f"{pool}/{worker.concurrency}"
    load = f"{worker.loadavg[0]:.2f}" if worker.loadavg else "-"
    return {
        "host": Text(worker.hostname, style=style, no_wrap=True, overflow="ellipsis"),
        "state": state,
        "seen": Text(coarse_age(None if seen is None else max(0.0, now - seen)), style=style, justify="right"),
        # An offline worker runs nothing we know of: its last heartbeat's count
        # would contradict its tasks, shown lost.
        "active": Text("-" if worker.active is None or not online else str(worker.active), style=style,
                       justify="right"),
        "processed": Text("-" if worker.processed is None else f"{worker.processed:,}", style=style,
                          justify="right"),
        "load": Text(load, style=style, justify="right"),
        "pool": Text(pool, style=style),
        "queues": _fit(", ".join(worker.queues) or "-", queues_width, style),
    }


def _fit(value: str, width: int, style: str) -> Text:
    text = Text(value, style=style, no_wrap=True)
    text.truncate(max(width, 3), overflow="ellipsis")
    return text


class WorkersTable(RowTable):
    """Workers keyed by hostname; only rows that changed are drawn again."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._queues_width = 20
        self._last: ClusterState | None = None
        self._needle = ""

    def _wanted_columns(self, width: int) -> tuple[Column, ...]:
        return tuple((key, label, w or self._queues_width) for key, label, w, minimum in COLUMNS
                     if width >= minimum)

    def on_resize(self) -> None:
        super().on_resize()
        width = self.size.width or 80
        fixed = sum(w + 2 * PADDING for key, _, w, minimum in COLUMNS if key != FLEXIBLE and width >= minimum)
        self._queues_width = max(width - fixed - 2 * PADDING - 1, 6)
        columns = self._wanted_columns(width)
        if columns != self._columns:
            self.set_columns(columns)
            if self._last is not None:
                self.show(self._last, self._needle)

    def show(self, state: ClusterState, needle: str = "") -> None:
        """Bring the rows in line with ``state``: online first, then by name."""
        self._last, self._needle = state, needle
        if not self._columns:
            return
        now = time.time()
        with state.lock:
            workers = list(state.workers.values())
        if needle:
            lowered = needle.lower()
            workers = [w for w in workers if lowered in w.hostname.lower()
                       or any(lowered in q.lower() for q in w.queues)]
        workers.sort(key=lambda w: (not w.online(now), w.hostname))
        columns = self.columns
        rows = []
        for worker in workers:
            cells = _cells(worker, now, self._queues_width)
            rows.append((worker.hostname, [cells[key] for key in columns]))
        self.apply_rows(rows)
