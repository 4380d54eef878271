"""Asking workers over the broker: ``ping``, ``stats``, ``active_queues``.

Broadcasts wait ``timeout`` for replies unless told how many to expect, so
every call that targets known workers passes ``destination`` *and* ``limit``
and returns as soon as they have all answered (milliseconds on a healthy
cluster instead of the full timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from taskwatch.records import TASK_KINDS, ExactCall, HeldTask, TaskKind, TaskPoll, WorkerReport
from taskwatch.sources.broker import Unreachable
from taskwatch.sources.celery_app import control_app
from taskwatch.sources.errors import TIMED_OUT, describe, reason_of
from taskwatch.text import AUTH_FAILED, clean, mask_url

if TYPE_CHECKING:
    from celery import Celery


class Inspector:
    """Inspect calls on one broker connection, safe to call from one worker thread at a time."""

    def __init__(self, broker_url: str, app: Celery | None = None, timeout: float = 1.0) -> None:
        """``app`` is the user's app (``-A``), used only for its settings."""
        self.broker_url = broker_url
        self.timeout = timeout
        self.app = control_app(broker_url, user_app=app, timeout=max(timeout, 2.0))
        self._conn = None
        self._lock = threading.Lock()
        self._executor = None  # parallel task inspects, each thread with its own connection
        self._local = threading.local()

    # -- connection ---------------------------------------------------------
    def _connection(self):
        if self._conn is None:
            self._conn = self.app.connection_for_write()
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
        self._conn = None

    def close(self) -> None:
        # Never waits for a round stuck on a broker that does not answer:
        # that round drops its connection itself when it fails.
        if self._lock.acquire(timeout=0.1):
            try:
                self._reset()
            finally:
                self._lock.release()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _broadcast(
        self,
        command: str,
        destination: Sequence[str] | None = None,
        timeout: float | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        conn = self._connection()
        return self.app.control.broadcast(
            command,
            arguments=arguments or {},
            destination=list(destination) if destination else None,
            limit=len(destination) if destination else None,
            timeout=self.timeout if timeout is None else timeout,
            reply=True,
            connection=conn,
        ) or []

    # -- calls --------------------------------------------------------------
    def poll_workers(self, expect: Sequence[str] = (), *, details: bool = True,
                     on_pong: Callable[[str, float], None] | None = None) -> WorkerReport:
        """Ping, then ask the workers that answered for stats and queues.

        ``expect``: workers known to be alive (from heartbeats). When given,
        the ping returns as soon as that many have answered instead of
        waiting out the timeout; workers beyond them are found by their
        heartbeats. ``details=False`` skips stats and queues (they change
        rarely; callers ask every few rounds). ``on_pong(hostname, at)`` is
        called as each answer arrives, before the timeout is over, so a
        screen can show workers as they answer.
        """
        started_at = time.time()
        t0 = time.monotonic()
        pings: dict[str, Any] = {}
        stats: dict[str, dict[str, Any]] = {}
        queues: dict[str, tuple[str, ...]] = {}
        errors: dict[str, str] = {}
        broker_error = None
        def callback(reply: dict[str, Any]) -> None:
            if on_pong is not None and isinstance(reply, dict):
                for host in reply:
                    on_pong(host, started_at)

        with self._lock:
            try:
                cached = self._conn is not None
                try:
                    replies = self.app.control.broadcast(
                        "ping", reply=True, timeout=self.timeout, connection=self._connection(),
                        limit=len(expect) or None, callback=callback,
                    ) or []
                except Exception as exc:
                    self._reset()
                    if not (cached and worth_retrying(exc)):
                        raise
                    # A kept connection the server closed (a restart, RabbitMQ's
                    # close_all_connections) is not an unreachable broker: once more, fresh.
                    replies = self.app.control.broadcast(
                        "ping", reply=True, timeout=self.timeout, connection=self._connection(),
                        limit=len(expect) or None, callback=callback,
                    ) or []
                for reply in replies:
                    if isinstance(reply, dict):
                        pings.update(reply)
                hosts = sorted(pings)
                if hosts and details:
                    for host, answer in _merge(self._broadcast("stats", hosts)).items():
                        if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
                            errors[host] = str(answer["error"])
                        elif isinstance(answer, dict):
                            stats[host] = answer
                    for host, answer in _merge(self._broadcast("active_queues", hosts)).items():
                        if isinstance(answer, list):
                            queues[host] = tuple(
                                str(q.get("name", "?")) for q in answer if isinstance(q, dict))
                        elif isinstance(answer, dict) and "error" in answer:
                            errors[host] = str(answer["error"])
            except Exception as exc:  # noqa: BLE001 - any broker failure ends this round only
                self._reset()
                broker_error = _broker_error(self.broker_url, exc)
        return WorkerReport(started_at, time.monotonic() - t0, pings, stats, queues, errors, broker_error)

    def poll_tasks(self, hosts: Sequence[str], kinds: Sequence[str] = TASK_KINDS) -> TaskPoll:
        """``active``/``reserved``/``scheduled``/``revoked`` from the named workers.

        Targets exactly ``hosts`` with a reply limit, so a healthy cluster
        answers in milliseconds; the commands go out in parallel, each on a
        connection of its own. Replies keep the real argument values.
        """
        started_at = time.time()
        t0 = time.monotonic()
        if not hosts:
            return TaskPoll(started_at)
        held: list[HeldTask] = []
        errors: dict[str, str] = {}
        answered: dict[str, list[str]] = {}
        broker_error = None
        futures = {kind: self._pool().submit(self._ask, kind, list(hosts)) for kind in kinds}
        for kind, future in futures.items():
            try:
                merged = future.result()
            except Exception as exc:  # noqa: BLE001 - a broker failure ends this round only
                broker_error = _broker_error(self.broker_url, exc)
                continue
            for host, answer in merged.items():
                if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
                    errors[host] = str(answer["error"])
                elif isinstance(answer, list):
                    held.extend(held_tasks(kind, host, answer))
                    answered.setdefault(kind, []).append(host)
        return TaskPoll(started_at, time.monotonic() - t0, tuple(held), errors, broker_error,
                        active_answered=tuple(answered.get("active", ())),
                        answered={kind: tuple(hosts) for kind, hosts in answered.items()})

    def quick_round(self, hosts: Sequence[str]) -> tuple[WorkerReport, TaskPoll]:
        """Ping and the task inspects at once, for workers already known alive.

        One round trip instead of two: all four broadcasts go out together,
        each targeted with a reply limit. Workers not in ``hosts`` are not
        asked; they show up through their heartbeats or the next full ping.
        """
        started_at = time.time()
        t0 = time.monotonic()
        ping = self._pool().submit(self._ask, "ping", list(hosts))
        tasks = self.poll_tasks(hosts)
        pings: dict[str, Any] = {}
        broker_error = None
        try:
            pings = ping.result()
        except Exception as exc:  # noqa: BLE001 - a broker failure ends this round only
            broker_error = _broker_error(self.broker_url, exc)
        return WorkerReport(started_at, time.monotonic() - t0, pings, broker_error=broker_error), tasks

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=len(TASK_KINDS) + 2,
                                                thread_name_prefix="taskwatch-inspect")
        return self._executor

    def _ask(self, command: str, hosts: list[str]) -> dict[str, Any]:
        """One broadcast on this pool thread's own connection; a kept connection
        that fails is replaced and the broadcast sent once more at once."""
        local = self._local
        cached = getattr(local, "conn", None) is not None
        while True:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = self.app.connection_for_write()
            try:
                replies = self.app.control.broadcast(
                    command, destination=hosts, limit=len(hosts), timeout=self.timeout,
                    reply=True, connection=conn,
                ) or []
            except Exception as exc:
                local.conn = None
                try:
                    conn.release()
                except Exception:  # noqa: BLE001, S110 - already broken
                    pass
                if cached and worth_retrying(exc):
                    cached = False
                    continue
                raise
            return _merge(replies)


