"""`taskwatch snapshot` against real workers on real brokers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import redis

from tests.cluster import child_env, start_worker, wait_for_ping


def snapshot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in child_env().items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull
    return subprocess.run(
        [sys.executable, "-m", "taskwatch", "snapshot", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )


def snapshot_json(*args: str, cwd: Path | None = None) -> dict:
    result = snapshot("--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_document_lists_both_workers_online(demo_workers):
    doc = snapshot_json("-b", demo_workers.broker_url)
    assert doc["schema"] == 1
    assert datetime.fromisoformat(doc["taken_at"]).tzinfo is not None
    assert doc["broker"] == demo_workers.broker_url
    workers = {w["hostname"]: w for w in doc["workers"]}
    alpha, beta = demo_workers.hostnames
    assert workers[alpha]["online"] is True and workers[beta]["online"] is True
    assert set(workers[alpha]["queues"]) == {"celery", "emails", "monitoring"}
    assert set(workers[beta]["queues"]) == {"reports", "celery"}
    assert (workers[alpha]["pool"], workers[alpha]["concurrency"]) == ("prefork", 2)
    assert workers[beta]["concurrency"] == 1


def test_text_output_is_a_table(demo_workers):
    result = snapshot("-b", demo_workers.broker_url)
    assert result.returncode == 0, result.stderr
    assert "WORKER" in result.stdout
    for host in demo_workers.hostnames:
        assert host in result.stdout


def _write_app_module(folder: Path, name: str, broker_url: str, attr: str = "app") -> None:
    (folder / f"{name}.py").write_text(
        "from celery import Celery\n"
        f"{attr} = Celery('proj', broker={broker_url!r})\n"
    )


def test_dash_a_module_uses_the_apps_broker(demo_workers, tmp_path):
    _write_app_module(tmp_path, "proj", demo_workers.broker_url)
    doc = snapshot_json("-A", "proj", cwd=tmp_path)
    assert {w["hostname"] for w in doc["workers"] if w["online"]} >= set(demo_workers.hostnames)


def test_dash_a_module_colon_attr(demo_workers, tmp_path):
    _write_app_module(tmp_path, "jobs", demo_workers.broker_url, attr="queue_app")
    doc = snapshot_json("-A", "jobs:queue_app", cwd=tmp_path)
    assert len([w for w in doc["workers"] if w["online"]]) >= 2


def test_dash_a_package_finds_package_dot_celery(demo_workers, tmp_path):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write_app_module(package, "celery", demo_workers.broker_url)
    doc = snapshot_json("-A", "shop", cwd=tmp_path)
    assert len([w for w in doc["workers"] if w["online"]]) >= 2


def test_broker_flag_beats_the_apps_broker(demo_workers, tmp_path):
    # The app points at a dead port; -b wins, as with `celery -A proj -b ...`.
    _write_app_module(tmp_path, "proj", "redis://127.0.0.1:1/0")
    doc = snapshot_json("-A", "proj", "-b", demo_workers.broker_url, cwd=tmp_path)
    assert len([w for w in doc["workers"] if w["online"]]) >= 2


def test_password_is_masked_in_the_document(fresh_redis):
    client = redis.Redis(port=fresh_redis.port)
    client.config_set("requirepass", "s3cret-pw")
    doc = snapshot_json("-b", f"redis://:s3cret-pw@127.0.0.1:{fresh_redis.port}/0")
    assert doc["broker"] == f"redis://:****@127.0.0.1:{fresh_redis.port}/0"
    assert doc["workers"] == []


def test_rabbitmq_broker(rabbitmq_url, redis_server, tmp_path):
    queue = f"taskwatch-test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(rabbitmq_url, redis_server.url(3), f"rabbit-{queue}@taskwatch-test", [queue], 1)
    try:
        wait_for_ping(rabbitmq_url, [worker.hostname], timeout=60)
        doc = snapshot_json("-b", rabbitmq_url)
        mine = [w for w in doc["workers"] if w["hostname"] == worker.hostname]
        assert mine and mine[0]["online"] is True and mine[0]["queues"] == [queue]
        assert doc["broker"] == rabbitmq_url.replace("guest:guest@", "guest:****@")
    finally:
        worker.stop()
        _delete_queue(rabbitmq_url, queue)


def _delete_queue(url: str, queue: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            channel.queue_delete(queue)
        finally:
            channel.close()


def test_a_dead_first_host_fails_over_to_the_next(demo_workers):
    """kombu's ``a;b`` form: workers are still found through the second host."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    doc = snapshot_json("-b", f"redis://127.0.0.1:{dead}/0;{demo_workers.broker_url}")
    assert {w["hostname"] for w in doc["workers"] if w["online"]} == set(demo_workers.hostnames)
    queues = {q["name"]: q for q in doc["queues"]}
    assert queues["celery"]["error"] is None and queues["celery"]["messages"] is not None
