"""`taskwatch snapshot --json` on a real two-worker cluster with a backlog,
priorities, an ETA task held by a worker and a failure from before it started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import redis
from celery import Celery

from tests.cluster import REPO_ROOT, child_env
from tests.waiting import wait_until


def _unacked_ids(broker_url: str) -> set[str]:
    """Task ids in kombu's ``unacked`` hash: messages a worker took and has not acked."""
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        return {json.loads(entry)[0]["headers"]["id"] for entry in client.hvals("unacked")}
    finally:
        client.close()


def test_snapshot_reports_backlog_priorities_unacked_and_old_failure(demo_workers):
    app = Celery("producer", broker=demo_workers.broker_url, backend=demo_workers.result_backend,
                 set_as_current=False)
    app.conf.broker_transport_options = {"queue_order_strategy": "priority"}
    # A failure that happened before taskwatch started (report 17 always fails).
    failed = app.send_task("reports.process_report", args=(17,), queue="reports")
    # A backlog nobody consumes: 5 plain messages and 3 at priority 9.
    backlog = f"backlog-{uuid.uuid4().hex[:8]}"
    for i in range(5):
        app.send_task("tasks.add", args=(i, i), queue=backlog)
    for i in range(3):
        app.send_task("tasks.add", args=(i, 100), queue=backlog, priority=9)
    # An ETA task: a worker takes it at once and holds it until its time.
    eta = app.send_task("tasks.add", args=(1, 2), queue="celery", countdown=600)
    wait_until(lambda: failed.state == "FAILURE", what="report 17 to fail")
    wait_until(lambda: _unacked_ids(demo_workers.broker_url) & {eta.id},
               what="a worker to take the ETA task (kombu's unacked hash holding it)")

    env = {k: v for k, v in child_env().items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull
    result = subprocess.run(
        [sys.executable, "-m", "taskwatch", "snapshot", "--json", "-b", demo_workers.broker_url,
         "--result-backend", demo_workers.result_backend],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)

    workers = {w["hostname"]: w for w in doc["workers"]}
    for host in demo_workers.hostnames:
        assert workers[host]["online"] is True and workers[host]["pool"] == "prefork"

    queues = {q["name"]: q for q in doc["queues"]}
    assert queues[backlog]["messages"] == 8
    assert queues[backlog]["by_priority"] == {"0": 5, "9": 3}
    assert queues["celery"]["unacked"] >= 1  # the ETA task, parked, not lost

    tasks = {t["id"]: t for t in doc["tasks"]}
    old = tasks[failed.id]
    assert old["state"] == "FAILURE" and old["name"] == "reports.process_report"
    assert "report 17 has no rows" in old["exception"]
    assert "Traceback" in old["traceback"]
    assert old["args"] == "(17,)" and old["exact_args"] is True and old["recovered"] is False
    held = tasks[eta.id]
    assert held["state"] == "RECEIVED" and held["eta"] and held["args"] == "(1, 2)"

    stats = doc["stats"]
    assert stats["gaps"] == [] and stats["tasks_seen"] >= 2 and stats["peak_rss_bytes"] > 10**6
    app.control.revoke(eta.id)  # leave nothing due later in the shared cluster