def worth_retrying(exc: BaseException) -> bool:
    """Whether a failure on a kept connection may be that connection's alone
    (closed by the server) rather than the broker's: not a timeout (a second
    try would double the wait) nor a refused password."""
    return reason_of(exc) not in (TIMED_OUT, AUTH_FAILED)


def _merge(replies: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for reply in replies:
        if isinstance(reply, dict):
            merged.update(reply)
    return merged


def _broker_error(url: str, exc: BaseException) -> str:
    if isinstance(exc, Unreachable):
        return str(exc)
    return f"broker {mask_url(url)}: {describe(exc)}"


# -- replies as records -------------------------------------------------------

def held_tasks(kind: TaskKind, hostname: str, entries: list[Any]) -> list[HeldTask]:
    """Records from one worker's ``active``/``reserved``/``scheduled`` reply.

    Entries that are not the documented shape are skipped; ``scheduled``
    wraps each request as ``{eta, priority, request}``.
    """
    out: list[HeldTask] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        request = entry.get("request") if kind == "scheduled" else entry
        if not isinstance(request, dict) or type(request.get("id")) is not str:
            continue
        name = request.get("name")
        delivery = request.get("delivery_info")
        routing_key = delivery.get("routing_key") if isinstance(delivery, dict) else None
        eta = entry.get("eta") if kind == "scheduled" else None
        start = request.get("time_start")
        out.append(HeldTask(
            kind=kind,
            hostname=hostname,
            id=request["id"],
            name=name if type(name) is str else None,
            call=exact_call(request.get("args"), request.get("kwargs"))
            if "args" in request or "kwargs" in request else None,
            routing_key=routing_key if type(routing_key) is str else None,
            time_start=float(start) if isinstance(start, int | float) and not isinstance(start, bool)
            and start == start and abs(start) < 1e12 else None,
            eta=clean(str(eta), 64, single_line=True) if eta is not None else None,
        ))
    return out


def exact_call(args: Any, kwargs: Any) -> ExactCall | None:
    """Exact arguments from a JSON-decoded reply: None unless args is a list
    (or tuple) and kwargs a dict with str keys."""
    if kwargs is None:
        kwargs = {}
    if isinstance(args, list | tuple) and isinstance(kwargs, dict) and all(type(k) is str for k in kwargs):
        return ExactCall(tuple(args), kwargs)
    return None
