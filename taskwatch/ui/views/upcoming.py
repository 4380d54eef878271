"""Upcoming runs: Celery beat entries and APScheduler jobs in one timeline.

Sorted by next run. At 80 columns the name, source, next run (with its day
when not today) and the time until it always fit; the schedule and what
runs follow, and ``h``/``l`` (Left/Right) scroll sideways to them.
"""

from __future__ import annotations

import time

from rich.text import Text

from taskwatch.engine.schedule_book import ScheduleRow, undecodable
from taskwatch.text import clean
from taskwatch.ui.format import relative, run_day, span
from taskwatch.ui.widgets.row_table import RowTable

#: what the From column says for each source
SOURCE_LABELS = {"beat": "beat", "apscheduler": "aps"}


def when_cells(row: ScheduleRow, now: float) -> tuple[Text, Text]:
    """The Next run and In cells: the time with its day, and how far away (or
    why there is no next run)."""
    job = row.job
    if undecodable(job):
        return Text("undecodable", style="bold red"), Text("-", style="dim")
    if not job.enabled:
        return Text("disabled", style="dim"), Text("-", style="dim")
    if job.paused:
        return Text("paused", style="yellow"), Text("-", style="dim")
    if job.next_run is None:
        return Text("-", style="dim"), Text("-", style="dim")
    day = Text(("≈" if not job.exact else "") + run_day(job.next_run, now))
    if row.late:
        word = "late" if job.source == "beat" else "overdue"
        return day.stylize("bold red") or day, Text(f"{word} {span(now - job.next_run)}", style="bold red")
    if job.next_run < now:
        return day, Text("due", style="yellow")
    return day, Text(relative(job.next_run, now), style="" if job.exact else "dim")


class UpcomingTable(RowTable):
    COLUMNS = (
        ("name", "Job", 22),
        ("source", "From", 4),
        ("next", "Next run", 12),
        ("in", "In", 10),
        ("trigger", "Schedule", None),
        ("target", "Runs", None),
    )

    def show(self, rows: list[ScheduleRow], needle: str = "") -> None:
        now = time.time()
        shown = []
        lowered = needle.lower()
        for row in rows:
            job = row.job
            if lowered and lowered not in f"{job.name} {job.id} {job.target} {job.store} {job.trigger}".lower():
                continue
            when, until = when_cells(row, now)
            name = Text(clean(job.name or job.id, 200, single_line=True),
                        style="dim" if row.stale or job.paused or not job.enabled else "")
            trigger = (Text(job.problem or "", style="red") if undecodable(job)
                       else Text(f"⚠ {job.trigger}", style="yellow") if job.problem
                       else Text(job.trigger, style="dim"))
            shown.append((row.key, (
                name, Text(SOURCE_LABELS.get(job.source, job.source), style="dim"), when, until,
                trigger, Text(job.target),
            )))
        self.apply_rows(shown)
