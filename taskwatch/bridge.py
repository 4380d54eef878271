"""taskwatch's bridge: a few threads inside the user's APScheduler 3.x process.

Why: from outside, a running scheduler can only be changed through its job
store, and it sees the change only when it next wakes (a "run now" may then
be skipped as a misfire). Inside its process the public API acts at once
and wakes it. The bridge also records every run, which no store keeps.

Use (e.g. in a FastAPI lifespan, before or after ``scheduler.start()``)::

    from taskwatch.bridge import attach
    bridge = attach(scheduler, "redis://redis:6379/0")
    ...
    bridge.close()

It works with every scheduler class whose jobs the public API reaches
(AsyncIOScheduler, BackgroundScheduler, BlockingScheduler, ...). It never
raises into the user's code: ``attach`` with a bad URL logs the reason and
returns a closed bridge (``bridge.error`` says why), and every thread
catches and logs (``logging.getLogger("taskwatch.bridge")``) what fails.
It imports only redis, apscheduler and :mod:`taskwatch.sources.apscheduler.location`.

Redis keys (``{id}`` is the bridge's own random id, ``{name}`` its name)
-----------------------------------------------------------------------
``taskwatch:bridges`` (set)
    every bridge id that announced itself here; members whose announcement
    expired are pruned by the next bridge's heartbeat.
``taskwatch:bridge:{id}`` (string, JSON, expires after ``ttl`` s, refreshed every ``ttl/3`` s)
    the announcement: ``{"v": 1, "id", "name", "host", "pid", "scheduler"
    (class name), "state" ("running", "paused", "stopped"), "started",
    "heartbeat" (epoch s), "ttl", "requests", "runs" (key names), "stores":
    [{"alias", "class", "identity"}]}``. ``identity`` is
    :meth:`StoreLocation.identity` of the store as a list (null for a store
    taskwatch cannot reach from outside, e.g. a MemoryJobStore), computed
    from the store objects: a RedisJobStore's host, port, db and jobs key;
    a SQLAlchemyJobStore's engine URL, table and schema.
``taskwatch:bridge:{id}:requests`` (list of request ids)
    taskwatch ``LPUSH``es, the bridge ``BRPOP``s (1 s blocks, so ``close`` is prompt).
``taskwatch:bridge:request:{rid}`` (string, JSON, expires when taskwatch stops waiting)
    one request: ``{"v": 1, "action": "pause" | "resume" | "run" | "remove",
    "job": job id, "store": store alias, "wait": s taskwatch waits}``. The bridge claims it with
    ``GET`` + ``DEL`` in one transaction; taskwatch, giving up, withdraws it
    with ``DEL``: exactly one of them wins, so taskwatch knows whether the
    request was taken. A request found expired is never executed.
``taskwatch:bridge:reply:{rid}`` (list of one JSON reply, expires after 60 s)
    ``{"ok": bool, "text": what the scheduler said, "next_run": epoch s or null}``;
    taskwatch waits for it with ``BLPOP``.
``taskwatch:bridge:runs:{name}`` (stream, ``XADD … MAXLEN ~ max_runs``)
    one entry per job event: ``event`` ("submitted", "executed", "error",
    "missed", "max_instances"), ``job``, ``store`` (alias), ``at``,
    ``scheduled`` (epoch s), ``duration`` (s from submission to the end),
    ``exception``, ``traceback`` (bounded), ``pid``. Keyed by name, so the
    history survives a restart of the app. The default name is the host
    name and a hash of the stores' identities.

What the requests do
--------------------
pause, remove: ``scheduler.pause_job`` / ``remove_job``. resume: the next
run the trigger gives from now (as ``resume_job``), set with
``modify_job``; a trigger without one (a date job that already ran) is
refused, where ``resume_job`` would delete the job. run: the job is
submitted to its executor once, as the scheduler does when a job is due
(``submitted`` event, ``max_instances`` honoured); its schedule is not
changed, a paused job stays paused. On an asyncio scheduler every request
runs in its event loop; on the others in the bridge's thread (the
scheduler's methods take its own locks). Each is answered with what the
scheduler said.

Trust: whoever can write to the bridge's Redis can pause, resume, run and
remove this scheduler's jobs (never anything else: a request names an
action and a job id, nothing is unpickled or evaluated). Give it a Redis
only trusted clients reach, as the Celery broker is.

Events are handed to a writer thread through a bounded queue (full: the
event is dropped and counted, never waited for), so a slow or absent Redis
never slows the scheduler; each event is one ``XADD``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import json
import logging
import os
import queue
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from taskwatch.sources.apscheduler.location import parse_store_url, sql_identity

__all__ = ["Bridge", "attach", "store_identity"]

log = logging.getLogger("taskwatch.bridge")

PREFIX = "taskwatch:bridge"
INDEX_KEY = "taskwatch:bridges"
VERSION = 1
ACTIONS = ("pause", "resume", "run", "remove")
#: Seconds a reply waits for taskwatch to read it.
REPLY_TTL = 60
#: Seconds one blocking read of the request list lasts.
BLOCK = 1.0
#: Longest text kept of an exception and of a traceback (the end of it).
EXCEPTION_LIMIT = 2000
TRACEBACK_LIMIT = 16_000
_RID = re.compile(r"[0-9a-f]{32}")
_MAX_JOB_ID = 1000


def announcement_key(bridge_id: str) -> str:
    return f"{PREFIX}:{bridge_id}"


def requests_key(bridge_id: str) -> str:
    return f"{PREFIX}:{bridge_id}:requests"


def request_key(rid: str) -> str:
    return f"{PREFIX}:request:{rid}"


def reply_key(rid: str) -> str:
    return f"{PREFIX}:reply:{rid}"


def runs_key(name: str) -> str:
    return f"{PREFIX}:runs:{name}"


def store_identity(store: Any) -> tuple[str, ...] | None:
    """:meth:`StoreLocation.identity` of an APScheduler store object, or None.

    Built through :func:`parse_store_url` / :func:`sql_identity` so it is the
    same tuple taskwatch computes from a ``--jobstore`` URL for the same store.
    """
    names = {cls.__name__ for cls in type(store).__mro__}
    try:
        if "RedisJobStore" in names:
            kwargs = store.redis.connection_pool.connection_kwargs
            query = urlencode({"jobs_key": store.jobs_key, "run_times_key": store.run_times_key,
                               "db": int(kwargs.get("db") or 0)})
            if kwargs.get("path"):
                url = f"unix://{quote(str(kwargs['path']))}?{query}"
            else:
                host = str(kwargs.get("host") or "localhost")
                host = f"[{host}]" if ":" in host else host
                url = f"redis://{host}:{int(kwargs.get('port') or 6379)}?{query}"
            return parse_store_url(url).identity()
        if "SQLAlchemyJobStore" in names:
            url = store.engine.url
            text = url.render_as_string(hide_password=True) if hasattr(url, "render_as_string") else str(url)
            return sql_identity(text, store.jobs_t.name, store.jobs_t.schema)
    except Exception:  # noqa: BLE001 - an odd store: not reachable from outside, say nothing
        log.debug("no identity for job store %r", store, exc_info=True)
    return None


def _redis(url: str, *, read_timeout: float) -> Any:
    from taskwatch.sources.redis_url import connect, parse_redis_url

    return connect(parse_redis_url(url, what="bridge Redis URL"), timeout=2.0,
                   read_timeout=read_timeout, client_name="taskwatch-bridge")


class Bridge:
    """The bridge of one scheduler; see the module docstring. ``close()`` stops it."""

    def __init__(self, scheduler: Any, redis_url: str, *, max_runs: int = 10_000,
                 name: str | None = None, ttl: float = 15.0, queue_size: int = 10_000) -> None:
        self.scheduler = scheduler
        self.id = uuid.uuid4().hex
        self.max_runs = max(1, int(max_runs))
        self.ttl = max(1.0, float(ttl))
        self.error: str | None = None
        #: events dropped because the queue was full or Redis failed
        self.dropped = 0
        self.started = time.time()
        self._redis_url = redis_url
        self._stop = threading.Event()
        self._queue: queue.Queue[dict[str, str]] = queue.Queue(maxsize=queue_size)
        self._submitted: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        self._submitted_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listening = False
        self._failing: dict[str, bool] = {}
        self.name = name or self._default_name()
        self.runs_key = runs_key(self.name)

    # -- life ---------------------------------------------------------------------------
    def start(self) -> Bridge:
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
            EVENT_JOB_SUBMITTED,
            EVENT_SCHEDULER_SHUTDOWN,
        )

        try:
            self._writer = _redis(self._redis_url, read_timeout=2.0)
            self._control = _redis(self._redis_url, read_timeout=BLOCK + 3.0)
        except Exception as exc:  # noqa: BLE001 - a bad URL: log it, never raise into the app
            self.error = _describe(exc)
            log.error("taskwatch bridge not started: %s", self.error)
            self._stop.set()
            return self
        self.scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED
                                    | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
                                    | EVENT_SCHEDULER_SHUTDOWN)
        self._listening = True
        atexit.register(self._at_exit)
        for target, label in ((self._write_loop, "writer"), (self._control_loop, "control")):
            thread = threading.Thread(target=target, name=f"taskwatch-bridge-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("taskwatch bridge %s (%s) attached", self.name, self.id)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads, withdraw the announcement, stop listening. Never raises."""
        self._stop.set()
        atexit.unregister(self._at_exit)
        if self._listening:
            self._listening = False
            try:
                self.scheduler.remove_listener(self._on_event)
            except Exception:  # noqa: BLE001
                log.debug("removing the listener failed", exc_info=True)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        if self._threads and not self.alive:
            _close(self._writer)

    def _at_exit(self) -> None:
        """The process ends (daemon threads die mid-read): withdraw the announcement now."""
        if not self._stop.is_set():
            self._stop.set()
            self._withdraw()

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _default_name(self) -> str:
        identities = sorted(json.dumps(store["identity"]) for store in self._stores())
        digest = hashlib.sha1("\n".join(identities).encode(), usedforsecurity=False).hexdigest()[:10]
        return f"{socket.gethostname()}-{digest}"

    def _stores(self) -> list[dict[str, Any]]:
        stores = []
        for alias, store in list(getattr(self.scheduler, "_jobstores", {}).items()):
            identity = store_identity(store)
            stores.append({"alias": str(alias), "class": type(store).__name__,
                           "identity": list(identity) if identity else None})
        return stores

    def _state(self) -> str:
        from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

        state = getattr(self.scheduler, "state", None)
        return {STATE_RUNNING: "running", STATE_PAUSED: "paused"}.get(state, "stopped")

    # -- events (the scheduler's threads: quick, never raising) -----------------------------
    def _on_event(self, event: Any) -> None:
        try:
            from apscheduler.events import (
                EVENT_JOB_ERROR,
                EVENT_JOB_EXECUTED,
                EVENT_JOB_MAX_INSTANCES,
                EVENT_JOB_MISSED,
                EVENT_JOB_SUBMITTED,
                EVENT_SCHEDULER_SHUTDOWN,
            )

            code = event.code
            if code == EVENT_SCHEDULER_SHUTDOWN:
                # Withdrawn here, not only by the control thread: the process may end
                # before that thread wakes from its blocking read.
                self._stop.set()
                self._withdraw()
                return
            now = time.time()
            alias = str(event.jobstore)
            entry = {"job": str(event.job_id), "store": alias, "at": repr(now), "pid": str(os.getpid())}
            if code in (EVENT_JOB_SUBMITTED, EVENT_JOB_MAX_INSTANCES):
                times = [_epoch(t) for t in event.scheduled_run_times or ()]
                entry["event"] = "submitted" if code == EVENT_JOB_SUBMITTED else "max_instances"
                if times:
                    entry["scheduled"] = repr(times[-1])
                if code == EVENT_JOB_SUBMITTED:
                    with self._submitted_lock:
                        for at in times:  # the bridge's own run-now noted it first
                            self._submitted.setdefault((alias, event.job_id, at), now)
                        while len(self._submitted) > 10_000:
                            self._submitted.popitem(last=False)
            else:
                scheduled = _epoch(event.scheduled_run_time)
                entry["scheduled"] = repr(scheduled)
                entry["event"] = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_ERROR: "error",
                                  EVENT_JOB_MISSED: "missed"}[code]
                with self._submitted_lock:
                    submitted = self._submitted.pop((alias, event.job_id, scheduled), None)
                if submitted is not None and code != EVENT_JOB_MISSED:
                    entry["duration"] = repr(max(0.0, now - submitted))
                if code == EVENT_JOB_ERROR:
                    entry["exception"] = _exception_text(event.exception)
                    entry["traceback"] = _tail(str(event.traceback or ""), TRACEBACK_LIMIT)
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
        except Exception as exc:  # noqa: BLE001 - never into the scheduler; said once, not per event
            self.dropped += 1
            self._failed("events", exc)

    def _write_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set() or not self._queue.empty():
            try:
                batch = [self._queue.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                pipe = self._writer.pipeline(transaction=False)
                for entry in batch:
                    pipe.xadd(self.runs_key, entry, maxlen=self.max_runs, approximate=True)
                pipe.execute()
                self._recovered("writer")
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - Redis down: drop the batch, say so once
                self.dropped += len(batch)
                self._failed("writer", exc)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 10.0)

    # -- announcement and requests ---------------------------------------------------
    def _control_loop(self) -> None:
        heartbeat = self.ttl / 3
        next_beat = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= next_beat:
                        self._announce()
                        next_beat = time.monotonic() + heartbeat
                    popped = self._control.brpop([requests_key(self.id)], timeout=BLOCK)
                    if popped:
                        self._serve(popped[1].decode("ascii", "replace"))
                    self._recovered("control")
                except Exception as exc:  # noqa: BLE001 - Redis down: retry, say so once
                    self._failed("control", exc)
                    next_beat = 0.0
                    self._stop.wait(1.0)
        finally:
            self._withdraw()
            _close(self._control)

    def _announce(self) -> None:
        key = announcement_key(self.id)
        body = json.dumps({
            "v": VERSION, "id": self.id, "name": self.name, "host": socket.gethostname(),
            "pid": os.getpid(), "scheduler": type(self.scheduler).__name__, "state": self._state(),
            "started": self.started, "heartbeat": time.time(), "ttl": self.ttl,
            "requests": requests_key(self.id), "runs": self.runs_key, "stores": self._stores(),
        })
        pipe = self._control.pipeline(transaction=False)
        pipe.set(key, body, px=int(self.ttl * 1000))
        pipe.sadd(INDEX_KEY, self.id)
        pipe.smembers(INDEX_KEY)
        members = pipe.execute()[-1]
        others = [m.decode() for m in members if m.decode() != self.id][:1000]
        if others:  # prune the bridges whose announcement expired (killed processes)
            check = self._control.pipeline(transaction=False)
            for member in others:
                check.exists(announcement_key(member))
            dead = [m for m, found in zip(others, check.execute(), strict=True) if not found]
            if dead:
                self._control.srem(INDEX_KEY, *dead)

    def _withdraw(self) -> None:
        """Delete the announcement and the request list (the writer's client: never blocked long)."""
        try:
            pipe = self._writer.pipeline(transaction=False)
            pipe.delete(announcement_key(self.id), requests_key(self.id))
            pipe.srem(INDEX_KEY, self.id)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - it expires anyway
            log.warning("taskwatch bridge: withdrawing the announcement failed (%s); it expires in %g s",
                        _describe(exc), self.ttl)

    def _serve(self, rid: str) -> None:
        if not _RID.fullmatch(rid):
            return
        pipe = self._control.pipeline(transaction=True)
        pipe.get(request_key(rid))
        pipe.delete(request_key(rid))
        raw = pipe.execute()[0]
        if raw is None:  # taskwatch withdrew it, or it expired: never run it late
            return
        try:
            request = json.loads(raw)
            action, job_id, alias = request["action"], request["job"], request["store"]
            if action not in ACTIONS or not isinstance(job_id, str) or not isinstance(alias, str) \
                    or not job_id or len(job_id) > _MAX_JOB_ID:
                raise ValueError("a malformed request")
            # answer a little before taskwatch stops waiting, so the answer is read
            reply = self._in_scheduler(lambda: self._act(action, job_id, alias),
                                       0.8 * float(request.get("wait", 5.0)))
        except Exception as exc:  # noqa: BLE001 - answer what went wrong
            reply = {"ok": False, "text": _describe(exc)}
        pipe = self._control.pipeline(transaction=True)
        pipe.lpush(reply_key(rid), json.dumps(reply, default=str))
        pipe.expire(reply_key(rid), REPLY_TTL)
        pipe.execute()

    def _in_scheduler(self, action: Callable[[], dict[str, Any]], wait: float) -> dict[str, Any]:
        """Run ``action`` where the scheduler expects its calls: an asyncio scheduler's loop, else here."""
        loop = getattr(self.scheduler, "_eventloop", None)
        if not isinstance(loop, asyncio.AbstractEventLoop) or not loop.is_running():
            return action()
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(action())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout=max(0.5, min(wait, 30.0)))
        except concurrent.futures.TimeoutError:
            if future.cancel():
                return {"ok": False, "text": "the scheduler's event loop was busy: nothing was done"}
            return {"ok": False, "text": "still running in the scheduler's event loop; it may be done"}

    def _act(self, action: str, job_id: str, alias: str) -> dict[str, Any]:
        from apscheduler.jobstores.base import JobLookupError

        scheduler = self.scheduler
        try:
            if action == "remove":
                scheduler.remove_job(job_id, alias)
                return {"ok": True, "text": "removed"}
            job = scheduler.get_job(job_id, alias)
            if job is None:
                return {"ok": False, "text": f"no job {job_id!r} in job store {alias!r}"}
            if action == "pause":
                scheduler.pause_job(job_id, alias)
                return {"ok": True, "text": "paused", "next_run": None}
            if action == "resume":
                now = datetime.now(scheduler.timezone)
                when = job.trigger.get_next_fire_time(None, now)
                if when is None or (when < now and job.trigger.get_next_fire_time(when, now) is None):
                    # (a DateTrigger answers its run date however long ago: resume_job would
                    # have the job skipped as missed, then deleted)
                    return {"ok": False, "text": "its trigger has no next run (a date job that already ran "
                                                 "or was missed, or a trigger past its end date): not resumed"}
                scheduler.modify_job(job_id, alias, next_run_time=when)
                return {"ok": True, "text": f"resumed: next run {_iso(when)}", "next_run": _epoch(when)}
            return self._run_once(job, alias)
        except JobLookupError:
            return {"ok": False, "text": f"no job {job_id!r} in job store {alias!r}"}

    def _run_once(self, job: Any, alias: str) -> dict[str, Any]:
        """Submit ``job`` to its executor once, as ``_process_jobs`` does for a due job."""
        from apscheduler.events import (
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_SUBMITTED,
            JobSubmissionEvent,
        )
        from apscheduler.executors.base import MaxInstancesReachedError
        from apscheduler.schedulers.base import STATE_STOPPED

        scheduler = self.scheduler
        if scheduler.state == STATE_STOPPED:
            return {"ok": False, "text": "the scheduler is not running: not run"}
        next_run = job.next_run_time
        lookup = getattr(scheduler, "_lookup_executor", None)
        dispatch = getattr(scheduler, "_dispatch_event", None)
        if lookup is None or dispatch is None:  # not APScheduler 3.x as known: fall back to the public API
            now = datetime.now(scheduler.timezone)
            scheduler.modify_job(job.id, alias, next_run_time=now)
            return {"ok": True, "next_run": _epoch(now),
                    "text": "next run set to now (the schedule continues from this run)"}
        run_times = [datetime.now(scheduler.timezone)]
        executor = lookup(job.executor)
        with self._submitted_lock:  # before the job can end, for its duration
            self._submitted[(alias, job.id, _epoch(run_times[0]))] = time.time()
        try:
            executor.submit_job(job, run_times)
        except MaxInstancesReachedError:
            dispatch(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, alias, run_times))
            return {"ok": False, "text": f"not run: {job.max_instances} instance(s) already running "
                                         "(max_instances)"}
        dispatch(JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, alias, run_times))
        schedule = f"next scheduled run {_iso(next_run)}" if next_run else "still paused"
        return {"ok": True, "next_run": _epoch(next_run) if next_run else None,
                "text": f"submitted to executor {job.executor!r}; schedule unchanged ({schedule})"}

    # -- saying what fails, once ------------------------------------------------------
    def _failed(self, part: str, exc: BaseException) -> None:
        if not self._failing.get(part):
            self._failing[part] = True
            what = "recording an event" if part == "events" else "Redis"
            log.warning("taskwatch bridge %s: %s failed (%s)", part, what, _describe(exc))

    def _recovered(self, part: str) -> None:
        if self._failing.get(part):
            self._failing[part] = False
            log.info("taskwatch bridge %s: Redis answers again", part)


