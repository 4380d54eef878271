"""The demo cluster: a private Redis plus Celery workers, beat, APScheduler and traffic.

``DemoCluster`` starts everything as child processes in a temporary
directory (per-process logs there, never on the terminal, which belongs to
the UI) and tears it all down again. ``run()`` is the body of
``taskwatch demo [--headless]``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

import taskwatch
from taskwatch.demo import DemoError
from taskwatch.demo._process import signal_group, spawn
from taskwatch.demo.redis_server import RedisServer

__all__ = ["WORKERS", "DemoCluster", "WorkerSpec", "run"]

APP = "taskwatch.demo.app"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class WorkerSpec:
    """One demo worker: its node name (before the ``@``), queues and pool size."""

    name: str
    queues: tuple[str, ...]
    concurrency: int


WORKERS = (
    WorkerSpec("alpha", ("celery", "emails", "monitoring"), 2),
    WorkerSpec("beta", ("reports", "celery"), 1),
)


@dataclass
class _Child:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None


def _importable_root() -> str | None:
    """The directory to put on PYTHONPATH so children can import taskwatch.

    None when taskwatch is installed in site-packages (already importable;
    putting site-packages on PYTHONPATH would reorder sys.path).
    """
    root = str(Path(taskwatch.__file__).resolve().parent.parent)
    paths = sysconfig.get_paths()
    site_dirs = {str(Path(paths[key]).resolve()) for key in ("purelib", "platlib")}
    return None if root in site_dirs else root


def _celery() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", APP]


def _worker_argv(spec: WorkerSpec) -> list[str]:
    return [
        *_celery(),
        "worker",
        "-E",
        "--loglevel=INFO",
        "--pool=prefork",
        f"--hostname={spec.name}@%h",
        f"--queues={','.join(spec.queues)}",
        f"--concurrency={spec.concurrency}",
    ]


class DemoCluster:
    """A throwaway Celery cluster on a private Redis, for the demo and the tests.

    ``start()`` returns as soon as Redis answers and the children are spawned;
    the workers take a few more seconds to come up. Call ``start()`` from a
    long-lived thread (the main thread): on Linux the children are killed
    when the thread that spawned them ends.
    """

    def __init__(self, *, producer: bool = True, redis_executable: str | None = None) -> None:
        self._with_producer = producer
        self._redis_executable = redis_executable
        self._workdir: Path | None = None
        self._redis: RedisServer | None = None
        self._children: list[_Child] = []
        self._stopped = False
        self._stop_lock = threading.Lock()

    # -- what clients need -----------------------------------------------------

    @property
    def redis(self) -> RedisServer:
        if self._redis is None:
            raise RuntimeError("the demo cluster is not started")
        return self._redis

    @property
    def broker_url(self) -> str:
        return self.redis.url(0)

    @property
    def result_backend(self) -> str:
        return self.redis.url(1)

    @property
    def jobstore_url(self) -> str:
        return self.redis.url(2)

    @property
    def beat_schedule(self) -> Path:
        """beat's schedule file (the default scheduler's): its real last runs."""
        return self.workdir / "celerybeat-schedule"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("the demo cluster is not started")
        return self._workdir

    @property
    def worker_hostnames(self) -> tuple[str, ...]:
        """The workers' node names, as `ping` and events report them."""
        host = socket.gethostname()
        return tuple(f"{spec.name}@{host}" for spec in WORKERS)

    def pids(self) -> list[int]:
        """Pids of Redis and of every child process started (not their own children)."""
        pids = [self._redis.pid] if self._redis is not None and self._redis.pid else []
        return pids + [c.process.pid for c in self._children if c.process is not None]

    def log_paths(self) -> dict[str, Path]:
        """Each child's log file by name (``redis``, ``worker-alpha``, ``beat``, ...)."""
        logs = {c.name: c.log_path for c in self._children}
        if self._redis is not None and self._redis.log_path is not None:
            logs["redis"] = self._redis.log_path
        return logs

    def exited(self) -> dict[str, int]:
        """Children that have already exited, with their exit codes."""
        return {c.name: code for c in self._children if (code := c.exit_code) is not None}

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> DemoCluster:
        """Start Redis, then spawn the workers, beat, the scheduler and the producer."""
        if self._redis is not None:
            raise RuntimeError("a DemoCluster can be started only once")
        self._workdir = Path(tempfile.mkdtemp(prefix="taskwatch-demo-"))
        try:
            self._redis = RedisServer(
                executable=self._redis_executable, workdir=str(self._workdir / "redis")
            )
            self._redis.start()
            env = self._child_env()
            for child in self._plan():
                child.process = spawn(
                    child.argv, log_path=child.log_path, env=env, cwd=self._workdir
                )
                self._children.append(child)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 4.0) -> None:
        """SIGTERM every child's process group, SIGKILL what is left after
        `timeout` s, stop Redis last and remove the working directory.

        Safe to call more than once, and after a failed ``start()``.
        """
        with self._stop_lock:  # a second caller waits until the first is done
            if self._stopped:
                return
            self._stopped = True
            self._stop_all(timeout)

    def _stop_all(self, timeout: float) -> None:
        self._stop_children(timeout)
        if self._redis is not None:
            self._redis.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> DemoCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CELERY_BROKER_URL=self.broker_url,
            CELERY_RESULT_BACKEND=self.result_backend,
            TASKWATCH_JOBSTORE=self.jobstore_url,
            PYTHONUNBUFFERED="1",
        )
        root = _importable_root()
        if root is not None:
            env["PYTHONPATH"] = root + (
                f"{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else ""
            )
        return env

    def _plan(self) -> list[_Child]:
        workdir = self.workdir
        children = [
            _Child(f"worker-{spec.name}", _worker_argv(spec), workdir / f"worker-{spec.name}.log")
            for spec in WORKERS
        ]
        children.append(
            _Child(
                "beat",
                [*_celery(), "beat", "--loglevel=INFO", "-s", str(self.beat_schedule)],
                workdir / "beat.log",
            )
        )
        children.append(
            _Child(
                "scheduler",
                [sys.executable, "-m", "taskwatch.demo.scheduler"],
                workdir / "scheduler.log",
            )
        )
        if self._with_producer:
            children.append(
                _Child(
                    "producer",
                    [sys.executable, "-m", "taskwatch.demo.producer"],
                    workdir / "producer.log",
                )
            )
        return children

    def _stop_children(self, timeout: float) -> None:
        running = [c.process for c in self._children if c.process is not None]
        for process in running:
            signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in running:
            # Also reaches pool processes whose parent already exited.
            signal_group(process.pid, signal.SIGKILL)
            process.wait()


