"""Which TCP connections a process holds, read from /proc (Linux): tests tell
taskwatch's connections apart from a scheduler's, or pick out their own."""

from __future__ import annotations

import os


def tcp_ports(pids: list[int] | None = None, *, remote_port: int | None = None) -> set[int]:
    """Local ports of the TCP connections the processes ``pids`` (default: this
    one) hold open, only those to ``remote_port`` when given."""
    inodes = set()
    for pid in pids if pids is not None else ["self"]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[9] not in inodes:
                    continue
                if remote_port is not None and int(fields[2].rsplit(":", 1)[1], 16) != remote_port:
                    continue
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
