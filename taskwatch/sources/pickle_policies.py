"""What each kind of pickle taskwatch reads may contain: one table of rules per policy.

The restricted unpickler (:mod:`taskwatch.sources.safe_pickle`) knows no
application; each allow-list here is a table of ``(module, name) -> rule``
registered with :func:`~taskwatch.sources.safe_pickle.policy`. A new kind of
pickle is a new table here.

``DATETIME`` adds ``datetime.{datetime, date, time, timedelta, timezone}`` to
the protocol's own ``PRIMITIVES``: their ``__reduce__`` calls the class with
plain values.

``CELERY_RESULTS`` is what a Celery result backend's pickled values are
decoded with: ``PRIMITIVES`` only, so other objects (exceptions too) come
back as inert placeholders shown by name and arguments.

``CELERY_BEAT`` (at the end) is Celery beat's schedule file: see the notes there.

``APSCHEDULER_JOBS`` adds what APScheduler 3.11 job states hold (see
``apscheduler/job.py`` ``Job.__getstate__``): ``zoneinfo.ZoneInfo`` (only
as a value: it pickles as ``getattr(ZoneInfo, "_unpickle")(key, from_cache)``
at every protocol), ``builtins.getattr`` resolved to a guard that answers
*only* ``(ZoneInfo, "_unpickle")``, ``pytz._p``/``pytz._UTC`` (older stores;
placeholders when pytz is not installed), the trigger classes, the cron
field and expression classes, and for protocols 0-1
:data:`~taskwatch.sources.safe_pickle.OLD_PROTOCOL_INSTANCES`. How each
class takes its state:

* the cron fields and expressions: plain attributes (public, non-shadowing
  names; refused if the class gains a ``__setstate__``);
* Interval/Date/Cron/CalendarInterval triggers: their own ``__setstate__``
  (read in APScheduler 3.11: they only assign attributes and may build a
  ``ZoneInfo`` from a string);
* the combining triggers (And/Or): their own ``__setstate__`` is *never*
  used, because it imports any ``module:name`` its state names
  (``apscheduler.util.ref_to_obj``). Their state is applied here, with
  sub-trigger references looked up in the allowed trigger classes.
"""

from __future__ import annotations

import re
from typing import Any

from taskwatch.reprs import Opaque, _OpaqueMeta
from taskwatch.sources.pickle_rules import (
    Call,
    Guard,
    Pair,
    Refused,
    State,
    Value,
    describe,
    each,
    own_setstate,
    policy,
    short,
)
from taskwatch.sources.safe_pickle import (
    OLD_PROTOCOL_INSTANCES,
    PRIMITIVES,
    RestrictedUnpickler,
    cost,
)

__all__ = ["APSCHEDULER_JOBS", "BeatCall", "CELERY_BEAT", "CELERY_RESULTS", "DATETIME"]

_MAX_TRIGGER_DEPTH = 16
_MAX_ZONE_KEY = 128
# IANA names: "Europe/Berlin", "Etc/GMT+5", "America/Port-au-Prince", "UTC".
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-.]+){0,3}")
_ZONEINFO: Pair = ("zoneinfo", "ZoneInfo")


# -- datetime ------------------------------------------------------------------

DATETIME: frozenset[Pair] = PRIMITIVES | policy(
    each(Call(), "datetime", "datetime", "date", "time", "timedelta", "timezone")
)


# -- Celery result backends ----------------------------------------------------

CELERY_RESULTS: frozenset[Pair] = PRIMITIVES


# -- time zones: ZoneInfo through getattr, pytz ----------------------------------


def _guard_getattr(unpickler: RestrictedUnpickler) -> Any:
    """``builtins.getattr``, answering only ``getattr(ZoneInfo, "_unpickle")``.

    Never the real getattr: with it and any allowed class, a pickle could walk
    ``__class__`` / ``__subclasses__`` / ``__globals__`` to ``os.system``.
    """
    unpickle_guard: Any = None

    def guarded_getattr(obj: Any, name: Any, *default: Any) -> Any:
        nonlocal unpickle_guard
        zoneinfo = unpickler.resolve(_ZONEINFO)
        if zoneinfo is not None and obj is zoneinfo and name == "_unpickle" and not default:
            if unpickle_guard is None:
                unpickle_guard = unpickler.guard(
                    "zoneinfo.ZoneInfo._unpickle", _zoneinfo_unpickle(unpickler, zoneinfo)
                )
            return unpickle_guard
        raise Refused(f"getattr({describe(obj)}, {short(name)}) is not allowed")

    return guarded_getattr