# -- `taskwatch demo` ---------------------------------------------------------------


SECOND_TERMINAL = "# in another terminal:"


def second_terminal_command(broker_url: str, result_backend: str, jobstore_url: str, beat_schedule: str) -> str:
    """The whole command that watches the demo from another terminal.

    ``-A`` gives the beat schedule, queues and routes (the Upcoming view and
    every queue); the result backend gives the tasks that finished before
    taskwatch started; the job store and beat's file the scheduled runs.
    """
    return shlex.join(["taskwatch", "-A", "taskwatch.demo.app", "-b", broker_url, "--result-backend", result_backend,
                       "--jobstore", jobstore_url, "--beat-schedule", beat_schedule])


def _announce(cluster: DemoCluster) -> None:
    """Machine-readable settings on stdout, one a line, then the command for a
    second terminal; a human hint on stderr."""
    lines = {
        "CELERY_BROKER_URL": cluster.broker_url,
        "CELERY_RESULT_BACKEND": cluster.result_backend,
        "TASKWATCH_JOBSTORE": cluster.jobstore_url,
        "TASKWATCH_DEMO_DIR": str(cluster.workdir),
    }
    command = second_terminal_command(cluster.broker_url, cluster.result_backend, cluster.jobstore_url,
                                      str(cluster.beat_schedule))
    sys.stdout.write("".join(f"{key}={value}\n" for key, value in lines.items())
                     + f"{SECOND_TERMINAL}\n{command}\n")
    sys.stdout.flush()
    workers = ", ".join(spec.name for spec in WORKERS)
    print(
        f"taskwatch demo: Redis on {cluster.redis.host}:{cluster.redis.port}; workers "
        f"{workers}, beat, scheduler and producer starting (logs in {cluster.workdir}). "
        "Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )


class _StopRequest:
    """Turns SIGINT/SIGTERM/SIGHUP into an event while installed."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()


def _report_exits(cluster: DemoCluster, reported: set[str]) -> None:
    logs = cluster.log_paths()
    for name, code in cluster.exited().items():
        if name not in reported:
            reported.add(name)
            print(
                f"taskwatch demo: {name} exited with code {code}; see {logs[name]}",
                file=sys.stderr,
                flush=True,
            )


def _serve_headless(cluster: DemoCluster, stop: threading.Event) -> int:
    if stop.is_set():  # signalled while starting: don't announce a dying cluster
        return 0
    _announce(cluster)
    reported: set[str] = set()
    while not stop.wait(1.0):
        if not cluster.redis.running:
            print("taskwatch: the demo's redis-server died", file=sys.stderr, flush=True)
            return 1
        _report_exits(cluster, reported)
    return 0


def run(headless: bool, open_ui: Callable[[DemoCluster], int] | None = None) -> int:
    """Run the demo cluster until a stop signal (headless) or until the UI quits.

    Headless mode prints ``CELERY_BROKER_URL=``, ``CELERY_RESULT_BACKEND=``,
    ``TASKWATCH_JOBSTORE=`` and ``TASKWATCH_DEMO_DIR=`` lines on stdout and
    returns 0 on SIGINT, SIGTERM or SIGHUP. Otherwise `open_ui(cluster)` runs
    the UI and its result is returned. The cluster is always stopped on the
    way out; a `DemoError` is reported on stderr and gives exit code 2.
    """
    if not headless and open_ui is None:
        raise ValueError("open_ui is required unless headless")
    cluster = DemoCluster()
    stop_request = _StopRequest()
    if headless:
        stop_request.install()
    try:
        cluster.start()
        if headless:
            return _serve_headless(cluster, stop_request.event)
        assert open_ui is not None
        return open_ui(cluster)
    except DemoError as exc:
        print(f"taskwatch: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        cluster.stop()
        stop_request.restore()
