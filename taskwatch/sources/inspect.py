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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskwatch.sources.broker import Unreachable
from taskwatch.sources.celery_app import control_app
from taskwatch.sources.errors import describe
from taskwatch.text import mask_url

if TYPE_CHECKING:
    from celery import Celery


TASK_KINDS = ("active", "reserved", "scheduled")


@dataclass
class WorkerPoll:
    """One round of asking the workers: plain data for the engine."""

    started_at: float
    duration: float = 0.0
    # hostname -> reply of each command that worker answered
    pings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, list[str]] = field(default_factory=dict)
    # hostname -> error text a worker sent back instead of a reply
    errors: dict[str, str] = field(default_factory=dict)
    # set when the broker itself could not be reached: the round says nothing
    # about the workers
    broker_error: str | None = None


@dataclass
class TaskPoll:
    """Tasks the workers hold right now, by inspect method and hostname."""

    started_at: float
    duration: float = 0.0
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    broker_error: str | None = None


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
        with self._lock:
            self._reset()
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
                     on_pong: Callable[[str, float], None] | None = None) -> WorkerPoll:
        """Ping, then ask the workers that answered for stats and queues.

        ``expect``: workers known to be alive (from heartbeats). When given,
        the ping returns as soon as that many have answered instead of
        waiting out the timeout; workers beyond them are found by their
        heartbeats. ``details=False`` skips stats and queues (they change
        rarely; callers ask every few rounds). ``on_pong(hostname, at)`` is
        called as each answer arrives, before the timeout is over, so a
        screen can show workers as they answer.
        """
        poll = WorkerPoll(started_at=time.time())
        t0 = time.monotonic()
        with self._lock:
            try:
                conn = self._connection()
                def callback(reply: dict[str, Any]) -> None:
                    if on_pong is not None and isinstance(reply, dict):
                        for host in reply:
                            on_pong(host, poll.started_at)

                replies = self.app.control.broadcast(
                    "ping", reply=True, timeout=self.timeout, connection=conn,
                    limit=len(expect) or None, callback=callback,
                ) or []
                for reply in replies:
                    for host, answer in reply.items():
                        poll.pings[host] = answer
                hosts = sorted(poll.pings)
                if hosts and details:
                    for host, answer in _merge(self._broadcast("stats", hosts)).items():
                        if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
                            poll.errors[host] = str(answer["error"])
                        elif isinstance(answer, dict):
                            poll.stats[host] = answer
                    for host, answer in _merge(self._broadcast("active_queues", hosts)).items():
                        if isinstance(answer, list):
                            poll.queues[host] = [q.get("name", "?") for q in answer if isinstance(q, dict)]
                        elif isinstance(answer, dict) and "error" in answer:
                            poll.errors[host] = str(answer["error"])
            except Exception as exc:  # noqa: BLE001 - any broker failure ends this round only
                self._reset()
                poll.broker_error = _broker_error(self.broker_url, exc)
        poll.duration = time.monotonic() - t0
        return poll


    def poll_tasks(self, hosts: Sequence[str], kinds: Sequence[str] = TASK_KINDS) -> TaskPoll:
        """``active``/``reserved``/``scheduled``/``revoked`` from the named workers.

        Targets exactly ``hosts`` with a reply limit, so a healthy cluster
        answers in milliseconds; the commands go out in parallel, each on a
        connection of its own. Replies keep the real argument values.
        """
        poll = TaskPoll(started_at=time.time())
        t0 = time.monotonic()
        if not hosts:
            return poll
        futures = {kind: self._pool().submit(self._ask, kind, list(hosts)) for kind in kinds}
        for kind, future in futures.items():
            try:
                merged = future.result()
            except Exception as exc:  # noqa: BLE001 - a broker failure ends this round only
                poll.broker_error = _broker_error(self.broker_url, exc)
                continue
            for host, answer in merged.items():
                if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
                    poll.errors[host] = str(answer["error"])
                else:
                    poll.replies.setdefault(kind, {})[host] = answer
        poll.duration = time.monotonic() - t0
        return poll

    def quick_round(self, hosts: Sequence[str]) -> tuple[WorkerPoll, TaskPoll]:
        """Ping and the task inspects at once, for workers already known alive.

        One round trip instead of two: all four broadcasts go out together,
        each targeted with a reply limit. Workers not in ``hosts`` are not
        asked; they show up through their heartbeats or the next full ping.
        """
        workers = WorkerPoll(started_at=time.time())
        t0 = time.monotonic()
        ping = self._pool().submit(self._ask, "ping", list(hosts))
        tasks = self.poll_tasks(hosts)
        try:
            workers.pings = ping.result()
        except Exception as exc:  # noqa: BLE001 - a broker failure ends this round only
            workers.broker_error = _broker_error(self.broker_url, exc)
        workers.duration = time.monotonic() - t0
        return workers, tasks

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=len(TASK_KINDS) + 2,
                                                thread_name_prefix="taskwatch-inspect")
        return self._executor

    def _ask(self, command: str, hosts: list[str]) -> dict[str, Any]:
        """One broadcast on this pool thread's own connection."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = self.app.connection_for_write()
        try:
            replies = self.app.control.broadcast(
                command, destination=hosts, limit=len(hosts), timeout=self.timeout,
                reply=True, connection=conn,
            ) or []
        except Exception:
            local.conn = None
            try:
                conn.release()
            except Exception:  # noqa: BLE001, S110 - already broken
                pass
            raise
        return _merge(replies)


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
