"""Typed records: what crosses from ``sources`` to ``engine`` and ``ui``.

The bottom layer. ``sources`` build these from what brokers, workers and
stores say; ``engine`` merges them into its state; the UI shows some of
them as they are (queue depths, peeked messages). Nothing here does I/O or
imports another taskwatch layer.

Every record is a frozen dataclass: once a source hands one over, nobody
changes it. Every ``str`` in a record is already display-safe (control
sequences out, bounded) unless its docstring says otherwise. Exact argument
values travel as :class:`ExactCall`, JSON-able values kept once, from which
both a lossless resend and Celery's repr-style display text are derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Where a queue depth came from.
SOURCE_REDIS = "redis"
SOURCE_AMQP = "amqp"
SOURCE_MANAGEMENT = "management"

#: The inspect methods that report tasks a worker holds.
TaskKind = Literal["active", "reserved", "scheduled"]
TASK_KINDS: tuple[TaskKind, ...] = ("active", "reserved", "scheduled")


# -- arguments ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExactCall:
    """A task's real arguments, lossless: what a retry sends again.

    ``args`` and ``kwargs`` hold JSON-able values (str, int, float, bool,
    None, lists and dicts with str keys) exactly as the worker, the result
    backend or the message had them, never re-parsed from a repr. Sources
    hand one over only when every value is of those types.
    """

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


# -- workers -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WorkerReport:
    """One round of asking the workers (ping, stats, active_queues).

    Hostnames are as the workers sent them (the engine cleans them);
    ``stats`` values are the workers' own dicts.
    """

    started_at: float
    duration: float = 0.0
    #: hostname -> ping answer of each worker that answered
    pings: Mapping[str, Any] = field(default_factory=dict)
    #: hostname -> ``inspect stats`` reply
    stats: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: hostname -> names of the queues it consumes from
    queues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: hostname -> error text a worker sent back instead of a reply
    errors: Mapping[str, str] = field(default_factory=dict)
    #: set when the broker itself could not be reached: the round says
    #: nothing about the workers
    broker_error: str | None = None


@dataclass(frozen=True, slots=True)
class HeldTask:
    """One task a worker holds, from ``inspect active/reserved/scheduled``."""

    kind: TaskKind
    hostname: str
    id: str
    name: str | None = None
    #: the real argument values; None when the reply had none usable
    call: ExactCall | None = None
    routing_key: str | None = None
    #: epoch seconds the worker started it (active only)
    time_start: float | None = None
    #: the ETA text of a scheduled task, as the worker reported it
    eta: str | None = None


@dataclass(frozen=True, slots=True)
class TaskPoll:
    """Tasks the workers hold right now."""

    started_at: float
    duration: float = 0.0
    tasks: tuple[HeldTask, ...] = ()
    #: hostname -> error text a worker sent back instead of a reply
    errors: Mapping[str, str] = field(default_factory=dict)
    broker_error: str | None = None
    #: hostnames whose ``active`` reply came back (an idle worker answers an
    #: empty list): their active count is the number of their active tasks
    active_answered: tuple[str, ...] = ()
    #: kind -> hostnames whose reply of that kind came back: what they did
    #: not list, they do not hold (a worker that did not answer says nothing)
    answered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# -- queues ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How full one queue is, as one broker reported it.

    ``messages`` counts ready messages, all priorities summed. ``unacked``
    counts messages taken by workers and not yet acknowledged: on Redis the
    entries of the ``unacked`` hash attributed to this queue (prefetched
    messages and every ETA/countdown task a worker holds); on RabbitMQ only
    the management API knows it. ``None`` means "not known", never zero.

    ``by_priority`` (Redis only) maps the priority step of each non-empty list
    to its length: ``"0"`` for the plain list ``<queue>``, ``"3"``, ``"6"``,
    ``"9"`` for ``<queue>\\x06\\x16<step>``. Redis deletes a list when it
    empties, so "non-empty" and "present" are the same lists; steps missing
    from the dict hold nothing.

    ``unacked_partial`` is True when the ``unacked`` hash was larger than the
    probe parses per call: ``unacked`` is then a lower bound.
    """

    name: str
    messages: int | None = None
    by_priority: Mapping[str, int] = field(default_factory=dict)
    unacked: int | None = None
    consumers: int | None = None
    source: str = SOURCE_REDIS
    error: str | None = None
    #: Per-second rates from the management API: ``publish``, ``deliver_get``,
    #: ``ack``, ``redeliver`` when RabbitMQ reports them.
    rates: Mapping[str, float] = field(default_factory=dict)
    unacked_partial: bool = False


