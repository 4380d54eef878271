"""Pause, resume, run now and remove written into real APScheduler job stores from outside.

Redis (a private server), SQLite files and PostgreSQL (a private table).
Jobs are written by APScheduler's own store classes, as the user's app
writes them, and after every taskwatch write they are loaded back by the
same classes (``lookup_job``): the expected ``next_run_time``, the args
intact (a user's own object, which taskwatch only sees as a placeholder),
and every other job's stored bytes unchanged. A live scheduler process
(``tests/scripts/aps_app.py``) then shows the writes taking effect when it
next wakes.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from taskwatch.sources.apscheduler.location import StoreLocation, parse_store_url
from taskwatch.sources.apscheduler.writes import StoreControl, utc_timestamp
from tests.integration.aps_process import SchedulerApp, start_app
from tests.scripts.aps_jobs import Payload
from tests.waiting import wait_until

BERLIN = ZoneInfo("Europe/Berlin")
PAYLOAD = Payload("secret", [1, 2, 3])


@dataclass
class Store:
    """One real store: its URL, APScheduler's own class on it, and its raw contents."""

    url: str
    aps: Any  # RedisJobStore / SQLAlchemyJobStore
    raw: Callable[[], dict[str, tuple[bytes, float | None]]]
    put_raw: Callable[[str, bytes, float | None], None]

    @property
    def location(self) -> StoreLocation:
        return parse_store_url(self.url)

    def control(self, *, read_only: bool = False) -> StoreControl:
        return StoreControl(self.location, read_only=read_only, timeout=5.0)


def redis_store(url: str) -> Store:
    from apscheduler.jobstores.redis import RedisJobStore

    location = parse_store_url(url)
    target = location.redis.targets[0]
    aps = RedisJobStore(db=target.db, host=target.host, port=target.port)
    client = aps.redis

    def raw() -> dict[str, tuple[bytes, float | None]]:
        times = {k.decode(): s for k, s in client.zrange("apscheduler.run_times", 0, -1, withscores=True)}
        return {k.decode(): (v, times.get(k.decode())) for k, v in client.hgetall("apscheduler.jobs").items()}

    def put_raw(job_id: str, blob: bytes, when: float | None) -> None:
        client.hset("apscheduler.jobs", job_id, blob)
        if when is not None:
            client.zadd("apscheduler.run_times", {job_id: when})

    return Store(url, aps, raw, put_raw)


def sql_store(url: str) -> Store:
    import sqlalchemy as sa
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    location = parse_store_url(url)
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the tests have psycopg2 (taskwatch picks either)
    aps = SQLAlchemyJobStore(url=location.sql_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                             tablename=location.table)
    aps.jobs_t.create(aps.engine, checkfirst=True)
    table = aps.jobs_t

    def raw() -> dict[str, tuple[bytes, float | None]]:
        with aps.engine.connect() as conn:
            return {row.id: (bytes(row.job_state), row.next_run_time)
                    for row in conn.execute(sa.select(table.c.id, table.c.job_state, table.c.next_run_time))}

    def put_raw(job_id: str, blob: bytes, when: float | None) -> None:
        with aps.engine.begin() as conn:
            conn.execute(table.insert().values(id=job_id, job_state=blob, next_run_time=when))

    return Store(url, aps, raw, put_raw)


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def store(request, tmp_path: Path) -> Iterator[Store]:
    if request.param == "redis":
        server = request.getfixturevalue("fresh_redis")
        made = redis_store(server.url(0))
        yield made
        made.aps.shutdown()
    elif request.param == "sqlite":
        made = sql_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
        yield made
        made.aps.shutdown()
    else:
        base = request.getfixturevalue("postgres_url")
        table = f"aps_ctl_{uuid.uuid4().hex[:12]}"
        made = sql_store(f"{base}?tablename={table}")
        try:
            yield made
        finally:
            made.aps.jobs_t.drop(made.aps.engine, checkfirst=True)
            made.aps.shutdown()


def seed(store: Store) -> dict[str, Job]:
    """The jobs a user's app would have stored (through APScheduler's own store class)."""
    scheduler = BackgroundScheduler(timezone=UTC)
    now = datetime.now(UTC)

    def job(job_id: str, trigger: Any, args: tuple[Any, ...], next_run: datetime | None, **more: Any) -> Job:
        made = Job(scheduler, id=job_id, func="tests.scripts.aps_jobs:" + ("carry" if job_id == "custom" else "tick"),
                   trigger=trigger, executor="default", args=args, kwargs=more, name=job_id.title(),
                   misfire_grace_time=1, coalesce=False, max_instances=1, next_run_time=next_run)
        store.aps.add_job(made)
        return made

    start = now + timedelta(minutes=30)
    return {
        "custom": job("custom", IntervalTrigger(hours=1, start_date=start.astimezone(BERLIN), timezone=BERLIN),
                      ("custom", PAYLOAD), start.astimezone(BERLIN)),
        "soon": job("soon", IntervalTrigger(minutes=5, timezone=UTC), ("soon",), now + timedelta(minutes=5),
                    to=["ops@example.com"]),
        "done": job("done", DateTrigger(run_date=now - timedelta(days=1), timezone=UTC), ("done",), None),
    }


