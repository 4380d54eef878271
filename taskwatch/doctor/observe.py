"""What ``taskwatch doctor`` looks at, gathered once and bounded in time: the
workers' answers and events while it listens, the result backend's newest
rows, the Redis broker's limits and held ETAs, and the schedule sources.
The checks (:mod:`taskwatch.doctor`) judge it; nothing here judges."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from taskwatch.config import Settings
from taskwatch.engine.schedule_book import ScheduleRow, StoreStatus
from taskwatch.monitor import Monitor
from taskwatch.records import HeldEta, PubsubLimit
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.factory import build_sources
from taskwatch.sources.protocols import EventSink
from taskwatch.text import clean, mask_secrets, mask_url

#: Stored results read to see whether they carry arguments.
RESULT_SAMPLE = 50
#: kombu's JSON envelope around one event message (headers, properties), in
#: bytes, as published on Redis; the event itself is base64 (4/3) inside.
ENVELOPE_BYTES = 420
#: Seconds within which a worker sends a task's events (it buffers them, then flushes).
EVENT_FLUSH = 1.0


# -- what was seen -------------------------------------------------------------

@dataclass
class HostEvents:
    """The events one host sent while doctor listened."""

    heartbeats: int = 0
    #: task events other than task-sent (which producers send, not workers)
    task_events: int = 0
    #: (received at, the worker's processed counter) of its heartbeats, the first few hundred
    processed: list[tuple[float, int]] = field(default_factory=list)
    #: smallest (received - sent) of its worker events: its clock's lag behind ours, plus transit
    skew: float | None = None
    utcoffset: float | None = None
    freq: float | None = None


@dataclass
class EventNotes:
    """Filled by the receiver thread (through :class:`_Tap`), read once listening is over."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    hosts: dict[str, HostEvents] = field(default_factory=dict)
    sent_events: int = 0
    events: int = 0
    #: estimated bytes published, per second of arrival (epoch second -> bytes)
    bytes_by_second: dict[int, int] = field(default_factory=dict)
    #: why the event connection dropped while listening
    disconnects: list[str] = field(default_factory=list)

    def see(self, events: Sequence[Mapping[str, Any]], received_at: float) -> None:
        size = 0
        with self.lock:
            for event in events:
                try:
                    size += len(orjson.dumps(event)) * 4 // 3 + ENVELOPE_BYTES
                except TypeError:
                    size += ENVELOPE_BYTES
                kind, host = event.get("type"), event.get("hostname")
                if type(kind) is not str or type(host) is not str:
                    continue
                self.events += 1
                if kind == "task-sent":
                    self.sent_events += 1
                    continue
                seen = self.hosts.get(host)
                if seen is None:
                    if len(self.hosts) > 10_000:  # a stream inventing hostnames
                        continue
                    seen = self.hosts[host] = HostEvents()
                if kind.startswith("task-"):
                    seen.task_events += 1
                elif kind.startswith("worker-"):
                    self._worker_event(seen, kind, event, received_at)
            second = int(received_at)
            self.bytes_by_second[second] = self.bytes_by_second.get(second, 0) + size

    @staticmethod
    def _worker_event(seen: HostEvents, kind: str, event: Mapping[str, Any], received_at: float) -> None:
        ts = _number(event.get("timestamp"))
        if ts is not None:
            skew = received_at - ts
            seen.skew = skew if seen.skew is None else min(seen.skew, skew)
        offset = _number(event.get("utcoffset"))
        if offset is not None:
            seen.utcoffset = offset
        if kind != "worker-heartbeat":
            return
        seen.heartbeats += 1
        freq = _number(event.get("freq"))
        if freq:
            seen.freq = freq
        processed = event.get("processed")
        if type(processed) is int and len(seen.processed) < 500:
            seen.processed.append((received_at, processed))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


class _Tap:
    """An event sink between the receiver and the monitor: notes, then passes everything on."""

    def __init__(self, sink: EventSink, notes: EventNotes) -> None:
        self.sink, self.notes = sink, notes

    def on_events(self, events: list[dict[str, Any]], received_at: float, drained: bool = True,
                  read_at: float | None = None) -> None:
        self.notes.see(events, received_at)
        self.sink.on_events(events, received_at, drained, read_at)

    def on_undecodable(self, count: int) -> None:
        self.sink.on_undecodable(count)

    def on_disconnect(self, at: float, reason: str) -> None:
        with self.notes.lock:
            self.notes.disconnects.append(clean(mask_secrets(reason), 200, single_line=True))
        self.sink.on_disconnect(at, reason)

    def on_connect(self, at: float) -> None:
        self.sink.on_connect(at)


@dataclass
class Observed:
    """Everything the checks judge, gathered once. ``None``: not known (the check says why)."""

    broker: str
    #: "redis", "amqp", ... (the broker URL's scheme family)
    transport: str
    listen: float
    #: the ``-A`` app's configuration; None without ``-A``
    conf: Mapping[str, Any] | None = None
    #: hostnames that answered ping
    pings: tuple[str, ...] = ()
    #: hostname -> (epoch seconds, tasks processed since it started) from each
    #: ``inspect stats`` asked while listening
    stats_readings: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    #: None: events were not listened to; else what was heard
    events: EventNotes | None = None
    #: why events could not be listened to
    events_error: str | None = None
    result_backend: str | None = None
    #: None: not tried; "": read fine; else the error
    backend_error: str | None = None
    #: why taskwatch cannot read this kind of result backend
    backend_unread: str | None = None
    #: stored results sampled, and how many of them carry the task's name and arguments
    results_sampled: int = 0
    results_extended: int = 0
    pubsub: PubsubLimit | None = None
    pubsub_error: str | None = None
    held: list[HeldEta] = field(default_factory=list)
    held_error: str | None = None
    held_complete: bool = True
    schedule_rows: list[ScheduleRow] = field(default_factory=list)
    schedule_stores: list[StoreStatus] = field(default_factory=list)
    #: when the observation ended (epoch seconds)
    at: float = 0.0


