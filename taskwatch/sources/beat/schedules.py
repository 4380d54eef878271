"""Beat entries as plain data, and their next runs computed by Celery's own schedule classes.

Every beat source (the app's ``beat_schedule``, the schedule file, RedBeat,
django-celery-beat) turns what it reads into :class:`BeatEntry` records whose
schedules are plain specs (:class:`Interval`, :class:`Crontab`, :class:`Solar`,
:class:`Clocked`), never a user's or an attacker's object. :func:`to_job` then
makes the :class:`~taskwatch.records.ScheduledJob`: the schedule in words, the
queue it routes to, and the next run.

The next run is Celery's: a fresh ``celery.schedules.schedule`` / ``crontab``
/ ``solar`` is built from the spec (their constructors only assign, convert
a number to a timedelta, parse cron text with ``crontab_parser``, and for
solar import ``ephem``), its ``nowfun`` bound to a fixed clock and its time
zone to the scheduler's, and asked ``remaining_estimate(last_run_at)``. With
the clock at ``last_run_at``, ``last_run_at + remaining_estimate(last_run_at)``
is the time beat runs it next (Celery's ``remaining`` is "end minus now").
When the last run is not known, the clock is now: exact for crontab and
solar (the next match after now), an estimate for intervals (``exact=False``).
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from taskwatch.records import ExactCall, JobRun, ScheduledJob
from taskwatch.reprs import render
from taskwatch.text import clean

#: How late beat may be before it counts as down (seconds), for entries of a minute or more.
GRACE = 60.0
#: The default scheduler writes its file every 3 minutes (``Scheduler.sync_every``)
#: unless ``beat_sync_every`` makes it sync after every so many sends.
FILE_SYNC_EVERY = 180.0
#: Longest cron field text accepted (Celery's parser is a regex per part).
MAX_CRON_FIELD = 256
MAX_NAME = 200
SOLAR_EVENTS = frozenset({
    "dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon",
    "sunset", "dusk_civil", "dusk_nautical", "dusk_astronomical",
})
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-.]+){0,3}")


class SpecError(ValueError):
    """A schedule's plain values are not what Celery would accept; one line."""


# -- specs ---------------------------------------------------------------------

CronField = str | int | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Interval:
    seconds: float
    relative: bool = False


@dataclass(frozen=True, slots=True)
class Crontab:
    minute: CronField = "*"
    hour: CronField = "*"
    day_of_week: CronField = "*"
    day_of_month: CronField = "*"
    month_of_year: CronField = "*"
    #: the row's own zone (django-celery-beat); None: the scheduler's
    tz: tzinfo | None = None


@dataclass(frozen=True, slots=True)
class Solar:
    event: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Clocked:
    """django-celery-beat's one-off schedule."""

    at: datetime


Spec = Interval | Crontab | Solar | Clocked


def interval(value: Any, relative: Any = False) -> Interval:
    """An :class:`Interval` from seconds or a timedelta, as ``maybe_timedelta`` takes them."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise SpecError(f"an interval must be seconds or a timedelta, not {_kind(value)}")
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 366 * 86400 * 100:
        raise SpecError(f"interval of {seconds!r} s")
    if not isinstance(relative, bool):
        raise SpecError(f"relative must be a bool, not {_kind(relative)}")
    return Interval(seconds, relative)


def cron_field(value: Any) -> CronField:
    """One crontab field as Celery's ``cronfield`` keeps it: text, an int, or ints."""
    if value is None:
        return "*"
    if isinstance(value, bool):
        raise SpecError("a cron field cannot be a bool")
    if isinstance(value, int):
        if not 0 <= value <= 59:
            raise SpecError(f"cron value {value}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_CRON_FIELD:
            raise SpecError(f"cron field of {len(value)} characters")
        return value
    if isinstance(value, list | tuple | set | frozenset) and len(value) <= 60:
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 59 for v in value):
            return tuple(sorted(value))
    raise SpecError(f"a cron field must be text or numbers, not {_kind(value)}")


