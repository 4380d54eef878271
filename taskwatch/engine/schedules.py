"""Upcoming runs of Celery beat entries, from the app's ``beat_schedule``.

Plain data. Without beat's own state file taskwatch does not know when an
entry last ran, so the next run is estimated from now: exact for crontab
and solar schedules, "within the interval" for plain intervals.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from taskwatch.text import clean


@dataclass
class Upcoming:
    source: str  # "beat" (later: "apscheduler")
    name: str
    task: str
    schedule: str
    next_run: float | None  # epoch seconds; None when unknown
    exact: bool  # False: an estimate (interval without last run)
    args: str


def beat_entries(conf: Any, now: float) -> list[Upcoming]:
    from celery.schedules import crontab, schedule, solar

    entries = conf.get("beat_schedule") or {}
    out: list[Upcoming] = []
    if not isinstance(entries, dict):
        return out
    now_dt = datetime.fromtimestamp(now, UTC)
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        sched = entry.get("schedule")
        next_run: float | None = None
        exact = False
        if isinstance(sched, int | float | timedelta):
            seconds = sched.total_seconds() if isinstance(sched, timedelta) else float(sched)
            description = f"every {seconds:g}s"
            next_run = now + seconds
        elif isinstance(sched, crontab | solar):
            description = _describe(sched)
            try:
                # A copy that reads *our* clock: the user's object stays untouched.
                clock = copy.copy(sched)
                clock.nowfun = lambda: now_dt
                remaining = clock.remaining_estimate(now_dt - timedelta(microseconds=1))
                next_run = float(round(now + max(remaining.total_seconds(), 0.0)))
                exact = True
            except Exception:  # noqa: BLE001 - a schedule class we cannot evaluate
                next_run = None
        elif isinstance(sched, schedule):
            seconds = sched.run_every.total_seconds()
            description = f"every {seconds:g}s"
            next_run = now + seconds
        else:
            description = type(sched).__name__
        out.append(Upcoming(
            source="beat",
            name=clean(str(name), 200, single_line=True),
            task=clean(str(entry.get("task", "?")), 200, single_line=True),
            schedule=clean(description, 80, single_line=True),
            next_run=next_run,
            exact=exact,
            args=clean(repr(tuple(entry.get("args") or ())), 200, single_line=True),
        ))
    out.sort(key=lambda u: (u.next_run is None, u.next_run or 0.0))
    return out


def _describe(sched: Any) -> str:
    """``<crontab: */5 * * * * (m/h/dM/MY/d)>`` -> ``cron */5 * * * *``."""
    text = repr(sched)
    if text.startswith("<crontab: ") and " (" in text:
        return "cron " + text[len("<crontab: "):text.index(" (")]
    return text.strip("<>")
