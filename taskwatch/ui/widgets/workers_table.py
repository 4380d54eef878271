"""The workers pane: one row per hostname, updated in place."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from taskwatch.engine.state import ClusterState, WorkerInfo

# (key, label, width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("host", "Worker", 24),
    ("state", "State", 7),
    ("seen", "Seen", 4),
    ("pool", "Pool", 7),
    ("conc", "Conc", 4),
    ("processed", "Processed", 9),
    ("queues", "Queues", 0),
)
FLEXIBLE = "queues"  # takes whatever width is left


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"


def _cells(worker: WorkerInfo, now: float, queues_width: int) -> dict[str, Text]:
    online = worker.online(now)
    seen = worker.last_seen()
    style = "" if online else "dim"
    state = Text("online", style="green") if online else Text("offline", style="dim red")
    if worker.error:
        state = Text("error", style="bold yellow")
    return {
        "host": Text(worker.hostname, style=style, no_wrap=True, overflow="ellipsis"),
        "state": state,
        "seen": Text(_age(None if seen is None else max(0.0, now - seen)), style=style, justify="right"),
        "pool": Text(worker.pool or "-", style=style),
        "conc": Text("-" if worker.concurrency is None else str(worker.concurrency), style=style, justify="right"),
        "processed": Text("-" if worker.processed is None else f"{worker.processed:,}", style=style, justify="right"),
        "queues": _fit(", ".join(worker.queues) or "-", queues_width, style),
    }


def _fit(value: str, width: int, style: str) -> Text:
    text = Text(value, style=style, no_wrap=True)
    text.truncate(max(width, 3), overflow="ellipsis")
    return text


class WorkersTable(DataTable):
    """Workers keyed by hostname; only changed cells are touched."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shown: dict[str, dict[str, str]] = {}
        self._queues_width = 20
        self._last: ClusterState | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width or None)

    def on_resize(self) -> None:
        # The flexible column is auto-sized to its content, so cut its text
        # to what is left of the width: no horizontal scrolling at 80 columns.
        fixed = sum(width + 2 * self.cell_padding for key, _, width in COLUMNS if key != FLEXIBLE)
        spare = max(self.size.width - fixed - 2 * self.cell_padding - 1, 6)
        if spare != self._queues_width:
            self._queues_width = spare
            if self._last is not None:
                self.show(self._last)

    def show(self, state: ClusterState, needle: str = "") -> None:
        """Bring the rows in line with ``state``: add, update changed cells, re-sort."""
        self._last = state
        now = time.time()
        with state.lock:
            workers = list(state.workers.values())
        if needle:
            workers = [w for w in workers if needle.lower() in w.hostname.lower()
                       or any(needle.lower() in q.lower() for q in w.queues)]
            for gone in [h for h in self._shown if h not in {w.hostname for w in workers}]:
                self.remove_row(gone)
                del self._shown[gone]
        order = [w.hostname for w in sorted(workers, key=lambda w: (not w.online(now), w.hostname))]
        with self.app.batch_update():
            for worker in workers:
                cells = _cells(worker, now, self._queues_width)
                plain = {k: f"{v.plain}\0{v.style}" for k, v in cells.items()}
                shown = self._shown.get(worker.hostname)
                if shown is None:
                    self.add_row(*(cells[k] for k, _, _ in COLUMNS), key=worker.hostname)
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
        selected = None
        if self.row_count and self.is_valid_row_index(self.cursor_row):
            selected = self.ordered_rows[self.cursor_row].key
        position = {host: i for i, host in enumerate(order)}
        self.sort("host", key=lambda host: position.get(host.plain, len(position)))
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected), animate=False)
