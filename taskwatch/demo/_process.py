"""Spawning and signalling the demo's child processes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


# Loaded once in the parent: the child only calls into it between fork and exec.
_LIBC = _load_libc()


def _die_with_parent_preexec(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGKILL when its parent dies.

    Linux only (``prctl(PR_SET_PDEATHSIG, SIGKILL)``). The signal is tied to
    the *thread* that forked the child, so spawn from a long-lived thread.
    """
    libc = _LIBC
    if libc is None:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork() and prctl().
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, output appended to `log_path`.

    The child gets its own process group (so a group signal reaches the
    processes it forks, and a Ctrl-C in the terminal reaches only us), reads
    from /dev/null, and on Linux dies if this process is killed.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent_preexec(os.getpid()),  # noqa: PLW1509
        )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or "" if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data[-16384:].decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
