"""The ``-A`` app's own ``beat_schedule``: what beat is told to run, without its state.

Without beat's store taskwatch does not know when an entry last ran, so the
next run is estimated from now: exact for crontab and solar schedules, an
estimate ("within the interval") for plain intervals. The app's schedule
objects are never changed: Celery's three classes are read into plain specs
and computed on new objects; any other schedule class is computed on a
copy bound to taskwatch's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskwatch.sources.beat.schedules import (
    BeatEntry,
    BeatSource,
    SpecError,
    from_celery,
)
from taskwatch.text import clean

LABEL = "app"


def app_entries(conf: Any) -> list[BeatEntry]:
    """The entries of ``conf.beat_schedule`` as plain records."""
    schedule = conf.get("beat_schedule") if conf is not None else None
    if not isinstance(schedule, Mapping):
        return []
    entries = []
    for name, item in schedule.items():
        name = name if isinstance(name, str) else repr(name)
        if not isinstance(item, Mapping):
            entries.append(BeatEntry(name=name, problem=f"not a dict but a {type(item).__name__}"))
            continue
        task = item.get("task")
        problems = [] if isinstance(task, str) else ["no task name"]
        spec, user, text = None, None, ""
        try:
            spec = from_celery(item.get("schedule"))
        except SpecError:
            from celery.schedules import BaseSchedule

            value = item.get("schedule")
            if isinstance(value, BaseSchedule):
                user = value
                text = clean(repr(value), 80, single_line=True).strip("<>")
            else:
                problems.append(f"schedule is a {type(value).__name__}")
        entries.append(BeatEntry(
            name=name,
            task=task if isinstance(task, str) else "",
            spec=spec,
            args=item.get("args") or (),
            kwargs=item.get("kwargs") or {},
            options=item.get("options") or {},
            schedule_text=text,
            user_schedule=user,
            problem="; ".join(problems) or None,
        ))
    return entries


class AppBeatSource(BeatSource):
    """Beat entries from the app's configuration (``beat_schedule``)."""

    label = LABEL

    def __init__(self, conf: Any) -> None:
        self.conf = conf

    def entries(self) -> list[BeatEntry]:
        return app_entries(self.conf)
