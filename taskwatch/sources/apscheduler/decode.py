"""One APScheduler 3.x job store row -> a :class:`~taskwatch.records.ScheduledJob`.

A row is the pickled dict ``Job.__getstate__()`` returns (``apscheduler/job.py``):
``version, id, func, trigger, executor, args, kwargs, name,
misfire_grace_time, coalesce, max_instances, next_run_time``. It comes from
someone else's process, so it is untrusted: it is decoded only with the
restricted unpickler and its ``APSCHEDULER_JOBS`` policy
(:mod:`taskwatch.sources.safe_pickle`), never with ``pickle.loads`` and never
through APScheduler's store classes (they import the user's modules and
*delete* a job they fail to load). The user's function is never imported:
``func`` is a ``"module:qualname"`` string and stays one.

Everything the decoded state holds is then read as data: each attribute of
the trigger and of its cron fields is type-checked before it is put into
words (:func:`describe_trigger`); nothing decoded is called, and nothing's
``__str__`` or ``__repr__`` is trusted. ``decode_job`` never raises: a row
it cannot read is a job with ``problem`` set, shown, never dropped.

:class:`JobDecoder` remembers what it decoded, keyed by the job id and a
digest of the row's bytes, so polling an unchanged store decodes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from datetime import time as clock_time
from types import EllipsisType
from typing import Any

from taskwatch.records import ExactCall, ScheduledJob
from taskwatch.reprs import ARGS_LIMIT, Opaque, render
from taskwatch.sources.pickle_policies import APSCHEDULER_JOBS
from taskwatch.sources.safe_pickle import Refused, loads
from taskwatch.text import clean

__all__ = [
    "INDEX_DISAGREES", "JobDecoder", "TriggerUnreadable", "decode_job", "describe_trigger", "sort_jobs",
]

SOURCE = "apscheduler"
ID_LIMIT = 200
NAME_LIMIT = 200
TARGET_LIMIT = 300
TRIGGER_LIMIT = 300
PROBLEM_LIMIT = 300
#: A disagreement between the store's index (zset score / column) and the
#: state's own next_run_time smaller than this is float rounding, not news.
NEXT_RUN_TOLERANCE = 0.001
#: How ``problem`` starts when the store's index and the job state disagree.
INDEX_DISAGREES = "the store's index says"

_FIELDS = (
    "id", "func", "trigger", "executor", "args", "kwargs", "name",
    "misfire_grace_time", "coalesce", "max_instances", "next_run_time",
)


class TriggerUnreadable(ValueError):
    """A decoded trigger whose attributes are not what APScheduler writes."""


# -- the row ---------------------------------------------------------------------------


def decode_job(
    store_label: str,
    job_id: str,
    blob: bytes,
    *,
    next_run: float | None | EllipsisType = ...,
    now: float | None = None,
) -> ScheduledJob:
    """Decode one stored job; never raises.

    ``next_run`` is the store's own index of the job's next run (the Redis
    zset score, the SQL/Mongo ``next_run_time`` column): it is what the
    scheduler acts on, so it wins; ``None`` there means paused. Left out
    (``...``), the state's ``next_run_time`` is used. When both are known and
    disagree, ``problem`` says so (the row is otherwise complete).
    ``now`` (epoch seconds, default the clock) only decides whether an
    interval's start date is worth showing.
    """
    label = clean(store_label, 300, single_line=True)
    shown_id = clean(job_id, ID_LIMIT, single_line=True)
    odd_index = None
    if next_run is not ... and next_run is not None:
        if isinstance(next_run, int | float) and not isinstance(next_run, bool) and math.isfinite(next_run):
            next_run = float(next_run)
        else:
            odd_index = f"the store's next_run_time is {_kind(next_run)}"
            next_run = ...
    index = None if next_run is ... else next_run
    paused_by_index = next_run is None

    def broken(reason: str) -> ScheduledJob:
        return ScheduledJob(
            source=SOURCE, store=label, id=shown_id, next_run=index, paused=paused_by_index,
            problem=clean(reason, PROBLEM_LIMIT, single_line=True),
        )

    try:
        if not isinstance(blob, bytes | bytearray | memoryview):
            return broken(f"job state is a {type(blob).__name__}, not bytes")
        try:
            state = loads(bytes(blob), allow=APSCHEDULER_JOBS)
        except Refused as exc:
            return broken(f"refused: {exc}")
        except pickle.UnpicklingError as exc:
            return broken(f"cannot decode the job state: {exc}")
        job = _from_state(label, shown_id, state, next_run, now)
        if odd_index is not None:
            problem = odd_index if job.problem is None else f"{odd_index}; {job.problem}"
            job = dataclasses.replace(job, problem=clean(problem, PROBLEM_LIMIT, single_line=True))
        return job
    except Exception as exc:  # noqa: BLE001 - never raise: a row is shown, whatever it holds
        return broken(f"cannot read the job state: {type(exc).__name__}: {exc}")


def _from_state(
    label: str, job_id: str, state: Any, next_run: float | None | EllipsisType, now: float | None
) -> ScheduledJob:
    index = None if next_run is ... else next_run
    if type(state) is not dict:
        return ScheduledJob(
            source=SOURCE, store=label, id=job_id, next_run=index, paused=next_run is None,
            problem=f"job state is {_kind(state)}, not a dict",
        )
    version = state.get("version", 1)
    missing = [name for name in _FIELDS if name not in state]
    early = None
    if type(version) is not int or version != 1:
        early = f"job state version {render(version, 40)} (APScheduler 3.x writes version 1)"
    elif missing:
        early = f"job state lacks {', '.join(missing)}"
    problems: list[str] = []

    func = state.get("func")
    target = clean(func if isinstance(func, str) else render(func, TARGET_LIMIT),
                   TARGET_LIMIT, single_line=True) if func is not None else ""
    name = _text(state.get("name"), NAME_LIMIT)
    if early is not None:
        return ScheduledJob(
            source=SOURCE, store=label, id=job_id, name=name, target=target,
            next_run=index, paused=next_run is None, problem=early,
        )
    if not isinstance(func, str):
        problems.append("func is not a 'module:name' reference")
    stored_id = state["id"]
    if not isinstance(stored_id, str) or clean(stored_id, ID_LIMIT, single_line=True) != job_id:
        problems.append(f"the state's id is {render(stored_id, 60)}")

    # Times: the state's own next_run_time, and the store's index.
    own = state["next_run_time"]
    own_epoch: float | None
    if own is None:
        own_epoch = None
    elif isinstance(own, datetime) and own.tzinfo is not None:
        own_epoch = own.timestamp()
    else:
        own_epoch = None
        problems.append(f"next_run_time is {_kind(own)}")
    if next_run is ...:
        when = own_epoch
    else:
        when = next_run
        if (own_epoch is None) != (when is None) or (
            own_epoch is not None and when is not None and abs(own_epoch - when) > NEXT_RUN_TOLERANCE
        ):
            problems.append(
                f"{INDEX_DISAGREES} {'paused' if when is None else _epoch_text(when)}, "
                f"the job state says {'paused' if own_epoch is None else _epoch_text(own_epoch)}"
            )

    try:
        trigger = describe_trigger(state["trigger"], now=time.time() if now is None else now)
    except TriggerUnreadable as exc:
        trigger = f"<{_kind(state['trigger'])}>"
        problems.append(f"trigger: {exc}")

    grace = state["misfire_grace_time"]
    if grace is None or (isinstance(grace, int | float) and not isinstance(grace, bool)
                         and math.isfinite(grace) and grace >= 0):
        grace_value = None if grace is None else float(grace)
    else:
        grace_value = None
        problems.append(f"misfire_grace_time is {_kind(grace)}")
    coalesce = state["coalesce"] if isinstance(state["coalesce"], bool) else None
    max_instances = state["max_instances"]
    if not (type(max_instances) is int and 0 < max_instances < 1 << 31):
        max_instances = None
    executor = _text(state["executor"], 100)

    args, kwargs = state["args"], state["kwargs"]
    args_ok = type(args) in (tuple, list)
    kwargs_ok = type(kwargs) is dict
    args_text = render(tuple(args) if args_ok else args, ARGS_LIMIT)
    kwargs_text = render(kwargs, ARGS_LIMIT)
    call = None
    if args_ok and kwargs_ok and all(type(k) is str for k in kwargs) and _json_able([list(args), kwargs]):
        call = ExactCall(tuple(args), dict(kwargs))

    return ScheduledJob(
        source=SOURCE,
        store=label,
        id=job_id,
        name=name,
        target=target,
        trigger=clean(trigger, TRIGGER_LIMIT, single_line=True),
        next_run=when,
        paused=when is None,
        call=call,
        args=args_text,
        kwargs=kwargs_text,
        problem=clean("; ".join(problems), PROBLEM_LIMIT, single_line=True) if problems else None,
        grace=grace_value,
        coalesce=coalesce,
        max_instances=max_instances,
        executor=executor,
    )


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    return clean(value if isinstance(value, str) else render(value, limit), limit, single_line=True)


def _kind(value: Any) -> str:
    if isinstance(value, Opaque):
        return f"a {type(value).qualified_name}"
    if value is None:
        return "None"
    cls = type(value)
    return f"a {cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else f"a {cls.__name__}"


def _epoch_text(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return render(epoch, 40)


def _json_able(value: Any, budget: int = 100_000) -> bool:
    """True if ``value`` survives a JSON round trip unchanged (what ExactCall holds)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > budget or depth > 100:
            return False
        kind = type(item)
        if item is None or kind in (bool, str):
            continue
        if kind is int:
            continue
        if kind is float:
            if not math.isfinite(item):
                return False
            continue
        if kind is list:
            stack.extend((x, depth + 1) for x in item)
        elif kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                stack.append((inner, depth + 1))
        else:
            return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


