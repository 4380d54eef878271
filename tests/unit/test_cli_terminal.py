"""The full-screen UI refuses, in one line and exit 2, where it cannot work.

Real subprocesses: output to a pipe (as with ``ssh host taskwatch`` without
``-t`` or ``> file``), and a real pseudo-terminal with ``TERM=dumb``.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from taskwatch.cli import NoTerminal, require_terminal
from tests.unit.test_cli_errors import assert_one_line_error

#: Long enough for a refusal, far shorter than a TUI that never ends.
TIMEOUT = 30


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull
    env.update(extra)
    return env


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "taskwatch", *args], timeout=TIMEOUT, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"taskwatch {' '.join(args)} was still running after {TIMEOUT} s: the UI started")


@pytest.mark.parametrize(
    ("stdin", "stdout", "stderr", "term", "needle"),
    [
        (_Tty(), io.StringIO(), _Tty(), "xterm", "its output is not one"),
        (_Tty(), _Tty(), io.StringIO(), "xterm", "its error output is not one"),  # where Textual draws
        (io.StringIO(), _Tty(), _Tty(), "xterm", "its input is not one"),
        (_Tty(), _Tty(), _Tty(), "dumb", "TERM=dumb"),
        (_Tty(), _Tty(), _Tty(), "", "TERM is not set"),
    ],
)
def test_require_terminal_refuses_what_cannot_draw(stdin, stdout, stderr, term, needle):
    with pytest.raises(NoTerminal) as caught:
        require_terminal(stdin, stdout, {"TERM": term} if term else {}, stderr)
    message = caught.value.format_message()
    assert needle in message and "ssh -t" in message and "taskwatch snapshot" in message
    assert caught.value.exit_code == 2


def test_require_terminal_accepts_a_real_terminal():
    require_terminal(_Tty(), _Tty(), {"TERM": "xterm-256color"}, _Tty())


def test_tui_with_output_to_a_pipe_refuses_in_one_line(redis_server):
    result = _run(
        ["-b", redis_server.url(0)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_env(TERM="xterm-256color"),
    )
    assert_one_line_error(result, "needs a terminal", "ssh -t", "taskwatch snapshot")
    assert result.stdout == ""  # not one escape code


def test_demo_without_a_terminal_refuses_before_starting_anything():
    result = _run(["demo"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_env())
    assert_one_line_error(result, "needs a terminal", "ssh -t")
    assert result.stdout == ""


def test_tui_on_a_dumb_terminal_refuses_and_draws_nothing(redis_server):
    master, slave = pty.openpty()
    try:
        result = _run(
            ["-b", redis_server.url(0)],
            stdin=slave, stdout=slave, stderr=slave, env=_env(TERM="dumb"),
        )
    finally:
        os.close(slave)
    drawn = b""
    os.set_blocking(master, False)
    try:
        while chunk := os.read(master, 65536):
            drawn += chunk
    except (BlockingIOError, OSError):
        pass
    finally:
        os.close(master)
    assert result.returncode == 2
    lines = drawn.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("taskwatch: "), drawn
    assert "TERM=dumb" in lines[0] and "ssh -t" in lines[0] and "taskwatch snapshot" in lines[0]
    assert b"\x1b" not in drawn