def others_unchanged(before: dict[str, tuple[bytes, float | None]], after: dict[str, tuple[bytes, float | None]],
                     acted: str) -> None:
    assert {k: v for k, v in before.items() if k != acted} == {k: v for k, v in after.items() if k != acted}


def test_pause_resume_run_now_remove_keep_the_job_loadable_and_touch_nothing_else(store: Store):
    jobs = seed(store)
    control = store.control()
    try:
        # pause
        before = store.raw()
        outcome = control.pause("custom")
        assert outcome.ok, outcome
        assert outcome.action == "pause" and outcome.targets == ("custom",)
        assert outcome.arguments["via"] == "store" and outcome.arguments["store"] == store.location.label
        after = store.raw()
        others_unchanged(before, after, "custom")
        assert after["custom"][1] is None
        job = store.aps.lookup_job("custom")
        assert job.next_run_time is None and job.args == ("custom", PAYLOAD)

        # resume: the trigger's next fire time from now, in the job's zone
        before = after
        outcome = control.resume("custom")
        assert outcome.ok, outcome
        expected = jobs["custom"].trigger.get_next_fire_time(None, datetime.now(BERLIN))
        after = store.raw()
        others_unchanged(before, after, "custom")
        job = store.aps.lookup_job("custom")
        assert job.next_run_time == expected and job.next_run_time.tzinfo == BERLIN
        assert after["custom"][1] == pytest.approx(utc_timestamp(expected))
        assert job.args == ("custom", PAYLOAD) and isinstance(job.args[1], Payload)
        assert len(after["custom"][0]) - len(before["custom"][0]) < 120  # the suffix, nothing re-pickled

        # run now: due when the scheduler next wakes, the store's earliest next run ("soon", in 5 min)
        before = after
        asked = time.time()
        outcome = control.run_now("custom")
        assert outcome.ok, outcome
        after = store.raw()
        others_unchanged(before, after, "custom")
        job = store.aps.lookup_job("custom")
        soon = jobs["soon"].next_run_time.timestamp()
        assert job.next_run_time.timestamp() == pytest.approx(min(soon, before["custom"][1]), abs=1e-3)
        assert job.next_run_time.timestamp() >= asked
        assert "wakeup" in outcome.replies[0].text
        assert job.args == ("custom", PAYLOAD)

        # repeated writes replace taskwatch's suffix: the state does not grow
        sizes = set()
        for _ in range(3):
            assert control.pause("custom").ok and control.resume("custom").ok
            sizes.add(len(store.raw()["custom"][0]))
        assert len(sizes) == 1

        # remove
        before = store.raw()
        outcome = control.remove("custom")
        assert outcome.ok, outcome
        after = store.raw()
        assert "custom" not in after
        others_unchanged(before, after, "custom")
        assert store.aps.lookup_job("custom") is None
        assert store.aps.lookup_job("soon").kwargs == {"to": ["ops@example.com"]}
        # APScheduler loads the whole store (it would delete any job it failed to load)
        assert {job.id for job in store.aps.get_all_jobs()} == {"soon", "done"} == set(store.raw())
    finally:
        control.close()


def test_a_run_now_when_the_scheduler_is_overdue_is_due_at_once(store: Store):
    seed(store)
    scheduler = BackgroundScheduler(timezone=UTC)
    late = datetime.now(UTC) - timedelta(minutes=2)
    store.aps.add_job(Job(scheduler, id="late", func="tests.scripts.aps_jobs:tick",
                          trigger=IntervalTrigger(minutes=10, timezone=UTC), executor="default", args=("late",),
                          kwargs={}, name="Late", misfire_grace_time=1, coalesce=False, max_instances=1,
                          next_run_time=late))
    with_control = store.control()
    try:
        asked = time.time()
        outcome = with_control.run_now("custom")
        assert outcome.ok, outcome
        ran_at = store.aps.lookup_job("custom").next_run_time.timestamp()
        assert asked <= ran_at <= time.time()
        assert "set to now" in outcome.replies[0].text and "paused" not in outcome.replies[0].text
        # a paused job run from the store is scheduled again by its trigger after that run: said so
        outcome = with_control.run_now("done")
        assert outcome.ok and "it was paused" in outcome.replies[0].text, outcome
    finally:
        with_control.close()


