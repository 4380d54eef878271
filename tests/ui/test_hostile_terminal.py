"""Hostile task arguments reach a real terminal as plain characters only."""

from __future__ import annotations

import os
import sys
import uuid

from celery import Celery

from bench.terminal import Terminal
from tests.cluster import REPO_ROOT, child_env


def test_markup_shows_literally_and_escapes_never_reach_the_terminal(demo_workers):
    marker = uuid.uuid4().hex[:8]
    hostile = f"[bold red]pwned{marker}[/] \x1b]0;owned{marker}\x07 \x1b[2J \x9b31m"
    env = {k: v for k, v in child_env().items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull
    term = Terminal([sys.executable, "-m", "taskwatch", "-b", demo_workers.broker_url], env=env,
                    cwd=str(REPO_ROOT), cols=100, rows=30)
    try:
        term.wait_for("alpha@", timeout=30)
        app = Celery("p", broker=demo_workers.broker_url, set_as_current=False)
        app.send_task("tasks.add", args=(hostile, "x"), queue="celery")
        term.send("3")
        term.wait_for(f"pwned{marker}", timeout=30)
        assert f"[bold red]pwned{marker}" in term.text  # the markup, as characters
        raw = bytes(term.raw)
        # Workers report arguments as reprs, so the escape arrives as the four
        # characters \x1b; inspect and backends give the real character, which
        # is removed. Either way no title-setting sequence reaches the terminal.
        assert f"\x1b]0;owned{marker}".encode() not in raw
        assert b"\x1b]0;" not in raw and b"\x1b]2;" not in raw  # nothing retitles the terminal
        assert "\x9b" not in raw.decode("utf-8", "replace")  # no 8-bit CSI either
        term.send("q")
        assert term.wait_exit(15) == 0
    finally:
        term.close()
