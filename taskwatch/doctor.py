"""``taskwatch doctor``: what is set up wrong in a cluster, one finding per check, with the fix.

Two halves, both without Textual:

* :func:`observe` gathers, once, from the real sources through a
  :class:`~taskwatch.monitor.Monitor`: worker pings and stats, the tasks they
  hold, events for ``listen`` seconds (through a tap between the receiver and
  the monitor), the result backend, the schedule sources, and from a Redis
  broker its pub/sub output-buffer limit and the ETA tasks in ``unacked``.
  Every call has a timeout; an unreachable broker raises a one-line
  :class:`~taskwatch.sources.errors.SourceError`.
* the checks are plain functions of that :class:`Observed` record, each
  returning one :class:`Finding`: ``ok``, ``warn``, ``fail``, or ``skipped``
  with the reason its input is missing. They are unit-tested on plain data.

Check ids (stable; the JSON document and the README list them): see :data:`CHECKS`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from taskwatch.config import Settings
from taskwatch.engine.schedule_book import APP_STORE, ScheduleRow, StoreStatus
from taskwatch.monitor import Monitor
from taskwatch.records import HeldEta, PubsubLimit
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.factory import build_sources
from taskwatch.sources.protocols import EventSink
from taskwatch.text import clean, mask_secrets, mask_url

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"
#: the document's shape; bumped only when a field changes meaning or goes away
SCHEMA = 1

#: Seconds of events the pub/sub buffer must hold at the peak rate seen: a
#: receiver paused that long (a GC, a busy host, a slow network) is not cut off.
BUFFER_HEADROOM = 5.0
#: Clock difference (seconds) past which ETAs, expiries and event times are off.
DRIFT_LIMIT = 1.0
#: A restart of a scheduler takes about this long: a shorter misfire grace loses runs.
RESTART_SECONDS = 60.0
#: kombu's Redis default.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
#: Stored results read to see whether they carry arguments.
RESULT_SAMPLE = 50
#: kombu's JSON envelope around one event message (headers, properties), in
#: bytes, as published on Redis; the event itself is base64 (4/3) inside.
ENVELOPE_BYTES = 420
#: Seconds within which a worker sends a task's events (it buffers them, then flushes).
EVENT_FLUSH = 1.0
#: Names shown in one line before "and N more".
SHOWN = 3


@dataclass(frozen=True)
class Finding:
    """One check's verdict: what was seen, and what to do about it."""

    id: str
    status: str
    #: what was seen, one line (for ``skipped``: why the check could not run)
    seen: str
    #: the fix, one line; None when there is nothing to fix
    fix: str | None = None
    #: plain data behind the verdict, for scripts (hostnames, numbers)
    data: Mapping[str, Any] = field(default_factory=dict)


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

    def on_events(self, events: list[dict[str, Any]], received_at: float, drained: bool = True) -> None:
        self.notes.see(events, received_at)
        self.sink.on_events(events, received_at, drained)

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

