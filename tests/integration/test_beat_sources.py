"""Celery beat's real state read by taskwatch's beat sources, against real schedulers.

* A real ``celery beat`` (default scheduler) writes its schedule file; the
  file source reads it while beat runs and matches what beat stored (read
  here, in the test only, with the real ``shelve`` from a copy) and the next
  runs Celery itself computes; stopped, the 2-s entry turns late; the live
  file is never changed by reading.
* Hostile schedule files run nothing and show their entries with a problem.
* A real ``celery beat -S redbeat.RedBeatScheduler`` in a private Redis.
* django-celery-beat's tables made by Django's own migrations on a private
  PostgreSQL database, rows added through Django's ORM.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
import shelve
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskwatch.demo._process import log_tail, signal_group, spawn
from taskwatch.sources.beat import beat_sources
from taskwatch.sources.beat.file import COMPANIONS, BeatFileSource
from taskwatch.sources.beat.redbeat import RedBeatSource
from taskwatch.sources.redis_url import parse_redis_url
from tests.cluster import child_env
from tests.waiting import wait_until

BEAT_APP = "tests.scripts.beat_app"


# -- helpers -------------------------------------------------------------------


class Beat:
    """A running ``celery beat`` of the test app, in its own session."""

    def __init__(self, broker_url: str, workdir: Path, *extra: str, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.log = workdir / "beat.log"
        self.schedule = workdir / "celerybeat-schedule"
        argv = [sys.executable, "-m", "celery", "-A", BEAT_APP, "beat", "--loglevel=INFO",
                "-s", str(self.schedule), "--pidfile=", *extra]
        self.process = spawn(argv, log_path=self.log, cwd=workdir,
                             env=child_env({"CELERY_BROKER_URL": broker_url, **(env or {})}))

    def tail(self) -> str:
        return log_tail(self.log, 40)

    def stop(self) -> None:
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _beat_app() -> Any:
    from tests.scripts import beat_app

    return beat_app.app


def _files(path: Path) -> list[Path]:
    return [Path(f"{path}{s}") for s in COMPANIONS if Path(f"{path}{s}").exists()]


def _fingerprint(path: Path) -> dict[str, tuple[str, int, int]]:
    """Content hash, mtime and ctime (ns) of the schedule file and its companions."""
    out = {}
    for file in _files(path):
        st = file.stat()
        out[file.name] = (hashlib.sha256(file.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_ctime_ns)
    return out


def _shelve_snapshot(path: Path, scratch: Path) -> dict[str, Any] | None:
    """Beat's own entries, read the way beat reads them (real shelve) from a copy.

    Test-only: the file is our own beat's. None while the copy is torn
    (beat writing) or not there yet.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        for file in _files(path):
            shutil.copyfile(file, scratch / file.name)
        with shelve.open(str(scratch / path.name), "r") as db:
            return {"entries": dict(db["entries"]), "tz": db.get("tz")}
    except Exception:  # noqa: BLE001 - torn copy or not written yet: try again
        return None


def _expected_next(entry: Any, app: Any) -> float:
    """Celery's next run of a stored entry: last_run_at + remaining_estimate(last_run_at),
    the schedule (beat's own unpickled object) reading last_run_at as now."""
    sched = copy.copy(entry.schedule)
    sched.app = app
    last = entry.last_run_at
    sched.nowfun = lambda: last
    return (last + sched.remaining_estimate(last)).timestamp()


# -- the default scheduler's file ------------------------------------------------------


