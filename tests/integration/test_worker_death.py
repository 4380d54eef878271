"""Workers that die, stop, shut down, and tasks handed out again: real prefork
workers on a private Redis, each signalled as an OOM killer, a debugger or a
deploy would (the rules themselves: tests/unit/test_reconcile.py)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from celery import Celery

from taskwatch.config import Settings
from taskwatch.demo._process import signal_group
from taskwatch.demo.redis_server import RedisServer
from taskwatch.engine import snapshot
from taskwatch.engine.entities import LOST, NO_HEARTBEAT, SHUT_DOWN, Task
from taskwatch.engine.query import in_tab
from taskwatch.monitor import Monitor
from tests.cluster import REPO_ROOT, TEST_HOST, WorkerProcess, start_worker, wait_for_ping
from tests.waiting import wait_until

ACKS_LATE_APP = "tests.scripts.acks_late_app"


@dataclass
class Pool:
    """Workers sharing one broker (db) and result backend."""

    broker_url: str
    backend_url: str
    workers: tuple[WorkerProcess, ...]

    def worker(self, hostname: str | None) -> WorkerProcess:
        return next(w for w in self.workers if w.hostname == hostname)

    def logs(self) -> str:
        return "\n".join(f"--- {w.hostname}\n{w.log_tail()}" for w in self.workers)


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[str, Pool]]:
    """Every worker of this module, started together (each takes seconds), on a Redis of its own:
    ``killed`` and ``redelivered`` (two acks_late workers each; visibility timeouts 12 s and 2 s),
    ``stopped`` and ``shutdown`` (one demo worker each)."""
    with RedisServer() as server:
        plan = {"killed": (0, 2, "12"), "redelivered": (2, 2, "2"), "stopped": (4, 1, None),
                "shutdown": (6, 1, None)}
        built: dict[str, Pool] = {}
        try:
            for name, (db, count, visibility) in plan.items():
                broker, backend = server.url(db), server.url(db + 1)
                extra = {"TEST_VISIBILITY_TIMEOUT": visibility} if visibility else {}
                workers = tuple(
                    start_worker(broker, backend, f"{name}{i}@{TEST_HOST}", ["celery"], 1,
                                 {"PYTHONPATH": str(REPO_ROOT), **extra},
                                 app=ACKS_LATE_APP if visibility else "taskwatch.demo.app")
                    for i in range(count))
                built[name] = Pool(broker, backend, workers)
            for pool in built.values():
                try:
                    wait_for_ping(pool.broker_url, [w.hostname for w in pool.workers], timeout=60)
                except TimeoutError as exc:
                    pytest.fail(f"{exc}\n{pool.logs()}")
            yield built
        finally:
            for pool in built.values():  # all at once: each warm shutdown takes a while
                for worker in pool.workers:
                    signal_group(worker.pid, signal.SIGTERM)
            for pool in built.values():
                for worker in pool.workers:
                    worker.stop()


def watching(pool: Pool) -> Monitor:
    return Monitor.from_settings(Settings(broker_url=pool.broker_url, result_backend=pool.backend_url),
                                 backfill=0)


def ready(monitor: Monitor, pool: Pool) -> None:
    """Events flowing and every worker of ``pool`` online by its heartbeats."""
    wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
    hosts = {w.hostname for w in pool.workers}
    wait_until(lambda: monitor.poll() and hosts <= set(monitor.state.hosts_alive_by_heartbeat(
        time.time())), what=f"heartbeats from {sorted(hosts)}")


def sent(monitor: Monitor, pool: Pool, seconds: float, state: str, *, ask: bool = True) -> tuple[str, Task]:
    """Send ``crunch_numbers(seconds)``; wait until it is in ``state`` (asking the
    workers each round, unless ``ask`` is false: then from its events alone)."""
    app = Celery("producer", broker=pool.broker_url, backend=pool.backend_url, set_as_current=False)
    result = app.send_task("tasks.crunch_numbers", (seconds,))
    tasks = monitor.state.tasks
    task = wait_until(lambda: (not ask or monitor.poll()) and (t := tasks.get(result.id)) is not None
                      and t.state == state and t, what=f"the task {state}", detail=pool.logs)
    return result.id, task


def test_a_killed_workers_running_task_is_lost_then_its_redelivery_is_the_real_state(pools):
    """SIGKILL to the worker and its pool (an OOM kill, a lost node) while it runs an
    acks_late task: the task is LOST, with why, instead of STARTED forever; Redis hands
    it out again after the visibility timeout, and the other worker's run is its state."""
    pool = pools["killed"]
    with watching(pool) as monitor:
        ready(monitor, pool)
        task_id, task = sent(monitor, pool, 2, "STARTED")
        state = monitor.state
        victim = pool.worker(task.worker)
        survivor = next(w for w in pool.workers if w is not victim)
        os.killpg(victim.pid, signal.SIGKILL)  # the main process and its pool children
        victim.process.wait(10)

        wait_until(lambda: monitor.poll() and task.state == LOST, timeout=20,
                   what="the task lost", detail=lambda: (task.state, pool.logs()))
        assert (task.lost.cause, task.lost.worker) == (NO_HEARTBEAT, victim.hostname)
        assert task.lost.reason().startswith(f"worker {victim.hostname} went offline (no heartbeat since ")
        assert task.lost.reason().endswith("while the task was running")
        assert in_tab(task, "failed") and not in_tab(task, "active")
        with state.lock:
            document = snapshot.build(state, pool.broker_url, time.time())
        workers = {w["hostname"]: w for w in document["workers"]}
        assert (workers[victim.hostname]["state"], workers[victim.hostname]["lost"]) == (NO_HEARTBEAT, 1)
        assert workers[survivor.hostname]["state"] == "online"
        (shown,) = [t for t in document["tasks"] if t["id"] == task_id]
        assert shown["state"] == LOST and shown["lost"]["cause"] == NO_HEARTBEAT

        wait_until(lambda: monitor.poll() and task.state == "SUCCESS", timeout=40,
                   what="the redelivered run's outcome", detail=lambda: (task.state, task.worker, pool.logs()))
        assert task.worker == survivor.hostname
        assert task.lost is not None  # the loss stays in its history
        assert task.result is not None and "'seconds': 2" in task.result


