"""Task names view: per-name running count, rate, failure %, runtime p50/p95 —
where "everything process_report fails since 02:10" shows. Every name seen is
listed, also one whose tasks are all still running or waiting to retry."""

from __future__ import annotations

import time

from rich.text import Text

from taskwatch.engine.query import running_by_name
from taskwatch.engine.state import ClusterState
from taskwatch.ui.format import duration
from taskwatch.ui.views.tables import KeyedTable


class NamesTable(KeyedTable):
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

    def show(self, state: ClusterState, needle: str = "") -> None:
        now = time.time()
        with state.lock:
            names = list(state.names.values())
        running = running_by_name(state)
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
