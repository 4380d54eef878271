"""The test fixtures themselves work: a killable Redis, real workers."""

from __future__ import annotations

import redis
from celery import Celery

from taskwatch.demo.redis_server import RedisServer
from tests.cluster import DemoWorkers, pid_alive, service_reachable, wait_for_ping


def test_redis_restarts_on_the_same_port_after_kill_9(fresh_redis: RedisServer) -> None:
    client = redis.Redis(host=fresh_redis.host, port=fresh_redis.port, socket_timeout=2)
    client.set("before", "kill")
    old_pid, port = fresh_redis.pid, fresh_redis.port
    assert old_pid is not None

    fresh_redis.kill()

    assert not pid_alive(old_pid)
    assert not service_reachable(fresh_redis.host, port)

    fresh_redis.restart()

    assert fresh_redis.port == port
    assert fresh_redis.pid != old_pid
    assert client.ping()  # the same client reconnects
    assert client.get("before") is None  # nothing was kept on disk
    client.close()


def test_demo_workers_answer_ping(demo_workers: DemoWorkers) -> None:
    replies = wait_for_ping(demo_workers.broker_url, demo_workers.hostnames, timeout=10)

    assert replies == {name: {"ok": "pong"} for name in demo_workers.hostnames}


def test_demo_workers_run_tasks_on_their_queues(demo_workers: DemoWorkers) -> None:
    app = Celery(broker=demo_workers.broker_url, backend=demo_workers.result_backend)
    app.conf.update(result_extended=True, task_routes={"reports.*": {"queue": "reports"}})
    try:
        added = app.send_task("tasks.add", (2, 3))
        report = app.send_task("reports.process_report", (17,))  # 17 always has no rows

        assert added.get(timeout=20) == 5
        report.get(timeout=20, propagate=False)
        assert report.status == "FAILURE"
        assert "report 17 has no rows" in (report.traceback or "")
        assert report.worker == "beta@taskwatch-test"
    finally:
        app.close()