@dataclass(frozen=True, slots=True)
class PeekedMessage:
    """One message as it waits in a queue: plain, display-safe data.

    Every ``str`` field is cleaned (no control sequences, one line, bounded).
    ``body_size`` is the size in bytes of the serialized body as stored
    (after base64 decoding, before decompression). ``eta`` and ``expires``
    are the ISO 8601 texts the producer wrote.
    """

    id: str | None = None
    task: str | None = None
    #: arguments as display text: Celery's repr style when ``call`` is set,
    #: else the producer's ``argsrepr``/``kwargsrepr``
    args: str | None = None
    kwargs: str | None = None
    #: the exact values from a JSON body
    call: ExactCall | None = None
    eta: str | None = None
    expires: str | None = None
    priority: int | None = None
    retries: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    origin: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    body_size: int | None = None
    queue: str | None = None
    #: The producer's ``argsrepr`` / ``kwargsrepr`` headers, when present.
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    #: Celery task protocol (1 or 2) when it could be told.
    protocol: int | None = None
    #: kombu marks a message it put back after a failed delivery.
    redelivered: bool = False
    #: The compression named in the headers, if any.
    compression: str | None = None
    #: What could not be read, one line; None when the message decoded fully.
    error: str | None = None

    @property
    def exact_args(self) -> bool:
        return self.call is not None


# -- result backend ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StoredResult:
    """One task's stored result, as safe text, and its exact arguments when stored."""

    task_id: str
    #: a Celery state name (SUCCESS, FAILURE, RETRY, STARTED, ...) or UNKNOWN
    status: str
    #: the return value rendered as text (for exception states: the exception)
    result: str = ""
    #: for FAILURE/RETRY/REVOKED: ``ValueError('report 17 has no rows')``
    exception: str = ""
    #: the traceback, newlines kept, bounded to ~16 KB
    traceback: str = ""
    #: when the task finished, epoch seconds (None while not ready)
    date_done: float | None = None
    name: str = ""
    #: arguments as display text, like Celery's ``argsrepr``/``kwargsrepr``
    args: str = ""
    kwargs: str = ""
    #: the real arguments when the backend stored them (``result_extended``)
    #: and they are plain JSON-able values: lossless, for a retry
    call: ExactCall | None = None
    worker: str = ""
    retries: int | None = None
    queue: str = ""
    children: tuple[str, ...] = ()
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    #: how the stored value was encoded: json, pickle, msgpack, unknown
    encoding: str = "json"
    #: why some of it could not be decoded, or None
    problem: str | None = None

    @property
    def exact_args(self) -> bool:
        return self.call is not None


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One step of walking a result backend (``ResultBackend.scan``).

    ``examined`` counts what the step looked at (keys a Redis ``SCAN`` step
    returned, rows a query returned), ``results`` the ones wanted, and
    ``complete`` is True on the step that ends a walk of everything stored.
    """

    results: tuple[StoredResult, ...]
    examined: int
    complete: bool


# -- schedulers ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One scheduled job as a scheduler's own store keeps it.

    For APScheduler, one row of a job store, decoded without importing the
    user's code; for Celery beat, one schedule entry. ``problem`` says why a
    row could not be decoded (it is then shown, never hidden or deleted).
    Times are epoch seconds (UTC). Whether a job is overdue (APScheduler) or
    late (beat) depends on the clock, so the engine decides it from
    ``next_run`` and ``grace``.
    """

    #: "apscheduler" or "beat"
    source: str
    #: the store or schedule it came from, credentials masked
    store: str
    id: str
    name: str = ""
    #: what runs: APScheduler's "module:qualname", or beat's task name
    target: str = ""
    #: the trigger or schedule, described for display ("every 15 min", "cron 08:00 UTC mon-fri")
    trigger: str = ""
    #: epoch seconds of the next run; None when paused or unknown
    next_run: float | None = None
    #: epoch seconds of the last run, where the store keeps it (beat)
    last_run: float | None = None
    paused: bool = False
    call: ExactCall | None = None
    #: arguments as display text (when ``call`` is None: the best there is)
    args: str = ""
    kwargs: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None
    #: seconds a run may be late and still run (APScheduler's misfire_grace_time;
    #: beat: how late the next run may be before beat counts as down); None: no limit known
    grace: float | None = None
    #: APScheduler: coalesce, max_instances, executor
    coalesce: bool | None = None
    max_instances: int | None = None
    executor: str = ""
    #: beat: total_run_count as beat keeps it
    total_runs: int | None = None
    #: beat: the queue the entry's task is routed to
    queue: str = ""
    #: beat: the entry is enabled (django-celery-beat, RedBeat can disable one)
    enabled: bool = True
    #: False: ``next_run`` is an estimate (an interval whose last run is unknown)
    exact: bool = True


