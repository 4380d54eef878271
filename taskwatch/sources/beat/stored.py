"""Decoded schedule-file values (``BeatCall`` records) turned into :class:`BeatEntry` records.

The restricted unpickler hands back Celery's classes as inert records of the
call the pickle asked for (:class:`~taskwatch.sources.pickle_policies.BeatCall`,
see ``CELERY_BEAT``). Here each one is checked as an entry on its own: a
value that is not a ``ScheduleEntry`` call, a schedule of a class taskwatch
does not compute, odd field types: that entry gets a ``problem``, the others
are unaffected. Nothing here calls a decoded object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from taskwatch.reprs import Opaque
from taskwatch.sources.beat.schedules import (
    MAX_NAME,
    BeatEntry,
    Spec,
    SpecError,
    crontab_spec,
    interval,
    solar_spec,
)
from taskwatch.sources.pickle_policies import (
    BEAT_CRONTAB,
    BEAT_ENTRY,
    BEAT_INTERVAL,
    BEAT_SOLAR,
    BeatCall,
)
from taskwatch.sources.pickle_rules import describe as describe_object
from taskwatch.text import clean

_ENTRY_FIELDS = ("name", "task", "last_run_at", "total_run_count", "schedule", "args",
                 "kwargs", "options")
_CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
_SOLAR_FIELDS = ("event", "lat", "lon")
_INTERVAL_FIELDS = ("run_every", "relative", "nowfun", "app")
#: crontab's BUILD state is the kwargs it was made with (``nowfun``, ``app``); both are
#: replaced by taskwatch's own clock and zone.
_CRONTAB_STATE = frozenset({"nowfun", "app"})


def _pair(value: Any) -> tuple[str, str] | None:
    if isinstance(value, BeatCall):
        cls = type(value)
        return cls.__dict__.get("module", "?"), cls.__dict__.get("name", "?")
    return None


def _fields(call: BeatCall, names: tuple[str, ...]) -> dict[str, Any]:
    if len(call.args) > len(names):
        raise SpecError(f"{type(call).qualified_name} with {len(call.args)} arguments")
    values = dict(zip(names, call.args, strict=False))
    for key, value in call.kwargs.items():
        if key not in names or key in values:
            raise SpecError(f"{type(call).qualified_name} with argument {clean(key, 40)!r}")
        values[key] = value
    return values


def schedule_spec(value: Any) -> Spec:
    """The spec of a decoded ``schedule`` field; :class:`SpecError` when it cannot be one."""
    pair = _pair(value)
    if pair == BEAT_INTERVAL:
        fields = _fields(value, _INTERVAL_FIELDS)
        if value.state is not None:
            raise SpecError("a schedule with a state")
        return interval(fields.get("run_every"), fields.get("relative", False))
    if pair == BEAT_CRONTAB:
        fields = _fields(value, _CRONTAB_FIELDS)
        state = value.state
        if state is not None and not (
            type(state) is dict and all(isinstance(k, str) for k in state)
            and set(state) <= _CRONTAB_STATE
        ):
            raise SpecError("a crontab with an unexpected state")
        return crontab_spec(**fields)
    if pair == BEAT_SOLAR:
        if value.state is not None:
            raise SpecError("a solar schedule with a state")
        fields = _fields(value, _SOLAR_FIELDS)
        return solar_spec(fields.get("event"), fields.get("lat"), fields.get("lon"))
    if pair is None and not isinstance(value, Opaque):
        try:
            return interval(value)  # a number or timedelta, as maybe_schedule takes them
        except SpecError:
            pass
    raise SpecError(f"schedule is {describe_object(value)}, not one of Celery's "
                    "schedule, crontab or solar (its code is never run)")


def _nowfun(value: Any) -> Any:
    """The ``nowfun`` a schedule was pickled with (Celery calls it for "now"; taskwatch never does)."""
    pair = _pair(value)
    if pair == BEAT_INTERVAL:
        found = value.args[2] if len(value.args) > 2 else value.kwargs.get("nowfun")
    elif pair == BEAT_CRONTAB and type(value.state) is dict:
        found = value.state.get("nowfun")
    else:
        found = None
    return found


def entry_from_call(key: Any, value: Any) -> BeatEntry:
    """One ``entries`` item of a schedule file."""
    name = key if isinstance(key, str) else clean(repr(key), MAX_NAME, single_line=True)
    if _pair(value) != BEAT_ENTRY:
        return BeatEntry(name=name, problem=f"not a celery.beat.ScheduleEntry but {describe_object(value)}")
    try:
        fields = _fields(value, _ENTRY_FIELDS)
    except SpecError as exc:
        return BeatEntry(name=name, problem=str(exc))
    problems: list[str] = []
    if value.state is not None:
        problems.append("the entry has a state it should not have (ignored)")
    task = fields.get("task")
    if not isinstance(task, str):
        problems.append(f"task is {describe_object(task)}")
        task = ""
    last = fields.get("last_run_at")
    if last is not None and not isinstance(last, datetime):
        problems.append(f"last_run_at is {describe_object(last)}")
        last = None
    count = fields.get("total_run_count")
    if count is not None and not (type(count) is int and count >= 0):
        problems.append(f"total_run_count is {describe_object(count)}")
        count = None
    spec: Spec | None = None
    text = ""
    nowfun = _nowfun(fields.get("schedule"))
    if nowfun is not None:
        problems.append(f"its schedule's nowfun ({describe_object(nowfun)}) is ignored, never called")
    try:
        spec = schedule_spec(fields.get("schedule"))
    except SpecError as exc:
        problems.append(str(exc))
        text = describe_object(fields.get("schedule"))
    args, kwargs, options = fields.get("args") or (), fields.get("kwargs") or {}, fields.get("options") or {}
    if not isinstance(args, list | tuple):
        problems.append(f"args is {describe_object(args)}")
        args = ()
    if not isinstance(kwargs, Mapping):
        problems.append(f"kwargs is {describe_object(kwargs)}")
        kwargs = {}
    if not isinstance(options, Mapping):
        problems.append(f"options is {describe_object(options)}")
        options = {}
    return BeatEntry(
        name=name,
        task=task,
        spec=spec,
        args=args,
        kwargs=kwargs,
        options=options,
        last_run=last,
        total_runs=count,
        schedule_text=text,
        problem="; ".join(problems) or None,
    )
