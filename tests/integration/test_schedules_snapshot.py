"""Issue 11's "done when", end to end through the CLI: `taskwatch snapshot --json` with several job stores.

A live APScheduler process with its jobs in a Redis store on db 2 (the classic
setup), a second one on a SQLite store, and a SQLite store holding a hostile
row: every job listed with the store's own next run, the hostile row shown as
undecodable without running, and every store left byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import redis

from tests.cluster import child_env
from tests.integration.aps_process import start_app
from tests.unit.test_apscheduler_decode import getattr_walk_payload, reduce_payload
from tests.waiting import wait_until

CLASSIC = {"every-15-min", "digest-0800", "once", "monthly", "weekend-hourly", "twice-daily"}


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _sqlite_rows(path: Path) -> dict[str, float | None]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("select id, next_run_time from apscheduler_jobs").fetchall())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_snapshot_lists_every_job_of_every_store_and_changes_none(fresh_redis, tmp_path: Path) -> None:
    redis_url = fresh_redis.url(2)
    sqlite_path = tmp_path / "jobs.sqlite"
    evil_path = tmp_path / "evil.sqlite"
    canary = tmp_path / "canary"
    on_redis = start_app(redis_url, jobs="classic")
    on_sqlite = start_app(f"sqlite:///{sqlite_path}", jobs="classic")
    try:
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: client.hlen("apscheduler.jobs") == len(CLASSIC), 30, what="the Redis store's jobs")
        wait_until(lambda: sqlite_path.exists() and len(_sqlite_rows(sqlite_path)) == len(CLASSIC), 30,
                   what="the SQLite store's jobs")
        # The hostile store: a real APScheduler table with rows taskwatch must not run.
        with sqlite3.connect(evil_path) as db:
            db.execute("create table apscheduler_jobs (id varchar(191) primary key, "
                       "next_run_time float, job_state blob not null)")
            db.execute("insert into apscheduler_jobs values (?, ?, ?)", ("evil-reduce", 1.0, reduce_payload(canary)))
            db.execute("insert into apscheduler_jobs values (?, ?, ?)",
                       ("evil-getattr", 2.0, getattr_walk_payload(canary)))
        evil_before = _digest(evil_path)
        # The live schedulers rewrite their stores only when a job runs (none is due for minutes).
        redis_before = {key: client.dump(key) for key in ("apscheduler.jobs", "apscheduler.run_times")}
        redis_scores = {k.decode(): s for k, s in client.zrange("apscheduler.run_times", 0, -1, withscores=True)}
        sqlite_before = _sqlite_rows(sqlite_path)

        done = subprocess.run(
            [sys.executable, "-m", "taskwatch", "snapshot", "--json", "-b", fresh_redis.url(0),
             "--jobstore", redis_url, "--jobstore", f"sqlite:///{sqlite_path}",
             "--jobstore", f"sqlite:///{evil_path}"],
            capture_output=True, text=True, timeout=120, env=child_env(),
        )
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        by_store: dict[str, dict[str, dict]] = {}
        for job in document["schedules"]:
            by_store.setdefault(job["store"], {})[job["id"]] = job
        assert set(by_store[redis_url]) == CLASSIC
        assert set(by_store[f"sqlite:///{sqlite_path}"]) == CLASSIC
        # Next runs are the store's own (the document keeps milliseconds).
        for job_id, score in redis_scores.items():
            assert abs(_epoch(by_store[redis_url][job_id]["next_run"]) - score) < 0.001
        for job_id, next_run in sqlite_before.items():
            assert abs(_epoch(by_store[f"sqlite:///{sqlite_path}"][job_id]["next_run"]) - next_run) < 0.001
        digest = by_store[redis_url]["digest-0800"]
        assert digest["source"] == "apscheduler" and digest["func"] == "tests.scripts.aps_jobs:tick"
        assert digest["trigger"].startswith("cron 08:00") and digest["misfire_grace_time"] == 300
        assert digest["paused"] is False and digest["error"] is None and digest["overdue"] is False
        evil = by_store[f"sqlite:///{evil_path}"]
        assert set(evil) == {"evil-reduce", "evil-getattr"}
        assert all(job["error"] for job in evil.values())
        assert not canary.exists()

        # Nothing changed anywhere.
        assert {key: client.dump(key) for key in redis_before} == redis_before
        assert _sqlite_rows(sqlite_path) == sqlite_before
        assert _digest(evil_path) == evil_before
        stores = {s["store"]: s for s in document["schedule_stores"]}
        assert all(s["error"] is None for s in stores.values())
    finally:
        on_redis.stop()
        on_sqlite.stop()


def test_snapshot_gives_beats_own_last_and_next_runs_merged_with_the_app_and_late_once_beat_stopped(
    fresh_redis, tmp_path: Path
) -> None:
    """Issue 12's "done when", through the CLI: -A APP --beat-schedule FILE."""
    from tests.integration.test_beat_sources import (
        BEAT_APP,
        Beat,
        _beat_app,
        _expected_next,
        _shelve_snapshot,
    )

    app = _beat_app()
    beat = Beat(fresh_redis.url(0), tmp_path)
    scratch = tmp_path / "scratch"
    try:
        wait_until(lambda: (s := _shelve_snapshot(beat.schedule, scratch)) and s["entries"].get("tick")
                   and s["entries"]["tick"].total_run_count >= 2, 45, what="beat to run tick twice",
                   detail=beat.tail)
    finally:
        beat.stop()
    entries = _shelve_snapshot(beat.schedule, scratch)["entries"]
    tick_due = _expected_next(entries["tick"], app)
    wait_until(lambda: time.time() > tick_due + 3.0, 15, what="tick to be late")
    done = subprocess.run(
        [sys.executable, "-m", "taskwatch", "snapshot", "--json", "-A", BEAT_APP, "-b", fresh_redis.url(0),
         "--beat-schedule", str(beat.schedule)],
        capture_output=True, text=True, timeout=120, env=child_env(), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    schedules = json.loads(done.stdout)["schedules"]
    names = [job["name"] for job in schedules]
    assert len(names) == len(set(names))  # the app's entries merged with beat's, by name
    by_name = {job["name"]: job for job in schedules}
    assert set(by_name) == set(entries)
    for name, entry in entries.items():
        job = by_name[name]
        assert job["source"] == "beat" and job["store"] == f"beat file {beat.schedule}"
        assert job["task"] == entry.task and job["total_runs"] == entry.total_run_count
        assert abs(_epoch(job["last_run"]) - entry.last_run_at.timestamp()) < 0.001, name
        assert abs(_epoch(job["next_run"]) - _expected_next(entry, app)) < 0.001, name
    assert by_name["tick"]["late"] is True
    assert by_name["monthly-invoices"]["late"] is False and by_name["daily-report"]["queue"] == "reports"