def attach(scheduler: Any, redis_url: str, *, max_runs: int = 10_000, name: str | None = None,
           ttl: float = 15.0) -> Bridge:
    """Attach taskwatch's bridge to ``scheduler``, talking through the Redis at ``redis_url``.

    ``max_runs``: about how many run events the history keeps. ``name``:
    the history's name (default: host name and a hash of the stores).
    ``ttl``: seconds after which a bridge that stopped beating (its process
    killed) is no longer found. Never raises; see ``Bridge.error``.
    """
    try:
        return Bridge(scheduler, redis_url, max_runs=max_runs, name=name, ttl=ttl).start()
    except Exception as exc:  # noqa: BLE001 - never into the user's app
        log.exception("taskwatch bridge not attached")
        bridge = Bridge.__new__(Bridge)
        bridge.scheduler, bridge.error, bridge._threads = scheduler, _describe(exc), []
        bridge._stop, bridge._listening = threading.Event(), False
        bridge._stop.set()
        return bridge


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else "none"


def _describe(exc: BaseException) -> str:
    from taskwatch.text import mask_secrets

    text = (str(exc) or type(exc).__name__).replace("\n", " ")
    return mask_secrets(f"{type(exc).__name__}: {text}")[:300]


def _exception_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - a user's __str__ that raises
        text = type(exc).__name__
    return text[:EXCEPTION_LIMIT]


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _close(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing only
        pass
