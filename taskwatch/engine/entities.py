"""What the engine keeps, one class each: tasks, workers, per-name stats, gaps, counters.

Plain data with ``__slots__`` where there are many (tasks), filled in by
:class:`taskwatch.engine.state.ClusterState`; read by the UI and ``snapshot``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from taskwatch.engine.sketch import QuantileSketch
from taskwatch.records import ExactCall, JobRun
from taskwatch.text import clean

# Celery state names.
PENDING, SENT, RECEIVED, STARTED = "PENDING", "SENT", "RECEIVED", "STARTED"
SUCCESS, FAILURE, RETRY, REVOKED, REJECTED = "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"
FINAL = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
# Not a Celery state: no worker holds the task any more (its worker went
# offline, or stopped listing it) and no outcome was reported. Not final: a
# later event or stored result (a redelivery, a result written by the pool
# process) is the real state and replaces it.
LOST = "LOST"
# The constants themselves, by name: states compare by identity (``is``) on
# the hot path, so a state read from elsewhere (a result backend) is mapped
# to its constant first.
KNOWN_STATES = {s: s for s in (PENDING, SENT, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED)}

# How far along a task is: an older event moves a task only forward. LOST
# ranks with STARTED: only a newer event, or an outcome, replaces it.
_RANKS = {PENDING: 0, SENT: 1, RECEIVED: 2, RETRY: 2, STARTED: 3, LOST: 3}


def rank(state: str) -> int:
    return _RANKS.get(state, 4)

class Task:
    """One task as seen so far. ``recovered`` marks facts filled in after a gap."""

    __slots__ = (
        "uuid", "name", "state", "state_ts", "worker", "queue", "args", "kwargs", "call",
        "result", "exception", "traceback", "retries", "eta", "expires", "sent", "received",
        "started", "finished", "runtime", "parent_id", "root_id", "children", "recovered", "lost",
    )

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.name: str | None = None
        self.state = PENDING
        self.state_ts = 0.0
        self.worker: str | None = None
        self.queue: str | None = None
        self.args: str | None = None
        self.kwargs: str | None = None
        # The real argument values (inspect, result backend), kept once:
        # ``args``/``kwargs`` above are their display text.
        self.call: ExactCall | None = None
        self.result: str | None = None
        self.exception: str | None = None
        self.traceback: str | None = None
        self.retries = 0
        self.eta: str | None = None
        self.expires: str | None = None
        self.sent: float | None = None
        self.received: float | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.runtime: float | None = None
        self.parent_id: str | None = None
        self.root_id: str | None = None
        self.children: list[str] | None = None
        self.recovered = False
        # When and why it was last found lost (kept as history once it reports again).
        self.lost: Lost | None = None

    @property
    def exact_args(self) -> bool:
        """``args``/``kwargs`` show the real values, not a sender's cut repr."""
        return self.call is not None


class Attempt(NamedTuple):
    """One run of a task that ended in a retry: when it was received, started and
    retried, and the exception it retried on.

    Kept only for tasks that retried (``ClusterState.attempts``), a small tuple
    each; the task's own fields describe its latest attempt and final outcome.
    """

    received: float | None
    started: float | None
    retried: float
    exception: str | None
    traceback: str | None


