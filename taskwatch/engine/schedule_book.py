"""Every scheduled job taskwatch reads, merged into one timeline. Plain data.

Sources (APScheduler job stores, beat's app schedule, beat's own state) are
read off the UI thread; each read lands here whole (:meth:`ScheduleBook.apply_jobs`)
or as that source's error (:meth:`ScheduleBook.apply_error`), so a store that
cannot be read keeps its last jobs on screen, marked stale, with the reason.

Overdue and late
----------------
Whether a run is overdue depends on the clock, so it is decided here, against
the time the store was *read* (not the time it is drawn): a job due at 12:00:00
read at 12:00:01.5 has been left behind by its scheduler, whatever the screen
shows a second later.

* APScheduler: a job whose next run is past by more than its
  ``misfire_grace_time`` (at least :data:`MIN_GRACE`; 60 s when it has no
  limit) is **overdue**: its scheduler is not running, or is stuck. A paused
  job never is.
* beat: an entry from beat's own state whose next run is past by more than
  its grace is **late**: beat is down or stuck. Entries known only from the
  app's ``beat_schedule`` have estimated next runs and are never late.

Beat entries are merged by name: an entry read from beat's own state (its
schedule file, RedBeat, django-celery-beat) replaces the app's entry of the
same name; the app's entries beat has not stored (beat not started yet) stay.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from taskwatch.records import JobRun, ScheduledJob

#: The shortest grace that counts: a store read in the instant a run was due is not overdue.
MIN_GRACE = 1.0
#: The grace of a job that has none (APScheduler's ``misfire_grace_time=None``).
DEFAULT_GRACE = 60.0
#: Run history kept per job (from the bridge).
RUNS_PER_JOB = 50
#: beat's app-schedule source (its entries are estimates, replaced by beat's own state).
APP_STORE = "app"


@dataclass
class StoreStatus:
    """How reading one schedule source went."""

    label: str
    kind: str
    #: the last successful read (epoch seconds)
    read_at: float | None = None
    #: why the last read failed; the jobs shown are then from ``read_at``
    error: str | None = None
    error_at: float | None = None
    jobs: int = 0
    #: a bridge runs inside this store's scheduler (control is immediate, runs are recorded)
    bridged: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One job as shown: the record, and what the clock says about it."""

    job: ScheduledJob
    #: the store was read at this time (epoch seconds)
    read_at: float
    #: past its next run by more than its grace when read (overdue / late)
    late: bool
    #: the store could not be read since: the row may be out of date
    stale: bool

    @property
    def key(self) -> str:
        return row_key(self.job)


def row_key(job: ScheduledJob) -> str:
    return f"{job.source}\x1f{job.store}\x1f{job.id}"


def undecodable(job: ScheduledJob) -> bool:
    """The row could not be read at all (``problem`` without a trigger); a row
    that was read but disagrees with its store's index has both."""
    return job.problem is not None and not job.trigger


def is_late(job: ScheduledJob, read_at: float) -> bool:
    """The job's next run had passed by more than its grace when its store was read."""
    if undecodable(job) or job.paused or not job.enabled or job.next_run is None or not job.exact:
        return False
    if job.source == "beat" and job.store == APP_STORE:
        return False
    grace = DEFAULT_GRACE if job.grace is None else max(job.grace, MIN_GRACE)
    return read_at - job.next_run > grace


@dataclass
class ScheduleBook:
    """The jobs of every schedule source, as last read. Thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _jobs: dict[str, list[ScheduledJob]] = field(default_factory=dict)
    status: dict[str, StoreStatus] = field(default_factory=dict)
    _runs: dict[tuple[str, str], deque[JobRun]] = field(default_factory=dict)
    _seen_runs: dict[str, float] = field(default_factory=dict)

    # -- what sources report ------------------------------------------------
    def apply_jobs(self, label: str, kind: str, jobs: Sequence[ScheduledJob], read_at: float,
                   *, bridged: bool = False) -> None:
        with self.lock:
            self._jobs[label] = list(jobs)
            status = self.status.setdefault(label, StoreStatus(label, kind))
            status.read_at, status.error, status.error_at = read_at, None, None
            status.jobs, status.bridged = len(jobs), bridged

    def apply_error(self, label: str, kind: str, error: str, at: float) -> None:
        with self.lock:
            status = self.status.setdefault(label, StoreStatus(label, kind))
            status.error, status.error_at = error, at

    def apply_runs(self, label: str, runs: Iterable[JobRun]) -> list[JobRun]:
        """Add a bridge's run history (newest last); runs already seen are skipped.
        Returns the runs added."""
        added: list[JobRun] = []
        with self.lock:
            newest = self._seen_runs.get(label, 0.0)
            for run in runs:
                if run.at <= newest:
                    continue
                history = self._runs.get((label, run.job_id))
                if history is None:
                    history = self._runs[(label, run.job_id)] = deque(maxlen=RUNS_PER_JOB)
                history.append(run)
                newest = max(newest, run.at)
                added.append(run)
            self._seen_runs[label] = newest
        return added

    def job(self, label: str, job_id: str) -> ScheduledJob | None:
        with self.lock:
            return next((j for j in self._jobs.get(label, ()) if j.id == job_id), None)

    def forget(self, label: str) -> None:
        with self.lock:
            self._jobs.pop(label, None)
            self.status.pop(label, None)

    # -- what the views ask ---------------------------------------------------
    def rows(self) -> list[ScheduleRow]:
        """Every job, beat entries merged by name, soonest next run first
        (unknown and paused last, then by name)."""
        with self.lock:
            stored_beat = {job.name for label, jobs in self._jobs.items() if label != APP_STORE
                           for job in jobs if job.source == "beat"}
            rows = []
            for label, jobs in self._jobs.items():
                status = self.status[label]
                read_at = status.read_at or 0.0
                stale = status.error is not None
                for job in jobs:
                    if label == APP_STORE and job.name in stored_beat:
                        continue
                    rows.append(ScheduleRow(job, read_at, is_late(job, read_at), stale))
        rows.sort(key=lambda r: (r.job.next_run is None, r.job.next_run or 0.0, r.job.name, r.job.store))
        return rows

    def runs(self, job: ScheduledJob) -> list[JobRun]:
        """The job's recorded runs, oldest first (empty without a bridge)."""
        with self.lock:
            return list(self._runs.get((job.store, job.id), ()))

    def failed_runs(self) -> list[JobRun]:
        """Every recorded APScheduler run that raised, newest first."""
        with self.lock:
            failed = [run for history in self._runs.values() for run in history if run.event == "error"]
        failed.sort(key=lambda r: r.at, reverse=True)
        return failed

    def late_beat(self) -> list[str]:
        """Names of beat entries that are late (beat down or stuck)."""
        return [r.job.name for r in self.rows() if r.late and r.job.source == "beat"]

    def overdue_jobs(self) -> list[str]:
        return [r.job.name or r.job.id for r in self.rows() if r.late and r.job.source == "apscheduler"]

    def stores(self) -> list[StoreStatus]:
        with self.lock:
            return [StoreStatus(**vars(s)) for s in self.status.values()]