def _zoneinfo_unpickle(unpickler: RestrictedUnpickler, zoneinfo: Any) -> Any:
    def unpickle(key: Any, from_cache: Any = True) -> Any:
        if (
            type(key) is not str
            or len(key) > _MAX_ZONE_KEY
            or not _ZONE_KEY.fullmatch(key)
            or ".." in key
        ):
            raise Refused(f"ZoneInfo key {short(key)}")
        if type(from_cache) not in (bool, int):
            raise Refused("ZoneInfo from_cache must be a bool")
        unpickler.charge(len(key) + 64)
        return zoneinfo._unpickle(key, from_cache)

    return unpickle


def _check_pytz_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if kwargs or len(args) > 4:
        raise Refused("pytz._p takes at most 4 positional arguments")
    for arg in args:
        if not (
            arg is None
            or type(arg) is str
            and len(arg) <= _MAX_ZONE_KEY
            or type(arg) is int
            and arg.bit_length() <= 32
        ):
            raise Refused(f"pytz argument {short(arg)}")


# -- APScheduler 3.x job states ---------------------------------------------------

_OWN_SETSTATE = State(own_setstate)
#: Triggers whose own __setstate__ was read (APScheduler 3.11) and only assigns attributes.
_SIMPLE_TRIGGERS = {
    **each(_OWN_SETSTATE, "apscheduler.triggers.interval", "IntervalTrigger"),
    **each(_OWN_SETSTATE, "apscheduler.triggers.date", "DateTrigger"),
    **each(_OWN_SETSTATE, "apscheduler.triggers.cron", "CronTrigger"),
    **each(_OWN_SETSTATE, "apscheduler.triggers.calendarinterval", "CalendarIntervalTrigger"),
}


def _combining_state(unpickler: RestrictedUnpickler, inst: Any, state: Any, depth: int) -> None:
    """AndTrigger/OrTrigger state, without ``ref_to_obj`` (which imports anything)."""
    if depth >= _MAX_TRIGGER_DEPTH:
        raise Refused("combining triggers nested too deep")
    if type(state) is not dict or type(state.get("triggers")) is not list:
        raise Refused("combining trigger state must be a dict with a list of triggers")
    version = state.get("version", 1)
    if type(version) is not int or version > 1:
        raise Refused(f"combining trigger state version {short(version)}")
    refs = _trigger_refs(unpickler)
    triggers = []
    for entry in state["triggers"]:
        if type(entry) not in (tuple, list) or len(entry) != 2 or type(entry[0]) is not str:
            raise Refused("combining trigger entries must be (reference, state)")
        ref, substate = entry
        cls = refs.get(ref)
        if cls is None:
            raise Refused(f"trigger reference {short(ref)} is not an allowed trigger class")
        unpickler.charge(1 + cost(substate))
        trigger = cls.__new__(cls)
        unpickler.apply_state(trigger, substate, depth + 1)
        triggers.append(trigger)
    inst.jitter = state.get("jitter")
    inst.triggers = triggers


_TRIGGERS = {
    **_SIMPLE_TRIGGERS,
    **each(State(_combining_state), "apscheduler.triggers.combining", "AndTrigger", "OrTrigger"),
}


def _trigger_refs(unpickler: RestrictedUnpickler) -> dict[str, Any]:
    """``"module:name"`` -> class, of the trigger classes this load allows."""
    refs: dict[str, Any] = {}
    for pair in _TRIGGERS:
        cls = unpickler.resolve(pair)
        if cls is not None:
            refs[f"{pair[0]}:{pair[1]}"] = cls
    return refs


APSCHEDULER_JOBS: frozenset[Pair] = (
    DATETIME
    | OLD_PROTOCOL_INSTANCES
    | policy(
        {
            _ZONEINFO: Value(),
            ("builtins", "getattr"): Guard(_guard_getattr),
            **each(Call(_check_pytz_args), "pytz", "_p", "_UTC"),
            **_TRIGGERS,
            # apscheduler/triggers/cron/fields.py (3.11): every field class.
            **each(
                State(),
                "apscheduler.triggers.cron.fields",
                "BaseField",
                "WeekField",
                "DayOfMonthField",
                "DayOfWeekField",
                "MonthField",
            ),
            # apscheduler/triggers/cron/expressions.py (3.11): every expression class.
            **each(
                State(),
                "apscheduler.triggers.cron.expressions",
                "AllExpression",
                "RangeExpression",
                "MonthRangeExpression",
                "WeekdayRangeExpression",
                "WeekdayPositionExpression",
                "LastDayOfMonthExpression",
            ),
        }
    )
)