class Lost(NamedTuple):
    """Why a task was found lost: when (local time), on which worker, and why.

    ``cause`` is one of :data:`LOST_CAUSES`; ``since`` is when the worker was
    last heard from (offline causes) or first failed to list the task
    (``not held``); ``was`` the task's state before (``STARTED``, ``RECEIVED``).
    """

    at: float
    worker: str
    cause: str
    since: float
    was: str

    def reason(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        doing = "while the task was running" if self.was == "STARTED" else "while it held the task, not started"
        if self.cause == NOT_HELD:
            return (f"worker {self.worker} no longer holds it (not in its active, reserved or scheduled "
                    f"replies since {since}) and no outcome was reported")
        if self.cause == SHUT_DOWN:
            return f"worker {self.worker} shut down (at {since}) {doing}"
        return f"worker {self.worker} went offline ({self.cause} since {since}) {doing}"


#: why a worker is offline, and why a task was lost
NO_HEARTBEAT, NO_ANSWER, SHUT_DOWN, NOT_HELD = "no heartbeat", "no answer", "shut down", "not held"
LOST_CAUSES = (NO_HEARTBEAT, NO_ANSWER, SHUT_DOWN, NOT_HELD)


class WorkerInfo:
    """A worker as its heartbeats and inspect replies describe it."""

    __slots__ = (
        "hostname", "freq", "last_heartbeat", "offline_at", "active", "processed", "loadavg",
        "sw_ver", "pid", "pool", "concurrency", "queues", "last_ping", "error", "gone_at",
    )

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.freq = 2.0
        self.last_heartbeat: float | None = None  # local time we received it
        self.offline_at: float | None = None
        self.active: int | None = None
        self.processed: int | None = None
        self.loadavg: list[float] | None = None
        self.sw_ver: str | None = None
        self.pid: int | None = None
        self.pool: str | None = None
        self.concurrency: int | None = None
        self.queues: tuple[str, ...] = ()
        self.last_ping: float | None = None
        self.error: str | None = None
        # when taskwatch found it offline and its tasks lost (None while online)
        self.gone_at: float | None = None

    def last_seen(self) -> float | None:
        seen = [t for t in (self.last_heartbeat, self.last_ping) if t is not None]
        return max(seen) if seen else None

    def online(self, now: float) -> bool:
        """Celery's rule: alive while a heartbeat is younger than 2 x freq.

        A worker only seen through ``ping`` (events off) counts as online
        while its last answer is younger than the same window.
        """
        seen = self.last_seen()
        if seen is None:
            return False
        if self.offline_at is not None and self.offline_at >= seen:
            return False
        return now - seen <= 2 * max(self.freq, 1.0) + 1.0

    def apply_stats(self, stats: Mapping[str, Any]) -> None:
        """Merge an ``inspect stats`` reply: pid, pool, concurrency, tasks processed."""
        pid = stats.get("pid")
        self.pid = pid if type(pid) is int else self.pid
        pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
        implementation = pool.get("implementation")
        if isinstance(implementation, str):
            self.pool = clean(implementation.rsplit(":", 1)[0].rsplit(".", 1)[-1], 40, single_line=True)
        concurrency = pool.get("max-concurrency")
        if type(concurrency) is int:
            self.concurrency = concurrency
        total = stats.get("total")
        if isinstance(total, dict):
            processed = sum(v for v in total.values() if type(v) is int)
            self.processed = max(self.processed or 0, processed)

    def down_cause(self, now: float) -> str | None:
        """None while online; else why it is not: ``shut down`` (it said so:
        worker-offline), ``no heartbeat``, or ``no answer`` (known from ping only)."""
        if self.online(now):
            return None
        seen = self.last_seen()
        if self.offline_at is not None and (seen is None or self.offline_at >= seen):
            return SHUT_DOWN
        return NO_HEARTBEAT if self.last_heartbeat is not None else NO_ANSWER


class NameStats:
    """Per task name: counters, a one-minute rate window and runtime quantiles."""

    __slots__ = ("name", "received", "succeeded", "failed", "retried", "revoked", "runtimes",
                 "_counts", "_seconds")

    WINDOW = 60

    def __init__(self, name: str) -> None:
        self.name = name
        self.received = self.succeeded = self.failed = self.retried = self.revoked = 0
        self.runtimes = QuantileSketch()
        # A ring of per-second counts of finished tasks; _seconds says which
        # second each slot currently counts.
        self._counts = [0] * self.WINDOW
        self._seconds = [-1] * self.WINDOW

    def _tick(self, ts: float) -> None:
        second = int(ts)
        slot = second % self.WINDOW
        if self._seconds[slot] != second:
            self._seconds[slot] = second
            self._counts[slot] = 0
        self._counts[slot] += 1

    def rate(self, now: float) -> float:
        """Finished tasks per second over the last minute."""
        second = int(now)
        total = sum(
            count for count, sec in zip(self._counts, self._seconds, strict=True)
            if second - self.WINDOW < sec <= second
        )
        return total / self.WINDOW

    @property
    def failure_ratio(self) -> float | None:
        done = self.succeeded + self.failed
        return None if not done else self.failed / done


@dataclass
class Gap:
    start: float
    end: float | None
    reason: str
    repaired: bool = False


@dataclass
class Counters:
    events_received: int = 0
    events_undecodable: int = 0
    tasks_seen: int = 0
    tasks_evicted: int = 0
    lag: float = 0.0  # seconds the receiver is behind, last batch (clock differences taken out)
    max_lag: float = 0.0
    # Bytes of events the broker holds for us, unread (None: not known), and
    # the size at which it cuts the connection (losing them).
    backlog: int | None = None
    backlog_limit: int | None = None
    # Bytes read off the broker and waiting in the receiver's spool to be
    # decoded (None: no spool), its limit, and bytes it dropped when full.
    spooled: int | None = None
    spool_limit: int | None = None
    spool_dropped: int = 0


#: the worker column of a failed APScheduler run
SCHEDULER_WORKER = "apscheduler"
_SCHEDULER_PREFIX = "apscheduler:"


def scheduler_run_id(run: JobRun) -> str:
    """The task id a failed APScheduler run is kept under."""
    return f"{_SCHEDULER_PREFIX}{run.job_id}@{run.at:.6f}"


def is_scheduler_run(task_id: str) -> bool:
    """A failed APScheduler run kept among the tasks: no Celery action applies."""
    return task_id.startswith(_SCHEDULER_PREFIX)
