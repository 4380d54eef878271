"""The workers pane: one row per hostname, updated in place.

Columns drop by priority as the terminal narrows (pool first, then load),
the queues column takes what is left: at 80x24 nothing needs scrolling.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from taskwatch.engine.state import ClusterState, WorkerInfo
from taskwatch.ui.format import coarse_age

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
        "active": Text("-" if worker.active is None else str(worker.active), style=style, justify="right"),
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


class WorkersTable(DataTable, can_focus=False):
    """Workers keyed by hostname; only changed cells are touched."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shown: dict[str, dict[str, str]] = {}
        self._queues_width = 20
        self._columns: tuple[str, ...] = ()
        self._last: ClusterState | None = None
        self._needle = ""

    def _wanted_columns(self) -> tuple[str, ...]:
        width = self.size.width or 80
        return tuple(key for key, _, _, minimum in COLUMNS if width >= minimum)

    def _build_columns(self) -> None:
        """(Re)create the columns for this width; rows are re-added by show()."""
        selected = self.selected_key
        self.clear(columns=True)
        self._shown.clear()
        self._columns = self._wanted_columns()
        for key, label, width, _ in COLUMNS:
            if key in self._columns:
                self.add_column(label, key=key, width=width or None)
        if self._last is not None:
            self.show(self._last, self._needle)
            if selected is not None and selected in self._shown:
                self.move_cursor(row=self.get_row_index(selected), animate=False)

    def on_resize(self) -> None:
        fixed = sum(w + 2 * self.cell_padding for key, _, w, minimum in COLUMNS
                    if key != FLEXIBLE and self.size.width >= minimum)
        spare = max(self.size.width - fixed - 2 * self.cell_padding - 1, 6)
        rebuild = self._wanted_columns() != self._columns
        if spare != self._queues_width or rebuild:
            self._queues_width = spare
            if rebuild:
                self._build_columns()
            elif self._last is not None:
                self.show(self._last, self._needle)

    def on_mount(self) -> None:
        if not self._columns:
            self._build_columns()

    @property
    def selected_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return self.ordered_rows[self.cursor_row].key.value

    def show(self, state: ClusterState, needle: str = "") -> None:
        """Bring the rows in line with ``state``: add, update changed cells, re-sort."""
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
        wanted = {w.hostname for w in workers}
        order = [w.hostname for w in sorted(workers, key=lambda w: (not w.online(now), w.hostname))]
        with self.app.batch_update():
            for gone in [h for h in self._shown if h not in wanted]:
                self.remove_row(gone)
                del self._shown[gone]
            for worker in workers:
                cells = _cells(worker, now, self._queues_width)
                cells = {k: v for k, v in cells.items() if k in self._columns}
                plain = {k: f"{v.plain}\0{v.style}" for k, v in cells.items()}
                shown = self._shown.get(worker.hostname)
                if shown is None:
                    self.add_row(*(cells[k] for k in self._columns), key=worker.hostname)
                else:
                    for key, value in cells.items():
                        if shown[key] != plain[key]:
                            self.update_cell(worker.hostname, key, value, update_width=key == FLEXIBLE)
                self._shown[worker.hostname] = plain
            current = [row.key.value for row in self.ordered_rows]
            if current != order:
                self._reorder(order)

    def _reorder(self, order: list[str]) -> None:
        """Re-sort rows, keeping the cursor on the same worker."""
        selected = self.selected_key
        position = {host: i for i, host in enumerate(order)}
        self.sort("host", key=lambda host: position.get(host.plain, len(position)))
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected), animate=False)
