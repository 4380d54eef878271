"""Beat entries as plain data: words, next runs, grace, and hostile values that stay inert."""

from __future__ import annotations

import json
import pickle
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.beat import ScheduleEntry
from celery.schedules import crontab, schedule

from taskwatch.sources.beat.app import AppBeatSource
from taskwatch.sources.beat.redbeat import entry_from_hash
from taskwatch.sources.beat.schedules import (
    BeatEntry,
    Clocked,
    Interval,
    crontab_spec,
    describe,
    grace,
    solar_spec,
    to_job,
)
from taskwatch.sources.beat.stored import entry_from_call
from taskwatch.sources.pickle_policies import CELERY_BEAT
from taskwatch.sources.safe_pickle import Refused, loads

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _app() -> Celery:
    app = Celery("unit-beat", set_as_current=False)
    app.conf.timezone = "UTC"
    return app


def _entries(value: dict[str, Any]) -> dict[str, BeatEntry]:
    decoded = loads(pickle.dumps(value, 3), allow=CELERY_BEAT)
    return {k: entry_from_call(k, v) for k, v in decoded.items()}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (Interval(2), "every 2 s"),
        (Interval(60), "every 60 s"),
        (Interval(90), "every 90 s"),
        (Interval(900), "every 15 min"),
        (Interval(7200), "every 2 h"),
        (crontab_spec(0, 8), "cron 08:00 daily"),
        (crontab_spec("0", "9", "mon"), "cron 09:00 mon"),
        (crontab_spec(0, 9, 1), "cron 09:00 mon"),
        (crontab_spec(0, 0, "*", "1"), "cron 00:00 on day 1"),
        (crontab_spec("*/15"), "cron */15 * * * *"),
        (crontab_spec(30, 2, "1-5"), "cron 02:30 1-5"),
        (solar_spec("sunrise", 52.5, 13.4), "solar sunrise at 52.5, 13.4"),
        (Clocked(datetime(2031, 5, 4, 12, 30, tzinfo=UTC)), "once at 2031-05-04 12:30:00 UTC"),
    ],
)
def test_schedules_in_words(spec: Any, words: str) -> None:
    assert describe(spec) == words


def test_grace_is_a_minute_or_the_interval_plus_the_stores_lag() -> None:
    assert grace(Interval(2)) == 2
    assert grace(Interval(600)) == 60
    assert grace(crontab_spec(0, 8)) == 60
    assert grace(Interval(2), lag=180) == 182


def test_real_entries_decode_with_celerys_next_runs() -> None:
    app = _app()
    last = NOW - timedelta(seconds=10)
    decoded = _entries({
        "tick": ScheduleEntry("tick", "t.tick", last, 5, schedule(30), (1, "a"), {"k": 2},
                              {"queue": "q"}, app=app),
        "cron": ScheduleEntry("cron", "t.cron", last, 1, crontab(minute="*/15"), app=app),
    })
    tick = to_job(decoded["tick"], "f", NOW.timestamp(), UTC, None)
    assert tick.problem is None and tick.next_run == (last + timedelta(seconds=30)).timestamp()
    assert tick.total_runs == 5 and tick.queue == "q" and tick.exact
    assert tick.call is not None and tick.call.args == (1, "a") and tick.call.kwargs == {"k": 2}
    cron = to_job(decoded["cron"], "f", NOW.timestamp(), UTC, None)
    assert cron.next_run == datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


def test_odd_values_are_problems_of_their_own_entry_only() -> None:
    app = _app()
    good = ScheduleEntry("good", "t.good", NOW, 1, schedule(5), app=app)
    long_cron = crontab(minute="0")
    long_cron._orig_minute = "1," * 1000 + "2"  # pickled as given; Celery's parser never sees it
    decoded = _entries({
        "good": good,
        "long": ScheduleEntry("long", "t.long", NOW, 1, long_cron, app=app),
        "notask": ScheduleEntry("notask", 17, NOW, 1, schedule(5), app=app),
        "plain": {"task": "x"},
    })
    assert decoded["good"].problem is None
    assert "cron field of 2001 characters" in decoded["long"].problem
    assert "task is" in decoded["notask"].problem
    assert "not a celery.beat.ScheduleEntry but a builtins.dict" == decoded["plain"].problem


