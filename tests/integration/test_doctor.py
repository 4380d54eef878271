"""``taskwatch doctor`` against real prefork workers on private Redis servers.

Two clusters of this module's own (the session's demo workers are left alone):

* ``healthy``: the demo app's worker with ``-E`` on a Redis with default limits;
* ``sick``: a worker started without ``-E`` from an app with neither
  ``result_extended`` nor ``task_send_sent_event`` and a 10 s
  ``visibility_timeout``, on a Redis whose pub/sub output-buffer limit is
  tiny. One doctor run over it, while tasks flow, is judged by several tests.

Doctor runs as the real command in a subprocess: its exit status and its
time are part of what is tested.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import run

import pytest
import redis
from celery import Celery

from taskwatch.demo.redis_server import RedisServer, free_port
from tests.cluster import REPO_ROOT, child_env, start_worker, wait_for_ping
from tests.integration.aps_process import start_app
from tests.waiting import wait_until

HOST = "taskwatch-doctor"
CHECK_IDS = [
    "result_backend", "task_events", "task_sent_events", "result_extended", "event_buffer",
    "clock_drift", "visibility_timeout", "beat_state", "beat_late", "apscheduler_overdue",
    "apscheduler_misfire_grace",
]
#: The app the sick cluster runs, and doctor is given with -A.
SICK_APP = """
from taskwatch.demo.app import app

