"""What the monitor needs of its sources, as Protocols.

Each source kind has real implementations next to this module (the
inspector, the Redis and AMQP event receivers, the queue probes, the result
backends); the monitor depends only on these shapes, so a test can drive it
with plain objects and no broker (``tests/unit/test_monitor.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from taskwatch.records import (
    ActionOutcome,
    ExactCall,
    JobRun,
    PeekedMessage,
    QueueDepth,
    ResultPage,
    ScheduledJob,
    StoredResult,
    TaskPoll,
    WorkerReport,
)


class EventSink(Protocol):
    """Where a receiver delivers events; the monitor is one.

    A sink may also have ``give_way()``, which the receivers' decoders call
    every few messages and which returns once the sink wants events again
    (the monitor's waits while the screen answers a key).
    """

    def on_events(self, events: list[dict[str, Any]], received_at: float, drained: bool = True,
                  read_at: float | None = None) -> None:
        """``drained``: nothing more was waiting to be read after this batch.
        ``read_at``: when the newest of them was read off the broker, where the
        receiver read it ahead of ``received_at`` (None: it did not)."""
    def on_undecodable(self, count: int) -> None: ...
    def on_disconnect(self, at: float, reason: str) -> None: ...
    def on_connect(self, at: float) -> None: ...


class ReceiverState(Protocol):
    connected: bool
    error: str | None
    since: float | None


class EventSource(Protocol):
    """A long-lived thread that reads the broker's event stream into a sink."""

    status: ReceiverState
    #: seconds after which the broker drops unread events (RabbitMQ), or None
    queue_ttl: float | None

    def start(self) -> None: ...
    def stop(self, timeout: float = 2.0) -> None: ...
    def is_alive(self) -> bool: ...
    def backlog(self) -> Any: ...
    def unapplied(self) -> int:
        """Bytes read off the broker's connection and not yet applied (0 where
        nothing is read ahead)."""
        ...


class WorkerSource(Protocol):
    """Asking the workers over the broker (inspect)."""

    def poll_workers(self, expect: Sequence[str] = (), *, details: bool = True,
                     on_pong: Callable[[str, float], None] | None = None) -> WorkerReport: ...
    def poll_tasks(self, hosts: Sequence[str]) -> TaskPoll: ...
    def quick_round(self, hosts: Sequence[str]) -> tuple[WorkerReport, TaskPoll]: ...
    def close(self) -> None: ...


class QueueProbe(Protocol):
    """Queue depths from the broker; see :mod:`taskwatch.sources.queues`."""

    source: str
    #: ``discover()`` can list the broker's queues.
    can_discover: bool
    #: ``peek()`` can show waiting messages without disturbing them.
    can_peek: bool

    def discover(self) -> set[str]: ...

    def depths(self, names: Iterable[str]) -> list[QueueDepth]: ...

    def peek(self, queue: str, n: int = 10) -> list[PeekedMessage]: ...

    def close(self) -> None: ...


class ResultBackend(Protocol):
    """A Celery result backend, read-only; see :mod:`taskwatch.sources.results`."""

    url: str

    def get(self, ids: Sequence[str]) -> dict[str, StoredResult]: ...

    def recent(self, limit: int, *, states: set[str] | None = None) -> list[StoredResult]: ...

    def scan(self, states: set[str]) -> Iterator[ResultPage]:
        """Every stored result in ``states``, one bounded step at a time.

        Each step is a few round trips at most; the caller decides when to
        stop (time, keys examined) by not asking for the next page.
        """
        ...

    def close(self) -> None: ...


class ActionSource(Protocol):
    """State-changing calls (see :mod:`taskwatch.sources.control`); refused when read-only."""

    read_only: bool

    def revoke(self, ids: Sequence[str], *, terminate: bool = False, signal: str = "SIGTERM",
               hosts: Sequence[str] | None = None) -> ActionOutcome: ...
    def retry(self, name: str, call: ExactCall, *, queue: str | None = None,
              priority: int | None = None, retry_of: str | None = None) -> ActionOutcome: ...
    def run_entry(self, name: str, entry: Any) -> ActionOutcome: ...
    def purge(self, queue: str) -> ActionOutcome: ...
    def remove_message(self, queue: str, task_id: str) -> ActionOutcome: ...
    def worker(self, command: str, hosts: Sequence[str], **arguments: Any) -> ActionOutcome: ...
    def close(self) -> None: ...


class ScheduleControl(Protocol):
    """Changing one scheduled job (APScheduler); refused when read-only.

    ``via`` says how: "store" (written into the job store, seen by a
    running scheduler when it next wakes) or "bridge" (done inside the
    scheduler's process, seen at once).
    """

    read_only: bool
    via: str

    def pause(self, job_id: str) -> ActionOutcome: ...
    def resume(self, job_id: str) -> ActionOutcome: ...
    def run_now(self, job_id: str) -> ActionOutcome: ...
    def remove(self, job_id: str) -> ActionOutcome: ...
    def close(self) -> None: ...


class ScheduleSource(Protocol):
    """One place scheduled jobs live: an APScheduler job store, beat's state.

    ``jobs()`` reads every job, never changing the store; an unreachable or
    unreadable store raises a one-line :class:`~taskwatch.sources.errors.SourceError`
    (a single row that cannot be decoded is a job with ``problem`` set).
    """

    #: "apscheduler" or "beat"
    kind: str
    #: the store as shown (credentials masked)
    label: str

    def jobs(self) -> list[ScheduledJob]: ...
    def control(self) -> ScheduleControl | None:
        """The controller for this store's jobs, or None (beat entries run through the broker)."""
        ...
    def history(self) -> list[JobRun]:
        """Recent runs, newest last, where they are recorded (the bridge); else []."""
        ...
    def close(self) -> None: ...
