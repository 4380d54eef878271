"""Cluster state as plain data: tasks, workers, per-name statistics, gaps.

Fed by Celery events (already decoded to dicts), inspect replies and result
backend rows; read by the UI and ``snapshot``. No I/O, no Textual.

``apply_events`` is the hot path (tens of thousands of events a second on
one core): task records use ``__slots__``, strings that repeat (names,
hostnames, states) are interned, texts are cleaned only when they contain
something unprintable, and nothing is allocated per event that is not kept.
Out-of-order and duplicate events merge: a finished task never goes back to
running, and an event for a task never seen creates it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from taskwatch.engine.entities import (
    FAILURE,
    FINAL,
    KNOWN_STATES,
    LOST,
    PENDING,
    RECEIVED,
    REJECTED,
    RETRY,
    REVOKED,
    SCHEDULER_WORKER,
    SENT,
    STARTED,
    SUCCESS,
    Attempt,
    Counters,
    Gap,
    NameStats,
    Task,
    WorkerInfo,
    scheduler_run_id,
)
from taskwatch.engine.entities import rank as _rank
from taskwatch.engine.reconcile import apply_held, reconcile_absent, sweep_workers
from taskwatch.engine.values import (
    LATEST,
    MAX_SHORT,
    MAX_TRACEBACK,
    SHARED,
    args_text,
    bounded_text,
    duration,
    intern,
    moment,
    number,
)
from taskwatch.records import (
    ExactCall,
    HeldTask,
    JobRun,
    QueueDepth,
    ScheduledJob,
    StoredResult,
    TaskPoll,
    WorkerReport,
)
from taskwatch.reprs import call_text
from taskwatch.text import clean

OFFSET_FOR = 300.0  # seconds a host's clock-offset baseline is kept before it is measured again
MAX_CHILDREN = 1000  # children kept per task (the detail shows 20); bounds the duplicate check
MAX_RETRY_LINKS = 10_000  # retry-of / retried-as links kept
MAX_ATTEMPTS = 50  # retried attempts kept per task (the latest ones): retries without a limit exist

TASK_EVENT_STATE = {
    "task-sent": SENT,
    "task-received": RECEIVED,
    "task-started": STARTED,
    "task-succeeded": SUCCESS,
    "task-failed": FAILURE,
    "task-retried": RETRY,
    "task-revoked": REVOKED,
    "task-rejected": REJECTED,
}

# Bounds on what one task may hold (Celery already cuts args/result reprs
# at 1024 characters; a traceback can be anything).
_intern = intern

@dataclass
class ClusterState:
    """Everything taskwatch knows. Thread-safe through ``lock``."""

    max_tasks: int = 100_000
    tasks: dict[str, Task] = field(default_factory=dict)
    workers: dict[str, WorkerInfo] = field(default_factory=dict)
    names: dict[str, NameStats] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    # queue name -> latest depth, and its history
    queues: dict[str, QueueDepth] = field(default_factory=dict)
    queue_history: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    # task id -> its attempts that ended in a retry, oldest first; only tasks
    # that retried have an entry (most never do: no per-task cost for them)
    attempts: dict[str, tuple[Attempt, ...]] = field(default_factory=dict)
    # retries sent from taskwatch: new task id -> the one it retried, and back
    retry_of: dict[str, str] = field(default_factory=dict)
    retried_as: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # ids of finished tasks in the order they finished: evicted first
    _finished: deque[str] = field(default_factory=deque, repr=False)
    # bumped on every change, so readers can skip work when nothing moved
    version: int = 0
    # raw hostname -> cleaned, interned (a handful of workers, millions of events)
    _hostnames: dict[str, str] = field(default_factory=dict, repr=False)
    # a task from the result backend joined the dict out of time order: the
    # next reader puts it in its place (ordered_tasks), once per backfill
    _unordered: bool = field(default=False, repr=False)
    # raw hostname -> (smallest age of its events when caught up, when seen): see _behind
    _offsets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    # reconciling (engine/reconcile.py): task id -> start of the first round its worker
    # did not list it; ids of tasks found lost; those the last task poll found lost
    _missing: dict[str, float] = field(default_factory=dict, repr=False)
    _lost: set[str] = field(default_factory=set, repr=False)
    lost_now: list[str] = field(default_factory=list, repr=False)

    # -- events -------------------------------------------------------------
    def apply_events(self, events: Iterable[Mapping[str, Any]], received_at: float | None = None,
                     drained: bool = True) -> None:
        """Apply decoded Celery events (dicts), in arrival order.

        ``drained``: the receiver found nothing more waiting after this batch
        (it is caught up), which lets ``counters.lag`` tell clock differences
        between hosts from being behind.
        """
        now = time.time() if received_at is None else received_at
        tasks = self.tasks
        n = 0
        lag = 0.0
        with self.lock:
            event = None
            for event in events:
                n += 1
                kind = event.get("type")
                state = TASK_EVENT_STATE.get(kind) if type(kind) is str else None
                if state is not None:
                    uuid = event.get("uuid")
                    if type(uuid) is not str:
                        continue
                    task = tasks.get(uuid)
                    if task is None:
                        task = self._new_task(uuid)
                    self._apply_task_event(task, state, event)
                elif type(kind) is str and kind.startswith("worker-"):
                    self._apply_worker_event(kind, event, now)
                elif type(kind) is not str:
                    self.counters.events_undecodable += 1
            # How far behind we are: the age of the newest event of the batch.
            ts = event.get("timestamp") if event is not None else None
            if type(ts) is float and 0.0 < ts < LATEST:
                host = event.get("hostname")
                lag = self._behind(host if type(host) is str else "", now - ts, now, drained)
            self.counters.events_received += n
            self.counters.lag = lag
            if lag > self.counters.max_lag:
                self.counters.max_lag = lag
            if len(tasks) > self.max_tasks:
                self._evict()
            self.version += 1

    def _behind(self, host: str, offset: float, now: float, drained: bool) -> float:
        """Seconds the receiver is behind ``host``'s events, its clock's difference aside.

        An event's age on arrival is the sender's clock offset plus transit
        plus any backlog. When the receiver is caught up (``drained``) there
        is no backlog: the smallest age seen then, per host, is the baseline
        (renewed every ``OFFSET_FOR`` seconds, after NTP steps a clock). The
        lag is how far the age of an event exceeds it.
        """
        offsets = self._offsets
        base = offsets.get(host)
        if drained and (base is None or offset < base[0] or now - base[1] > OFFSET_FOR):
            if len(offsets) > 10_000:  # a hostile stream inventing hostnames
                offsets.clear()
            offsets[host] = base = (offset, now)
        return 0.0 if base is None else max(0.0, offset - base[0])

    def _new_task(self, uuid: str) -> Task:
        task = self.tasks[uuid] = Task(uuid)
        self.counters.tasks_seen += 1
        return task

    def _apply_task_event(self, task: Task, state: str, event: Mapping[str, Any]) -> None:
        ts = event.get("timestamp")
        if type(ts) is not float or not 0.0 < ts < LATEST:  # one comparison on the hot path
            ts = moment(ts) or 0.0
        get = event.get
        # Fields every kind may carry.
        hostname = get("hostname")
        if state is SENT:
            task.sent = ts
            queue = get("queue")
            if queue is not None:
                task.queue = _intern(bounded_text(queue, 200) or "")
        elif type(hostname) is str:
            worker = self._hostnames.get(hostname)
            if worker is None:
                if len(self._hostnames) > 10_000:  # a hostile stream inventing names
                    self._hostnames.clear()
                worker = self._hostnames[hostname] = _intern(clean(hostname, 200, single_line=True))
            task.worker = worker

        if state is RECEIVED or state is SENT:
            name = get("name")
            if type(name) is str:
                name = _intern(name if name.isprintable() and len(name) < 300
                               else clean(name, 300, single_line=True))
                if name is not task.name:
                    task.name = name
                    self._stats(name)  # listed from the first sighting, finished or not
            if task.call is None:
                args = get("args")
                if args is not None:
                    task.args = args_text(args)
                kwargs = get("kwargs")
                if kwargs is not None:
                    task.kwargs = bounded_text(kwargs, MAX_SHORT)
            retries = get("retries")
            if type(retries) is int:
                task.retries = retries
            eta = get("eta")
            if eta is not None:
                task.eta = bounded_text(eta, 64)
            expires = get("expires")
            if expires is not None:
                task.expires = bounded_text(expires, 64)
            parent = get("parent_id")
            # A retry is sent from inside the task it retries: Celery names
            # the task its own parent. Its attempts are one task, not a family.
            if type(parent) is str and parent != task.uuid:
                task.parent_id = parent
                self._link_child(parent, task.uuid)
            root = get("root_id")
            if type(root) is str:
                task.root_id = root
            if state is RECEIVED:
                task.received = ts
                if task.name is not None:
                    self._stats(task.name).received += 1
        elif state is STARTED:
            task.started = ts
        elif state is SUCCESS:
            task.result = bounded_text(get("result"), MAX_SHORT)
            runtime = get("runtime")
            task.runtime = runtime if type(runtime) is float and 0.0 <= runtime < LATEST else duration(runtime)
        elif state is FAILURE:
            task.exception = bounded_text(get("exception"), MAX_SHORT)
            task.traceback = bounded_text(get("traceback"), MAX_TRACEBACK)
        elif state is RETRY:
            self._retried(task, ts, get("exception"), get("traceback"))

        # The state itself: never from final back to running; an older event
        # does not replace a newer one unless it moves the task forward (hosts'
        # clocks differ: a producer seconds ahead of the worker must not keep
        # a task "sent" forever, nor hide its result).
        current = task.state
        if current in FINAL and state not in FINAL:
            return
        # A lost task keeps its last event's time: that event again does not revive it.
        if ((ts < task.state_ts or ts == task.state_ts and current is LOST) and current is not PENDING
                and _rank(state) <= _rank(current)):
            return
        if current is state:
            task.state_ts = ts
            return
        task.state = state
        task.state_ts = ts
        if state in FINAL:
            if current not in FINAL:
                task.finished = ts
                self._finished.append(task.uuid)
                self._count_final(task, state, ts)

    def _retried(self, task: Task, ts: float, exception: Any, traceback: Any) -> None:
        """An attempt ended in a retry: kept as an attempt, apart from the task's outcome.

        The exception and traceback belong to that attempt only: a task that
        then succeeds shows no failure. The retry's own events may arrive
        before this one (another worker took it): the task's received and
        started times are this attempt's only when they are not later.
        """
        attempts = self.attempts.get(task.uuid, ())
        if any(a.retried == ts for a in attempts):
            return  # the same event again
        after = max((a.retried for a in attempts), default=0.0)
        received, started = (t if t is not None and after < t <= ts else None
                             for t in (task.received, task.started))
        attempt = Attempt(received, started, ts, bounded_text(exception, MAX_SHORT), bounded_text(traceback, MAX_TRACEBACK))
        kept = (*attempts, attempt) if ts >= after else tuple(sorted((*attempts, attempt), key=_retried_at))
        self.attempts[task.uuid] = kept[-MAX_ATTEMPTS:]
        if task.name is not None:
            self._stats(task.name).retried += 1

    def _count_final(self, task: Task, state: str, ts: float) -> None:
        if task.name is None:
            return
        stats = self._stats(task.name)
        if state is SUCCESS:
            stats.succeeded += 1
            if task.runtime is not None:
                stats.runtimes.add(task.runtime)
        elif state is FAILURE:
            stats.failed += 1
        elif state is REVOKED:
            stats.revoked += 1
        stats._tick(ts)

    def _stats(self, name: str) -> NameStats:
        stats = self.names.get(name)
        if stats is None:
            stats = self.names[name] = NameStats(name)
        return stats

    def _link_child(self, parent_id: str, child_id: str) -> None:
        parent = self.tasks.get(parent_id)
        if parent is None:
            return
        if parent.children is None:
            parent.children = [child_id]
        elif len(parent.children) < MAX_CHILDREN and child_id not in parent.children:
            parent.children.append(child_id)

    def _apply_worker_event(self, kind: str, event: Mapping[str, Any], now: float) -> None:
        hostname = event.get("hostname")
        if type(hostname) is not str:
            return
        if not hostname.isprintable():
            hostname = clean(hostname, 200)
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerInfo(_intern(hostname))
        if kind == "worker-offline":
            worker.offline_at = now
            return
        worker.last_heartbeat = now
        if worker.offline_at is not None and worker.offline_at < now:
            worker.offline_at = None
        freq = number(event.get("freq"))
        if freq:
            worker.freq = freq
        active = event.get("active")
        if type(active) is int:
            worker.active = active
        processed = event.get("processed")
        if type(processed) is int:
            worker.processed = processed
        loadavg = event.get("loadavg")
        if isinstance(loadavg, list):
            worker.loadavg = [float(x) for x in loadavg[:3] if number(x) is not None]
        sw_ver = event.get("sw_ver")
        if type(sw_ver) is str:
            worker.sw_ver = clean(sw_ver, 40, single_line=True)

    def link_retry(self, old: str, new: str) -> None:
        """``new`` was sent as a retry of ``old`` (each task's detail names the other)."""
        with self.lock:
            self.retry_of[new] = old
            self.retried_as.setdefault(old, []).append(new)
            for links in (self.retry_of, self.retried_as):
                while len(links) > MAX_RETRY_LINKS:  # the oldest go first (insertion order)
                    links.pop(next(iter(links)))
            self.version += 1

    # -- eviction -----------------------------------------------------------
    def _evict(self) -> None:
        tasks = self.tasks
        finished = self._finished
        attempts = self.attempts
        excess = len(tasks) - self.max_tasks
        while excess > 0 and finished:
            uuid = finished.popleft()
            task = tasks.get(uuid)
            if task is not None and task.state in FINAL:
                del tasks[uuid]
                if attempts:
                    attempts.pop(uuid, None)
                excess -= 1
                self.counters.tasks_evicted += 1
        if excess > 0:  # nothing finished left: the oldest go (one pass, not one scan each)
            for uuid in list(islice(tasks, excess)):
                del tasks[uuid]
                attempts.pop(uuid, None)
            self.counters.tasks_evicted += excess
        if len(finished) > 2 * self.max_tasks:  # drop ids of tasks already gone
            self._finished = deque(u for u in finished if u in tasks and tasks[u].state in FINAL)

    # -- gaps ---------------------------------------------------------------
    def open_gap(self, start: float, reason: str) -> Gap:
        with self.lock:
            gap = Gap(start=start, end=None, reason=clean(reason, 300, single_line=True))
            self.gaps.append(gap)
            self.version += 1
            return gap

    def close_gap(self, gap: Gap, end: float) -> None:
        with self.lock:
            gap.end = end
            self.version += 1

    def open_gaps(self) -> list[Gap]:
        return [g for g in self.gaps if g.end is None]

    def gaps_to_repair(self) -> list[Gap]:
        """Gaps that have ended and whose tasks were not yet asked about."""
        with self.lock:
            return [g for g in self.gaps if g.end is not None and not g.repaired]

    def mark_repaired(self, gaps: Iterable[Gap]) -> None:
        with self.lock:
            for gap in gaps:
                gap.repaired = True
            self.version += 1

    # -- the receiver's own counters ----------------------------------------
    def count_undecodable(self, count: int) -> None:
        with self.lock:
            self.counters.events_undecodable += count

    def reset_lag(self) -> None:
        """Forget the lag measured so far (the connection it was measured on is gone)."""
        with self.lock:
            self.counters.lag = 0.0

    def set_backlog(self, waiting: int | None, limit: int | None, *, spooled: int | None = None,
                    spool_limit: int | None = None, spool_dropped: int = 0) -> None:
        """Bytes the broker holds for the receiver, unread, and where it cuts it off;
        bytes the receiver has read and not yet decoded (its spool), and the spool's limit."""
        with self.lock:
            self.counters.backlog = waiting
            self.counters.backlog_limit = limit
            self.counters.spooled = spooled
            self.counters.spool_limit = spool_limit
            self.counters.spool_dropped = spool_dropped

    # -- what the next round should ask -------------------------------------
    def sweep_workers(self, now: float) -> list[str]:
        """Workers found offline: their running and received tasks are lost (ids returned)."""
        with self.lock:
            lost = sweep_workers(self, now)
            if lost:
                self.version += 1
            return lost

    def hosts_alive_by_heartbeat(self, now: float) -> list[str]:
        with self.lock:
            return [w.hostname for w in self.workers.values()
                    if w.last_heartbeat is not None and w.online(now)]

    def workers_undescribed(self, silent: Collection[str] = ()) -> bool:
        """No worker known yet, or one whose stats were never read (those in
        ``silent``, which did not answer when last asked, aside)."""
        with self.lock:
            return not self.workers or any(w.pool is None and w.hostname not in silent
                                           for w in self.workers.values())

    def worker_queues(self) -> set[str]:
        with self.lock:
            return {q for w in self.workers.values() for q in w.queues}

    # -- inspect and result backend -----------------------------------------
    def apply_task_poll(self, poll: TaskPoll, *, recovered: bool = False) -> int:
        """Merge what the workers hold (``active``/``reserved``/``scheduled``): exact
        arguments, and their word on what runs and waits, over the events'
        (:mod:`taskwatch.engine.reconcile`); ``lost_now``: the tasks it found lost.

        ``recovered`` marks tasks first learnt of this way as filled in after
        a gap. Returns how many tasks were new.
        """
        new = 0
        with self.lock:
            for held in poll.tasks:
                task = self.tasks.get(held.id)
                if task is None:
                    task = self._new_task(held.id)
                    task.recovered = recovered
                    new += 1
                self._merge_held(task, held)
                apply_held(self, task, held, poll.started_at)
            self.lost_now = reconcile_absent(self, poll, {held.id for held in poll.tasks})
            if poll.active_answered:
                self._count_active(poll)
            if new or poll.active_answered or self.lost_now:
                self.version += 1
            if len(self.tasks) > self.max_tasks:
                self._evict()
        return new

    def _count_active(self, poll: TaskPoll) -> None:
        """Workers' active counts from inspect, for those no heartbeat told (events off)."""
        running = Counter(held.hostname for held in poll.tasks if held.kind == "active")
        for raw in poll.active_answered:
            worker = self.workers.get(clean(raw, 200, single_line=True))
            if worker is not None and worker.last_heartbeat is None:
                worker.active = running[raw]

    def _merge_held(self, task: Task, held: HeldTask) -> None:
        task.worker = _intern(clean(held.hostname, 200, single_line=True))
        if held.name is not None:
            task.name = _intern(clean(held.name, 300, single_line=True))
            self._stats(task.name)
        if held.call is not None:
            self._set_call(task, held.call)
        if held.routing_key is not None:
            task.queue = _intern(clean(held.routing_key, 200, single_line=True))
        if held.eta is not None:
            task.eta = bounded_text(held.eta, 64)

    @staticmethod
    def _set_call(task: Task, call: ExactCall) -> None:
        if task.call != call:
            task.call = call
            task.args, task.kwargs = (SHARED.get(t, t) for t in call_text(call, MAX_SHORT))

    def apply_stored_result(self, row: StoredResult, *, recovered: bool) -> bool:
        """Merge a result-backend row. True if the task was new."""
        with self.lock:
            task = self.tasks.get(row.task_id)
            new = task is None
            if task is None:
                task = self._new_task(row.task_id)
                self._unordered = True
            if recovered and (new or task.state not in FINAL):
                task.recovered = True
            if row.name and task.name is None:
                task.name = _intern(row.name)
                self._stats(task.name)
            if row.call is not None:
                self._set_call(task, row.call)
            elif task.args is None:
                task.args, task.kwargs = args_text(row.args) if row.args else None, row.kwargs or None
            status = KNOWN_STATES.get(row.status, row.status)
            # A RETRY row's exception is an earlier attempt's, never the task's outcome.
            for attr in _ROW_FIELDS if status is not RETRY else _ROW_FIELDS[2:]:
                value = getattr(row, attr)
                if value and getattr(task, attr) is None:
                    setattr(task, attr, value)
            if task.parent_id == task.uuid:  # stored by a retry's request (see _apply_task_event)
                task.parent_id = None
            if row.children:
                task.children = [c for c in row.children if c != task.uuid] or None
            if row.retries is not None:
                task.retries = max(task.retries, row.retries)
            done = moment(row.date_done)
            if status in FINAL and task.state not in FINAL:
                previous = task.state
                task.state = status
                task.state_ts = done or task.state_ts
                task.finished = done
                if task.started is not None and done is not None and task.runtime is None:
                    task.runtime = max(0.0, done - task.started)
                self._finished.append(task.uuid)
                if previous is not PENDING or new:
                    self._count_final(task, status, done or time.time())
            elif task.state is PENDING and status in (STARTED, RETRY, RECEIVED):
                task.state = status
            self.version += 1
            if len(self.tasks) > self.max_tasks:
                self._evict()
            return new

    # -- scheduler runs that failed (APScheduler, through the bridge) ---------
    def apply_scheduler_failure(self, run: JobRun, job: ScheduledJob | None) -> bool:
        """A failed APScheduler run, listed with the failed Celery tasks.

        Kept as a task with an ``apscheduler:`` id and worker ``apscheduler``
        (see :func:`is_scheduler_run`): the Failed tab and the detail show it;
        no Celery action (revoke, retry) applies to it, and it is not counted
        in the task names' statistics. True if it was new.
        """
        uuid = scheduler_run_id(run)
        with self.lock:
            if uuid in self.tasks:
                return False
            task = self._new_task(uuid)
            self._unordered = True
            task.name = _intern(job.target if job is not None and job.target else f"apscheduler job {run.job_id}")
            task.worker = SCHEDULER_WORKER
            if job is not None:
                task.args, task.kwargs = job.args or None, job.kwargs or None
            task.exception = run.exception
            task.traceback = run.traceback
            task.state = FAILURE
            task.state_ts = task.finished = run.at
            if run.duration is not None:
                task.runtime = max(0.0, run.duration)
                task.started = run.at - task.runtime
            task.received = run.scheduled if run.scheduled is not None else task.started
            self._finished.append(uuid)
            self.version += 1
            if len(self.tasks) > self.max_tasks:
                self._evict()
            return True

    # -- inspect ping/stats -------------------------------------------------
    def apply_pong(self, hostname: str, at: float) -> None:
        """One ping answer, as it arrives (the round's other replies may still come)."""
        host = clean(hostname, 200, single_line=True)
        with self.lock:
            worker = self.workers.get(host)
            if worker is None:
                worker = self.workers[host] = WorkerInfo(host)
            worker.last_ping = at
            if worker.offline_at is not None and worker.offline_at < at:
                worker.offline_at = None
            self.version += 1

    def apply_worker_report(self, poll: WorkerReport) -> None:
        """Merge an inspect round: ping, stats, queues."""
        if poll.broker_error is not None:
            return
        with self.lock:
            for raw, _answer in poll.pings.items():
                host = clean(raw, 200, single_line=True)
                worker = self.workers.get(host)
                if worker is None:
                    worker = self.workers[host] = WorkerInfo(host)
                worker.last_ping = poll.started_at
                if worker.offline_at is not None and worker.offline_at < poll.started_at:
                    worker.offline_at = None
                stats = poll.stats.get(raw)
                if isinstance(stats, dict):
                    worker.apply_stats(stats)
                if raw in poll.queues:
                    worker.queues = tuple(clean(q, 200, single_line=True) for q in poll.queues[raw])
                worker.error = clean(poll.errors[raw], 300, single_line=True) if raw in poll.errors else None
            self.version += 1

    # -- queues ---------------------------------------------------------------
    HISTORY = 600  # samples kept per queue (10 minutes at one a second)

    def apply_queue_depths(self, depths: Iterable[QueueDepth], at: float) -> None:
        with self.lock:
            for depth in depths:
                self.queues[depth.name] = depth
                if depth.messages is not None:
                    history = self.queue_history.get(depth.name)
                    if history is None:
                        history = self.queue_history[depth.name] = deque(maxlen=self.HISTORY)
                    history.append((at, depth.messages))
            self.version += 1

    # -- reading ------------------------------------------------------------
    def ordered_tasks(self) -> list[Task]:
        """Every task, oldest first: in the order first seen, and backfilled ones by their times.

        Live tasks join ``tasks`` in time order; a result read from the
        backend (at start, after a gap) may be older than tasks already there,
        so after one the dict is rebuilt in time order, once, here (readers
        not holding the lock keep the dict they had).
        """
        with self.lock:
            if self._unordered:
                self._unordered = False
                self.tasks = dict(sorted(self.tasks.items(), key=_first_seen))
            return list(self.tasks.values())

    def unfinished_ids(self) -> list[str]:
        with self.lock:
            return [t.uuid for t in self.tasks.values() if t.state not in FINAL]


_ROW_FIELDS = ("exception", "traceback", "result", "worker", "queue", "parent_id", "root_id")


def _first_seen(item: tuple[str, Task]) -> float:
    """When a task was first seen: its earliest time; one with none (a reserved
    task from inspect) counts as now, as it is held now."""
    task = item[1]
    times = [t for t in (task.sent, task.received, task.started, task.finished) if t]
    return min(times) if times else math.inf


def _retried_at(attempt: Attempt) -> float:
    return attempt.retried
