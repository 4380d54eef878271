"""The audit log: one JSON line per state-changing action, who did what to what.

Written to ``audit.jsonl`` in the user state directory (platformdirs;
``~/.local/state/taskwatch`` on Linux), or the file ``TASKWATCH_AUDIT_LOG``
names. Each line: ``time`` (ISO 8601 UTC), ``user`` and ``host`` (the OS
user and machine taskwatch ran as and on), ``profile``, ``broker`` (masked),
``action``, ``targets``, ``arguments`` sent, ``outcome`` (``ok`` or
``failed``), ``error`` and per-target ``replies``. Passwords never reach it:
every URL is masked and every text is passed through :func:`mask_secrets`.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskwatch.records import ActionOutcome
from taskwatch.text import clean, mask_secrets, mask_url


def log_path() -> Path:
    configured = os.environ.get("TASKWATCH_AUDIT_LOG")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_state_dir

    return Path(user_state_dir("taskwatch")) / "audit.jsonl"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid (containers)
        return str(os.getuid())


def entry(outcome: ActionOutcome, *, broker_url: str, profile: str | None, via: str,
          at: datetime | None = None) -> dict[str, Any]:
    """The audit line for ``outcome`` (a dict, before it is written)."""
    return {
        "time": (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user": _user(),
        "host": socket.gethostname(),
        "via": via,
        "profile": profile,
        "broker": mask_url(broker_url),
        "action": outcome.action,
        "targets": [_safe(t) for t in outcome.targets],
        "arguments": _scrub(outcome.arguments),
        "outcome": "ok" if outcome.ok else "failed",
        "error": _safe(outcome.error) if outcome.error else None,
        "replies": [{"target": _safe(r.target), "ok": r.ok, "text": _safe(r.text)} for r in outcome.replies],
        "created": list(outcome.created),
    }


def record(outcome: ActionOutcome, *, broker_url: str, profile: str | None, via: str) -> dict[str, Any]:
    """Append one line for ``outcome``; returns what was written."""
    line = entry(outcome, broker_url=broker_url, profile=profile, via=via)
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(line, ensure_ascii=False) + "\n"
    # One write of one line, opened for append: lines from two taskwatch
    # processes never interleave within a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)
    return line


def read(since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The log's lines, oldest first; lines that are not JSON objects are skipped."""
    path = log_path()
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            if since is not None:
                try:
                    when = datetime.fromisoformat(str(line.get("time", "")).replace("Z", "+00:00"))
                except ValueError:
                    continue
                if when < since:
                    continue
            yield line


def _safe(value: Any) -> str:
    return clean(mask_secrets(str(value)), 500, single_line=True)


def _scrub(value: Any, depth: int = 0) -> Any:
    """Arguments as sent, with secrets masked in every string."""
    if depth > 20:
        return "…"
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_secrets(repr(value))
