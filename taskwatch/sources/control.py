"""Acting on the cluster: revoke, retry, purge, worker control.

Every call here changes something, so every call:

* is refused with :class:`ReadOnly` before anything is sent when the
  controller was made read-only (``--read-only``);
* targets the workers that answered a ping, with a reply limit, so it
  returns as soon as they have all answered instead of waiting out the
  timeout;
* returns an :class:`~taskwatch.records.ActionOutcome` saying what was sent
  and what each worker (or the broker) answered, in its own words.

What Celery does with these, truthfully: a revoke lives in the memory of
the workers that heard it (and in their ``--statedb`` file if they have
one); a worker started later does not know it, and runs a revoked task
still waiting in a queue. A retry is a new task with a new id and the exact
arguments of the old one; nothing is re-parsed from a repr.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskwatch.records import ActionOutcome, ExactCall, WorkerReply
from taskwatch.sources.broker import Unreachable
from taskwatch.sources.celery_app import control_app
from taskwatch.sources.errors import SourceError, describe
from taskwatch.text import clean, mask_url

if TYPE_CHECKING:
    from celery import Celery

#: Signals a terminate may send (Celery's names, without the SIG prefix too).
SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGHUP")

#: Worker control commands and the arguments each takes, as Celery names
#: them (celery/worker/control.py). Values are checked before sending.
WORKER_COMMANDS: Mapping[str, tuple[str, ...]] = {
    "pool_grow": ("n",),
    "pool_shrink": ("n",),
    "autoscale": ("max", "min"),
    "rate_limit": ("task_name", "rate_limit"),
    "time_limit": ("task_name", "soft", "hard"),
    "add_consumer": ("queue",),
    "cancel_consumer": ("queue",),
    "enable_events": (),
    "disable_events": (),
    "pool_restart": (),
    "shutdown": (),
}


class ReadOnly(SourceError):
    """The controller is read-only: nothing was sent."""


class Controller:
    """State-changing calls on one broker; one call at a time."""

    def __init__(self, broker_url: str, app: Celery | None = None, *, read_only: bool,
                 timeout: float = 2.0) -> None:
        self.broker_url = broker_url
        self.read_only = read_only
        self.timeout = timeout
        self.app = control_app(broker_url, user_app=app, timeout=max(timeout, 2.0))
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing held: every call opens its own connection and releases it.

        (Celery's ``app.pool`` is a process-wide pool per broker URL: closing
        it would break every other app on the same broker in this process.)
        """

    # -- the actions -------------------------------------------------------
    def revoke(self, ids: Sequence[str], *, terminate: bool = False, signal: str = "SIGTERM",
               hosts: Sequence[str] | None = None) -> ActionOutcome:
        """Revoke ``ids`` on every live worker (or ``hosts``); terminate if asked."""
        if terminate and signal.upper() not in SIGNALS and f"SIG{signal.upper()}" not in SIGNALS:
            raise SourceError(f"unknown signal {signal!r} (one of {', '.join(SIGNALS)})")
        arguments: dict[str, Any] = {"task_id": list(ids), "terminate": terminate}
        if terminate:
            arguments["signal"] = signal.upper() if signal.upper().startswith("SIG") else f"SIG{signal.upper()}"
        return self._broadcast("revoke", arguments, hosts, action="terminate" if terminate else "revoke",
                               targets=tuple(ids))

    def worker(self, command: str, hosts: Sequence[str], **arguments: Any) -> ActionOutcome:
        """One worker control command (``WORKER_COMMANDS``) on ``hosts``."""
        if command not in WORKER_COMMANDS:
            raise SourceError(f"unknown worker command {command!r} (one of {', '.join(WORKER_COMMANDS)})")
        unknown = set(arguments) - set(WORKER_COMMANDS[command])
        if unknown:
            raise SourceError(f"{command} takes {', '.join(WORKER_COMMANDS[command]) or 'no arguments'}")
        if not hosts:
            raise SourceError(f"{command}: name the workers to act on")
        return self._broadcast(command, arguments, hosts, action=f"worker {command}", targets=tuple(hosts))

    def retry(self, name: str, call: ExactCall, *, queue: str | None = None,
              priority: int | None = None, retry_of: str | None = None) -> ActionOutcome:
        """Send ``name`` again with exactly ``call``'s arguments, as a new task."""
        arguments: dict[str, Any] = {"name": name, "args": list(call.args), "kwargs": dict(call.kwargs)}
        options: dict[str, Any] = {}
        if queue:
            options["queue"] = queue
        if priority is not None:
            options["priority"] = priority
        arguments.update(options)
        if retry_of:
            arguments["retry_of"] = retry_of
        self._refuse_if_read_only("retry")
        new_id = str(uuid.uuid4())
        try:
            with self._lock, self.app.connection_for_write() as conn:
                self.app.send_task(name, args=list(call.args), kwargs=dict(call.kwargs), task_id=new_id,
                                   connection=conn, **options)
        except Exception as exc:  # noqa: BLE001 - the broker failed: say so, send nothing more
            return ActionOutcome("retry", (retry_of or name,), arguments, error=self._broker_error(exc))
        return ActionOutcome("retry", (retry_of or name,), arguments,
                             replies=(WorkerReply(queue or "default queue", True, f"sent as {new_id}"),),
                             created=(new_id,))

    def run_entry(self, name: str, entry: Mapping[str, Any]) -> ActionOutcome:
        """Run a beat schedule entry now, as beat would: its task, args, kwargs and options."""
        task = entry.get("task")
        if not isinstance(task, str) or not task:
            raise SourceError(f"beat entry {name!r} names no task")
        args, kwargs = entry.get("args") or (), entry.get("kwargs") or {}
        options = dict(entry.get("options") or {})
        arguments = {"entry": name, "task": task, "args": list(args), "kwargs": dict(kwargs), **{
            k: v for k, v in options.items() if isinstance(v, str | int | float | bool)}}
        self._refuse_if_read_only("run")
        new_id = str(uuid.uuid4())
        try:
            with self._lock, self.app.connection_for_write() as conn:
                self.app.send_task(task, args=list(args), kwargs=dict(kwargs), task_id=new_id,
                                   connection=conn, **options)
        except Exception as exc:  # noqa: BLE001
            return ActionOutcome("run", (name,), arguments, error=self._broker_error(exc))
        return ActionOutcome("run", (name,), arguments,
                             replies=(WorkerReply(name, True, f"sent {task} as {new_id}"),), created=(new_id,))

    def purge(self, queue: str) -> ActionOutcome:
        """Delete every ready message of ``queue`` (not those workers already hold)."""
        self._refuse_if_read_only("purge")
        try:
            with self._lock, self.app.connection_for_write() as conn:
                count = conn.default_channel.queue_purge(queue)
        except Exception as exc:  # noqa: BLE001
            return ActionOutcome("purge", (queue,), {"queue": queue}, error=self._broker_error(exc))
        return ActionOutcome("purge", (queue,), {"queue": queue},
                             replies=(WorkerReply(queue, True, f"{count or 0} messages removed"),))

    def remove_message(self, queue: str, task_id: str,
                       transport_options: Mapping[str, Any] | None = None) -> ActionOutcome:
        """Remove task ``task_id``'s message from ``queue`` (Redis): that exact
        element, atomically (``LREM key 1 <bytes>``); a poison message is the
        common case. A message a worker took meanwhile is not touched."""
        from taskwatch.sources.queues import queue_probe
        from taskwatch.sources.queues.redis import RedisQueueProbe
        from taskwatch.sources.redis_url import connect, parse_redis_url

        arguments = {"queue": queue, "task_id": task_id}
        self._refuse_if_read_only("remove")
        if transport_options is None:
            transport_options = dict(self.app.conf.get("broker_transport_options") or {})
        probe = queue_probe(self.broker_url, transport_options=transport_options, timeout=self.timeout)
        try:
            if not isinstance(probe, RedisQueueProbe):
                raise SourceError("removing one message is offered on Redis brokers only "
                                  "(RabbitMQ cannot take one message out of a queue)")
            found = probe.locate(queue, task_id)
            if found is None:
                return ActionOutcome("remove", (task_id,), arguments,
                                     error=f"task {task_id} is not waiting in {queue!r}: nothing was removed")
            key, raw = found
            client = connect(parse_redis_url(self.broker_url, transport_options, what="broker URL"),
                             timeout=self.timeout)
            try:
                removed = client.lrem(key, 1, raw)
            finally:
                client.close()
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001
            return ActionOutcome("remove", (task_id,), arguments, error=self._broker_error(exc))
        finally:
            probe.close()
        if not removed:
            return ActionOutcome("remove", (task_id,), arguments,
                                 replies=(WorkerReply(queue, False, "a worker took it first: nothing removed"),))
        return ActionOutcome("remove", (task_id,), arguments,
                             replies=(WorkerReply(queue, True, f"message of {task_id} removed"),))

    # -- plumbing ------------------------------------------------------------
    def _refuse_if_read_only(self, action: str) -> None:
        if self.read_only:
            raise ReadOnly(f"{action}: refused, taskwatch is read-only (--read-only); nothing was sent")

    def _broadcast(self, command: str, arguments: dict[str, Any], hosts: Sequence[str] | None, *,
                   action: str, targets: tuple[str, ...]) -> ActionOutcome:
        self._refuse_if_read_only(action)
        try:
            with self._lock, self.app.connection_for_write() as conn:
                if hosts is None:
                    pongs = self.app.control.broadcast("ping", reply=True, timeout=self.timeout,
                                                       connection=conn) or []
                    hosts = sorted({host for reply in pongs if isinstance(reply, dict) for host in reply})
                if not hosts:
                    return ActionOutcome(action, targets, arguments, error="no worker answered: nothing was sent")
                replies = self.app.control.broadcast(
                    command, arguments=arguments, destination=list(hosts), limit=len(hosts),
                    timeout=self.timeout, reply=True, connection=conn,
                ) or []
        except Exception as exc:  # noqa: BLE001
            return ActionOutcome(action, targets, arguments, error=self._broker_error(exc))
        return ActionOutcome(action, targets, arguments, replies=_replies(replies, hosts))

    def _broker_error(self, exc: BaseException) -> str:
        if isinstance(exc, Unreachable):
            return str(exc)
        return f"broker {mask_url(self.broker_url)}: {describe(exc)}"


def _replies(replies: list[Any], hosts: Sequence[str]) -> tuple[WorkerReply, ...]:
    """Each worker's answer in its words; a worker that did not answer says so."""
    answered: dict[str, WorkerReply] = {}
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        for host, answer in reply.items():
            if isinstance(answer, dict) and "ok" in answer:
                answered[host] = WorkerReply(_line(host), True, _line(answer["ok"]))
            elif isinstance(answer, dict) and "error" in answer:
                answered[host] = WorkerReply(_line(host), False, _line(answer["error"]))
            else:
                answered[host] = WorkerReply(_line(host), True, _line(answer))
    for host in hosts:
        if host not in answered:
            answered[host] = WorkerReply(_line(host), False, "no answer within the timeout")
    return tuple(answered[h] for h in sorted(answered))


def _line(value: Any) -> str:
    return clean(str(value), 300, single_line=True)
