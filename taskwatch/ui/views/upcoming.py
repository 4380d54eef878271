"""Upcoming runs: Celery beat entries (and, later, APScheduler jobs) in one timeline."""

from __future__ import annotations

import time
from datetime import datetime

from rich.text import Text

from taskwatch.engine.schedules import Upcoming
from taskwatch.ui.format import duration
from taskwatch.ui.views.tables import KeyedTable


class UpcomingTable(KeyedTable):
    COLUMNS = (
        ("name", "Entry", None),
        ("source", "From", 5),
        ("task", "Task", None),
        ("schedule", "Schedule", 18),
        ("next", "Next run", 17),
    )

    def show(self, entries: list[Upcoming], needle: str = "") -> None:
        now = time.time()
        rows = []
        for entry in entries:
            if needle and needle.lower() not in f"{entry.name} {entry.task}".lower():
                continue
            if entry.next_run is None:
                when = Text("?", style="dim")
            else:
                local = datetime.fromtimestamp(entry.next_run).strftime("%H:%M:%S")
                prefix = "" if entry.exact else "≤"
                when = Text(f"{local} {prefix}{duration(max(0.0, entry.next_run - now))}")
            rows.append((f"{entry.source}:{entry.name}", (
                Text(entry.name), Text(entry.source, style="dim"), Text(entry.task),
                Text(entry.schedule, style="dim"), when,
            )))
        self.apply_rows(rows)