def test_guarded_names_refuse_calls_with_too_many_arguments() -> None:
    data = (b"\x80\x04ccelery.beat\nScheduleEntry\n(" + b"N" * 11 + b"tR.")
    with pytest.raises(Refused):
        loads(data, allow=CELERY_BEAT)


def test_a_crontab_state_may_only_carry_nowfun_and_app() -> None:
    data = (b"\x80\x04}(X\x04\x00\x00\x00cronccelery.schedules\ncrontab\n(X\x01\x00\x00\x000tR"
            b"}X\x05\x00\x00\x00extraNsbu.")
    (value,) = loads(data, allow=CELERY_BEAT).values()
    from taskwatch.sources.beat.schedules import SpecError
    from taskwatch.sources.beat.stored import schedule_spec

    with pytest.raises(SpecError, match="unexpected state"):
        schedule_spec(value)


def test_app_source_never_changes_the_apps_schedule_objects() -> None:
    app = _app()
    cron = crontab(hour=8, minute=0)
    every = schedule(30)
    app.conf.beat_schedule = {"a": {"task": "x", "schedule": cron}, "b": {"task": "y", "schedule": every}}
    jobs = {j.name: j for j in AppBeatSource(app.conf).jobs(now=NOW.timestamp())}
    assert cron.nowfun is None and every.nowfun is None and "tz" not in vars(cron)
    assert jobs["a"].next_run == datetime(2026, 12, 1, 8, 0, tzinfo=UTC).timestamp() and jobs["a"].exact
    assert jobs["b"].next_run == NOW.timestamp() + 30 and not jobs["b"].exact


def test_solar_without_ephem_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ephem", None)  # as if it were not installed
    job = to_job(BeatEntry("sun", "t", solar_spec("sunset", 10, 20)), "f", NOW.timestamp(), UTC, None)
    assert job.next_run is None and "ephem" in job.problem and job.trigger == "solar sunset at 10, 20"


def _meta(last: str | None) -> bytes:
    return json.dumps({"last_run_at": None if last is None else json.loads(last),
                       "total_run_count": 3}).encode()


def test_redbeat_json_is_read_as_data() -> None:
    when = json.dumps({"__type__": "datetime", "year": 2026, "month": 11, "day": 30, "hour": 11,
                       "minute": 59, "second": 50, "microsecond": 0, "timezone": "UTC"})
    definition = json.dumps({"name": "tick", "task": "t", "schedule": {
        "__type__": "interval", "every": 30, "relative": False}, "enabled": True}).encode()
    entry = entry_from_hash("tick", definition, _meta(when), 1.0)
    job = to_job(entry, "r", NOW.timestamp(), UTC, None)
    assert job.problem is None and job.next_run == datetime(2026, 11, 30, 12, 0, 20, tzinfo=UTC).timestamp()

    hostile_zone = when.replace('"UTC"', '"../../../../etc/passwd"')
    assert "bad time zone" in entry_from_hash("tick", definition, _meta(hostile_zone), None).problem
    rrule = json.dumps({"name": "r", "task": "t", "schedule": {"__type__": "rrule", "freq": 3}}).encode()
    rrule_job = to_job(entry_from_hash("r", rrule, None, 1_800_000_000.0), "r", NOW.timestamp(), UTC, None)
    assert rrule_job.next_run == 1_800_000_000.0 and "rrule" in rrule_job.problem
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert "not RedBeat's JSON" in entry_from_hash("deep", deep, None, None).problem
    disabled = json.dumps({"name": "off", "task": "t", "enabled": False, "schedule": {
        "__type__": "crontab", "minute": "0", "hour": "8", "day_of_week": "*",
        "day_of_month": "*", "month_of_year": "*"}}).encode()
    off = to_job(entry_from_hash("off", disabled, None, 5.0), "r", NOW.timestamp(), UTC, None)
    assert not off.enabled and off.paused and off.next_run is None and off.trigger == "cron 08:00 daily"
