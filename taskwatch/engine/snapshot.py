"""The ``taskwatch snapshot`` document: a stable, versioned JSON shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from taskwatch.engine.workers import WorkerTable
from taskwatch.text import mask_url

SCHEMA = 1


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-11-27T14:03:00.123Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(workers: WorkerTable, broker_url: str, now: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "taken_at": iso(now),
        "broker": mask_url(broker_url),
        "broker_error": workers.broker_error,
        "workers": [
            {
                "hostname": w.hostname,
                "online": w.online,
                "heartbeat_age": None if w.age(now) is None else round(w.age(now), 3),
                "pid": w.pid,
                "pool": w.pool,
                "concurrency": w.concurrency,
                "processed": w.processed,
                "queues": list(w.queues),
                "error": w.error,
            }
            for w in workers.sorted()
        ],
    }
