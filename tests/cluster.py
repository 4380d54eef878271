"""Real-process helpers for the integration and UI tests (no mocks).

Importable as ``from tests.cluster import ...``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

from celery import Celery

from taskwatch.demo._process import log_tail, signal_group, spawn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_APP = "taskwatch.demo.app"
TEST_HOST = "taskwatch-test"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a Python child that must import this checkout's taskwatch."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    """A running `celery worker` of the demo app, in its own session."""

    hostname: str
    process: Popen[bytes] = field(repr=False)
    logdir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.logdir / "worker.log"

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the worker's process group, SIGKILL it after `timeout` s; drop the log."""
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except TimeoutExpired:
                pass
        signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.logdir, ignore_errors=True)


@dataclass(frozen=True)
class DemoWorkers:
    """Two running workers of the demo app on a private Redis."""

    broker_url: str
    result_backend: str
    workers: tuple[WorkerProcess, ...]

    @property
    def hostnames(self) -> tuple[str, ...]:
        return tuple(worker.hostname for worker in self.workers)


def start_worker(
    broker_url: str,
    backend_url: str,
    name: str,
    queues: Iterable[str],
    concurrency: int = 1,
    extra_env: Mapping[str, str] | None = None,
    *,
    app: str = DEMO_APP,
    task_events: bool = True,
) -> WorkerProcess:
    """Spawn a prefork worker of the demo app named `name` (``node@host``); don't wait.

    ``app``: another Celery app to run (importable through ``extra_env``'s
    PYTHONPATH); ``task_events=False`` leaves out ``-E``.
    """
    logdir = Path(tempfile.mkdtemp(prefix="taskwatch-worker-"))
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        *(["-E"] if task_events else []),
        "--loglevel=INFO",
        "--pool=prefork",
        f"--hostname={name}",
        f"--queues={','.join(queues)}",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
    ]
    env = child_env(
        {"CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": backend_url, **(extra_env or {})}
    )
    process = spawn(argv, log_path=logdir / "worker.log", env=env, cwd=logdir)
    return WorkerProcess(hostname=name, process=process, logdir=logdir)


def wait_for_ping(
    broker_url: str, hostnames: Iterable[str], timeout: float = 60.0
) -> dict[str, dict[str, str]]:
    """Wait until every worker in `hostnames` answers ``ping``; returns the replies.

    Raises TimeoutError naming the missing workers.
    """
    wanted = set(hostnames)
    replies: dict[str, dict[str, str]] = {}
    app = Celery("taskwatch-test-ping", broker=broker_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= replies.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no ping reply within {timeout:.0f} s from {sorted(wanted - replies.keys())}"
                )
            missing = sorted(wanted - replies.keys())
            for reply in app.control.ping(destination=missing, timeout=0.5) or []:
                replies.update(reply)
    finally:
        app.close()
    return replies


def service_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children, grandchildren, ...), from /proc."""
    children = _parent_map()
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def pid_alive(pid: int) -> bool:
    """True for a running process; False when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat[stat.rindex(")") + 2 :].split()[0]
    return state not in ("Z", "X")


def producer(workers: DemoWorkers) -> Celery:
    """A client app on the workers' broker and result backend, storing arguments (result_extended)."""
    app = Celery("producer", broker=workers.broker_url, backend=workers.result_backend, set_as_current=False)
    app.conf.result_extended = True
    return app


def stored(workers: DemoWorkers, task_id: str) -> dict:
    """The task's result as Celery stored it in the Redis result backend ({} while there is none)."""
    import json

    import redis

    client = redis.Redis.from_url(workers.result_backend, socket_timeout=5)
    try:
        raw = client.get(f"celery-task-meta-{task_id}")
    finally:
        client.close()
    return json.loads(raw) if raw else {}


def delete_amqp_queue(url: str, queue: str) -> None:
    """Remove a queue a test declared on the machine's (shared) RabbitMQ."""
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.close()


class AmqpEvents:
    """Publishes task-received events on RabbitMQ's ``celeryev`` exchange, one a
    message, as a worker without batching would; counts them."""

    def __init__(self, conn: Any) -> None:  # a kombu Connection
        from kombu import Exchange, Producer

        self.producer = Producer(conn.channel(), exchange=Exchange("celeryev", type="topic"))
        self.sent = 0

    def send(self, uuid_: str, padding: str = "") -> None:
        event = {"type": "task-received", "uuid": uuid_, "name": "n", "hostname": "w@h", "timestamp": time.time()}
        if padding:
            event["args"] = padding
        self.producer.publish(event, routing_key="task.received", serializer="json")
        self.sent += 1
