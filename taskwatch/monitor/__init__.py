"""The monitor: runs the sources against one cluster and keeps the engine's state.

One object per watched cluster, used by the TUI and by ``snapshot``:

* a long-lived event receiver thread applies events to the state in
  batches as they arrive;
* :meth:`Monitor.poll` is one round of asking (workers, their tasks, queue
  depths, and repairs after gaps). Callers run it off the UI thread and
  never overlap rounds;
* gaps in the event stream (connection lost, cut off by the server) are
  recorded and repaired on the next round from the workers and the result
  backend;
* after the first round's backfill (the newest ``backfill`` results), a
  thread of its own reads every failure the result backend still holds,
  bounded in time and keys (:class:`FailureScan`), so failures from before
  the start are there however busy the cluster is, without slowing a round.

No Textual here: the UI reads ``monitor.state`` under its lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskwatch.config import Settings
from taskwatch.engine.reconcile import lost_ids
from taskwatch.engine.schedule_book import ScheduleBook
from taskwatch.engine.state import FINAL, ClusterState
from taskwatch.monitor.expiry import ExpiryWatch
from taskwatch.records import (
    BROKER,
    MANAGEMENT_API,
    RESULT_BACKEND,
    SOURCE_MANAGEMENT,
    ExactCall,
    PeekedMessage,
    ScheduledJob,
    SourceHealth,
    TaskPoll,
    WorkerReport,
)
from taskwatch.sources.errors import NOT_ANSWERING, TIMED_OUT, SourceError, describe, reason_of
from taskwatch.sources.factory import Sources, build_sources
from taskwatch.sources.protocols import (
    ActionSource,
    EventSource,
    QueueProbe,
    ResultBackend,
    ScheduleControl,
    ScheduleSource,
)
from taskwatch.text import clean, mask_secrets


def store_source(kind: str, label: str) -> str:
    """The health key of a schedule source: ``job store <label>`` (APScheduler), else ``<label>``."""
    return f"job store {label}" if kind == "apscheduler" else label


DETAILS_EVERY = 5  # rounds between stats/active_queues refreshes
#: Stored results read in full by the background scan, whatever their age.
SCANNED_STATES = frozenset({"FAILURE"})
#: Bounds of that scan: seconds, and keys (or rows) examined.
SCAN_SECONDS = 30.0
SCAN_KEYS = 1_000_000

log = logging.getLogger("taskwatch.monitor")


@dataclass
class PollReport:
    """What one round did, for status lines and tests."""

    started_at: float
    duration: float = 0.0
    workers: WorkerReport | None = None
    tasks: TaskPoll | None = None
    queues_error: str | None = None
    backend_error: str | None = None
    repaired: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class FailureScan:
    """The background read of every stored failure: where it is, what it found.

    Written by the scan's thread only; readers see plain numbers.
    """

    started: bool = False
    finished: bool = False
    #: every stored result was examined (not cut short by a bound or an error)
    complete: bool = False
    examined: int = 0
    found: int = 0
    seconds: float = 0.0
    #: why it stopped before the end (a bound, an error), one line
    stopped: str | None = None


class Monitor:
    """Joins the sources of one cluster to the engine's state.

    ``sources`` come from :func:`taskwatch.sources.factory.build_sources`
    (or, in tests, any objects of the same shapes); :meth:`from_settings`
    builds them.
    """

    def __init__(
        self,
        sources: Sources,
        *,
        state: ClusterState | None = None,
        max_tasks: int = 100_000,
        backfill: int = 500,
        scan_seconds: float = SCAN_SECONDS,
        scan_keys: int = SCAN_KEYS,
    ) -> None:
        self.sources = sources
        self.broker_url = sources.broker_url
        self.state = state or ClusterState(max_tasks=max_tasks)
        # Called (from the polling thread) when a worker answers ping, so a
        # screen can show it at once rather than at the end of the round.
        self.on_pong: Callable[[], None] | None = None
        self.inspector = sources.workers
        self.backfill_limit = backfill
        self.known_queues: set[str] = set(sources.app_queues)
        # Why there are no events, when it is known for good (a transport
        # taskwatch cannot listen on): the rest (asking workers) still works.
        self.events_error = sources.events_error
        self.receiver: EventSource | None = None
        if sources.events is not None:
            try:
                self.receiver = sources.events(self)
            except ValueError as exc:  # a URL the receiver cannot use
                self.events_error = clean(mask_secrets(str(exc)), 200, single_line=True)
        self._rounds = 0
        self._silent: set[str] = set()  # alive by heartbeat, did not answer when last asked
        self._hold_until = 0.0  # monotonic time until which received events wait (see hold_events)
        self._held_at = 0.0  # when the latest hold began
        self._queue_probe: QueueProbe | None = None
        self._backend: ResultBackend | None = None
        self._backend_error: str | None = None
        self._backfilled = False
        self.scan_seconds = scan_seconds
        self.scan_keys = scan_keys
        self.failure_scan = FailureScan()
        self._scan_thread: threading.Thread | None = None
        self._scan_reported = False
        self._stopping = threading.Event()
        # Behind RabbitMQ's event TTL: a gap, or drops the management API confirms.
        self.expiry = ExpiryWatch(self.state, lambda: self.receiver, sources.event_loss, self._stopping)
        self._actions: ActionSource | None = None
        #: every scheduled job read (APScheduler stores, beat), see :meth:`poll_schedules`
        self.schedules = ScheduleBook()
        self._schedule_sources: list[ScheduleSource] | None = None
        self._unbuilt: list[tuple[int, Callable[[], ScheduleSource]]] = []
        self._schedule_lock = threading.Lock()
        #: how each source is doing (see :meth:`set_health`), read by the header and the snapshot
        self.health: dict[str, SourceHealth] = {}
        self._health_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        user_app: Any = None,
        *,
        events: bool = True,
        max_tasks: int | None = None,
        backfill: int | None = None,
        state: ClusterState | None = None,
    ) -> Monitor:
        """The monitor of the cluster ``settings`` name, on its real sources."""
        return cls(
            build_sources(settings, user_app, events=events), state=state,
            max_tasks=max_tasks or settings.max_tasks,
            backfill=settings.backfill if backfill is None else backfill,
        )

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> Monitor:
        if self.receiver is not None and not self.receiver.is_alive():
            self.receiver.start()
        return self

    def stop(self) -> None:
        # The failure scan ends at its next page (or on the closed backend's
        # error); not waited for, so quitting never does. A daemon thread, it
        # never keeps the process alive.
        self._stopping.set()
        if self.receiver is not None:
            self.receiver.stop()
        self.inspector.close()
        for thing in (self._queue_probe, self._backend, self._actions, *(self._schedule_sources or ())):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001, S110 - shutting down
                    pass

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- giving way to the screen -------------------------------------------
    HOLD_MAX = 0.2  # seconds: the longest a hold can keep events waiting
    #: seconds after a key before events are applied again, even once its
    #: first frame is out: what the key set off goes on for a frame or two
    #: more (the footer greys keys, a view restyles), and under a burst that
    #: work shared the GIL with the decoder: 25-33 ms for the first
    #: character typed after `/`.
    HOLD_MIN = 0.05

    def hold_events(self, seconds: float = HOLD_MAX) -> float:
        """Apply no events for up to ``seconds``: the screen is answering a key.

        Under a burst the receiver's decoding competes with the UI thread for
        the GIL; holding it for the few milliseconds a key takes to draw halves
        that key's latency. Nothing is lost: on Redis the receiver's reader
        keeps moving bytes into its spool meanwhile (on AMQP, message bodies
        into its spool of bodies), and they are applied when the hold ends (at
        20k events/s, 0.2 s is about 3 MB). Returns when the hold began.
        """
        now = time.monotonic()
        self._held_at = now
        self._hold_until = now + min(seconds, self.HOLD_MAX)
        return now

    def release_events(self, held_at: float | None = None) -> None:
        """End the hold; with ``held_at`` (when the key that asked for it
        came), at ``HOLD_MIN`` after that key, and only if no later key is
        being answered (its own release ends the hold)."""
        if held_at is None:
            self._hold_until = 0.0
        elif held_at >= self._held_at:
            self._hold_until = held_at + self.HOLD_MIN

    def drain_events(self, timeout: float) -> int:
        """Wait until every event read off the broker is applied, at most
        ``timeout`` seconds; returns the bytes still waiting (0: all applied)."""
        receiver = self.receiver
        if receiver is None:
            return 0
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            left = receiver.unapplied()
            quiet = quiet + 1 if left == 0 else 0
            if quiet >= 2 or time.monotonic() >= deadline:  # twice: a batch may be between two hands
                return left
            time.sleep(0.01)

    def give_way(self) -> None:
        """Wait while the screen is answering a key (see :meth:`hold_events`):
        called by every thread that works through the state in bulk."""
        while (wait := self._hold_until - time.monotonic()) > 0:
            time.sleep(min(wait, 0.005))

    # -- EventSink ----------------------------------------------------------
    def on_events(self, events: list[dict[str, Any]], received_at: float, drained: bool = True,
                  read_at: float | None = None) -> None:
        self.give_way()
        self.state.apply_events(events, received_at, drained)
        expiry = self.receiver.queue_ttl if self.receiver is not None else None
        if expiry:
            # RabbitMQ expires what waits in its queue, not what waits in ours.
            held = received_at - read_at if read_at is not None and read_at < received_at else 0.0
            self.expiry.watch(expiry, received_at, held)

    def on_undecodable(self, count: int) -> None:
        self.state.count_undecodable(count)

    def on_disconnect(self, at: float, reason: str) -> None:
        if not self.state.open_gaps():
            self.state.open_gap(at, reason)

    def on_connect(self, at: float) -> None:
        for gap in self.state.open_gaps():
            self.state.close_gap(gap, at)
        self.expiry.forget()
        # A lag measured before the connection dropped says nothing now; on an
        # idle cluster no batch would come to replace it, and the header would
        # say "behind" for good.
        self.state.reset_lag()

    @property
    def expiry_false_alarms(self) -> int:
        """Times being behind the TTL was checked and the management API showed nothing dropped."""
        return self.expiry.false_alarms

    @property
    def events_connected(self) -> bool:
        return self.receiver is not None and self.receiver.status.connected

    # -- health -------------------------------------------------------------
    def set_health(self, source: str, error: str | None, at: float, *, asked_at: float | None = None,
                   last_contact: float | None = None, reason: str | None = None) -> None:
        """Record how ``source`` is doing: ``error`` None when it answered at ``at``.

        ``asked_at``: when the question that got this answer was sent; an
        answer to a question older than a failure seen since says nothing
        about now (a slow round). ``last_contact``: the last time a failing
        source really answered, when the caller knows it better (the event
        receiver's last byte).
        """
        with self._health_lock:
            old = self.health.get(source)
            if error is None:
                if old is not None and old.down and old.since is not None and (asked_at or at) < old.since:
                    return
                since = old.since if old is not None and not old.down else at
                self.health[source] = SourceHealth(source, "ok", since=since, last_ok=at)
                return
            last_ok = last_contact if last_contact is not None else (old.last_ok if old is not None else None)
            since = old.since if old is not None and old.down else at
            detail = clean(mask_secrets(error), 300, single_line=True)
            self.health[source] = SourceHealth(source, "down", reason or reason_of(error), detail, since, last_ok)

    def on_broker(self, at: float, error: str | None, last_contact: float | None = None) -> None:
        """EventSink: the event connection says whether the broker answers
        (connecting, its bytes, its pings)."""
        self.set_health(BROKER, error, at, last_contact=last_contact)

    @property
    def broker_health(self) -> SourceHealth | None:
        return self.health.get(BROKER)

    # -- the round ----------------------------------------------------------
    def poll(self) -> PollReport:
        """Ask the workers, the broker and the result backend once."""
        report = PollReport(started_at=time.time())
        t0 = time.monotonic()
        now = report.started_at
        expect = self.state.hosts_alive_by_heartbeat(now)
        repairing = bool(self.state.gaps_to_repair())
        details = self.state.workers_undescribed(self._silent) or self._rounds % DETAILS_EVERY == 0
        self._rounds += 1
        if expect and self.events_connected and not details:
            # Heartbeats say who is alive: ask everything at once, but only
            # those that answered when last asked. A host that heartbeats and
            # does not answer would cost every round the whole timeout; it is
            # asked again in the next full round (every DETAILS_EVERY).
            answering = [host for host in expect if host not in self._silent]
            if answering:
                workers, tasks = self.inspector.quick_round(answering)
                self._silent.update(host for host in answering if host not in workers.pings)
            else:
                workers, tasks = WorkerReport(report.started_at), None
        else:
            workers = self.inspector.poll_workers(
                expect if self.events_connected else (), details=details, on_pong=self._pong,
            )
            tasks = None if workers.broker_error else self.inspector.poll_tasks(sorted(workers.pings))
            if not workers.broker_error:
                self._silent = {host for host in expect if host not in workers.pings}
        report.workers = workers
        self.set_health(BROKER, workers.broker_error, time.time(), asked_at=now)
        if workers.broker_error:
            report.errors.append(workers.broker_error)
        else:
            self.state.apply_worker_report(workers)
            report.tasks = tasks
            lost = self.state.sweep_workers(time.time())
            if tasks is not None and not tasks.broker_error:
                self.state.apply_task_poll(tasks, recovered=repairing)
                lost += self.state.lost_now
            if self._rounds % DETAILS_EVERY == 0:  # now and then, every task still lost
                with self.state.lock:
                    lost = lost_ids(self.state)
            self._settle_lost(lost, report)
        if not (workers.broker_error and self._probe_on_broker()
                and reason_of(workers.broker_error) in (TIMED_OUT, NOT_ANSWERING)):
            self._poll_queues(report)  # (not when the broker just timed out: it would again)
        self.measure_backlog()
        if not self._backfilled:
            self.backfill(report)
        elif not self.state.gaps_to_repair():
            self._check_backend(report)
        self._report_scan(report)
        report.repaired = self._repair(report)
        report.duration = time.monotonic() - t0
        return report

    def measure_backlog(self) -> None:
        """How much the broker holds for the event receiver, unread, and how much
        the receiver has read and not yet decoded."""
        receiver = self.receiver
        backlog = receiver.backlog() if receiver is not None and self.events_connected else None
        if backlog is None:
            self.state.set_backlog(None, None)
        else:
            self.state.set_backlog(backlog.waiting, backlog.limit, spooled=backlog.spooled,
                                   spool_limit=backlog.spool_limit, spool_dropped=backlog.dropped)

    def _pong(self, hostname: str, at: float) -> None:
        self.state.apply_pong(hostname, at)
        if self.on_pong is not None:
            self.on_pong()

    # -- queues ---------------------------------------------------------------
    def _poll_queues(self, report: PollReport) -> None:
        try:
            probe = self._probe()
            if probe is None:
                return
            self.known_queues.update(self.state.worker_queues())
            if self._rounds % DETAILS_EVERY == 1 and probe.can_discover:
                try:
                    self.known_queues.update(probe.discover())
                except SourceError as exc:
                    report.queues_error = str(exc)
            depths = probe.depths(sorted(self.known_queues))
            self.state.apply_queue_depths(depths, report.started_at)
            if probe.source == SOURCE_MANAGEMENT:
                failed = next((d.error for d in depths if d.error), None)
                self.set_health(MANAGEMENT_API, failed, time.time(), asked_at=report.started_at)
        except Exception as exc:  # noqa: BLE001 - a failing probe must not end the round
            report.queues_error = f"queues: {describe(exc)}"
            report.errors.append(report.queues_error)
            if self._queue_probe is not None and self._queue_probe.source == SOURCE_MANAGEMENT:
                self.set_health(MANAGEMENT_API, describe(exc), time.time())

    def _probe_on_broker(self) -> bool:
        """Whether queue depths come from the broker itself (not a management API)."""
        return self._queue_probe is None or self._queue_probe.source != SOURCE_MANAGEMENT

    def _probe(self) -> QueueProbe | None:
        if self._queue_probe is None and self.sources.queues is not None:
            self._queue_probe = self.sources.queues()
        return self._queue_probe

    def peek(self, queue: str, count: int = 10) -> list[PeekedMessage]:
        """The next ``count`` messages of ``queue``, not consumed. Raises a
        one-line ``SourceError`` where peeking is not offered (RabbitMQ)."""
        probe = self._probe()
        if probe is None:
            raise SourceError("no queue probe for this broker")
        return probe.peek(queue, count)

    # -- actions ---------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.sources.actions is None or self.sources.read_only

    def actions(self) -> ActionSource:
        """The controller for state-changing actions (it refuses when read-only)."""
        if self._actions is None:
            if self.sources.actions is None:
                raise SourceError("actions are not available for this cluster")
            self._actions = self.sources.actions()
        return self._actions

    def exact_call(self, task_id: str) -> ExactCall | None:
        """The task's real arguments: what workers or the result backend reported,
        kept by the engine, else asked of the result backend now. None: only a repr is known."""
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None and task.call is not None:
                return task.call
        backend = self.backend()
        if backend is None:
            return None
        row = backend.get([task_id]).get(task_id)
        return row.call if row is not None else None

    # -- schedules ------------------------------------------------------------
    @property
    def has_schedules(self) -> bool:
        return bool(self.sources.schedules)

    def schedule_sources(self) -> list[ScheduleSource]:
        """The schedule sources built so far; each is built on first use, and a
        builder that fails is that source's error, tried again next time."""
        with self._schedule_lock:
            if self._schedule_sources is None:
                self._schedule_sources = []
                self._unbuilt = list(enumerate(self.sources.schedules))
            still = []
            for index, build in self._unbuilt:
                try:
                    self._schedule_sources.append(build())
                except Exception as exc:  # noqa: BLE001 - one bad source must not hide the others
                    self.schedules.apply_error(f"schedule source {index + 1}", "unknown",
                                               clean(mask_secrets(describe(exc)), 300, single_line=True),
                                               time.time())
                    still.append((index, build))
            self._unbuilt = still
            return list(self._schedule_sources)

    def poll_schedules(self) -> list[str]:
        """Read every schedule source once (and its bridge's run history);
        returns the errors, one line each. Run off the UI thread."""
        errors = []
        for source in self.schedule_sources():
            if self._stopping.is_set():
                break
            asked = time.time()
            try:
                jobs = source.jobs()
            except Exception as exc:  # noqa: BLE001 - a store that cannot be read keeps its last jobs
                error = clean(mask_secrets(describe(exc)), 300, single_line=True)
                self.schedules.apply_error(source.label, source.kind, error, time.time())
                self.set_health(store_source(source.kind, source.label), error, time.time())
                errors.append(error)
                continue
            read_at = time.time()
            self.set_health(store_source(source.kind, source.label), None, read_at, asked_at=asked)
            bridged = bool(getattr(source, "bridged", False))
            self.schedules.apply_jobs(source.label, source.kind, jobs, read_at, bridged=bridged)
            if bridged:
                try:
                    for run in self.schedules.apply_runs(source.label, source.history()):
                        if run.event == "error":  # listed with the failed Celery tasks
                            self.state.apply_scheduler_failure(run, self.schedules.job(source.label, run.job_id))
                except Exception as exc:  # noqa: BLE001 - history is extra
                    errors.append(clean(mask_secrets(f"{source.label}: run history: {describe(exc)}"),
                                        300, single_line=True))
        return errors

    def schedule_control(self, job: ScheduledJob) -> ScheduleControl:
        """The controller of the store ``job`` came from (its bridge when there is one)."""
        for source in self.schedule_sources():
            if source.label == job.store:
                control = source.control()
                if control is not None:
                    return control
        raise SourceError(f"{job.store}: jobs there cannot be changed from taskwatch")

    # -- result backend -------------------------------------------------------
    def backend(self) -> ResultBackend | None:
        if self._backend is None and self._backend_error is None and self.sources.results is not None:
            try:
                self._backend = self.sources.results()
            except SourceError as exc:
                self._backend_error = str(exc)
                self.set_health(RESULT_BACKEND, str(exc), time.time())
        return self._backend

    #: a key no result has: reading it asks the backend to answer, nothing more
    NO_SUCH_TASK = "taskwatch-health-check"

    def _check_backend(self, report: PollReport) -> None:
        """One cheap read, so a result backend that stopped answering keeps
        showing as down (its rounds read nothing else once backfilled)."""
        backend = self._backend
        if backend is None:
            return
        asked = time.time()
        try:
            backend.get([self.NO_SUCH_TASK])
        except Exception as exc:  # noqa: BLE001 - the backend is optional
            report.backend_error = f"result backend: {describe(exc)}"
            report.errors.append(report.backend_error)
            self.set_health(RESULT_BACKEND, describe(exc), time.time())
            return
        self.set_health(RESULT_BACKEND, None, time.time(), asked_at=asked)

    def backfill(self, report: PollReport | None = None) -> int:
        """Load the most recent finished tasks from the result backend, once."""
        self._backfilled = True
        if self.backfill_limit <= 0:
            return 0
        backend = self.backend()
        if backend is None:
            return 0
        asked = time.time()
        try:
            rows = backend.recent(self.backfill_limit)
        except Exception as exc:  # noqa: BLE001 - the backend is optional
            if report is not None:
                report.backend_error = f"result backend: {describe(exc)}"
                report.errors.append(report.backend_error)
            self.set_health(RESULT_BACKEND, describe(exc), time.time())
            self._backfilled = False
            return 0
        self.set_health(RESULT_BACKEND, None, time.time(), asked_at=asked)
        for row in rows:
            self.state.apply_stored_result(row, recovered=False)
        self._start_failure_scan(backend)
        return len(rows)

    def _start_failure_scan(self, backend: ResultBackend) -> None:
        if self._scan_thread is not None or self._stopping.is_set():
            return
        self.failure_scan.started = True
        self._scan_thread = threading.Thread(
            target=self._scan_failures, args=(backend,), daemon=True,
            name="taskwatch-failure-scan")
        self._scan_thread.start()

    def _scan_failures(self, backend: ResultBackend) -> None:
        """Merge every stored failure into the state, page by page, within bounds."""
        scan = self.failure_scan
        t0 = time.monotonic()
        deadline = t0 + self.scan_seconds
        pages = backend.scan(set(SCANNED_STATES))
        try:
            for page in pages:
                for row in page.results:
                    self.state.apply_stored_result(row, recovered=False)
                scan.examined += page.examined
                scan.found += len(page.results)
                scan.seconds = time.monotonic() - t0
                if page.complete:
                    scan.complete = True
                elif self._stopping.is_set():
                    scan.stopped = "taskwatch stopped"
                elif scan.examined >= self.scan_keys:
                    scan.stopped = f"stopped after {scan.examined:,} stored results"
                elif time.monotonic() >= deadline:
                    scan.stopped = f"stopped after {self.scan_seconds:g} s"
                if scan.complete or scan.stopped:
                    break
        except Exception as exc:  # noqa: BLE001 - the backend is optional
            scan.stopped = f"failed: {describe(exc)}"
        finally:
            scan.seconds = time.monotonic() - t0
            scan.finished = True

    def finish_failure_scan(self, report: PollReport) -> None:
        """Wait until the failure scan has ended (``snapshot``), and say in
        ``report`` if it stopped short."""
        if self._scan_thread is not None:
            self._scan_thread.join(self.scan_seconds + 5.0)
        self._report_scan(report)

    def _report_scan(self, report: PollReport) -> None:
        """Say once, in a round's errors, that older failures may be missing."""
        scan = self.failure_scan
        if scan.finished and scan.stopped and not self._scan_reported:
            self._scan_reported = True
            report.errors.append(
                f"result backend: reading older failures {scan.stopped} "
                f"({scan.found:,} found in {scan.examined:,} results); older ones are not shown")

    def _settle_lost(self, ids: list[str], report: PollReport) -> None:
        """Tasks just found lost that the result backend knows finished take
        that outcome: the pool process stores the result itself, even when its
        worker dies before sending the event."""
        backend = self.backend() if ids else None
        if backend is None:
            return
        try:
            for row in backend.get(ids[:1000]).values():
                if row.status in FINAL:
                    self.state.apply_stored_result(row, recovered=True)
        except Exception as exc:  # noqa: BLE001 - the backend is optional
            report.backend_error = f"result backend: {describe(exc)}"
            report.errors.append(report.backend_error)

    def _repair(self, report: PollReport) -> int:
        """After a gap: fill in what happened meanwhile, marked as recovered."""
        gaps = self.state.gaps_to_repair()
        if not gaps or report.workers is None or report.workers.broker_error:
            return 0
        repaired = 0
        # What the workers hold now came from inspect above (exact args).
        backend = self.backend()
        if backend is not None:
            try:
                ids = self.state.unfinished_ids()
                rows = backend.get(ids) if ids else {}
                for row in rows.values():
                    if row.status in FINAL:
                        self.state.apply_stored_result(row, recovered=True)
                        repaired += 1
                window = (min(g.start for g in gaps) - 1.0, max(g.end or 0 for g in gaps) + 1.0)
                for row in backend.recent(max(self.backfill_limit, 1000)):
                    done = row.date_done
                    if done is not None and window[0] <= done <= window[1]:
                        if self.state.apply_stored_result(row, recovered=True):
                            repaired += 1
            except Exception as exc:  # noqa: BLE001 - try again next round
                report.backend_error = f"result backend: {describe(exc)}"
                report.errors.append(report.backend_error)
                self.set_health(RESULT_BACKEND, describe(exc), time.time())
                return repaired
            self.set_health(RESULT_BACKEND, None, time.time())
        self.state.mark_repaired(gaps)
        return repaired
