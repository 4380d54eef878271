"""A scheduled job's detail: everything its store says, and its runs (with the bridge)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from taskwatch.engine.schedule_book import ScheduleRow, undecodable
from taskwatch.records import JobRun
from taskwatch.text import strip_control
from taskwatch.ui.format import precise_time, relative
from taskwatch.ui.screens.scrolling import TextDetail, scroll_bindings

if TYPE_CHECKING:
    from taskwatch.monitor import Monitor

RUNS_SHOWN = 20


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_schedule(row: ScheduleRow, runs: list[JobRun], *, bridged: bool, now: float) -> Text:
    """The detail as one Text; every value from the store appended as data."""
    job = row.job
    text = Text()

    def field(label: str, value: object, style: str = "") -> None:
        text.append(f"{label:<14}", style="bold")
        shown = "-" if value in (None, "") else strip_control(str(value))
        text.append(shown, style=style)
        text.append("\n")

    aps = job.source == "apscheduler"
    field("Job" if aps else "Entry", job.name or job.id, "bold")
    if aps:
        field("ID", job.id)
    field("From", ("APScheduler job store " if aps else "beat: ") + job.store)
    field("Function" if aps else "Task", job.target)
    if undecodable(job):
        field("Undecodable", job.problem, "bold red")
        text.append(Text("\nShown as stored: taskwatch ran nothing of it and changed nothing.\n", style="dim"))
        return text
    field("Schedule", job.trigger)
    if job.problem:
        field("Warning", job.problem, "yellow")
    if job.paused:
        field("Next run", "paused", "yellow")
    elif not job.enabled:
        field("Next run", "disabled", "dim")
    elif job.next_run is None:
        field("Next run", None)
    else:
        late = "  OVERDUE" if row.late and aps else "  LATE: beat is down or stuck" if row.late else ""
        exact = "" if job.exact else "  (estimated: the last run is not known)"
        field("Next run", f"{_utc(job.next_run)}  ({precise_time(job.next_run)} local, "
              f"{relative(job.next_run, now)}){late}{exact}", "bold red" if row.late else "")
    if not aps:
        field("Last run", f"{_utc(job.last_run)}" + (f"  ({relative(job.last_run, now)})" if job.last_run else ""))
        field("Total runs", job.total_runs)
        field("Queue", job.queue)
        field("Enabled", "yes" if job.enabled else "no")
    else:
        grace = "no limit" if job.grace is None else f"{job.grace:g} s"
        field("Misfire grace", grace)
        field("Coalesce", None if job.coalesce is None else ("yes" if job.coalesce else "no"))
        field("Max instances", job.max_instances)
        field("Executor", job.executor)
    field("args", job.args)
    field("kwargs", job.kwargs)
    if row.stale:
        text.append(Text(f"\nThe store could not be read since {_utc(row.read_at)}: this may be out of date.\n",
                         style="yellow"))
    if aps:
        text.append("\nRuns\n", style="bold")
        if not bridged:
            text.append(Text("Not recorded: attach taskwatch.bridge in the scheduler's process "
                             "(taskwatch.bridge.attach(scheduler, \"redis://…\")) to see each run, "
                             "its duration and errors, and to act on jobs at once.\n", style="dim"))
        elif not runs:
            text.append(Text("None recorded yet.\n", style="dim"))
        for run in runs[-RUNS_SHOWN:][::-1]:
            style = {"error": "bold red", "missed": "yellow", "max_instances": "yellow"}.get(run.event, "")
            line = f"  {precise_time(run.at)}  {run.event:<13}"
            if run.duration is not None:
                line += f" {run.duration:.3f}s"
            if run.exception:
                line += f"  {strip_control(run.exception)}"
            text.append(line + "\n", style=style)
        last_error = next((r for r in reversed(runs) if r.event == "error" and r.traceback), None)
        if last_error is not None:
            text.append("\nTraceback of the last error\n", style="bold")
            text.append(strip_control(last_error.traceback or ""), style="red")
            text.append("\n")
    return text


class ScheduleDetail(TextDetail):
    """Esc goes back to the Upcoming view; t / p / D act on this job as they do there."""

    BINDINGS = [
        Binding("escape,q", "back", "Back", id="schedule.back"),
        *scroll_bindings("schedule"),
        Binding("t", "job('run')", "Run now", id="schedule.run"),
        Binding("p", "job('pause')", "Pause/resume", id="schedule.pause"),
        Binding("D", "job('remove')", "Remove", id="schedule.remove"),
    ]

    def __init__(self, monitor: Monitor, key: str) -> None:
        super().__init__()
        self.monitor = monitor
        self.key = key

    def row(self) -> ScheduleRow | None:
        return next((r for r in self.monitor.schedules.rows() if r.key == self.key), None)



    def refresh_body(self) -> None:
        row = self.row()
        body = self.query_one("#detail-body", Static)
        if row is None:
            body.update(Text("This job is no longer in its store.", style="dim"))
            return
        bridged = any(s.bridged for s in self.monitor.schedules.stores() if s.label == row.job.store)
        body.update(render_schedule(row, self.monitor.schedules.runs(row.job), bridged=bridged, now=time.time()))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "job":
            return True
        row = self.row()
        allowed = row is not None and self.app.job_action_allowed(str(parameters[0]), row)  # type: ignore[attr-defined]
        return True if allowed else None

    def action_job(self, what: str) -> None:
        row = self.row()
        if row is not None:
            self.app.confirm_job_action(what, row)  # type: ignore[attr-defined]