# -- triggers in words -----------------------------------------------------------------


def describe_trigger(trigger: Any, *, now: float | None = None) -> str:
    """A decoded trigger in words: "every 15 min", "cron 08:00 UTC mon-fri",
    "once at 2026-12-02 14:00 UTC", "every month on day 1 at 00:00 UTC",
    "all of (every 1 h; cron *:00 UTC sat,sun)".

    Reads attributes only, each type-checked; raises :class:`TriggerUnreadable`
    for one that is not what APScheduler writes. A trigger class taskwatch does
    not know (a placeholder) is named: "custom trigger mymod.MyTrigger".
    """
    return _describe(trigger, time.time() if now is None else now, 0)


def _describe(trigger: Any, now: float, depth: int) -> str:
    from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
    from apscheduler.triggers.combining import AndTrigger, OrTrigger
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if depth > 16:
        raise TriggerUnreadable("triggers nested too deep")
    if isinstance(trigger, Opaque):
        return f"custom trigger {type(trigger).qualified_name}"
    kind = type(trigger)
    if kind is IntervalTrigger:
        return _interval(trigger, now)
    if kind is CronTrigger:
        return _cron(trigger, now)
    if kind is DateTrigger:
        return f"once at {_when(_attr(trigger, 'run_date', datetime))}"
    if kind is CalendarIntervalTrigger:
        return _calendar(trigger, now)
    if kind in (AndTrigger, OrTrigger):
        parts = _attr(trigger, "triggers", list)
        inner = "; ".join(_describe(part, now, depth + 1) for part in parts)
        words = "all of" if kind is AndTrigger else "any of"
        return f"{words} ({inner}){_jitter(trigger)}"
    raise TriggerUnreadable(f"{_kind(trigger)} is not a trigger")


