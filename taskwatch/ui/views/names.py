"""Task names view: per-name rate, failure %, runtime p50/p95 — where
"everything process_report fails since 02:10" shows."""

from __future__ import annotations

import time

from rich.text import Text

from taskwatch.engine.state import ClusterState
from taskwatch.ui.format import duration
from taskwatch.ui.views.tables import KeyedTable


class NamesTable(KeyedTable):
    COLUMNS = (
        ("name", "Task name", None),
        ("rate", "/min", 6),
        ("ok", "OK", 7),
        ("failed", "Failed", 7),
        ("ratio", "Fail%", 6),
        ("p50", "p50", 7),
        ("p95", "p95", 7),
    )

    def show(self, state: ClusterState, needle: str = "") -> None:
        now = time.time()
        with state.lock:
            names = list(state.names.values())
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
                Text(f"{stats.rate(now) * 60:.0f}", justify="right"),
                Text(f"{stats.succeeded:,}", justify="right"),
                Text(f"{stats.failed:,}", justify="right", style="red" if stats.failed else ""),
                ratio_text,
                Text(duration(stats.runtimes.quantile(0.5)), justify="right"),
                Text(duration(stats.runtimes.quantile(0.95)), justify="right"),
            )))
        self.apply_rows(rows)
