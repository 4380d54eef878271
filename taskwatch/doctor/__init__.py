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

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from taskwatch.doctor.observe import EVENT_FLUSH, EventNotes, HostEvents, Observed, observe
from taskwatch.engine.schedule_book import APP_STORE, ScheduleRow, StoreStatus
from taskwatch.text import clean, mask_url

__all__ = ["EventNotes", "FAIL", "Finding", "HostEvents", "OK", "Observed", "SKIPPED", "WARN", "diagnose",
           "document", "exit_code", "names", "observe"]

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