_MISSING = object()


def _attr(obj: Any, name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = getattr(obj, name, _MISSING) if name in _own_attrs(obj) else _MISSING
    if value is _MISSING or value is None and optional:
        if optional:
            return None
        raise TriggerUnreadable(f"{type(obj).__name__} has no {name}")
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _kinds(kind):
        raise TriggerUnreadable(f"{type(obj).__name__}.{name} is {_kind(value)}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _own_attrs(obj: Any) -> set[str]:
    """Names the instance itself holds (its ``__dict__`` and filled slots), never
    class attributes or properties: reading those could run code."""
    names = set(getattr(obj, "__dict__", {}) or {})
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


def _jitter(trigger: Any) -> str:
    jitter = _attr(trigger, "jitter", (int, float), optional=True)
    if not jitter:
        return ""
    return f", jitter up to {_duration(float(jitter))}"


def _duration(seconds: float) -> str:
    """``5400`` -> "1 h 30 min"; ``2`` -> "2 s"; ``0.5`` -> "0.5 s"; ``86400`` -> "1 d"."""
    if not math.isfinite(seconds) or seconds < 0:
        raise TriggerUnreadable(f"duration of {seconds!r} s")
    whole = int(seconds)
    fraction = seconds - whole
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}")
    if whole or fraction or not parts:
        parts.append(f"{whole + fraction:g} s" if fraction else f"{whole} s")
    return " ".join(parts)


def _zone(tz: Any) -> str:
    """A time zone's name. ``tz`` is a real tzinfo (the unpickler builds no other),
    so reading its name runs only the standard library's or pytz's code."""
    from zoneinfo import ZoneInfo

    if not isinstance(tz, tzinfo):
        raise TriggerUnreadable(f"time zone is {_kind(tz)}")
    if tz is UTC or tz == UTC:
        return "UTC"
    if type(tz) is ZoneInfo:
        return str(tz.key)
    if type(tz).__module__.split(".", 1)[0] == "pytz":
        return str(getattr(tz, "zone", None) or type(tz).__name__)
    if type(tz) is timezone:
        return str(tz.tzname(None))
    return type(tz).__name__


def _when(moment: datetime | date, tz: Any = None) -> str:
    """``2026-12-02 14:00 UTC`` (seconds only when not zero), in the moment's own zone."""
    if not isinstance(moment, datetime):
        return moment.isoformat()
    if moment.tzinfo is None:
        zone = _zone(tz) if tz is not None else "UTC"
    else:
        zone = _zone(moment.tzinfo)
    text = moment.strftime("%Y-%m-%d %H:%M")
    if moment.second or moment.microsecond:
        text += moment.strftime(":%S")
    return f"{text} {zone}"


def _interval(trigger: Any, now: float) -> str:
    interval = _attr(trigger, "interval", timedelta)
    seconds = interval.total_seconds()
    words = f"every {_duration(seconds)}"
    start = _attr(trigger, "start_date", datetime, optional=True)
    end = _attr(trigger, "end_date", datetime, optional=True)
    tz = _attr(trigger, "timezone", tzinfo)
    # The default start is "now + interval": worth showing only when it holds
    # the first run back by more than one interval.
    if start is not None and start.tzinfo is not None and start.timestamp() > now + seconds:
        words += f" from {_when(start, tz)}"
    if end is not None:
        words += f" until {_when(end, tz)}"
    return words + _jitter(trigger)


_SIMPLE_MINUTE = frozenset(str(n) for n in range(60))
_SIMPLE_HOURS = frozenset(str(n) for n in range(24))
_SPELLED = (("second", "sec"), ("minute", "min"), ("hour", "hour"), ("day", "day"),
            ("month", "month"), ("day_of_week", "dow"), ("week", "week"), ("year", "year"))
_ALWAYS_SPELLED = ("minute", "hour")


def _cron(trigger: Any, now: float) -> str:
    fields = _attr(trigger, "fields", list)
    text = {}
    for field in fields:
        name, value = _cron_field(field)
        text[name] = value
    tz = _zone(_attr(trigger, "timezone", tzinfo))
    hours = text.get("hour", "*").split(",")
    simple = (
        all(text.get(name, "*") == "*" for name in ("year", "month", "day", "week"))
        and text.get("second", "0") == "0"
        and text.get("minute", "*") in _SIMPLE_MINUTE
        and (hours == ["*"] or all(hour in _SIMPLE_HOURS for hour in hours))
    )
    if simple:
        minute = int(text.get("minute", "0"))
        times = ",".join(f"*:{minute:02d}" if hour == "*" else f"{int(hour):02d}:{minute:02d}"
                         for hour in hours)
        words = f"cron {times} {tz}"
        if text.get("day_of_week", "*") != "*":
            words += f" {text['day_of_week']}"
    else:
        spelled = []
        for name, short in _SPELLED:
            value = text.get(name, "*")
            if name == "second" and value == "0":
                continue
            if name in _ALWAYS_SPELLED or value != "*":
                spelled.append(f"{short}={value}")
        words = f"cron {' '.join(spelled)} {tz}"
    start = _attr(trigger, "start_date", datetime, optional=True)
    if start is not None and start.tzinfo is not None and start.timestamp() > now:
        words += f" from {_when(start)}"
    end = _attr(trigger, "end_date", datetime, optional=True)
    if end is not None:
        words += f" until {_when(end)}"
    return words + _jitter(trigger)


_FIELD_NAMES = frozenset(("year", "month", "day", "week", "day_of_week", "hour", "minute", "second"))


def _cron_field(field: Any) -> tuple[str, str]:
    from apscheduler.triggers.cron import fields as cron_fields

    if type(field) not in (cron_fields.BaseField, cron_fields.WeekField, cron_fields.DayOfMonthField,
                           cron_fields.DayOfWeekField, cron_fields.MonthField):
        raise TriggerUnreadable(f"cron field is {_kind(field)}")
    name = _attr(field, "name", str)
    if name not in _FIELD_NAMES:
        raise TriggerUnreadable(f"cron field named {render(name, 40)}")
    expressions = _attr(field, "expressions", list)
    if not expressions or len(expressions) > 64:
        raise TriggerUnreadable(f"cron field {name} has {len(expressions)} expressions")
    return name, ",".join(_cron_expression(expr) for expr in expressions)


def _small_int(obj: Any, name: str, low: int, high: int, *, optional: bool = False) -> int | None:
    value = _attr(obj, name, int, optional=optional)
    if value is None:
        return None
    if not low <= value <= high:
        raise TriggerUnreadable(f"cron {name} {value} out of range")
    return int(value)


def _cron_expression(expr: Any) -> str:
    from apscheduler.triggers.cron import expressions as ex

    kind = type(expr)
    if kind is ex.LastDayOfMonthExpression:
        return "last"
    if kind is ex.WeekdayPositionExpression:
        options = ["1st", "2nd", "3rd", "4th", "5th", "last"]
        position = _small_int(expr, "option_num", 0, len(options) - 1)
        weekday = _small_int(expr, "weekday", 0, 6)
        assert position is not None and weekday is not None
        return f"{options[position]} {ex.WEEKDAYS[weekday]}"
    step = _small_int(expr, "step", 0, 10_000, optional=True)
    if kind is ex.AllExpression:
        return f"*/{step}" if step else "*"
    if kind in (ex.RangeExpression, ex.MonthRangeExpression, ex.WeekdayRangeExpression):
        first = _small_int(expr, "first", 0, 9999)
        last = _small_int(expr, "last", 0, 9999, optional=True)
        assert first is not None
        if kind is ex.MonthRangeExpression:
            names = ex.MONTHS
            offset = 1
        elif kind is ex.WeekdayRangeExpression:
            names = ex.WEEKDAYS
            offset = 0
        else:
            names = None
            offset = 0

        def word(value: int) -> str:
            if names is None:
                return str(value)
            if not 0 <= value - offset < len(names):
                raise TriggerUnreadable(f"cron value {value} out of range")
            return names[value - offset]

        text = word(first) if last is None or last == first else f"{word(first)}-{word(last)}"
        return f"{text}/{step}" if step else text
    raise TriggerUnreadable(f"cron expression is {_kind(expr)}")


_UNITS = (("years", "year"), ("months", "month"), ("weeks", "week"), ("days", "day"))


def _calendar(trigger: Any, now: float) -> str:
    counts = {}
    for attr, unit in _UNITS:
        value = _attr(trigger, attr, int)
        if not 0 <= value <= 100_000:
            raise TriggerUnreadable(f"calendar interval {attr}={value}")
        counts[unit] = value
    used = [(unit, n) for unit, n in counts.items() if n]
    if not used:
        raise TriggerUnreadable("calendar interval of zero length")
    if len(used) == 1 and used[0][1] == 1:
        words = f"every {used[0][0]}"
    else:
        words = "every " + " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for unit, n in used)
    start = _attr(trigger, "start_date", date)
    if isinstance(start, datetime):
        start = start.date()
    units = {unit for unit, _ in used}
    if units <= {"year"}:
        words += f" on {start.strftime('%b')} {start.day}"
    elif units <= {"year", "month"}:
        words += f" on day {start.day}"
    elif units == {"week"}:
        words += f" on {start.strftime('%A')}s"
    at = _attr(trigger, "_time", clock_time)
    clock = at.strftime("%H:%M") + (at.strftime(":%S") if at.second else "")
    words += f" at {clock} {_zone(_attr(trigger, 'timezone', tzinfo))}"
    if start > datetime.fromtimestamp(now, UTC).date():
        words += f" from {start.isoformat()}"
    end = _attr(trigger, "end_date", date, optional=True)
    if end is not None:
        words += f" until {end.isoformat()}"
    return words + _jitter(trigger)


# -- the cache -------------------------------------------------------------------------


class JobDecoder:
    """``decode_job`` for one store, remembering the last ``maxsize`` rows decoded.

    Keyed by (job id, digest of the row's bytes, the store's next run): an
    unchanged row is never decoded again. ``decoded`` counts real decodes.
    Thread-safe.
    """

    def __init__(self, store_label: str, maxsize: int = 4096) -> None:
        self.store_label = store_label
        self.maxsize = maxsize
        self.decoded = 0
        self._lock = threading.Lock()
        self._rows: OrderedDict[tuple[str, bytes, float | None | EllipsisType], ScheduledJob] = OrderedDict()

    def decode(self, job_id: str, blob: bytes, *, next_run: float | None | EllipsisType = ...) -> ScheduledJob:
        digest = hashlib.blake2b(bytes(blob), digest_size=16).digest() if isinstance(
            blob, bytes | bytearray | memoryview) else b""
        key = (job_id, digest, next_run)
        with self._lock:
            hit = self._rows.get(key)
            if hit is not None:
                self._rows.move_to_end(key)
                return hit
        job = decode_job(self.store_label, job_id, blob, next_run=next_run)
        with self._lock:
            self.decoded += 1
            self._rows[key] = job
            while len(self._rows) > self.maxsize:
                self._rows.popitem(last=False)
        return job

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


def sort_jobs(jobs: list[ScheduledJob]) -> list[ScheduledJob]:
    """As APScheduler lists them: by next run, paused jobs last, then by id."""
    return sorted(jobs, key=lambda j: (j.next_run is None, j.next_run or 0.0, j.id))
