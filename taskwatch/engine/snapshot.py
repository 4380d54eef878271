"""The ``taskwatch snapshot`` document: a stable, versioned JSON shape.

Schema 1 (fields are only ever added within a schema version; a task's
``attempts`` came with retries kept apart from the outcome; ``schedules[]``
and ``schedule_stores[]`` with the job stores and beat's state):
``schema, taken_at, broker, broker_error, workers[], queues[], tasks[],
task_stats[], schedules[], schedule_stores[], stats, health[]``. Every text in it was cleaned of terminal control
sequences on the way in; URLs are masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from taskwatch.engine.entities import Attempt
from taskwatch.engine.query import runtime
from taskwatch.engine.reconcile import lost_ids
from taskwatch.engine.schedule_book import ScheduleBook, ScheduleRow
from taskwatch.engine.state import ClusterState, Task
from taskwatch.records import SourceHealth
from taskwatch.text import mask_url

SCHEMA = 1


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-11-27T14:03:00.123Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def task_document(task: Task, attempts: Sequence[Attempt] = ()) -> dict[str, Any]:
    """One task; ``attempts``: its runs that ended in a retry, oldest first."""
    return {
        "id": task.uuid,
        "name": task.name,
        "state": task.state,
        "worker": task.worker,
        "queue": task.queue,
        "args": task.args,
        "kwargs": task.kwargs,
        "exact_args": task.exact_args,
        "result": task.result,
        "exception": task.exception,
        "traceback": task.traceback,
        "retries": task.retries,
        "eta": task.eta,
        "expires": task.expires,
        "sent": iso(task.sent),
        "received": iso(task.received),
        "started": iso(task.started),
        "finished": iso(task.finished),
        "runtime": _round(runtime(task), 6),
        "parent_id": task.parent_id,
        "root_id": task.root_id,
        "children": list(task.children or ()),
        "recovered": task.recovered,
        "lost": None if task.lost is None else {
            "at": iso(task.lost.at), "worker": task.lost.worker, "cause": task.lost.cause,
            "since": iso(task.lost.since), "reason": task.lost.reason()},
        "attempts": [
            {"received": iso(a.received), "started": iso(a.started), "retried": iso(a.retried),
             "exception": a.exception, "traceback": a.traceback}
            for a in attempts
        ],
    }


def _task_time(task: Task) -> float:
    return max(task.state_ts, task.received or 0.0, task.sent or 0.0, task.finished or 0.0)


def build(
    state: ClusterState,
    broker_url: str,
    now: float,
    *,
    broker_error: str | None = None,
    peak_rss_bytes: int | None = None,
    max_tasks: int | None = None,
    schedules: ScheduleBook | None = None,
    health: Sequence[SourceHealth] = (),
) -> dict[str, Any]:
    """The whole picture. ``max_tasks`` keeps only the newest tasks (None: all).
    ``health``: how each source was doing at the end (the monitor's records)."""
    book = schedules or ScheduleBook()
    schedule_rows = [schedule_document(row) for row in book.rows()]
    schedule_stores = [
        {"store": s.label, "kind": s.kind, "read_at": iso(s.read_at), "jobs": s.jobs,
         "error": s.error, "bridge": s.bridged}
        for s in book.stores()
    ]
    with state.lock:
        workers = sorted(state.workers.values(), key=lambda w: (not w.online(now), w.hostname))
        tasks = sorted(state.tasks.values(), key=_task_time, reverse=True)
        lost = Counter(state.tasks[u].worker for u in lost_ids(state))
        if max_tasks is not None:
            tasks = tasks[:max_tasks]
        document = {
            "schema": SCHEMA,
            "taken_at": iso(now),
            "broker": mask_url(broker_url),
            "broker_error": broker_error,
            "workers": [
                {
                    "hostname": w.hostname,
                    "online": w.online(now),
                    "state": w.down_cause(now) or "online",
                    "lost": lost[w.hostname],
                    "heartbeat_age": None if w.last_seen() is None else _round(max(0.0, now - w.last_seen())),
                    "active": w.active,
                    "processed": w.processed,
                    "loadavg": w.loadavg,
                    "pool": w.pool,
                    "concurrency": w.concurrency,
                    "queues": list(w.queues),
                    "pid": w.pid,
                    "sw_ver": w.sw_ver,
                    "events": w.last_heartbeat is not None,
                    "error": w.error,
                }
                for w in workers
            ],
            "queues": [
                {
                    "name": q.name,
                    "messages": q.messages,
                    "by_priority": dict(q.by_priority),
                    "unacked": q.unacked,
                    "consumers": q.consumers,
                    "source": q.source,
                    "error": q.error,
                }
                for q in sorted(state.queues.values(), key=lambda q: q.name)
            ],
            "tasks": [task_document(t, state.attempts.get(t.uuid, ())) for t in tasks],
            "task_stats": [
                {
                    "name": s.name,
                    "received": s.received,
                    "succeeded": s.succeeded,
                    "failed": s.failed,
                    "retried": s.retried,
                    "revoked": s.revoked,
                    "rate_per_minute": _round(s.rate(now) * 60, 2),
                    "failure_ratio": _round(s.failure_ratio, 4),
                    "runtime_p50": _round(s.runtimes.quantile(0.5), 6),
                    "runtime_p95": _round(s.runtimes.quantile(0.95), 6),
                }
                for s in sorted(state.names.values(), key=lambda s: s.name)
            ],
            "schedules": schedule_rows,
            "schedule_stores": schedule_stores,
            "stats": {
                "events_received": state.counters.events_received,
                "events_undecodable": state.counters.events_undecodable,
                "tasks_seen": state.counters.tasks_seen,
                "tasks_retained": len(state.tasks),
                "tasks_evicted": state.counters.tasks_evicted,
                "tasks_lost": lost.total(),
                "event_lag_max": _round(state.counters.max_lag),
                "event_backlog_bytes": state.counters.backlog,
                "gaps": [
                    {"start": iso(g.start), "end": iso(g.end), "reason": g.reason, "repaired": g.repaired}
                    for g in state.gaps
                ],
                "peak_rss_bytes": peak_rss_bytes,
            },
            "health": [health_document(h) for h in health],
        }
    return document


def health_document(health: SourceHealth) -> dict[str, Any]:
    """One source's state: ``ok`` or ``down`` with the reason in words, since
    when, and the last time it really answered."""
    return {"source": health.source, "state": health.state, "reason": health.reason,
            "detail": health.detail, "since": iso(health.since), "last_ok": iso(health.last_ok)}


def schedule_document(row: ScheduleRow) -> dict[str, Any]:
    """One scheduled job: an APScheduler job (``func``, ``overdue``) or a beat
    entry (``task``, ``late``, ``last_run``, ``total_runs``, ``queue``)."""
    job = row.job
    document: dict[str, Any] = {
        "source": job.source,
        "store": job.store,
        "id": job.id,
        "name": job.name,
    }
    if job.source == "beat":
        document["task"] = job.target
    else:
        document["func"] = job.target
    document.update({
        "trigger": job.trigger,
        "next_run": iso(job.next_run),
        "next_run_exact": job.exact,
        "paused": job.paused,
        "args": job.args,
        "kwargs": job.kwargs,
        "error": job.problem,
        "stale": row.stale,
    })
    if job.source == "beat":
        document.update({"late": row.late, "last_run": iso(job.last_run), "total_runs": job.total_runs,
                         "queue": job.queue or None, "enabled": job.enabled})
    else:
        document.update({"overdue": row.late, "misfire_grace_time": job.grace, "coalesce": job.coalesce,
                         "max_instances": job.max_instances, "executor": job.executor or None})
    return document
