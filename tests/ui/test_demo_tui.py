"""`taskwatch demo` with its UI, in a real pseudo-terminal, as a person runs it."""

from __future__ import annotations

import sys
import time

import pytest

from bench.terminal import Terminal
from tests.cluster import REPO_ROOT, child_env, descendants, pid_alive


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
        deadline = time.monotonic() + 5
        while [p for p in family if pid_alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in family if pid_alive(p)] == []
    finally:
        term.close()