def crontab_spec(minute: Any = "*", hour: Any = "*", day_of_week: Any = "*",
                 day_of_month: Any = "*", month_of_year: Any = "*",
                 tz: tzinfo | None = None) -> Crontab:
    return Crontab(cron_field(minute), cron_field(hour), cron_field(day_of_week),
                   cron_field(day_of_month), cron_field(month_of_year), tz)


def solar_spec(event: Any, lat: Any, lon: Any) -> Solar:
    if event not in SOLAR_EVENTS:
        raise SpecError(f"unknown solar event {clean(repr(event), 40, single_line=True)}")
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise SpecError("solar latitude and longitude must be numbers") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise SpecError(f"solar position {lat}, {lon} is off the globe")
    return Solar(event, lat, lon)


def zone(key: Any) -> tzinfo:
    """A time zone from its IANA name (never a path), or UTC for ``"UTC"``/None."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if key is None or key in ("UTC", "utc"):
        return UTC
    if isinstance(key, tzinfo):
        return key
    if not isinstance(key, str) or len(key) > 128 or not _ZONE_KEY.fullmatch(key) or ".." in key:
        raise SpecError(f"bad time zone {clean(repr(key), 60, single_line=True)}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SpecError(f"unknown time zone {key!r}") from None


def scheduler_zone(timezone: Any, enable_utc: Any) -> tzinfo:
    """The zone beat computes in, as ``Celery.timezone`` derives it from the settings."""
    if timezone:
        return zone(timezone)
    if enable_utc is False:
        from celery.utils.time import timezone as celery_timezone

        return celery_timezone.local
    return UTC


# -- the app's own schedule objects -----------------------------------------------


def from_celery(value: Any) -> Spec:
    """The spec of a schedule as ``beat_schedule`` holds it (a number, a timedelta,
    or one of Celery's three classes). Other classes raise :class:`SpecError`."""
    from celery.schedules import crontab, schedule, solar

    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        return interval(value)
    kind = type(value)
    if kind is schedule:
        return interval(value.run_every, bool(value.relative))
    if kind is crontab:
        return crontab_spec(value._orig_minute, value._orig_hour, value._orig_day_of_week,
                            value._orig_day_of_month, value._orig_month_of_year)
    if kind is solar:
        return solar_spec(value.event, value.lat, value.lon)
    raise SpecError(f"schedule class {kind.__module__}.{kind.__qualname__}")


# -- words ---------------------------------------------------------------------


def describe(spec: Spec) -> str:
    """The schedule in words: "every 60 s", "cron 08:00 daily", "solar sunrise at 52.5, 13.4"."""
    if isinstance(spec, Interval):
        return "every " + _seconds_words(spec.seconds) + (" (relative)" if spec.relative else "")
    if isinstance(spec, Crontab):
        text = _cron_words(spec)
        if spec.tz is not None and spec.tz is not UTC and str(spec.tz) != "UTC":
            text += f" {spec.tz}"
        return text
    if isinstance(spec, Solar):
        return f"solar {spec.event} at {spec.lat:g}, {spec.lon:g}"
    return "once at " + spec.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds_words(seconds: float) -> str:
    if seconds < 120 or seconds % 60:
        return f"{seconds:g} s"
    if seconds >= 7200 and not seconds % 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def _field_text(value: CronField) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _single(value: CronField) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _dow_text(value: CronField) -> str:
    single = _single(value)
    if single is not None and 0 <= single <= 7:
        return _DAY_NAMES[single % 7]
    if isinstance(value, tuple) and all(0 <= v <= 7 for v in value):
        return ",".join(_DAY_NAMES[v % 7] for v in value)
    return _field_text(value)


def _cron_words(spec: Crontab) -> str:
    minute, hour = _single(spec.minute), _single(spec.hour)
    days = [(spec.day_of_week, "dow"), (spec.day_of_month, "dom"), (spec.month_of_year, "moy")]
    every_day = all(_field_text(v) == "*" for v, _ in days)
    if minute is None or hour is None or not (0 <= minute < 60 and 0 <= hour < 24):
        fields = (spec.minute, spec.hour, spec.day_of_month, spec.month_of_year, spec.day_of_week)
        return "cron " + " ".join(_field_text(f) for f in fields)
    parts = [f"cron {hour:02d}:{minute:02d}"]
    if every_day:
        parts.append("daily")
    else:
        if _field_text(spec.day_of_week) != "*":
            parts.append(_dow_text(spec.day_of_week))
        if _field_text(spec.day_of_month) != "*":
            parts.append(f"on day {_field_text(spec.day_of_month)}")
        if _field_text(spec.month_of_year) != "*":
            parts.append(f"in month {_field_text(spec.month_of_year)}")
    return " ".join(parts)


# -- Celery's objects, on a fixed clock ------------------------------------------------


def celery_schedule(spec: Spec, tz: tzinfo, clock: datetime) -> Any:
    """A new Celery schedule object for ``spec`` reading ``clock`` as now, in zone ``tz``.

    Never a user's object: built here, so binding ``nowfun`` and the zone
    changes nothing anyone else holds. Raises :class:`SpecError` when Celery
    refuses the values (a bad cron text) or cannot compute them (solar
    without ``ephem``).
    """
    from celery.exceptions import ImproperlyConfigured
    from celery.schedules import crontab, schedule, solar

    try:
        if isinstance(spec, Interval):
            obj: Any = schedule(timedelta(seconds=spec.seconds), spec.relative)
        elif isinstance(spec, Crontab):
            obj = crontab(spec.minute, spec.hour, spec.day_of_week, spec.day_of_month,
                          spec.month_of_year)
            tz = spec.tz or tz
        elif isinstance(spec, Solar):
            obj = solar(spec.event, spec.lat, spec.lon)
        else:
            raise SpecError("a clocked schedule has no Celery class")
    except ImproperlyConfigured:
        raise SpecError("solar schedules need the ephem package, as Celery does "
                        "(pip install ephem)") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise SpecError(f"Celery refuses this schedule: {clean(str(exc), 160, single_line=True)}") from None
    return bind(obj, tz, clock)


def bind(obj: Any, tz: tzinfo, clock: datetime) -> Any:
    """``obj`` reading ``clock`` as now and computing in ``tz``, without an app."""
    obj.nowfun = lambda: clock
    obj.tz = tz
    obj.utc_enabled = True
    return obj


def bound_copy(user_schedule: Any, tz: tzinfo, clock: datetime) -> Any:
    """A copy of a user's schedule object of a class taskwatch does not know, bound to ``clock``."""
    return bind(copy.copy(user_schedule), tz, clock)


@dataclass(frozen=True, slots=True)
class NextRun:
    at: float | None
    exact: bool = True
    problem: str | None = None


def next_run(spec: Spec | None, last_run: datetime | None, now: float, tz: tzinfo,
             *, user_schedule: Any = None) -> NextRun:
    """When beat runs the entry next (epoch seconds), per the module docstring."""
    if isinstance(spec, Clocked):
        if last_run is not None and last_run >= spec.at:
            return NextRun(None)
        return NextRun(spec.at.timestamp())
    now_dt = datetime.fromtimestamp(now, UTC)
    clock = last_run if last_run is not None else now_dt
    try:
        if spec is not None:
            obj = celery_schedule(spec, tz, clock)
        elif user_schedule is not None:
            obj = bound_copy(user_schedule, tz, clock)
        else:
            return NextRun(None)
        if last_run is not None:
            return NextRun((last_run + obj.remaining_estimate(last_run)).timestamp())
        if isinstance(spec, Interval):
            return NextRun(now + spec.seconds, exact=False)
        # The next match after now: "ran a microsecond ago".
        just_now = now_dt - timedelta(microseconds=1)
        return NextRun((now_dt + obj.remaining_estimate(just_now)).timestamp())
    except SpecError as exc:
        return NextRun(None, problem=str(exc))
    except Exception as exc:  # noqa: BLE001 - a schedule Celery cannot compute (user classes too)
        return NextRun(None, problem=clean(f"cannot compute the next run: {type(exc).__name__}: {exc}",
                                           200, single_line=True))


def grace(spec: Spec | None, lag: float = 0.0) -> float:
    """How late the next run may be before beat counts as down.

    A minute, or the interval for entries shorter than a minute; ``lag`` is
    how stale the store itself may be (the schedule file's sync period).
    """
    base = GRACE
    if isinstance(spec, Interval):
        base = min(GRACE, spec.seconds)
    return base + lag


# -- routing -------------------------------------------------------------------


def queue_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    name = getattr(value, "name", None)  # a kombu Queue
    return name if isinstance(name, str) and name else None


def route_queue(task: str, options: Mapping[str, Any], conf: Any) -> str:
    """The queue beat's send of ``task`` lands in: the entry's ``queue`` option, else
    the app's ``task_routes`` (name and glob maps, as Celery's ``MapRoute``; router
    functions and import paths are not called), else ``task_default_queue``."""
    queue = queue_name(options.get("queue")) if isinstance(options, Mapping) else None
    if queue:
        return queue
    routes = _get(conf, "task_routes")
    if isinstance(routes, Mapping):
        routes = [routes]
    if isinstance(routes, list | tuple):
        from celery.app.routes import MapRoute

        for route in routes:
            if not isinstance(route, Mapping):
                continue
            try:
                found = MapRoute(route)(task)
            except Exception:  # noqa: BLE001 - a malformed route map routes nothing
                continue
            if isinstance(found, Mapping):
                queue = queue_name(found.get("queue"))
                if queue:
                    return queue
    return queue_name(_get(conf, "task_default_queue")) or "celery"


def _get(conf: Any, key: str) -> Any:
    if conf is None:
        return None
    try:
        return conf.get(key)
    except Exception:  # noqa: BLE001 - a conf object that misbehaves
        return None


# -- records -------------------------------------------------------------------


@dataclass(frozen=True)
class BeatEntry:
    """One entry as a source read it: plain values, schedule as a spec.

    ``last_run`` is aware (naive values are taken as UTC, as Celery does);
    ``problem`` is why part of it could not be read.
    """

    name: str
    task: str = ""
    spec: Spec | None = None
    args: Any = ()
    kwargs: Any = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    last_run: datetime | None = None
    total_runs: int | None = None
    enabled: bool = True
    #: the store's own next run, when it keeps one (RedBeat's zset score)
    stored_next: float | None = None
    #: the schedule's text when there is no spec (a class taskwatch cannot compute)
    schedule_text: str = ""
    #: a user's schedule object of another class (app source only), computed on a copy
    user_schedule: Any = None
    problem: str | None = None


def aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def to_job(entry: BeatEntry, store: str, now: float, tz: tzinfo, conf: Any,
           *, lag: float = 0.0) -> ScheduledJob:
    """The :class:`ScheduledJob` of one entry (see the module docstring)."""
    name = clean(entry.name, MAX_NAME, single_line=True)
    last = aware(entry.last_run)
    problems = [entry.problem] if entry.problem else []
    if entry.spec is not None:
        trigger = describe(entry.spec)
    else:
        trigger = clean(entry.schedule_text or "?", 80, single_line=True)
    if entry.enabled and last is None and entry.stored_next is not None:
        # Never run: the store's own due time is what the scheduler acts on.
        found = NextRun(entry.stored_next)
    elif entry.enabled and (entry.spec is not None or entry.user_schedule is not None):
        found = next_run(entry.spec, last, now, tz, user_schedule=entry.user_schedule)
        if found.problem:
            problems.append(found.problem)
        if found.at is None and entry.stored_next is not None and found.problem:
            found = NextRun(entry.stored_next)
    elif entry.enabled and entry.stored_next is not None:
        found = NextRun(entry.stored_next)
    else:
        found = NextRun(None)
    options = dict(entry.options) if isinstance(entry.options, Mapping) else {}
    args = entry.args if isinstance(entry.args, list | tuple) else ()
    kwargs = entry.kwargs if isinstance(entry.kwargs, Mapping) else {}
    return ScheduledJob(
        source="beat",
        store=store,
        id=name,
        name=name,
        target=clean(entry.task, MAX_NAME, single_line=True),
        trigger=trigger,
        next_run=found.at,
        last_run=last.timestamp() if last is not None else None,
        paused=not entry.enabled,
        call=_exact(args, kwargs),
        args=render(tuple(args), 200),
        kwargs=render(dict(kwargs), 200),
        options=_plain_options(options),
        problem=clean("; ".join(problems), 300, single_line=True) if problems else None,
        grace=grace(entry.spec, lag),
        total_runs=entry.total_runs,
        queue=clean(route_queue(entry.task, options, conf), MAX_NAME, single_line=True),
        enabled=entry.enabled,
        exact=found.exact,
    )


def _json_able(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if type(value) in (list, tuple):
        return all(_json_able(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _json_able(v, depth + 1) for k, v in value.items())
    return False


def _exact(args: Any, kwargs: Any) -> ExactCall | None:
    if _json_able(list(args)) and type(kwargs) is dict and _json_able(kwargs):
        return ExactCall(tuple(args), dict(kwargs))
    return None


def _plain_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's options with JSON-able values (a kombu Queue becomes its name)."""
    out: dict[str, Any] = {}
    for key, value in list(options.items())[:50]:
        if not isinstance(key, str):
            continue
        if key in ("queue", "exchange") and not isinstance(value, str):
            value = queue_name(value)
        if _json_able(value):
            out[clean(key, 80, single_line=True)] = value
    return out


def sort_jobs(jobs: list[ScheduledJob]) -> list[ScheduledJob]:
    return sorted(jobs, key=lambda j: j.name)


def _kind(value: Any) -> str:
    from taskwatch.sources.pickle_rules import describe as describe_object

    return describe_object(value)


__all__ = [
    "BeatEntry", "BeatSource", "Clocked", "Crontab", "Interval", "NextRun", "Solar", "Spec", "SpecError",
    "celery_schedule", "cron_field", "crontab_spec", "describe", "from_celery", "grace",
    "interval", "next_run", "route_queue", "scheduler_zone", "solar_spec", "to_job", "zone", "zone_or_utc",
]


class BeatSource:
    """What every beat source shares: entries (each source's own reading) become
    jobs in the zone beat computes in; beat entries are never changed from here
    (``control()`` is None: "run now" sends the task through the broker)."""

    kind = "beat"
    label: str
    conf: Any = None
    #: seconds beat's stored state may lag behind beat (the schedule file's sync interval)
    lag = 0.0

    def entries(self) -> list[BeatEntry]:
        raise NotImplementedError

    def zone(self) -> tuple[tzinfo, str | None]:
        """The zone beat computes in (the app's), and why it had to be guessed, if it was."""
        conf = self.conf
        return zone_or_utc(conf.get("timezone") if conf is not None else None,
                           conf.get("enable_utc") if conf is not None else None)

    def jobs(self, now: float | None = None) -> list[ScheduledJob]:
        now = time.time() if now is None else now
        entries = self.entries()
        tz, problem = self.zone()
        jobs = []
        for entry in entries:
            if problem and not entry.problem:
                entry = replace(entry, problem=problem)
            jobs.append(to_job(entry, self.label, now, tz, self.conf, lag=self.lag))
        return sort_jobs(jobs)

    def control(self) -> None:
        return None

    def history(self) -> list[JobRun]:
        return []

    def close(self) -> None:
        return None


def zone_or_utc(timezone: Any, enable_utc: Any) -> tuple[tzinfo, str | None]:
    try:
        return scheduler_zone(timezone, enable_utc), None
    except SpecError as exc:
        return UTC, f"{exc}; computed in UTC"