app.conf.update(
    worker_send_task_events=False,
    task_send_sent_event=False,
    result_extended=False,
    broker_transport_options={"visibility_timeout": 10},
)
"""


@dataclass
class Cluster:
    redis: RedisServer
    broker_url: str
    backend_url: str
    worker: str
    env: dict[str, str]


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float

    def document(self) -> dict:
        return json.loads(self.out)

    def check(self, check_id: str) -> dict:
        return next(c for c in self.document()["checks"] if c["id"] == check_id)


def doctor(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> Ran:
    started = time.monotonic()
    done = run([sys.executable, "-m", "taskwatch", "doctor", *args], capture_output=True, text=True,
               env=env or child_env(), cwd=cwd, timeout=90)
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def producer(cluster: Cluster) -> Celery:
    """A client of the cluster that announces what it sends (task-sent events)."""
    app = Celery("doctor-test", broker=cluster.broker_url, backend=cluster.backend_url, set_as_current=False)
    app.conf.task_send_sent_event = True
    return app


class Traffic:
    """Quick tasks sent every ``every`` seconds while in the ``with`` block."""

    def __init__(self, app: Celery, every: float = 0.1) -> None:
        self.app, self.every = app, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        while not self._stop.is_set():
            self.app.send_task("tasks.add", (1, 2), queue="celery")
            self._stop.wait(self.every)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _start(server: RedisServer, name: str, **worker: object) -> tuple[Cluster, object]:
    broker_url, backend_url = server.url(0), server.url(1)
    process = start_worker(broker_url, backend_url, name, ["celery"], 1, **worker)  # type: ignore[arg-type]
    env = child_env({"CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": backend_url,
                     **(worker.get("extra_env") or {})})  # type: ignore[dict-item]
    return Cluster(server, broker_url, backend_url, name, env), process


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Cluster]]:
    """Both clusters, their workers started together (they take seconds each)."""
    app_dir = tmp_path_factory.mktemp("sick-app")
    (app_dir / "sick_app.py").write_text(SICK_APP)
    path = {"PYTHONPATH": os.pathsep.join([str(app_dir), str(REPO_ROOT)])}
    with RedisServer() as good_redis, RedisServer(
            args=["--client-output-buffer-limit", "pubsub", "16kb", "8kb", "1"]) as sick_redis:
        healthy, good = _start(good_redis, f"ok@{HOST}")
        sick, bad = _start(sick_redis, f"quiet@{HOST}", app="sick_app", task_events=False, extra_env=path)
        try:
            for cluster, process in ((healthy, good), (sick, bad)):
                try:
                    wait_for_ping(cluster.broker_url, [cluster.worker], timeout=60)
                except TimeoutError as exc:
                    pytest.fail(f"{exc}\n{process.log_tail()}")  # type: ignore[attr-defined]
            yield healthy, sick
        finally:
            good.stop()  # type: ignore[attr-defined]
            bad.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def healthy(clusters: tuple[Cluster, Cluster]) -> Cluster:
    return clusters[0]


@pytest.fixture(scope="module")
def sick_run(clusters: tuple[Cluster, Cluster]) -> Ran:
    """One ``doctor --json --listen 3`` over the sick cluster while tasks flow, after
    its worker ran a few tasks and took a countdown task longer than its visibility timeout."""
    sick = clusters[1]
    app = producer(sick)
    results = [app.send_task("tasks.add", (i, i), queue="celery") for i in range(3)]
    app.send_task("tasks.add", (0, 0), queue="celery", countdown=300)
    client = redis.Redis.from_url(sick.broker_url, socket_timeout=5)
    backend = redis.Redis.from_url(sick.backend_url, socket_timeout=5)
    try:
        wait_until(lambda: all(backend.exists(f"celery-task-meta-{r.id}") for r in results),
                   what="the first results stored")
        wait_until(lambda: client.hlen("unacked") >= 1, what="the worker holding the countdown task")
    finally:
        client.close(), backend.close()
    with Traffic(app, every=0.05):
        ran = doctor("-A", "sick_app", "--json", "--listen", "3", env=sick.env)
    assert ran.code == 1, ran
    return ran


# -- a healthy cluster --------------------------------------------------------

def test_a_healthy_cluster_of_the_demo_app_exits_0_with_every_check_ok_or_skipped_with_a_reason(healthy):
    with Traffic(producer(healthy)):
        ran = doctor("-A", "taskwatch.demo.app", "--listen", "3", env=healthy.env)
    assert ran.code == 0, ran
    lines = ran.out.splitlines()
    assert f"1 worker(s) answered ({healthy.worker})" in lines[0]
    by_id = {line.split()[1]: line for line in lines[1:]}
    assert list(by_id) == CHECK_IDS
    for check_id in ("result_backend", "task_events", "task_sent_events", "result_extended",
                     "event_buffer", "clock_drift", "visibility_timeout"):
        assert by_id[check_id].startswith("ok "), by_id[check_id]
    for line in by_id.values():
        assert line.split()[0] in ("ok", "skip"), line
        assert "fix:" not in line
        assert len(line.split(None, 2)) == 3, f"no reason given: {line}"
    assert ran.err == ""


def test_the_json_document_has_every_check_with_id_status_seen_fix_and_data(healthy):
    ran = doctor("--json", "--listen", "0", "-b", healthy.broker_url, env=child_env())
    document = ran.document()
    assert {"schema", "broker", "checked_at", "listen", "workers", "status", "exit_code", "checks"} <= set(document)
    assert document["schema"] == 1 and document["exit_code"] == ran.code
    assert document["workers"] == [healthy.worker]
    assert [c["id"] for c in document["checks"]] == CHECK_IDS
    for check in document["checks"]:
        assert set(check) == {"id", "status", "seen", "fix", "data"}
        assert check["status"] in ("ok", "warn", "fail", "skipped")
        assert isinstance(check["seen"], str) and check["seen"]
        assert (check["fix"] is None) == (check["status"] in ("ok", "skipped")), check
    # without listening, the checks that need events say so instead of guessing
    for check_id in ("task_events", "clock_drift", "event_buffer"):
        check = next(c for c in document["checks"] if c["id"] == check_id)
        assert check["status"] == "skipped" and "--listen" in check["seen"]


def test_an_unreachable_result_backend_fails(healthy):
    dead = f"redis://:s3cret@127.0.0.1:{free_port()}/1"
    ran = doctor("--json", "--listen", "0", "-b", healthy.broker_url, "--result-backend", dead,
                 env=child_env())
    assert ran.code == 1
    check = ran.check("result_backend")
    assert check["status"] == "fail" and "connect" in check["seen"].lower() and check["fix"]
    assert "s3cret" not in ran.out + ran.err


def test_a_beat_schedule_file_that_does_not_exist_fails(healthy, tmp_path):
    missing = tmp_path / "nowhere" / "celerybeat-schedule"
    ran = doctor("--json", "--listen", "0", "-b", healthy.broker_url, "--beat-schedule", str(missing),
                 env=child_env())
    assert ran.code == 1
    check = ran.check("beat_state")
    assert check["status"] == "fail" and str(missing) in check["seen"] and "--beat-schedule" in check["fix"]
    assert ran.check("beat_late")["status"] == "skipped"


def test_an_apscheduler_job_overdue_after_its_scheduler_stopped_warns(healthy):
    store = healthy.redis.url(3)
    scheduler = start_app(store, jobs="fast")
    try:
        scheduler.wait_for_runs("fast", 1)
    finally:
        scheduler.stop()
    client = redis.Redis.from_url(store, socket_timeout=5)
    try:
        # "fast" runs every second with APScheduler's default grace of 1 s
        wait_until(lambda: (client.zscore("apscheduler.run_times", "fast") or time.time()) < time.time() - 2.5,
                   what="the stopped scheduler's job to pass its grace")
    finally:
        client.close()
    ran = doctor("--json", "--listen", "0", "-b", healthy.broker_url, "--jobstore", store, env=child_env())
    assert ran.code == 1
    overdue = ran.check("apscheduler_overdue")
    assert overdue["status"] == "warn" and "fast" in overdue["data"]["jobs"], overdue
    assert "Fast" in overdue["seen"] and overdue["fix"]
    grace = ran.check("apscheduler_misfire_grace")
    assert grace["status"] == "warn" and "fast" in grace["data"]["jobs"]


# -- a sick cluster --------------------------------------------------------------

def test_a_worker_started_without_task_events_fails_the_events_check_naming_it_with_the_fix(sick_run):
    check = sick_run.check("task_events")
    assert check["status"] == "fail", check
    assert check["data"]["task_events_off"] == [f"quiet@{HOST}"]
    assert f"quiet@{HOST}" in check["seen"]
    assert f"taskwatch worker quiet@{HOST} events-on" in check["fix"]


def test_an_app_without_result_extended_warns(sick_run):
    check = sick_run.check("result_extended")
    assert check["status"] == "warn" and "retry cannot be exact" in check["seen"]
    assert check["data"]["sampled"] >= 3 and check["data"]["with_arguments"] == 0
    assert sick_run.check("task_sent_events")["status"] == "warn"


def test_a_tiny_pubsub_output_buffer_limit_warns_for_the_event_rate_seen(sick_run):
    check = sick_run.check("event_buffer")
    assert check["status"] == "warn", check
    assert check["data"]["hard_limit"] == 16 * 1024 and check["data"]["peak_bytes_per_second"] > 0
    assert "client-output-buffer-limit" in check["fix"]


def test_a_countdown_longer_than_the_visibility_timeout_warns(sick_run):
    check = sick_run.check("visibility_timeout")
    assert check["status"] == "warn", check
    assert check["data"]["visibility_timeout"] == 10 and len(check["data"]["beyond"]) == 1
    assert "run twice" in check["seen"] and "visibility_timeout" in check["fix"]


# -- no broker -------------------------------------------------------------------

def test_an_unreachable_broker_is_one_line_and_exit_2_quickly():
    ran = doctor("-b", f"redis://:s3cret@127.0.0.1:{free_port()}/0", "--listen", "5")
    assert ran.code == 2
    assert ran.out == "" and len(ran.err.strip().splitlines()) == 1 and "cannot reach broker" in ran.err
    assert "s3cret" not in ran.err
    assert ran.seconds < 10


def test_a_broker_that_accepts_and_never_answers_is_exit_2_in_bounded_time():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        ran = doctor("-b", f"redis://127.0.0.1:{port}/0", "--listen", "5")
    assert ran.code == 2 and ran.out == "" and len(ran.err.strip().splitlines()) == 1, ran
    assert ran.seconds < 15