def test_schedule_file_read_while_beat_runs_matches_beat_and_turns_late_when_stopped(
    fresh_redis, tmp_path: Path
) -> None:
    app = _beat_app()
    beat = Beat(fresh_redis.url(0), tmp_path)
    scratch = tmp_path / "scratch"
    try:
        def tick_ran_twice() -> dict[str, Any] | None:
            snap = _shelve_snapshot(beat.schedule, scratch)
            tick = snap and snap["entries"].get("tick")
            return snap if tick is not None and tick.total_run_count >= 2 else None

        wait_until(tick_ran_twice, 45, what="beat's file to show 'tick' ran twice", detail=beat.tail)

        source = BeatFileSource(beat.schedule, app.conf)

        def consistent_read() -> tuple[dict[str, Any], list[Any], float] | None:
            # beat rewrites the file every 2 s: compare with a snapshot taken on
            # both sides of our read that did not change in between.
            before = _shelve_snapshot(beat.schedule, scratch)
            now = time.time()
            jobs = source.jobs(now=now)
            after = _shelve_snapshot(beat.schedule, scratch)
            if before is None or after is None:
                return None
            runs = {n: (e.last_run_at, e.total_run_count) for n, e in before["entries"].items()}
            if runs != {n: (e.last_run_at, e.total_run_count) for n, e in after["entries"].items()}:
                return None
            return before, jobs, now

        snap, jobs, now = wait_until(consistent_read, 30, what="a read between two of beat's writes")
        assert beat.process.poll() is None, "beat must still be running"
        entries = snap["entries"]
        by_name = {job.name: job for job in jobs}
        assert set(by_name) == set(entries)  # beat's own celery.backend_cleanup included
        for name, entry in entries.items():
            job = by_name[name]
            assert job.problem is None, (name, job.problem)
            assert job.source == "beat" and job.store == f"beat file {beat.schedule}"
            assert job.target == entry.task
            assert job.last_run == entry.last_run_at.timestamp()
            assert job.total_runs == entry.total_run_count
            assert job.exact is True
            assert job.next_run == pytest.approx(_expected_next(entry, app), abs=1e-6), name
        assert by_name["tick"].total_runs >= 2
        assert {n: by_name[n].trigger for n in app.conf.beat_schedule} == {
            "every-minute": "every 60 s",
            "daily-report": "cron 08:00 daily",
            "monday-digest": "cron 09:00 mon",
            "quarter-hour": "every 15 min",
            "monthly-invoices": "cron 00:00 on day 1",
            "tick": "every 2 s",
            "berlin-sunrise": "solar sunrise at 52.5, 13.4",
        }
        assert by_name["daily-report"].queue == "reports"  # task_routes "reports.*"
        assert by_name["monday-digest"].queue == "emails"  # the entry's own option
        assert by_name["tick"].queue == "celery"
        assert by_name["daily-report"].args == "('sales',)"
        # beat_sync_every=1: the file is current, so grace is the entry's own
        assert by_name["tick"].grace == 2.0 and by_name["every-minute"].grace == 60.0
        assert source.version and source.timezone == "Europe/Berlin" and source.utc_enabled is True
    finally:
        beat.stop()

    # Stopped: the 2-s entry's next run slips into the past by more than its grace.
    final = wait_until(lambda: _shelve_snapshot(beat.schedule, scratch), 10, what="the final file")
    tick = final["entries"]["tick"]
    due = _expected_next(tick, app)
    wait_until(lambda: time.time() > due + 2.0 + 0.5, 15, what="the tick entry to be late")
    before = _fingerprint(beat.schedule)
    assert before and all(name.startswith("celerybeat-schedule") for name in before)
    now = time.time()
    late = {job.name: job for job in BeatFileSource(beat.schedule, app.conf).jobs(now=now)}["tick"]
    assert late.next_run == pytest.approx(due, abs=1e-6)
    assert late.next_run < now - late.grace
    assert late.total_runs == tick.total_run_count
    # Reading never changed the live file: same bytes, same mtime and ctime.
    assert _fingerprint(beat.schedule) == before


# -- hostile schedule files --------------------------------------------------------------