def test_a_task_that_succeeded_and_runs_again_elsewhere_is_running_where_the_worker_says(pools):
    """A run longer than the visibility timeout: Redis hands the task to the other worker
    while the first runs. The first run's success event comes; the other worker's
    ``inspect active``, asked after it, says running: that wins (the issue's
    redelivered-but-SUCCESS task)."""
    pool = pools["redelivered"]
    with watching(pool) as monitor:
        ready(monitor, pool)
        # The first run's success, from its events: no round is asked meanwhile.
        task_id, task = sent(monitor, pool, 5, "SUCCESS", ask=False)

        def running_elsewhere() -> bool:
            report = monitor.poll()
            held = {(h.hostname, h.kind) for h in report.tasks.tasks if h.id == task_id} if report.tasks else set()
            return bool(held) and task.state == "STARTED" and (task.worker, "active") in held

        wait_until(running_elsewhere, timeout=15, what="the worker running it again to be believed",
                   detail=lambda: (task.state, task.worker, pool.logs()))
        assert task.finished is None and in_tab(task, "active")


def test_a_stopped_worker_goes_offline_despite_pings_and_comes_back(pools):
    """SIGSTOP: no heartbeat and no ping answer, so it is offline after Celery's window
    (2 x its heartbeat frequency) while taskwatch keeps pinging; SIGCONT: online again."""
    pool = pools["stopped"]
    (worker,) = pool.workers
    with watching(pool) as monitor:
        ready(monitor, pool)
        info = monitor.state.workers[worker.hostname]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: monitor.poll() and info.down_cause(time.time()) == NO_HEARTBEAT,
                       timeout=20, what="the stopped worker offline")
            assert info.last_ping is not None
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        wait_until(lambda: monitor.poll() and info.online(time.time()) and info.gone_at is None,
                   timeout=20, what="the worker online again", detail=pool.logs)


def test_a_warm_shutdown_is_shown_as_such_and_what_it_finished_is_not_lost(pools):
    """SIGTERM: the worker finishes its running task, says worker-offline, and is shown
    "shut down", not "no heartbeat"; its tasks finished, none is lost."""
    pool = pools["shutdown"]
    (worker,) = pool.workers
    with watching(pool) as monitor:
        ready(monitor, pool)
        task_id, task = sent(monitor, pool, 1.5, "STARTED")
        state = monitor.state
        os.kill(worker.pid, signal.SIGTERM)
        info = state.workers[worker.hostname]
        wait_until(lambda: monitor.poll() and info.down_cause(time.time()) == SHUT_DOWN,
                   timeout=30, what="the worker shut down", detail=pool.logs)
        worker.process.wait(30)
        for _ in range(2):  # the rounds after it went find nothing lost
            monitor.poll()
        assert task.state == "SUCCESS" and task.lost is None
        with state.lock:
            document = snapshot.build(state, pool.broker_url, time.time())
        (shown,) = document["workers"]
        assert (shown["state"], shown["online"], shown["lost"]) == (SHUT_DOWN, False, 0)
        assert document["stats"]["tasks_lost"] == 0
