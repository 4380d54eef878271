"""A program on a pseudo-terminal of a given size, as a person's terminal would run it.

Used by the TUI benchmarks and by the end-to-end UI tests: it records every
byte the program writes (with arrival times) and types keys into it.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b.")


class Terminal:
    def __init__(self, argv: Sequence[str], *, cols: int = 80, rows: int = 24,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        environment = dict(os.environ if env is None else env)
        environment.update(TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=environment, cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = bytearray()
        self.chunks: list[tuple[float, int]] = []  # (monotonic time, bytes)

    def read(self, timeout: float = 0.05) -> int:
        """Read what is there (waiting up to ``timeout`` for the first byte)."""
        got = 0
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout if not got else 0)
            if not ready:
                return got
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return got
            if not chunk:
                return got
            self.raw += chunk
            self.chunks.append((time.monotonic(), len(chunk)))
            got += len(chunk)

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace"))

    def wait_for(self, pattern: str, timeout: float) -> float:
        """Seconds until ``pattern`` (a regex over the plain text) shows up."""
        start = time.monotonic()
        compiled = re.compile(pattern)
        seen = 0
        while True:
            # Search only the tail that can hold a new match, so waiting stays cheap.
            if compiled.search(ANSI.sub("", self.raw[max(0, seen - 4096):].decode("utf-8", "replace"))):
                return time.monotonic() - start
            seen = len(self.raw)
            if time.monotonic() - start > timeout or self.process.poll() is not None:
                raise TimeoutError(f"{pattern!r} not on screen; last output: {self.text[-400:]!r}")
            self.read(0.05)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read(0.05)
        return self.process.wait(timeout=1)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
        try:
            os.close(self.master)
        except OSError:
            pass
