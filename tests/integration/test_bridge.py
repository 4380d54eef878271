"""taskwatch's bridge inside a real scheduler process, found and driven through a private Redis.

The scheduler is ``tests/scripts/aps_app.py`` (an AsyncIOScheduler) with
``--bridge``; the job store is a real Redis or SQLite store. One test runs a
BackgroundScheduler in this process, to drive the bridge's other path (calls
from its own thread) and to show a dead Redis never slows the scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.jobstores.redis import RedisJobStore

from taskwatch.bridge import attach
from taskwatch.sources.apscheduler.bridge_client import BridgeClient, find_bridge
from taskwatch.sources.apscheduler.location import parse_store_url
from tests.integration.aps_process import SchedulerApp, start_app
from tests.scripts.aps_jobs import Payload
from tests.waiting import wait_until


def found(location, url: str, *, read_only: bool = False, timeout: float = 30.0) -> BridgeClient:
    return wait_until(lambda: find_bridge(location, [url], timeout=3.0, read_only=read_only), timeout,
                      what="the bridge's announcement")


@pytest.fixture
def redis_app(fresh_redis) -> Iterator[tuple[str, SchedulerApp]]:
    app = start_app(fresh_redis.url(0), jobs="control", bridge=fresh_redis.url(1), bridge_ttl=3)
    try:
        yield fresh_redis, app
    finally:
        app.stop()


def test_the_bridge_runs_pauses_resumes_and_removes_at_once(redis_app):
    server, app = redis_app
    location = parse_store_url(server.url(0).replace("127.0.0.1", "localhost"))  # the same store, named otherwise
    store = RedisJobStore(db=0, host=server.host, port=server.port)
    bridge = found(location, server.url(1))
    try:
        assert bridge.via == "bridge" and bridge.others == 0 and bridge.scheduler == "AsyncIOScheduler"
        app.wait_for_runs("fast", 1)

        # run now: runs at once, the schedule untouched
        scheduled = store.lookup_job("hourly").next_run_time
        asked = time.time()
        outcome = bridge.run_now("hourly")
        assert outcome.ok, outcome
        assert outcome.arguments["via"] == "bridge" and "schedule unchanged" in outcome.replies[0].text
        ran = app.wait_for_runs("hourly", 1)[0]
        print(f"\nrun-now via the bridge: hourly ran {ran - asked:.3f} s after the request")
        assert ran - asked < 5.0  # about 0.01 s; generous for a busy machine
        assert store.lookup_job("hourly").next_run_time == scheduled

        # the user's own object reaches the job (carry asserts it)
        asked = time.time()
        assert bridge.run_now("custom").ok
        wait_until(lambda: [t for t in app.runs("custom") if t > asked], what="custom to run")
        assert store.lookup_job("custom").args[1] == Payload("secret", [1, 2, 3])

        # pause: in the store as soon as the reply is back; no run submitted after it
        outcome = bridge.pause("fast")
        assert outcome.ok and outcome.replies[0].text == "paused", outcome
        paused_at = time.time()
        assert store.lookup_job("fast").next_run_time is None
        wait_until(lambda: len([r for r in bridge.history() if r.job_id == "boom" and r.event == "submitted"
                                and r.at > paused_at]) >= 2, what="two wakeups after the pause")
        assert [r for r in bridge.history() if r.job_id == "fast" and r.event == "submitted"
                and r.at > paused_at] == []

        # resume: scheduled again at once
        outcome = bridge.resume("fast")
        assert outcome.ok and outcome.replies[0].text.startswith("resumed: next run"), outcome
        resumed_at = time.time()
        assert store.lookup_job("fast").next_run_time is not None
        wait_until(lambda: [t for t in app.runs("fast") if t > resumed_at], what="fast to run again")

        # the history: errors with their exception and traceback, runs with their durations
        def history_complete():
            runs = bridge.history()
            errors = [r for r in runs if r.job_id == "boom" and r.event == "error"]
            executed = [r for r in runs if r.job_id == "fast" and r.event == "executed"]
            return (runs, errors, executed) if errors and executed else None

        runs, errors, executed = wait_until(history_complete, what="boom's errors and fast's runs in the history")
        assert all(r.exception == "RuntimeError: boom failed on purpose" for r in errors)
        assert all("aps_jobs.py" in r.traceback and "raise RuntimeError" in r.traceback for r in errors)
        assert all(r.duration is not None and 0 <= r.duration < 5 for r in executed + errors)
        assert all(r.store == location.label and r.scheduled for r in runs)
        assert runs[-1].at >= runs[0].at and len(bridge.history(limit=3)) <= 3

        # remove; a job that is not there is the scheduler's answer, not an error of the request
        assert bridge.remove("fast").ok
        assert store.lookup_job("fast") is None
        outcome = bridge.pause("fast")
        assert outcome.error is None and not outcome.ok
        assert outcome.replies[0].text == "no job 'fast' in job store 'default'"
    finally:
        bridge.close()
        store.shutdown()


def test_read_only_sends_nothing_to_the_bridge(redis_app):
    server, app = redis_app
    location = parse_store_url(server.url(0))
    bridge = found(location, server.url(1), read_only=True)
    client = RedisJobStore(db=1, host=server.host, port=server.port).redis
    try:
        for name, act in (("pause", bridge.pause), ("resume", bridge.resume), ("run", bridge.run_now),
                          ("remove", bridge.remove)):
            outcome = act("hourly")
            assert outcome.error == f"{name}: refused, taskwatch is read-only (--read-only); nothing was sent"
        assert client.keys("taskwatch:bridge:request:*") == []
        assert client.keys("taskwatch:bridge:*:requests") == []
        wait_until(bridge.history, what="the history (reading is allowed)")
    finally:
        bridge.close()


def test_a_killed_schedulers_bridge_is_not_found_after_its_ttl(redis_app):
    server, app = redis_app
    location = parse_store_url(server.url(0))
    found(location, server.url(1)).close()
    app.kill()
    killed = time.time()
    wait_until(lambda: find_bridge(location, [server.url(1)], timeout=3.0) is None, 30,
               what="the dead bridge's announcement to expire")
    print(f"\na killed scheduler's bridge was gone {time.time() - killed:.1f} s later (ttl 3 s)")
    assert time.time() - killed < 15


def test_a_scheduler_shut_down_withdraws_its_bridge_at_once(fresh_redis):
    app = start_app(fresh_redis.url(0), jobs="fast", bridge=fresh_redis.url(1), bridge_ttl=60)
    try:
        location = parse_store_url(fresh_redis.url(0))
        found(location, fresh_redis.url(1)).close()
        app.process.terminate()  # SIGTERM: the app shuts its scheduler down
        stopped = time.time()
        wait_until(lambda: find_bridge(location, [fresh_redis.url(1)], timeout=3.0) is None, 30,
                   what="the bridge to withdraw its announcement")
        assert time.time() - stopped < 30  # far less than its 60 s ttl
    finally:
        app.stop()


def test_a_sql_store_is_found_by_its_identity(fresh_redis, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    app = start_app(url, jobs="fast", bridge=fresh_redis.url(0), bridge_ttl=3)
    try:
        bridge = found(parse_store_url(url), fresh_redis.url(0))
        assert find_bridge(parse_store_url(f"sqlite:///{tmp_path / 'other.sqlite'}"), [fresh_redis.url(0)],
                           timeout=3.0) is None
        asked = time.time()
        assert bridge.run_now("hourly").ok
        assert app.wait_for_runs("hourly", 1)[0] - asked < 5.0
        bridge.close()
    finally:
        app.stop()


#: runs of the in-process scheduler's jobs (referenced as "module:function", as a store needs)
RUNS: list[str] = []


def record(job: str) -> None:
    RUNS.append(job)


def test_in_a_background_scheduler_a_dead_redis_never_slows_it_and_close_stops_the_threads(
        redis_server, fresh_redis):
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    keys = {"jobs_key": "bridge-test.jobs", "run_times_key": "bridge-test.run_times"}
    store = RedisJobStore(db=9, host=redis_server.host, port=redis_server.port, **keys)
    scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore(), "redis": store}, timezone=UTC)
    here = f"{__name__}:record"
    scheduler.add_job(here, "interval", seconds=30, args=["stored"], id="stored", jobstore="redis",
                      replace_existing=True)
    scheduler.add_job(here, "interval", seconds=0.1, args=["memory"], id="memory")
    scheduler.start()
    bridge = attach(scheduler, fresh_redis.url(0), ttl=3)
    try:
        location = parse_store_url(f"{redis_server.url(9)}?jobs_key=bridge-test.jobs")
        client = found(location, fresh_redis.url(0))
        assert client.scheduler == "BackgroundScheduler" and client.alias == "redis"
        assert client.pause("stored").ok and scheduler.get_job("stored").next_run_time is None
        assert client.run_now("stored").ok
        wait_until(lambda: "stored" in RUNS, what="the paused job to run once")
        assert scheduler.get_job("stored").next_run_time is None  # still paused
        assert client.resume("stored").ok and scheduler.get_job("stored").next_run_time is not None
        client.close()

        fresh_redis.kill()  # the bridge's Redis is gone: the scheduler must not notice
        before = RUNS.count("memory")
        start = time.monotonic()
        wait_until(lambda: RUNS.count("memory") >= before + 20, what="twenty runs while the bridge's Redis is down")
        elapsed = time.monotonic() - start
        print(f"\n20 runs of a 0.1 s job took {elapsed:.2f} s with the bridge's Redis down")
        assert elapsed < 2.0 * 3  # 2 s when nothing waits on Redis; generous for a busy machine
    finally:
        closing = time.monotonic()
        bridge.close()
        assert not bridge.alive and time.monotonic() - closing < 10
        scheduler.remove_job("stored", "redis")
        scheduler.shutdown(wait=False)


def test_attach_never_raises():
    from apscheduler.schedulers.background import BackgroundScheduler

    bridge = attach(BackgroundScheduler(), "nonsense://where")
    assert bridge.error and "nonsense" in bridge.error and not bridge.alive
    bridge.close()
