"""`taskwatch job ACTION JOB_ID` against a live APScheduler process: through the store
and through the bridge, audited, refused under --read-only, one line for a job
that is not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.integration.aps_process import start_app
from tests.waiting import wait_until


def job(*args: str, audit: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env.update(TASKWATCH_CONFIG=os.devnull, TASKWATCH_AUDIT_LOG=str(audit))
    return subprocess.run([sys.executable, "-m", "taskwatch", "job", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_job_commands_change_the_live_scheduler_audited_and_refuse_what_they_must(fresh_redis, tmp_path: Path):
    store = fresh_redis.url(2)
    audit = tmp_path / "audit.jsonl"
    scheduler = start_app(store, jobs="fast")
    try:
        client = redis.Redis.from_url(store)
        common = ["-b", fresh_redis.url(0), "--jobstore", store]
        refused = job("pause", "fast", *common, "--read-only", "--yes", audit=audit)
        assert refused.returncode == 2 and "read-only" in refused.stderr and not audit.exists()
        missing = job("pause", "no-such-job", *common, "--yes", audit=audit)
        assert missing.returncode == 2 and "no job 'no-such-job'" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1
        no_terminal = job("remove", "hourly", *common, audit=audit)
        assert no_terminal.returncode == 2 and "--yes" in no_terminal.stderr

        paused = job("pause", "fast", *common, "--yes", "--json", audit=audit)
        assert paused.returncode == 0, paused.stderr
        line = json.loads(paused.stdout)
        assert line["action"] == "pause" and line["targets"] == ["fast"] and line["arguments"]["via"] == "store"
        assert client.zscore("apscheduler.run_times", "fast") is None
        resumed = job("resume", "fast", *common, "--yes", audit=audit)
        assert resumed.returncode == 0, resumed.stderr
        wait_until(lambda: client.zscore("apscheduler.run_times", "fast") is not None, what="fast resumed")
        removed = job("remove", "hourly", *common, "--yes", audit=audit)
        assert removed.returncode == 0, removed.stderr
        assert not client.hexists("apscheduler.jobs", "hourly")
        lines = [json.loads(x) for x in audit.read_text().splitlines()]
        assert [x["action"] for x in lines] == ["pause", "resume", "remove"] and {x["via"] for x in lines} == {"cli"}
    finally:
        scheduler.stop()


def test_run_now_goes_through_the_bridge_when_one_serves_the_store(fresh_redis, tmp_path: Path):
    store = fresh_redis.url(2)
    scheduler = start_app(store, jobs="fast", bridge=store)
    try:
        before = len(scheduler.runs("hourly"))
        done = job("run", "hourly", "-b", fresh_redis.url(0), "--jobstore", store, "--yes", "--json",
                   audit=tmp_path / "audit.jsonl")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["arguments"]["via"] == "bridge"
        scheduler.wait_for_runs("hourly", before + 1, timeout=10)
    finally:
        scheduler.stop()