class _Command:
    """Pickles as ``os.system(command)``: what a real unpickler would run."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (self.command,)


class _Partial:
    """Pickles as ``functools.partial(os.system, command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        import functools

        return functools.partial, (os.system, self.command)


def _write_hostile_schedule(path: Path, canary: Path) -> None:
    """A schedule file (written with shelve: test-only) holding one good entry and two hostile ones.

    * ``evil-reduce``: the entry's value itself is ``os.system("touch canary")``;
    * ``evil-nowfun``: a real ScheduleEntry whose interval schedule has
      ``nowfun=partial(os.system, "touch canary")`` and no last run: Celery's
      own ``ScheduleEntry.__init__`` asks the schedule for "now", which runs it.
    """
    from celery.beat import ScheduleEntry
    from celery.schedules import crontab, schedule

    good = ScheduleEntry("good", "reports.daily", datetime(2026, 11, 30, 8, 0, tzinfo=UTC), 7,
                         crontab(hour=8, minute=0), ("sales",), {}, {}, app=_beat_app())
    hostile_schedule = schedule(timedelta(seconds=30))
    hostile_schedule.nowfun = _Partial(f"touch {canary}")

    class _EntryCall:
        def __reduce__(self) -> tuple[Any, ...]:
            return ScheduleEntry, ("evil-nowfun", "monitoring.tick", None, 0, hostile_schedule,
                                   (), {}, {})

    with shelve.open(str(path), "c") as db:
        db["entries"] = {"good": good, "evil-reduce": _Command(f"touch {canary}"),
                         "evil-nowfun": _EntryCall()}
        db["tz"] = "UTC"
        db["utc_enabled"] = True
        db["__version__"] = "5.7.0"


def test_hostile_schedule_file_runs_nothing_and_shows_its_entries_with_problems(
    tmp_path: Path,
) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "celerybeat-schedule"
    _write_hostile_schedule(path, canary)
    before = _fingerprint(path)

    jobs = {job.name: job for job in BeatFileSource(path, _beat_app().conf).jobs()}

    assert not canary.exists(), "a hostile pickle ran a command"
    assert set(jobs) == {"good", "evil-reduce", "evil-nowfun"}
    assert jobs["good"].problem is None and jobs["good"].trigger == "cron 08:00 daily"
    assert jobs["good"].total_runs == 7
    assert "not a celery.beat.ScheduleEntry" in jobs["evil-reduce"].problem
    assert "os.system" in jobs["evil-reduce"].problem or "posix.system" in jobs["evil-reduce"].problem
    assert "nowfun" in jobs["evil-nowfun"].problem and "never called" in jobs["evil-nowfun"].problem
    assert jobs["evil-nowfun"].trigger == "every 30 s"
    assert _fingerprint(path) == before

    # The payloads are live: the real shelve/pickle (in a child, on a copy) runs them.
    live = tmp_path / "live"
    live.mkdir()
    for file in _files(path):
        shutil.copyfile(file, live / file.name)
    subprocess.run([sys.executable, "-c",
                    f"import shelve; shelve.open({str(live / path.name)!r}, 'r')['entries']"],
                   capture_output=True, timeout=60, env=child_env(), cwd=tmp_path)
    assert canary.exists(), "the hostile payload should run under the real unpickler"


def test_a_schedule_file_that_is_not_one_is_a_one_line_error(tmp_path: Path) -> None:
    from taskwatch.sources.errors import SourceError

    missing = BeatFileSource(tmp_path / "nothing-here", None)
    with pytest.raises(SourceError, match="no beat schedule file"):
        missing.jobs()
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(SourceError, match="cannot read beat file") as info:
        BeatFileSource(junk, None).jobs()
    assert "\n" not in str(info.value)


# -- RedBeat -------------------------------------------------------------------------


def test_redbeat_entries_match_redbeats_meta_and_zset(fresh_redis, tmp_path: Path) -> None:
    import redis
    from redbeat.decoder import RedBeatJSONDecoder

    beat = Beat(fresh_redis.url(0), tmp_path, "-S", "redbeat.RedBeatScheduler",
                env={"TASKWATCH_TEST_REDBEAT": "1"})
    client = redis.Redis.from_url(fresh_redis.url(0))
    prefix = "rb-test:"
    try:
        def meta(name: str) -> dict[str, Any] | None:
            raw = client.hget(prefix + name, "meta")
            return json.loads(raw, cls=RedBeatJSONDecoder) if raw else None

        wait_until(lambda: (meta("tick") or {}).get("total_run_count", 0) >= 2, 45,
                   what="RedBeat's meta to show 'tick' ran twice", detail=beat.tail)

        # Beat was told -S on the command line, so taskwatch is asked with --beat redbeat.
        class Settings:
            beat_schedule = None
            beat = "redbeat"
            beat_db = None

        app = _beat_app()
        conf = {**dict(app.conf), "redbeat_redis_url": fresh_redis.url(0),
                "redbeat_key_prefix": prefix}
        builders = beat_sources(Settings(), conf, "redis://unused:1/0")
        sources = [b() for b in builders]
        source = next(s for s in sources if isinstance(s, RedBeatSource))
        assert source.label == f"redbeat {fresh_redis.url(0)}"

        def state() -> dict[str, Any]:
            names = [k.decode()[len(prefix):] for k in client.zrange(prefix + ":schedule", 0, -1)]
            return {n: (client.hget(prefix + n, "meta"), client.zscore(prefix + ":schedule", prefix + n))
                    for n in names}

        def consistent_read() -> tuple[dict[str, Any], list[Any]] | None:
            before = state()
            jobs = source.jobs()
            return (before, jobs) if state() == before else None

        stored, jobs = wait_until(consistent_read, 30, what="a read between two of RedBeat's writes")
        by_name = {job.name: job for job in jobs}
        # RedBeat cannot store the solar entry (beat_app drops it for RedBeat)
        assert set(by_name) == set(stored) >= set(app.conf.beat_schedule) - {"berlin-sunrise"}
        for name, (raw_meta, score) in stored.items():
            job = by_name[name]
            assert job.problem is None, (name, job.problem)
            assert job.source == "beat" and job.store == source.label
            entry_meta = json.loads(raw_meta, cls=RedBeatJSONDecoder) if raw_meta else {}
            last = entry_meta.get("last_run_at")
            if last is not None:
                assert job.last_run == last.timestamp()
                assert job.total_runs == entry_meta.get("total_run_count")
                # RedBeat scores its zset with whole seconds of the due time it
                # computed just after the run; ours is Celery's, from the last run.
                assert abs(job.next_run - score) <= 1.0, (name, job.next_run, score)
            else:
                assert job.last_run is None and job.next_run == score
        assert by_name["tick"].total_runs >= 2 and by_name["tick"].trigger == "every 2 s"
        assert by_name["monday-digest"].trigger == "cron 09:00 mon"
        assert by_name["monday-digest"].queue == "emails"
        for source_ in sources:
            source_.close()
    finally:
        beat.stop()
        client.close()


# -- django-celery-beat ----------------------------------------------------------------

_DJANGO_SETTINGS = """
SECRET_KEY = "taskwatch-test"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_celery_beat"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": {name!r},
              "USER": {user!r}, "HOST": {host!r}, "PORT": {port!r}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

_DJANGO_ROWS = """
import datetime as dt
import json
import django
django.setup()
from django_celery_beat.models import (ClockedSchedule, CrontabSchedule, IntervalSchedule,
                                       PeriodicTask, SolarSchedule)
utc = dt.timezone.utc
every_minute = IntervalSchedule.objects.create(every=60, period="seconds")
quarter = IntervalSchedule.objects.create(every=15, period="minutes")
daily = CrontabSchedule.objects.create(minute="0", hour="8", timezone="Europe/Berlin")
monday = CrontabSchedule.objects.create(minute="0", hour="9", day_of_week="mon")
sunrise = SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4)
once = ClockedSchedule.objects.create(clocked_time=dt.datetime(2031, 5, 4, 12, 30, tzinfo=utc))
PeriodicTask.objects.create(name="every-minute", task="monitoring.heartbeat", interval=every_minute,
    last_run_at=dt.datetime(2026, 11, 30, 10, 0, 5, tzinfo=utc), total_run_count=42)