@dataclass(frozen=True, slots=True)
class JobRun:
    """One event in a scheduled job's run history (APScheduler, from the bridge).

    ``event``: "submitted", "executed", "error", "missed" or "max_instances".
    """

    store: str
    job_id: str
    event: str
    #: when the event happened (epoch seconds)
    at: float
    #: the run time it was for (epoch seconds), when known
    scheduled: float | None = None
    #: seconds from submission to the end, for executed / error
    duration: float | None = None
    exception: str | None = None
    traceback: str | None = None


# -- actions -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WorkerReply:
    """What one worker (or the broker, for queue actions) said to one action."""

    #: the worker's hostname, or the queue / broker acted on
    target: str
    ok: bool
    #: the reply as the worker worded it, one cleaned line
    text: str


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """One state-changing action as sent, and what came back.

    ``arguments`` are what was sent (JSON-able, no secrets); ``error`` is
    set when nothing could be sent at all (broker down, refused as
    read-only, arguments not known exactly).
    """

    action: str
    targets: tuple[str, ...]
    arguments: Mapping[str, Any] = field(default_factory=dict)
    replies: tuple[WorkerReply, ...] = ()
    error: str | None = None
    #: ids of tasks this action created (a retry's new task ids)
    created: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and all(reply.ok for reply in self.replies)


# -- broker health (``taskwatch doctor``) ---------------------------------------

@dataclass(frozen=True, slots=True)
class PubsubLimit:
    """Redis's ``client-output-buffer-limit`` for pub/sub clients, in bytes (0: none).

    Redis closes a subscriber whose unread output passes ``hard``, or stays
    above ``soft`` for ``soft_seconds``: every event in the buffer is lost.
    """

    hard: int
    soft: int
    soft_seconds: int


@dataclass(frozen=True, slots=True)
class HeldEta:
    """An ETA/countdown task a worker holds, waiting for its time."""

    id: str
    name: str | None
    #: epoch seconds the task is due
    eta: float
    #: epoch seconds the worker took it from the queue (Redis ``unacked_index``); None: not known
    delivered_at: float | None = None
    #: the worker that said it holds it (``inspect scheduled``); None: read from the broker
    hostname: str | None = None


# -- how each source is doing --------------------------------------------------

#: The sources whose health the monitor keeps (job stores add ``job store <label>``).
BROKER = "broker"
RESULT_BACKEND = "result backend"
MANAGEMENT_API = "management API"

HealthState = Literal["ok", "down"]


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How one source (the broker, the result backend, a job store, the
    management API) is doing, as the monitor last learnt it.

    ``reason`` is one of a few words a person reads at a glance
    ("authentication failed", "refused", "timed out", "not answering",
    "connection closed", "error"), ``detail`` the source's own one-line,
    masked message. ``since``: when this state began; ``last_ok``: the last
    time the source really answered (not when its failure was noticed).
    Times are epoch seconds.
    """

    source: str
    state: HealthState
    reason: str | None = None
    detail: str | None = None
    since: float | None = None
    last_ok: float | None = None

    @property
    def down(self) -> bool:
        return self.state == "down"
