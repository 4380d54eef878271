"""The schedule book: merging sources, overdue and late against the read time, run history."""

from __future__ import annotations

from taskwatch.engine.schedule_book import APP_STORE, ScheduleBook, is_late
from taskwatch.records import JobRun, ScheduledJob

T = 1_800_000_000.0


def aps(job_id: str, next_run: float | None, **kw) -> ScheduledJob:
    return ScheduledJob(source="apscheduler", store="redis://h/2", id=job_id, name=job_id, next_run=next_run,
                        paused=next_run is None and not kw.get("problem"), **kw)


def beat(name: str, next_run: float, store: str = "beat file /s", **kw) -> ScheduledJob:
    return ScheduledJob(source="beat", store=store, id=name, name=name, target="t", next_run=next_run, **kw)


def test_overdue_is_judged_against_the_time_the_store_was_read():
    job = aps("a", T, grace=1.0)
    assert not is_late(job, T + 1.0)  # within its misfire grace
    assert is_late(job, T + 1.5)
    assert not is_late(aps("b", T, grace=0.01), T + 0.9)  # a grace under a second counts as one
    assert not is_late(aps("c", T, grace=None), T + 59)  # no limit: a minute before it is called overdue
    assert is_late(aps("c", T, grace=None), T + 61)


def test_paused_undecodable_disabled_and_estimated_runs_are_never_late():
    assert not is_late(aps("p", None), T + 1e6)
    assert not is_late(aps("x", T, problem="refused"), T + 1e6)
    assert not is_late(beat("off", T, enabled=False, grace=60.0), T + 1e6)
    assert not is_late(beat("est", T, exact=False, grace=60.0), T + 1e6)
    assert not is_late(beat("app", T, store=APP_STORE, grace=60.0), T + 1e6)
    assert is_late(beat("stored", T, grace=60.0), T + 61)


def test_beat_state_replaces_the_apps_entry_of_the_same_name_and_rows_sort_by_next_run():
    book = ScheduleBook()
    book.apply_jobs(APP_STORE, "beat", [beat("every-minute", T + 60, store=APP_STORE, exact=False),
                                        beat("not-stored-yet", T + 30, store=APP_STORE, exact=False)], T)
    book.apply_jobs("beat file /s", "beat", [beat("every-minute", T + 5, last_run=T - 55, total_runs=7)], T)
    book.apply_jobs("redis://h/2", "apscheduler", [aps("paused", None), aps("soon", T + 1)], T)
    rows = book.rows()
    assert [(r.job.name, r.job.store) for r in rows] == [
        ("soon", "redis://h/2"), ("every-minute", "beat file /s"), ("not-stored-yet", APP_STORE),
        ("paused", "redis://h/2")]
    assert rows[1].job.total_runs == 7


def test_a_store_that_cannot_be_read_keeps_its_last_jobs_marked_stale():
    book = ScheduleBook()
    book.apply_jobs("redis://h/2", "apscheduler", [aps("a", T + 10)], T)
    book.apply_error("redis://h/2", "apscheduler", "connection refused", T + 2)
    (row,) = book.rows()
    assert row.stale and row.read_at == T
    (status,) = book.stores()
    assert status.error == "connection refused" and status.read_at == T
    book.apply_jobs("redis://h/2", "apscheduler", [aps("a", T + 10)], T + 4)
    assert not book.rows()[0].stale and book.stores()[0].error is None


def test_late_beat_and_overdue_jobs_name_what_is_behind():
    book = ScheduleBook()
    book.apply_jobs("beat file /s", "beat", [beat("every-2s", T - 10, grace=2.0), beat("ok", T + 10, grace=60.0)], T)
    book.apply_jobs("redis://h/2", "apscheduler", [aps("left-behind", T - 120, grace=1.0)], T)
    assert book.late_beat() == ["every-2s"]
    assert book.overdue_jobs() == ["left-behind"]


def test_run_history_is_added_once_per_run_bounded_and_failures_listed_newest_first():
    book = ScheduleBook()
    job = aps("boom", T)
    runs = [JobRun("redis://h/2", "boom", "error", T + i, exception=f"RuntimeError {i}") for i in range(60)]
    assert len(book.apply_runs("redis://h/2", runs[:30])) == 30
    assert book.apply_runs("redis://h/2", runs) == runs[30:]  # the first 30 are not added twice
    kept = book.runs(job)
    assert len(kept) == 50 and kept[-1].exception == "RuntimeError 59"
    assert book.failed_runs()[0].at == T + 59


def test_a_failed_scheduler_run_is_listed_with_failed_tasks_once_and_kept_out_of_name_stats():
    from taskwatch.engine.entities import is_scheduler_run
    from taskwatch.engine.query import select_with_counts
    from taskwatch.engine.state import FAILURE, ClusterState

    state = ClusterState()
    job = ScheduledJob(source="apscheduler", store="redis://h/2", id="boom", name="Boom",
                       target="app.jobs:boom", args="('x',)", next_run=T + 2)
    run = JobRun("redis://h/2", "boom", "error", T, scheduled=T - 0.5, duration=0.25,
                 exception="RuntimeError('boom')", traceback="Traceback (most recent call last):\n...")
    assert state.apply_scheduler_failure(run, job)
    assert not state.apply_scheduler_failure(run, job)
    ids, counts, _ = select_with_counts(state, "failed", "")
    (task_id,) = ids
    assert is_scheduler_run(task_id)
    task = state.tasks[task_id]
    assert (task.name, task.state, task.worker, task.exception) == ("app.jobs:boom", FAILURE, "apscheduler",
                                                                   "RuntimeError('boom')")
    assert task.runtime == 0.25 and task.args == "('x',)"
    assert "app.jobs:boom" not in state.names