def test_refusals_write_nothing(store: Store):
    seed(store)
    whole = pickle.dumps({"version": 1, "id": "broken"}, 5)
    store.put_raw("broken", whole[: len(whole) // 2], time.time() + 600)
    before = store.raw()
    control = store.control()
    try:
        for act in (control.pause, control.resume, control.run_now):
            outcome = act("broken")
            assert outcome.error and "cannot be decoded safely" in outcome.error, outcome
            assert "nothing was written" in outcome.error and "\n" not in outcome.error
            outcome = act("nope")
            assert outcome.error and "is not in the store" in outcome.error, outcome
        outcome = control.resume("done")
        assert outcome.error and "no next run" in outcome.error and "date job" in outcome.error, outcome
        assert control.remove("nope").error
        assert store.raw() == before
        # Removing is the one action that needs nothing of the state: a broken job can go.
        assert control.remove("broken").ok
        assert set(store.raw()) == set(before) - {"broken"}
    finally:
        control.close()


def test_read_only_writes_nothing(store: Store):
    seed(store)
    before = store.raw()
    control = store.control(read_only=True)
    try:
        for name, act in (("pause", control.pause), ("resume", control.resume), ("run", control.run_now),
                          ("remove", control.remove)):
            outcome = act("custom")
            assert not outcome.ok and outcome.action == name
            assert outcome.error == f"{name}: refused, taskwatch is read-only (--read-only); nothing was written"
        assert store.raw() == before
    finally:
        control.close()


# -- a live scheduler ----------------------------------------------------------------------


@pytest.fixture(params=["redis", "sqlite"])
def live(request, tmp_path: Path) -> Iterator[tuple[Store, SchedulerApp]]:
    if request.param == "redis":
        url = request.getfixturevalue("fresh_redis").url(0)
        made = redis_store(url)
    else:
        url = f"sqlite:///{tmp_path / 'live.sqlite'}"
        made = sql_store(url)
    app = start_app(url, jobs="control")
    try:
        yield made, app
    finally:
        app.stop()
        made.aps.shutdown()


def quiet_moment(store: Store, app: SchedulerApp) -> None:
    """Just after the scheduler's wakeup has run ``fast`` and written its jobs back.

    A write from outside can be overwritten by the scheduler writing the
    same job back in the same instant (the module docstring of ``writes``);
    tests act between its wakeups so that is not what they measure.
    """
    count = len(app.runs("fast")) + 1
    last = app.wait_for_runs("fast", count)[-1]
    wait_until(lambda: all((store.raw().get(j, (b"", None))[1] or 0) > last + 1 for j in ("fast", "boom")),
               what="the scheduler to write its jobs back", detail=app.log_tail)


def test_a_live_scheduler_sees_outside_writes_when_it_next_wakes(live):
    store, app = live
    control = store.control()
    try:
        app.wait_for_runs("fast", 2)

        # pause: no run after it, while boom (same interval) goes on
        quiet_moment(store, app)
        assert control.pause("fast").ok
        paused_at = time.time()
        assert store.aps.lookup_job("fast").next_run_time is None
        wait_until(lambda: len([t for t in app.runs("boom") if t > paused_at]) >= 2,
                   what="two wakeups after the pause", detail=app.log_tail)
        assert [t for t in app.runs("fast") if t > paused_at] == []

        # resume: runs again
        outcome = control.resume("fast")
        assert outcome.ok, outcome
        resumed_at = time.time()
        wait_until(lambda: [t for t in app.runs("fast") if t > resumed_at], what="fast to run again after resume",
                   detail=app.log_tail)

        # run now: the hourly job runs at the scheduler's next wakeup, the user's object intact
        for job_id in ("hourly", "custom"):
            quiet_moment(store, app)
            asked = time.time()
            outcome = control.run_now(job_id)
            assert outcome.ok, outcome
            ran = wait_until(lambda job_id=job_id, asked=asked: [t for t in app.runs(job_id) if t > asked],
                             what=f"{job_id} to run after run-now", detail=app.log_tail)
            print(f"\nrun-now via the store ({store.location.kind}): {job_id} ran {ran[0] - asked:.3f} s later")
            assert ran[0] - asked < 10
            # the trigger continues from that run (an interval re-anchors on it)
            wait_until(lambda job_id=job_id, asked=asked: store.aps.lookup_job(job_id).next_run_time.timestamp() > asked + 3000,
                       what=f"{job_id}'s next run an hour on")
        assert store.aps.lookup_job("custom").args == ("custom", PAYLOAD)

        # remove: gone, never runs again
        quiet_moment(store, app)
        assert control.remove("fast").ok
        removed_at = time.time()
        assert store.aps.lookup_job("fast") is None
        wait_until(lambda: len([t for t in app.runs("boom") if t > removed_at]) >= 2,
                   what="two wakeups after the removal", detail=app.log_tail)
        assert [t for t in app.runs("fast") if t > removed_at] == []
        assert "fast" not in store.raw()
    finally:
        control.close()