PeriodicTask.objects.create(name="quarter-hour", task="monitoring.sweep", interval=quarter,
    enabled=False, total_run_count=3)
PeriodicTask.objects.create(name="daily-report", task="reports.daily", crontab=daily,
    args=json.dumps(["sales"]), last_run_at=dt.datetime(2026, 11, 30, 7, 0, tzinfo=utc),
    total_run_count=9)
PeriodicTask.objects.create(name="monday-digest", task="emails.digest", crontab=monday,
    queue="emails", kwargs=json.dumps({"to": "all"}))
PeriodicTask.objects.create(name="berlin-sunrise", task="lights.off", solar=sunrise)
PeriodicTask.objects.create(name="launch", task="rockets.launch", clocked=once, one_off=True)
"""


@pytest.mark.postgres
def test_django_celery_beat_tables_made_by_django_read_back(postgres_url: str, tmp_path: Path) -> None:
    import psycopg2
    import sqlalchemy as sa

    from taskwatch.sources.beat.django_db import DjangoBeatSource

    server = sa.engine.make_url(postgres_url)
    name = f"tw_beat_{secrets.token_hex(4)}"
    admin = psycopg2.connect(host=server.host, port=server.port, user=server.username,
                             password=server.password, dbname=server.database)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        (tmp_path / "tw_beat_settings.py").write_text(_DJANGO_SETTINGS.format(
            name=name, user=server.username, host=server.host, port=str(server.port)))
        env = child_env({"DJANGO_SETTINGS_MODULE": "tw_beat_settings",
                         "PYTHONPATH": f"{tmp_path}{os.pathsep}{child_env()['PYTHONPATH']}"})
        for argv in ([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                     [sys.executable, "-c", textwrap.dedent(_DJANGO_ROWS)]):
            done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr[-3000:]

        url = server.set(database=name).render_as_string(hide_password=False)
        source = DjangoBeatSource(url, _beat_app().conf)
        now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
        try:
            jobs = {job.name: job for job in source.jobs(now=now)}
        finally:
            source.close()

        assert set(jobs) == {"every-minute", "quarter-hour", "daily-report", "monday-digest",
                             "berlin-sunrise", "launch"}
        assert all(job.problem is None for job in jobs.values()), {n: j.problem for n, j in jobs.items()}
        assert {n: j.trigger for n, j in jobs.items()} == {
            "every-minute": "every 60 s",
            "quarter-hour": "every 15 min",
            "daily-report": "cron 08:00 daily Europe/Berlin",
            "monday-digest": "cron 09:00 mon",
            "berlin-sunrise": "solar sunrise at 52.5, 13.4",
            "launch": "once at 2031-05-04 12:30:00 UTC",
        }
        assert {n: j.enabled for n, j in jobs.items()} == {
            "every-minute": True, "quarter-hour": False, "daily-report": True,
            "monday-digest": True, "berlin-sunrise": True, "launch": True,
        }
        minute = jobs["every-minute"]
        assert minute.last_run == datetime(2026, 11, 30, 10, 0, 5, tzinfo=UTC).timestamp()
        assert minute.total_runs == 42
        assert minute.next_run == minute.last_run + 60 and minute.exact
        report = jobs["daily-report"]
        assert report.total_runs == 9 and report.args == "('sales',)" and report.queue == "reports"
        # 08:00 in Berlin is 07:00 UTC; it ran at 07:00 UTC on the 30th: next is the 1st.
        assert report.next_run == datetime(2026, 12, 1, 7, 0, tzinfo=UTC).timestamp()
        assert jobs["quarter-hour"].next_run is None and jobs["quarter-hour"].total_runs == 3
        assert jobs["monday-digest"].queue == "emails" and jobs["monday-digest"].last_run is None
        # Never run: the next Monday 09:00 UTC after now (Monday 30 Nov, 12:00).
        assert jobs["monday-digest"].next_run == datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp()
        assert jobs["launch"].next_run == datetime(2031, 5, 4, 12, 30, tzinfo=UTC).timestamp()
        assert jobs["launch"].options.get("one_off") is True
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_bad_beat_settings_fail_at_once_in_one_masked_line() -> None:
    from taskwatch.sources.errors import SourceError

    class Settings:
        beat_schedule = None
        beat = None
        beat_db = None

    bad_kind = Settings()
    bad_kind.beat = "cron"
    with pytest.raises(SourceError, match="unknown beat scheduler 'cron'"):
        beat_sources(bad_kind, None, "redis://localhost/0")
    bad_db = Settings()
    bad_db.beat_db = "mysql://root:hunter2@db/beat"
    with pytest.raises(SourceError) as info:
        beat_sources(bad_db, None, "redis://localhost/0")
    assert "hunter2" not in str(info.value) and "not supported" in str(info.value)
    bad_redis = Settings()
    bad_redis.beat = "redbeat"
    with pytest.raises(SourceError) as info:
        beat_sources(bad_redis, None, "redis://:hunter2@localhost:99999/0")
    assert "hunter2" not in str(info.value)
    # RedBeat named by the app's beat_scheduler is found without --beat.
    builders = beat_sources(Settings(), {"beat_scheduler": "redbeat.RedBeatScheduler"},
                            "redis://localhost:1/0")
    assert [type(b()).__name__ for b in builders] == ["RedBeatSource"]
    assert parse_redis_url("redis://localhost:1/0").db == 0