def names(items: Sequence[str], limit: int = SHOWN) -> str:
    shown = ", ".join(clean(i, 80, single_line=True) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _conf(obs: Observed, key: str, default: Any = None) -> Any:
    if obs.conf is None:
        return default
    try:
        value = obs.conf.get(key)
    except Exception:  # noqa: BLE001 - a conf object that misbehaves
        return default
    return default if value is None else value


def _needs_listen(obs: Observed) -> str | None:
    if obs.listen <= 0:
        return "needs events: run with --listen SECONDS (more than 0)"
    if obs.events is None:
        return f"no events to listen to: {obs.events_error or 'the event connection did not open'}"
    return None


def check_task_events(obs: Observed) -> Finding:
    """Workers that answer ping but send no task events while running tasks (or no events at all)."""
    cid = "task_events"
    reason = _needs_listen(obs)
    if reason:
        return Finding(cid, SKIPPED, reason)
    if not obs.pings:
        return Finding(cid, SKIPPED, "no worker answered ping")
    assert obs.events is not None
    off, silent, on, idle = [], [], [], []
    for host in obs.pings:
        seen = obs.events.hosts.get(host)
        if seen is None or (seen.heartbeats == 0 and seen.task_events == 0):
            # A heartbeat comes every 2 s (worker_heartbeat): a listen of 2 x that hears one.
            if obs.listen >= 2 * ((seen.freq if seen else None) or 2.0):
                silent.append(host)
            else:
                idle.append(host)
        elif seen.task_events:
            on.append(host)
        else:
            (off if _ran_tasks(obs, host, seen) else idle).append(host)
    data: dict[str, Any] = {"sending": on, "task_events_off": off, "no_events": silent, "idle": idle}
    data["heard"] = {h: {"heartbeats": e.heartbeats, "task_events": e.task_events,
                         "processed": sorted({p for _, p in e.processed + obs.stats_readings.get(h, [])})}
                     for h, e in obs.events.hosts.items() if h in obs.pings}
    if off or silent:
        parts = []
        if off:
            parts.append(f"{names(off)} ran tasks and sent no task events")
        if silent:
            parts.append(f"{names(silent)} answer ping and sent no events at all in {obs.listen:g} s")
        hosts = ",".join(off + silent)
        return Finding(cid, FAIL, "; ".join(parts) + " (monitors see nothing of their tasks)",
                       f"taskwatch worker {hosts} events-on (celery control enable_events, until the "
                       "worker restarts); for good, start workers with -E or set worker_send_task_events=True",
                       data)
    if on:
        extra = f"; {names(idle)} idle, not judged" if idle else ""
        return Finding(cid, OK, f"{names(on)} send task events{extra}", None, data)
    return Finding(cid, SKIPPED, f"{names(idle)} ran no task while doctor listened: nothing shows "
                   "whether they send task events (listen longer, or while tasks run)", None, data)


def _ran_tasks(obs: Observed, host: str, seen: HostEvents) -> bool:
    """The worker took a task while doctor listened, early enough for its events to arrive.

    Its processed counter (heartbeats, and ``inspect stats`` asked while
    listening) went up between two readings, the later one at least
    :data:`EVENT_FLUSH` seconds before listening ended: a worker sends the
    task's events within that time (it buffers them for about a second).
    """
    readings = list(seen.processed) + obs.stats_readings.get(host, [])
    # The counter only grows: two different values mean a task was taken in between.
    values = {count for at, count in readings if at <= obs.at - EVENT_FLUSH}
    return len(values) >= 2


def check_sent_events(obs: Observed) -> Finding:
    cid = "task_sent_events"
    if obs.conf is None:
        if obs.events is not None and obs.events.sent_events:
            return Finding(cid, OK, f"{obs.events.sent_events} task-sent events seen from producers")
        return Finding(cid, SKIPPED, "needs the app: pass -A APP (producers' task_send_sent_event)")
    if _conf(obs, "task_send_sent_event", False):
        return Finding(cid, OK, "the app sets task_send_sent_event")
    return Finding(cid, WARN, "task_send_sent_event is off: a task is unseen until a worker takes it, "
                   "so tasks waiting in queues show nowhere",
                   "set task_send_sent_event=True in the app producers use (-A's configuration)")


def check_result_extended(obs: Observed) -> Finding:
    cid = "result_extended"
    data = {"sampled": obs.results_sampled, "with_arguments": obs.results_extended}
    fix = ("set result_extended=True in the workers' app; until then `taskwatch retry` refuses "
           "tasks whose arguments are not stored")
    if obs.results_sampled:
        missing = obs.results_sampled - obs.results_extended
        if not missing:
            return Finding(cid, OK, f"the {obs.results_sampled} newest stored results carry their "
                           "task's name and arguments", None, data)
        return Finding(cid, WARN, f"{missing} of the {obs.results_sampled} newest stored results lack the "
                       "task's name and arguments (result_extended off): retry cannot be exact", fix, data)
    if obs.conf is not None:
        if _conf(obs, "result_extended", False):
            return Finding(cid, OK, "the app sets result_extended (no stored result to confirm it)", None, data)
        return Finding(cid, WARN, "the app does not set result_extended: stored results will lack "
                       "arguments and retry cannot be exact", fix, data)
    return Finding(cid, SKIPPED, "needs -A APP, or a result backend holding results", None, data)


def check_result_backend(obs: Observed) -> Finding:
    cid = "result_backend"
    if not obs.result_backend:
        return Finding(cid, SKIPPED, "no result backend given (--result-backend, or -A with result_backend)")
    where = mask_url(obs.result_backend)
    if obs.backend_error is None:
        return Finding(cid, SKIPPED, obs.backend_unread or f"{where}: not read")
    if obs.backend_error:
        return Finding(cid, FAIL, obs.backend_error,
                       "start the result backend or correct result_backend / --result-backend; while it "
                       "is down workers cannot store results and failures and retries are unknown",
                       {"url": where})
    return Finding(cid, OK, f"{where} answers ({obs.results_sampled} recent results read)", None,
                   {"url": where})


def peak_rate(notes: EventNotes) -> tuple[float, float]:
    """(mean, peak) estimated bytes/s of events over the seconds that had any."""
    values = list(notes.bytes_by_second.values())
    if not values:
        return 0.0, 0.0
    span = max(1, max(notes.bytes_by_second) - min(notes.bytes_by_second) + 1)
    return sum(values) / span, float(max(values))


def _size(n: float) -> str:
    for unit, factor in (("MB", 1024**2), ("KB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:.0f} B"


def check_event_buffer(obs: Observed) -> Finding:
    cid = "event_buffer"
    if obs.transport != "redis":
        return Finding(cid, SKIPPED, f"not a Redis broker ({obs.transport}): only Redis cuts slow "
                       "event subscribers off by output buffer")
    reason = _needs_listen(obs)
    if reason:
        return Finding(cid, SKIPPED, reason)
    assert obs.events is not None
    mean, peak = peak_rate(obs.events)
    data: dict[str, Any] = {"bytes_per_second": round(mean), "peak_bytes_per_second": round(peak)}
    if obs.pubsub is None:
        return Finding(cid, SKIPPED, f"{obs.pubsub_error or 'the limit could not be read'}; compare the "
                       f"limit by hand with the events seen (~{_size(peak)}/s at peak)", None, data)
    limit = obs.pubsub
    data.update(hard_limit=limit.hard, soft_limit=limit.soft, soft_seconds=limit.soft_seconds)
    # A receiver paused for BUFFER_HEADROOM seconds is cut off at the hard limit,
    # or at the soft one if that may only be exceeded for less time than that.
    caps = [c for c in (limit.hard, limit.soft if limit.soft_seconds < BUFFER_HEADROOM else 0) if c > 0]
    cap = min(caps) if caps else 0
    shown = f"pubsub {_size(limit.hard)} / {_size(limit.soft)} for {limit.soft_seconds} s"
    wanted = max(32 * 1024**2, int(peak * 30))
    fix = (f"raise it: CONFIG SET client-output-buffer-limit \"pubsub {wanted} {wanted // 4} 60\" "
           "(and in redis.conf): Redis closes a subscriber past it and its events are lost")
    if obs.events.disconnects:
        return Finding(cid, WARN, f"the event connection was cut while listening ({obs.events.disconnects[0]}); "
                       f"limit {shown}, events ~{_size(peak)}/s at peak", fix, data)
    if not cap:
        return Finding(cid, OK, f"no pub/sub output-buffer limit; events ~{_size(peak)}/s at peak", None, data)
    if peak <= 0:
        return Finding(cid, SKIPPED, f"no events while listening: no rate to weigh {shown} against", None, data)
    headroom = cap / peak
    data["headroom_seconds"] = round(headroom, 2)
    if headroom < BUFFER_HEADROOM:
        return Finding(cid, WARN, f"{shown} holds {headroom:.1f} s of the events seen (~{_size(peak)}/s "
                       f"at peak): a subscriber paused longer is cut off", fix, data)
    return Finding(cid, OK, f"{shown} holds {headroom:.0f} s of the events seen (~{_size(peak)}/s at peak)",
                   None, data)


def check_clock_drift(obs: Observed) -> Finding:
    cid = "clock_drift"
    reason = _needs_listen(obs)
    if reason:
        return Finding(cid, SKIPPED, reason)
    assert obs.events is not None
    skews = {h: e.skew for h, e in obs.events.hosts.items() if e.skew is not None}
    if not skews:
        return Finding(cid, SKIPPED, "no worker event (heartbeat) arrived while listening")
    # skew = received - sent = transit - (their clock - ours): their clock is ahead by -skew.
    ahead = {h: -s for h, s in skews.items()}
    data = {"ahead_seconds": {h: round(v, 3) for h, v in ahead.items()}}
    bad = sorted((h for h, v in ahead.items() if abs(v) > DRIFT_LIMIT), key=lambda h: -abs(ahead[h]))
    if bad:
        text = ", ".join(f"{clean(h, 80, single_line=True)} {abs(ahead[h]):.1f} s "
                         f"{'ahead' if ahead[h] > 0 else 'behind'}" for h in bad[:SHOWN])
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        return Finding(cid, WARN, f"worker clocks differ from this machine's: {text}{more} "
                       "(ETAs, expiries and event times shift by that much)",
                       "sync the clocks with NTP (chrony, systemd-timesyncd) on the workers and here", data)
    worst = max(abs(v) for v in ahead.values())
    return Finding(cid, OK, f"{len(ahead)} worker clock(s) within {worst:.2f} s of this machine's", None, data)


def _visibility_timeout(obs: Observed) -> tuple[float, bool]:
    options = _conf(obs, "broker_transport_options", {}) or {}
    value = options.get("visibility_timeout") if isinstance(options, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value), True
    return DEFAULT_VISIBILITY_TIMEOUT, False


def check_visibility_timeout(obs: Observed) -> Finding:
    cid = "visibility_timeout"
    if obs.transport != "redis":
        return Finding(cid, SKIPPED, f"not a Redis broker ({obs.transport}): no visibility timeout")
    if obs.held_error and not obs.held:
        return Finding(cid, SKIPPED, obs.held_error)
    timeout, from_app = _visibility_timeout(obs)
    where = "the app's" if from_app else ("kombu's default" + ("" if obs.conf is not None else ", pass -A for the app's"))
    late = []
    for held in obs.held:
        since = held.delivered_at if held.delivered_at is not None else obs.at
        if held.eta - since > timeout:
            late.append(held)
    data = {"visibility_timeout": timeout, "held": len(obs.held), "beyond": [h.id for h in late],
            "complete": obs.held_complete}
    if late:
        longest = max(h.eta - (h.delivered_at or obs.at) for h in late)
        tasks = sorted({h.name or "?" for h in late})
        return Finding(cid, WARN, f"{len(late)} ETA/countdown task(s) ({names(tasks)}) are due up to "
                       f"{longest:.0f} s after delivery, past the {timeout:g} s visibility timeout ({where}): "
                       "Redis hands them out again and they run twice",
                       f"raise broker_transport_options={{'visibility_timeout': {int(longest * 1.2) + 60}}} "
                       "on workers and producers, or schedule far-off runs with beat instead of countdown", data)
    partial = "" if obs.held_complete else " (not all read)"
    return Finding(cid, OK, f"{len(obs.held)} ETA task(s) held{partial}, all due within the "
                   f"{timeout:g} s visibility timeout ({where})", None, data)


def _beat_stores(obs: Observed) -> list[StoreStatus]:
    return [s for s in obs.schedule_stores if s.kind == "beat" and s.label != APP_STORE]


def check_beat_state(obs: Observed) -> Finding:
    cid = "beat_state"
    stores = _beat_stores(obs)
    if not stores:
        return Finding(cid, SKIPPED, "beat's own state not given (--beat-schedule FILE, --beat redbeat, --beat-db URL)")
    broken = [s for s in stores if s.error]
    if broken:
        return Finding(cid, FAIL, broken[0].error or "", "point --beat-schedule at the file beat writes "
                       "(celery beat -s FILE; default celerybeat-schedule in beat's working directory), "
                       "or check that beat runs and can write it", {"stores": [s.label for s in broken]})
    return Finding(cid, OK, f"read {names([s.label for s in stores])} ({sum(s.jobs for s in stores)} entries)")


def check_beat_late(obs: Observed) -> Finding:
    cid = "beat_late"
    if not _beat_stores(obs) or all(s.error for s in _beat_stores(obs)):
        return Finding(cid, SKIPPED, "needs beat's own state (--beat-schedule, --beat redbeat, --beat-db), readable")
    late = [r for r in obs.schedule_rows if r.late and r.job.source == "beat"]
    if late:
        worst = max(r.read_at - (r.job.next_run or r.read_at) for r in late)
        return Finding(cid, WARN, f"beat is late: {names([r.job.name for r in late])} up to {worst:.0f} s "
                       "past due (beat is down or stuck)",
                       "check that one celery beat runs (its log, its schedule file's owner)",
                       {"entries": [r.job.name for r in late]})
    entries = [r for r in obs.schedule_rows if r.job.source == "beat" and r.job.store != APP_STORE]
    return Finding(cid, OK, f"{len(entries)} beat entries, none late")


def _aps(obs: Observed) -> tuple[list[StoreStatus], list[ScheduleRow]]:
    stores = [s for s in obs.schedule_stores if s.kind == "apscheduler"]
    rows = [r for r in obs.schedule_rows if r.job.source == "apscheduler"]
    return stores, rows


def check_aps_overdue(obs: Observed) -> Finding:
    cid = "apscheduler_overdue"
    stores, rows = _aps(obs)
    if not stores:
        return Finding(cid, SKIPPED, "no APScheduler job store given (--jobstore URL)")
    broken = [s for s in stores if s.error]
    if broken and not rows:
        return Finding(cid, FAIL, broken[0].error or "", "check the --jobstore URL and that the store is up",
                       {"stores": [s.label for s in broken]})
    late = [r for r in rows if r.late]
    if late:
        def past(r: ScheduleRow) -> str:
            grace = "no grace" if r.job.grace is None else f"grace {r.job.grace:g} s"
            return f"{r.job.name or r.job.id} {r.read_at - (r.job.next_run or r.read_at):.0f} s ({grace})"

        return Finding(cid, WARN, f"{len(late)} job(s) overdue now: {names([past(r) for r in late])}: "
                       "their scheduler is not running or is stuck, and runs later than the grace are "
                       "skipped when it comes back",
                       "start (or restart) the scheduler process; give jobs misfire_grace_time=None or "
                       "longer than its restarts, with coalesce=True",
                       {"jobs": [r.job.id for r in late]})
    return Finding(cid, OK, f"{len(rows)} job(s), none overdue")


def check_aps_grace(obs: Observed) -> Finding:
    cid = "apscheduler_misfire_grace"
    stores, rows = _aps(obs)
    if not stores:
        return Finding(cid, SKIPPED, "no APScheduler job store given (--jobstore URL)")
    if not rows:
        return Finding(cid, SKIPPED, "no job read from the job store(s)")
    short = [r for r in rows if not r.job.paused and r.job.grace is not None and r.job.grace < RESTART_SECONDS]
    if short:
        shown = [f"{r.job.name or r.job.id} {r.job.grace:g} s" for r in short]
        return Finding(cid, WARN, f"{len(short)} job(s) with a misfire grace under {RESTART_SECONDS:g} s "
                       f"({names(shown)}): a run due while the scheduler restarts is skipped",
                       "add_job(..., misfire_grace_time=None, coalesce=True), or a grace longer than a "
                       "restart takes", {"jobs": [r.job.id for r in short]})
    return Finding(cid, OK, f"{len(rows)} job(s), each with a misfire grace of {RESTART_SECONDS:g} s or more")


#: Every check, in the order they are shown.
CHECKS: tuple[Callable[[Observed], Finding], ...] = (
    check_result_backend,
    check_task_events,
    check_sent_events,
    check_result_extended,
    check_event_buffer,
    check_clock_drift,
    check_visibility_timeout,
    check_beat_state,
    check_beat_late,
    check_aps_overdue,
    check_aps_grace,
)


def diagnose(obs: Observed) -> list[Finding]:
    return [check(obs) for check in CHECKS]


def exit_code(findings: Sequence[Finding]) -> int:
    """0: nothing wrong; 1: a check warned or failed (usage errors and an unreachable broker are 2)."""
    return 1 if any(f.status in (WARN, FAIL) for f in findings) else 0


def document(obs: Observed, findings: Sequence[Finding]) -> dict[str, Any]:
    """The ``--json`` document (schema in the README)."""
    worst = FAIL if any(f.status == FAIL for f in findings) else WARN if any(
        f.status == WARN for f in findings) else OK
    return {
        "schema": SCHEMA,
        "broker": obs.broker,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(obs.at)),
        "listen": obs.listen,
        "workers": list(obs.pings),
        "status": worst,
        "exit_code": exit_code(findings),
        "checks": [{**asdict(f), "data": dict(f.data)} for f in findings],
    }


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