# -- the checks ---------------------------------------------------------------

# -- gathering -----------------------------------------------------------------

def _transport(url: str) -> str:
    from taskwatch.sources.redis_url import REDIS_SCHEMES

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in REDIS_SCHEMES:
        return "redis"
    return "amqp" if scheme in ("amqp", "amqps", "pyamqp", "librabbitmq") else scheme or "unknown"


def observe(settings: Settings, app: Any = None, *, listen: float = 5.0) -> Observed:
    """Gather what the checks need (see the module docstring). Bounded in time.

    Raises :class:`SourceError` (one line) when the broker does not answer.
    """
    assert settings.broker_url
    url = settings.broker_url
    obs = Observed(broker=mask_url(url), transport=_transport(url), listen=listen,
                   conf=app.conf if app is not None else None, result_backend=settings.result_backend)
    sources = build_sources(settings, app, events=listen > 0)
    notes = EventNotes()
    if sources.events is not None:
        build = sources.events
        sources.events = lambda sink: build(_Tap(sink, notes))
    monitor = Monitor(sources, max_tasks=settings.max_tasks, backfill=0)
    with monitor:
        started = time.monotonic()
        if listen > 0:
            if monitor.receiver is None:
                obs.events_error = monitor.events_error or "no event receiver for this broker"
            else:
                _wait_for(lambda: monitor.events_connected, min(listen, 3.0))
                if monitor.events_connected:
                    obs.events = notes
                    started = time.monotonic()
                else:
                    status = monitor.receiver.status
                    obs.events_error = status.error or f"not connected within {min(listen, 3.0):g} s"
        report = monitor.poll()
        if report.workers is not None and report.workers.broker_error:
            raise SourceError(report.workers.broker_error)
        workers = report.workers
        if workers is not None:
            obs.pings = tuple(sorted(workers.pings))
            _note_stats(obs, workers)
        tasks = report.tasks.tasks if report.tasks is not None else ()
        obs.held = [h for h in (_scheduled(t) for t in tasks if t.kind == "scheduled") if h is not None]
        _read_backend(monitor, obs)
        monitor.poll_schedules()
        obs.schedule_rows, obs.schedule_stores = monitor.schedules.rows(), monitor.schedules.stores()
        if obs.transport == "redis":
            _read_redis(url, dict(sources.conf.get("broker_transport_options") or {}), obs,
                        timeout=max(settings.inspect_timeout, 2.0))
        end = started + listen
        if obs.events is not None and obs.pings:
            # A second count of tasks taken, early enough for their events to arrive.
            time.sleep(max(0.0, end - EVENT_FLUSH - time.monotonic()))
            _note_stats(obs, monitor.inspector.poll_workers(obs.pings, details=True))
            end = max(end, time.monotonic() + EVENT_FLUSH)
        time.sleep(max(0.0, end - time.monotonic()))
        obs.at = time.time()
    return obs


def _note_stats(obs: Observed, workers: Any) -> None:
    if workers.broker_error:
        return
    at = workers.started_at + workers.duration  # the replies came before the round ended
    for host, stats in workers.stats.items():
        total = _total(stats)
        if total is not None:
            obs.stats_readings.setdefault(host, []).append((at, total))


def _total(stats: Mapping[str, Any]) -> int | None:
    total = stats.get("total") if isinstance(stats, Mapping) else None
    if isinstance(total, Mapping):
        counts = [v for v in total.values() if type(v) is int]
        return sum(counts)
    return None


def _scheduled(task: Any) -> HeldEta | None:
    from taskwatch.sources.redis_health import parse_eta

    eta = parse_eta(task.eta)
    return None if eta is None else HeldEta(task.id, task.name, eta, None, task.hostname)


def _read_backend(monitor: Monitor, obs: Observed) -> None:
    """Read the newest results: reachable, and do they carry arguments?"""
    if not obs.result_backend or monitor.sources.results is None:
        return
    from taskwatch.sources.results import UnsupportedBackend

    backend = None
    try:
        backend = monitor.sources.results()
        rows = [r for r in backend.recent(RESULT_SAMPLE) if r.date_done is not None]
    except UnsupportedBackend as exc:  # rpc://, or a kind taskwatch does not read
        obs.backend_unread = clean(mask_secrets(str(exc)), 300, single_line=True)
        return
    except Exception as exc:  # noqa: BLE001 - whatever the backend raised is the finding
        obs.backend_error = clean(mask_secrets(describe(exc)), 300, single_line=True)
        return
    finally:
        if backend is not None:
            backend.close()
    obs.backend_error = ""
    obs.results_sampled = len(rows)
    obs.results_extended = sum(1 for r in rows if r.name)


def _read_redis(url: str, options: dict[str, Any], obs: Observed, *, timeout: float) -> None:
    from taskwatch.sources.redis_health import held_etas, pubsub_limit

    try:
        obs.pubsub = pubsub_limit(url, options, timeout)
    except SourceError as exc:
        obs.pubsub_error = str(exc)
    try:
        held, obs.held_complete = held_etas(url, options, timeout)
    except SourceError as exc:
        obs.held_error = str(exc)
        return
    known = {h.id for h in held}
    obs.held = held + [h for h in obs.held if h.id not in known]


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