# -- Celery beat's schedule file ---------------------------------------------------
#
# The default scheduler (celery/beat.py, ``PersistentScheduler``) keeps a shelve
# whose values are pickles: ``entries`` (name -> ``ScheduleEntry``), ``tz``,
# ``utc_enabled`` and ``__version__``. Celery 5.x pickles its classes as calls:
#
# * ``ScheduleEntry.__reduce__`` -> ``(ScheduleEntry, (name, task, last_run_at,
#   total_run_count, schedule, args, kwargs, options))``;
# * ``schedule.__reduce__`` -> ``(schedule, (run_every, relative, nowfun))``;
# * ``crontab.__reduce__`` -> ``(crontab, (minute, hour, day_of_week,
#   day_of_month, month_of_year), kwargs)``: a call, then a BUILD of the kwargs;
# * ``solar.__reduce__`` -> ``(solar, (event, lat, lon))``.
#
# None of these classes is ever imported or called while unpickling.
# ``ScheduleEntry.__init__`` does more than assign (it calls
# ``maybe_schedule``, sets ``.app`` on the schedule and asks the schedule or
# the app for "now"); ``crontab.__setstate__`` calls ``BaseSchedule.__init__``
# with whatever the state holds; ``solar.__init__`` imports ``ephem``. So each
# of the four names resolves to a guard that records the call's arguments in a
# :class:`BeatCall` (an inert placeholder of a known kind, which also takes
# crontab's one BUILD as its ``state``), after charging its cost and checking
# only how many arguments there are. What the arguments mean is checked entry
# by entry afterwards (:mod:`taskwatch.sources.beat.stored`), where the plain
# values are turned into Celery's schedule objects by their constructors: one
# odd entry is then one row with a problem, not a file that cannot be read.
#
# Time zones: ``last_run_at`` is an aware datetime in the app's zone:
# ``datetime.timezone.utc`` (a DATETIME call), a ``zoneinfo.ZoneInfo`` (through
# the ``getattr`` guard above) or, from older Celery, a pytz zone. Anything
# else (``celery.utils.time.LocalTimezone`` of ``enable_utc=False`` apps, a
# user's class) is a placeholder, which ``datetime`` refuses as a tzinfo: the
# whole ``entries`` value then fails to decode, and the source says so.


class BeatCall(Opaque):
    """A call of an allowed Celery beat class, recorded and never made.

    ``args``/``kwargs`` are the call's (already decoded, so inert); ``state``
    is what a following BUILD gave (crontab's kwargs). The class is known by
    ``type(value).qualified_name``; only this module's guards create them, so
    ``isinstance(value, BeatCall)`` cannot be forged by a pickle.
    """

    __slots__ = ()


_MAX_BEAT_ARGS = 12


def _beat_call(module: str, name: str, max_args: int) -> Guard:
    kind = _OpaqueMeta("BeatCall", (BeatCall,), {"module": module, "name": name, "__slots__": ()})

    def make(unpickler: RestrictedUnpickler) -> Any:
        def record(*args: Any, **kwargs: Any) -> BeatCall:
            if len(args) > max_args or len(kwargs) > _MAX_BEAT_ARGS:
                raise Refused(f"{module}.{name} called with {len(args)} arguments")
            unpickler.charge(8 + sum(cost(a) for a in args) + sum(cost(v) for v in kwargs.values()))
            return kind(args, kwargs)

        return record

    return Guard(make)


#: The four Celery classes a schedule file names, by the kind of call recorded.
BEAT_ENTRY: Pair = ("celery.beat", "ScheduleEntry")
BEAT_INTERVAL: Pair = ("celery.schedules", "schedule")
BEAT_CRONTAB: Pair = ("celery.schedules", "crontab")
BEAT_SOLAR: Pair = ("celery.schedules", "solar")

CELERY_BEAT: frozenset[Pair] = DATETIME | policy(
    {
        BEAT_ENTRY: _beat_call(*BEAT_ENTRY, 10),
        BEAT_INTERVAL: _beat_call(*BEAT_INTERVAL, 4),
        BEAT_CRONTAB: _beat_call(*BEAT_CRONTAB, 5),
        BEAT_SOLAR: _beat_call(*BEAT_SOLAR, 3),
        _ZONEINFO: Value(),
        ("builtins", "getattr"): Guard(_guard_getattr),
        **each(Call(_check_pytz_args), "pytz", "_p", "_UTC"),
    }
)
