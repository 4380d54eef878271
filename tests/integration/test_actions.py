"""Actions from the command line against real prefork workers on a private Redis.

revoke (a waiting task never runs), terminate (a running task ends REVOKED),
lossless retry (a twin with identical arguments), retry-all, purge, worker
control seen in ``inspect``, read-only proven on the wire (Redis MONITOR),
and the audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.cluster import REPO_ROOT, child_env, producer, stored
from tests.waiting import wait_until

LONG = "ü" * 1500 + "x" * 1500  # 3,000 characters: events would cut it at 1,024
DEEP = {"a": [{"b": [{"c": ["deep", None, True, 1.5]}]}]}  # five levels


def taskwatch(*args: str, audit_log: Path, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = child_env({"TASKWATCH_AUDIT_LOG": str(audit_log)})
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TASKWATCH_BROKER_URL", "TASKWATCH_READ_ONLY"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "taskwatch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO_ROOT, input=stdin)




@pytest.fixture
def audit_log(tmp_path) -> Path:
    return tmp_path / "audit.jsonl"


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def urls(demo_workers) -> list[str]:
    return ["-b", demo_workers.broker_url, "--result-backend", demo_workers.result_backend]


def test_retry_sends_a_twin_with_identical_long_nested_arguments(demo_workers, audit_log):
    app = producer(demo_workers)
    # tasks.add(list, str) raises TypeError: a real failure with exact args stored (result_extended).
    failed = app.send_task("tasks.add", args=[[DEEP, LONG], "é" + LONG], kwargs={})
    wait_until(lambda: stored(demo_workers, failed.id).get("status") == "FAILURE",
               what="the task to fail in the result backend")
    original = stored(demo_workers, failed.id)

    result = taskwatch("retry", failed.id, "--yes", "--json", *urls(demo_workers), audit_log=audit_log)

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[-1])
    (twin_id,) = line["created"]
    assert twin_id != failed.id
    wait_until(lambda: stored(demo_workers, twin_id).get("status") == "FAILURE",
               what="the retried twin to run (and fail the same way)")
    twin = stored(demo_workers, twin_id)
    assert twin["args"] == original["args"] and twin["kwargs"] == original["kwargs"]
    assert twin["args"][0][1] == LONG and twin["args"][0][0] == DEEP and twin["name"] == "tasks.add"
    (entry,) = audit_lines(audit_log)
    assert (entry["action"], entry["targets"], entry["outcome"]) == ("retry", [failed.id], "ok")
    assert entry["arguments"]["args"] == original["args"]


def test_retry_all_failures_of_a_name_since_a_time(demo_workers, audit_log):
    app = producer(demo_workers)
    name_marker = uuid.uuid4().hex  # this test's own failures, told apart by their argument
    ids = [app.send_task("tasks.add", args=[[name_marker], i]).id for i in range(3)]
    wait_until(lambda: all(stored(demo_workers, i).get("status") == "FAILURE" for i in ids),
               what="three failures in the result backend")

    listing = taskwatch("retry", "--failed", "tasks.add", "--since", "10m", "--json", "--yes",
                        *urls(demo_workers), audit_log=audit_log, timeout=120)

    assert listing.returncode == 0, listing.stderr
    retried = {e["targets"][0] for e in audit_lines(audit_log) if e["action"] == "retry"}
    assert set(ids) <= retried


def test_retry_of_an_id_the_backend_does_not_have_is_refused_in_one_line(demo_workers, audit_log):
    result = taskwatch("retry", str(uuid.uuid4()), *urls(demo_workers), audit_log=audit_log)
    assert result.returncode == 2 and "not in the result backend" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not audit_log.exists()


def test_terminate_ends_a_running_task_revoked(demo_workers, audit_log):
    app = producer(demo_workers)
    running = app.send_task("tasks.crunch_numbers", args=[60])
    inspector = app.control.inspect(timeout=1.0)

    def active_ids() -> set[str]:
        return {t["id"] for tasks in (inspector.active() or {}).values() for t in tasks}

    wait_until(lambda: running.id in active_ids(), what="the slow task to start on a worker")
    result = taskwatch("revoke", running.id, "--terminate", "--yes", *urls(demo_workers), audit_log=audit_log)

    assert result.returncode == 0, result.stderr
    assert f"terminate: {running.id}" in result.stdout  # the worker that ran it says so; the other: "tasks unknown"
    wait_until(lambda: stored(demo_workers, running.id).get("status") == "REVOKED",
               what="the terminated task to be REVOKED in the result backend")
    wait_until(lambda: running.id not in active_ids(), what="the task to leave the worker")
    (entry,) = audit_lines(audit_log)
    assert entry["action"] == "terminate" and entry["arguments"]["signal"] == "SIGTERM"
    assert {r["target"] for r in entry["replies"]} == set(demo_workers.hostnames)


def test_a_revoked_waiting_task_never_runs(demo_workers, audit_log):
    app = producer(demo_workers)
    waiting = app.send_task("tasks.add", args=[1, 2], countdown=4)  # a worker holds it until its ETA
    result = taskwatch("revoke", waiting.id, "--yes", *urls(demo_workers), audit_log=audit_log)
    assert result.returncode == 0, result.stderr
    due = time.monotonic() + 6
    wait_until(lambda: time.monotonic() > due and stored(demo_workers, waiting.id).get("status"),
               timeout=30, what="the task's ETA to pass")
    assert stored(demo_workers, waiting.id)["status"] == "REVOKED"  # never SUCCESS: it did not run


def test_purge_asks_for_the_queue_name_and_empties_it(demo_workers, audit_log):
    app = producer(demo_workers)
    queue = f"purge-{uuid.uuid4().hex[:8]}"
    for i in range(5):
        app.send_task("tasks.add", args=[i, i], queue=queue)
    client = redis.Redis.from_url(demo_workers.broker_url, socket_timeout=5)
    try:
        assert client.llen(queue) == 5
        refused = taskwatch("purge", queue, *urls(demo_workers), audit_log=audit_log)
        assert refused.returncode == 2 and client.llen(queue) == 5  # no terminal, no --yes: untouched
        done = taskwatch("purge", queue, "--yes", *urls(demo_workers), audit_log=audit_log)
        assert done.returncode == 0, done.stderr
        assert "5 messages removed" in done.stdout and client.llen(queue) == 0
    finally:
        client.close()


def test_worker_control_add_and_cancel_a_consumer(demo_workers, audit_log):
    app = producer(demo_workers)
    host = demo_workers.hostnames[1]
    queue = f"extra-{uuid.uuid4().hex[:8]}"

    def consumed() -> set[str]:
        replies = app.control.inspect(destination=[host], timeout=1.0).active_queues() or {}
        return {q["name"] for q in replies.get(host, [])}

    added = taskwatch("worker", host, "add-consumer", queue, "--yes", *urls(demo_workers), audit_log=audit_log)
    assert added.returncode == 0, added.stderr
    wait_until(lambda: queue in consumed(), what=f"{host} to consume from {queue}")
    cancelled = taskwatch("worker", host, "cancel-consumer", queue, "--yes", *urls(demo_workers),
                          audit_log=audit_log)
    assert cancelled.returncode == 0, cancelled.stderr
    wait_until(lambda: queue not in consumed(), what=f"{host} to stop consuming from {queue}")
    assert [e["action"] for e in audit_lines(audit_log)] == ["worker add_consumer", "worker cancel_consumer"]


def test_read_only_refuses_and_sends_nothing_on_the_wire(fresh_redis, audit_log):
    """Redis MONITOR sees every command: a read-only revoke/retry/purge/worker sends none."""
    client = redis.Redis.from_url(fresh_redis.url(0), socket_timeout=5)
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            with client.monitor() as monitor:
                while not stop.is_set():
                    seen.append(monitor.next_command()["command"])
        except redis.RedisError:  # the server went away at the end of the test
            pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_until(lambda: client.ping() and seen, what="MONITOR to see our own PING")
    seen.clear()
    broker = ["-b", fresh_redis.url(0), "--result-backend", fresh_redis.url(1), "--read-only"]
    for argv in (["revoke", "some-id", "--terminate"], ["retry", "some-id"], ["purge", "celery"],
                 ["worker", "w@h", "shutdown"]):
        result = taskwatch(*argv, "--yes", *broker, audit_log=audit_log)
        assert result.returncode == 2, (argv, result.stderr)
        assert "read-only" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    client.ping()  # a marker: everything before it has been seen
    wait_until(lambda: any(c.upper() == "PING" for c in seen), what="MONITOR to see the marker")
    stop.set()
    client.ping()  # wakes the watcher, which then sees stop
    watcher.join(timeout=5)
    assert [c for c in seen if c.upper() != "PING"] == []
    assert not audit_log.exists()


def test_audit_lists_actions_and_masks_passwords(tmp_path):
    from taskwatch import audit
    from taskwatch.records import ActionOutcome, WorkerReply

    os.environ["TASKWATCH_AUDIT_LOG"] = str(tmp_path / "a.jsonl")
    try:
        outcome = ActionOutcome("revoke", ("t1",), {"task_id": ["t1"], "note": "redis://:hunter2@db:6379/0"},
                                replies=(WorkerReply("w@h", True, "tasks {'t1'} flagged as revoked"),))
        audit.record(outcome, broker_url="redis://:hunter2@redis:6379/0", profile="prod", via="cli")
        text = (tmp_path / "a.jsonl").read_text()
        assert "hunter2" not in text
        (line,) = audit.read()
        assert (line["action"], line["profile"], line["outcome"]) == ("revoke", "prod", "ok")
        assert line["broker"] == "redis://:****@redis:6379/0" and line["user"] and line["host"]
        shown = taskwatch("audit", audit_log=tmp_path / "a.jsonl")
        assert shown.returncode == 0 and "revoke t1" in shown.stdout and "hunter2" not in shown.stdout
        assert "w@h: tasks {'t1'} flagged as revoked" in shown.stdout
        old = taskwatch("audit", "--since", "2099-01-01T00:00:00", audit_log=tmp_path / "a.jsonl")
        assert old.returncode == 0 and "no actions recorded" in old.stdout
    finally:
        os.environ.pop("TASKWATCH_AUDIT_LOG", None)


def test_remove_takes_out_exactly_one_waiting_message(demo_workers, audit_log):
    app = producer(demo_workers)
    queue = f"poison-{uuid.uuid4().hex[:8]}"
    ids = [app.send_task("tasks.add", args=[i, i], queue=queue).id for i in range(4)]
    client = redis.Redis.from_url(demo_workers.broker_url, socket_timeout=5)
    try:
        before = client.lrange(queue, 0, -1)
        result = taskwatch("remove", queue, ids[1], "--yes", *urls(demo_workers), audit_log=audit_log)
        assert result.returncode == 0, result.stderr
        after = client.lrange(queue, 0, -1)
        assert len(after) == 3 and [m for m in before if m not in after] == [before[2]]  # LPUSH: newest first
        again = taskwatch("remove", queue, ids[1], "--yes", *urls(demo_workers), audit_log=audit_log)
        assert again.returncode == 1 and "not waiting" in again.stderr and client.llen(queue) == 3
    finally:
        client.close()


def test_run_a_beat_entry_now(demo_workers, audit_log):
    result = taskwatch("run", "nightly-sales-report", "--yes", "--json", "-A", "taskwatch.demo.app",
                       *urls(demo_workers), audit_log=audit_log)
    assert result.returncode == 0, result.stderr
    (new_id,) = json.loads(result.stdout.splitlines()[-1])["created"]
    wait_until(lambda: stored(demo_workers, new_id).get("status") in ("SUCCESS", "FAILURE"),
               what="the beat entry's task to run on a worker")
    run = stored(demo_workers, new_id)
    assert (run["name"], run["args"], run["kwargs"]) == ("reports.process_report", [1], {"fmt": "pdf"})
    unknown = taskwatch("run", "no-such-entry", "--yes", "-A", "taskwatch.demo.app", *urls(demo_workers),
                        audit_log=audit_log)
    assert unknown.returncode == 2 and "nightly-sales-report" in unknown.stderr


@pytest.mark.rabbitmq
def test_purge_on_rabbitmq(rabbitmq_url, audit_log):
    from kombu import Connection

    queue = f"taskwatch-purge-{uuid.uuid4().hex[:8]}"
    app = Celery("producer", broker=rabbitmq_url, set_as_current=False)
    with Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        try:
            for i in range(3):
                app.send_task("tasks.add", args=[i, i], queue=queue)
            wait_until(lambda: channel.queue_declare(queue=queue, passive=True).message_count == 3,
                       what="three messages ready in RabbitMQ")
            result = taskwatch("purge", queue, "--yes", "-b", rabbitmq_url, audit_log=audit_log)
            assert result.returncode == 0, result.stderr
            assert "3 messages removed" in result.stdout
            assert channel.queue_declare(queue=queue, passive=True).message_count == 0
        finally:
            channel.queue_delete(queue)


def test_worker_control_grows_and_shrinks_the_pool(demo_workers, audit_log):
    app = producer(demo_workers)
    host = demo_workers.hostnames[0]

    def processes() -> int:
        stats = app.control.inspect(destination=[host], timeout=1.0).stats() or {}
        return len(stats.get(host, {}).get("pool", {}).get("processes", []))

    before = wait_until(processes, what=f"{host}'s pool in inspect stats")
    grown = taskwatch("worker", host, "grow", "1", "--yes", *urls(demo_workers), audit_log=audit_log)
    assert grown.returncode == 0, grown.stderr
    wait_until(lambda: processes() == before + 1, what="one more pool process")
    shrunk = taskwatch("worker", host, "shrink", "1", "--yes", *urls(demo_workers), audit_log=audit_log)
    assert shrunk.returncode == 0, shrunk.stderr
    wait_until(lambda: processes() == before, what="the pool back to its size")
    unknown = taskwatch("worker", "nobody@nowhere", "grow", "1", "--yes", *urls(demo_workers),
                        audit_log=audit_log)
    assert unknown.returncode == 1 and "no answer" in unknown.stdout  # nobody acted: a failure, said so
