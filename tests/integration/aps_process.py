"""A real APScheduler process (``tests/scripts/aps_app.py``) for the control and bridge tests.

Importable as ``from tests.integration.aps_process import start_app``.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen, TimeoutExpired

from taskwatch.demo._process import log_tail, signal_group, spawn
from tests.cluster import REPO_ROOT, child_env
from tests.waiting import wait_until

APP = REPO_ROOT / "tests" / "scripts" / "aps_app.py"


@dataclass
class SchedulerApp:
    """A running aps_app: its runs file is the proof of what ran."""

    process: Popen[bytes] = field(repr=False)
    workdir: Path

    @property
    def runs_path(self) -> Path:
        return self.workdir / "runs.jsonl"

    @property
    def log_path(self) -> Path:
        return self.workdir / "app.log"

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def runs(self, job: str | None = None) -> list[float]:
        """Epoch times of every run so far (of ``job``), oldest first."""
        try:
            lines = self.runs_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                run = json.loads(line)
            except ValueError:  # a line being written
                continue
            if job is None or run["job"] == job:
                found.append(float(run["at"]))
        return found

    def wait_for_runs(self, job: str, count: int, timeout: float = 30.0) -> list[float]:
        def enough() -> list[float] | None:
            runs = self.runs(job)
            return runs if len(runs) >= count else None

        return wait_until(enough, timeout, what=f"{count} runs of {job}", detail=self.log_tail)

    def kill(self) -> None:
        signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except TimeoutExpired:
                pass
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_app(store_url: str, *, jobs: str = "control", bridge: str | None = None,
              bridge_ttl: float | None = None, no_add: bool = False) -> SchedulerApp:
    """Start aps_app on ``store_url`` and wait for READY."""
    workdir = Path(tempfile.mkdtemp(prefix="taskwatch-aps-"))
    argv = [sys.executable, str(APP), "--store", store_url, "--runs", str(workdir / "runs.jsonl"),
            "--jobs", jobs]
    if bridge:
        argv += ["--bridge", bridge]
    if bridge_ttl is not None:
        argv += ["--bridge-ttl", str(bridge_ttl)]
    if no_add:
        argv.append("--no-add")
    app = SchedulerApp(spawn(argv, log_path=workdir / "app.log", env=child_env(), cwd=workdir), workdir)
    try:
        wait_until(lambda: "READY" in app.log_tail() or app.process.poll() is not None, 60,
                   what="the scheduler app to start", detail=app.log_tail)
        assert app.process.poll() is None, app.log_tail()
    except BaseException:
        app.stop()
        raise
    return app
