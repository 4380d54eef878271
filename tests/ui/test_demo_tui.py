"""`taskwatch demo` with its UI, in a real pseudo-terminal, as a person runs it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bench.terminal import Terminal
from tests.cluster import REPO_ROOT, child_env, descendants, pid_alive
from tests.waiting import wait_until


def demo_terminal() -> Terminal:
    env = {k: v for k, v in child_env().items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    return Terminal([sys.executable, "-m", "taskwatch", "demo"], env=env, cwd=str(REPO_ROOT))

@pytest.mark.parametrize("quit_key", ["q", "\x03"], ids=["q", "ctrl-c"])
def test_demo_opens_the_ui_on_its_workers_and_cleans_up(quit_key):
    term = demo_terminal()
    try:
        term.wait_for(r"2/2 workers", timeout=60)
        family = descendants(term.process.pid)
        assert len(family) >= 9
        term.send(quit_key)
        assert term.wait_exit(timeout=20) == 0
        wait_until(lambda: not [p for p in family if pid_alive(p)],
                   what="the demo's cluster to exit with it",
                   detail=lambda: [p for p in family if pid_alive(p)])
    finally:
        term.close()


def test_demo_stops_everything_when_the_terminal_hangs_up():
    """An SSH link drops: nobody reads the terminal any more and the process
    gets SIGHUP. Textual's shutdown then blocks writing to the full terminal;
    the demo must still stop its cluster and exit."""
    import signal

    term = demo_terminal()
    try:
        term.wait_for(r"2/2 workers", timeout=60)
        family = [term.process.pid, *descendants(term.process.pid)]
        workdir = next(Path(p).parent for p in _open_files(family) if "taskwatch-demo-" in p)
        # Stop reading, and make the app write until the terminal's buffer is full.
        for _ in range(60):
            term.send("3" if _ % 2 else "2")
            time.sleep(0.05)  # paced like typing: the app redraws a whole view for each key
        term.process.send_signal(signal.SIGHUP)
        wait_until(lambda: not [p for p in family if pid_alive(p)],
                   what="taskwatch demo and its cluster to exit after SIGHUP",
                   detail=lambda: [p for p in family if pid_alive(p)])
        assert not workdir.exists()
    finally:
        term.close()


def _open_files(pids: list[int]) -> list[str]:
    """Paths the processes hold open (their log files live in the demo's directory)."""
    paths = []
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    paths.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
        except OSError:
            pass
    return paths
