"""Task names view: per-name running count, rate, failure %, runtime p50/p95 —
where "everything process_report fails since 02:10" shows. Every name seen is
listed, also one whose tasks are all still running or waiting to retry."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.message import Message

from taskwatch.engine.query import running_by_name
from taskwatch.engine.state import ClusterState
from taskwatch.ui.format import duration
from taskwatch.ui.widgets.row_table import RowTable


class NamesTable(RowTable):
    COLUMNS = (
        ("name", "Task name", None),
        ("running", "Running", 7),
        ("rate", "/min", 5),
        ("ok", "OK", None),  # counts: as wide as the widest, so the running count fits in 80 columns
        ("failed", "Failed", None),
        ("ratio", "Fail%", 5),
        ("p50", "p50", 6),  # durations are at most 5 wide (999ms, 59.9s, 10.5h)
        ("p95", "p95", 6),
    )

    class Counted(Message):
        """Running tasks per name, counted on a thread at the state's ``version``."""

        def __init__(self, running: Counter[str] | None, version: int) -> None:
            super().__init__()
            self.running = running
            self.version = version

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._running_now: Counter[str] = Counter()
        self._counted_version = -1
        self._counting = False
        self._shown_with: tuple[ClusterState, str] | None = None

    def show(self, state: ClusterState, needle: str = "", give_way: Callable[[], None] | None = None) -> None:
        """Rows from ``state`` at once, with the running counts last made.

        Counting the running tasks is a pass over every retained task (5-20 ms
        of the UI thread at 100,000 tasks, which a key pressed meanwhile
        waited for): it runs on a thread (``give_way`` lets keys go first),
        and the rows are drawn again when it is done."""
        self._shown_with = (state, needle)
        if state.version != self._counted_version and not self._counting:
            self._counting = True
            self._count(state, state.version, give_way)
        self._draw(state, needle)

    def _draw(self, state: ClusterState, needle: str) -> None:
        now = time.time()
        with state.lock:
            names = list(state.names.values())
        running = self._running_now
        # Most failures first: the view exists to point at what breaks.
        names.sort(key=lambda s: (-(s.failure_ratio or 0.0), -s.failed, s.name))
        rows = []
        for stats in names:
            if needle and needle.lower() not in stats.name.lower():
                continue
            ratio = stats.failure_ratio
            ratio_text = Text("-" if ratio is None else f"{ratio:.0%}", justify="right")
            if ratio:
                ratio_text.stylize("bold red" if ratio >= 0.2 else "yellow")
            rows.append((stats.name, (
                Text(stats.name),
                Text(f"{running[stats.name]:,}" if running[stats.name] else "-", justify="right"),
                Text(f"{stats.rate(now) * 60:.0f}", justify="right"),
                Text(f"{stats.succeeded:,}", justify="right"),
                Text(f"{stats.failed:,}", justify="right", style="red" if stats.failed else ""),
                ratio_text,
                Text(duration(stats.runtimes.quantile(0.5)), justify="right"),
                Text(duration(stats.runtimes.quantile(0.95)), justify="right"),
            )))
        self.apply_rows(rows)

    @property
    def counted(self) -> bool:
        """The running counts shown are those of the state as it is now."""
        return self._shown_with is not None and self._counted_version == self._shown_with[0].version

    # A description of its own: Textual's default is the call with the repr
    # of every argument, and the state's repr (100k tasks) took 170 ms.
    @work(thread=True, exclusive=True, group="names-running", exit_on_error=False,
          description="running tasks by name")
    def _count(self, state: ClusterState, version: int, give_way: Callable[[], None] | None) -> None:
        running = None
        try:
            running = running_by_name(state, give_way)
        finally:  # counted or not, the next draw may count again
            self.post_message(self.Counted(running, version))

    def on_names_table_counted(self, message: NamesTable.Counted) -> None:
        self._counting = False
        if message.running is None:
            return
        changed = message.running != self._running_now
        self._running_now, self._counted_version = message.running, message.version
        if changed and self._shown_with is not None:
            self._draw(*self._shown_with)
