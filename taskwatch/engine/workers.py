"""Worker state as plain data, merged from inspect rounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskwatch.text import clean


@dataclass(slots=True)
class Worker:
    hostname: str
    online: bool = False
    first_seen: float | None = None
    last_seen: float | None = None  # last time it answered (ping or heartbeat)
    pid: int | None = None
    pool: str | None = None
    concurrency: int | None = None
    processed: int | None = None
    uptime: float | None = None
    prefetch_count: int | None = None
    queues: tuple[str, ...] = ()
    error: str | None = None  # last error the worker sent back

    def age(self, now: float) -> float | None:
        """Seconds since the worker last answered."""
        return None if self.last_seen is None else max(0.0, now - self.last_seen)


@dataclass
class WorkerTable:
    """All workers ever seen this session, by hostname. Offline ones stay."""

    workers: dict[str, Worker] = field(default_factory=dict)
    broker_error: str | None = None
    last_poll: float | None = None  # when the last successful round started
    poll_duration: float | None = None

    def apply_poll(self, poll: Any) -> set[str]:
        """Merge a :class:`~taskwatch.sources.inspect.WorkerPoll`; return changed hostnames.

        A failed round (broker unreachable) only records the error: the
        workers keep their last known state rather than all going offline.
        """
        if poll.broker_error is not None:
            self.broker_error = poll.broker_error
            return set()
        self.broker_error = None
        self.last_poll = poll.started_at
        self.poll_duration = poll.duration
        changed: set[str] = set()
        answered = set(poll.pings)
        answered_clean = {clean(h, 200, single_line=True) for h in answered}
        for raw_host in answered | set(poll.stats):
            host = clean(raw_host, 200, single_line=True)
            worker = self.workers.get(host)
            if worker is None:
                worker = self.workers[host] = Worker(hostname=host, first_seen=poll.started_at)
            before = _fingerprint(worker)
            worker.online = True
            worker.last_seen = poll.started_at
            _apply_stats(worker, poll.stats.get(raw_host))
            if raw_host in poll.queues:
                worker.queues = tuple(clean(q, 200, single_line=True) for q in poll.queues[raw_host])
            worker.error = (
                clean(poll.errors[raw_host], 300, single_line=True) if raw_host in poll.errors else None
            )
            if _fingerprint(worker) != before:
                changed.add(host)
        for host, worker in self.workers.items():
            if worker.online and host not in answered_clean:
                worker.online = False
                changed.add(host)
        return changed

    def sorted(self) -> list[Worker]:
        """Online first, then by hostname."""
        return sorted(self.workers.values(), key=lambda w: (not w.online, w.hostname))


def _fingerprint(worker: Worker) -> tuple:
    return (
        worker.online, worker.pid, worker.pool, worker.concurrency, worker.processed,
        worker.queues, worker.error, worker.prefetch_count,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _apply_stats(worker: Worker, stats: dict[str, Any] | None) -> None:
    if not stats:
        return
    worker.pid = _int(stats.get("pid"))
    pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
    implementation = pool.get("implementation")
    if isinstance(implementation, str):
        # "celery.concurrency.prefork:TaskPool" -> "prefork"
        worker.pool = clean(implementation.rsplit(":", 1)[0].rsplit(".", 1)[-1], 40, single_line=True)
    worker.concurrency = _int(pool.get("max-concurrency"))
    total = stats.get("total")
    if isinstance(total, dict):
        worker.processed = sum(v for v in total.values() if _int(v) is not None)
    uptime = stats.get("uptime")
    worker.uptime = float(uptime) if isinstance(uptime, int | float) else None
    worker.prefetch_count = _int(stats.get("prefetch_count"))
