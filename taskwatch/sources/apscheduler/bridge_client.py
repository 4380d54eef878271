"""Talking to taskwatch's bridge (:mod:`taskwatch.bridge`) inside a scheduler's process.

:func:`find_bridge` looks on each candidate Redis for a live announcement
serving a job store (the same :meth:`StoreLocation.identity`); the
:class:`BridgeClient` it returns changes jobs through the scheduler itself
(``via = "bridge"``: seen at once, a run-now runs at once and leaves the
schedule alone) and reads the run history the bridge records.

Everything read from Redis here was written by another process: it is
parsed as JSON data, checked, cleaned and bounded before it leaves this
module. Finding a bridge and reading its history only read; a request is
refused before anything is sent when taskwatch is read-only.

The key layout and the request protocol are in :mod:`taskwatch.bridge`'s
docstring; the names are repeated here (not imported) so that this side
never imports the bridge, which runs in other people's processes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskwatch.records import ActionOutcome, JobRun, WorkerReply
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import describe
from taskwatch.sources.redis_url import RedisURLError, connect, parse_redis_url
from taskwatch.text import clean, mask_url

if TYPE_CHECKING:
    import redis

__all__ = ["BridgeClient", "find_bridge"]

PREFIX = "taskwatch:bridge"
INDEX_KEY = "taskwatch:bridges"
VERSION = 1
EVENTS = ("submitted", "executed", "error", "missed", "max_instances")
#: Bounds on what is read back.
MAX_ANNOUNCEMENT = 64 * 1024
MAX_BRIDGES = 1000
EXCEPTION_LIMIT = 1000
TRACEBACK_LIMIT = 8000


def _key(value: Any, limit: int = 200) -> str | None:
    """A key name from an announcement, if it is one of the bridge's."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}:") and len(value) <= limit:
        return value
    return None


class BridgeClient:
    """One live bridge serving one store (:class:`ScheduleControl`, ``via = "bridge"``)."""

    via = "bridge"

    def __init__(self, location: StoreLocation, redis_url: str, announcement: dict[str, Any], *,
                 alias: str, read_only: bool = True, timeout: float = 3.0, others: int = 0) -> None:
        self.location = location
        self.redis_url = redis_url
        self.read_only = read_only
        self.timeout = timeout
        self.alias = alias
        self.id = str(announcement["id"])
        self.name = clean(announcement.get("name") or self.id, 120, single_line=True)
        self.host = clean(announcement.get("host") or "", 120, single_line=True)
        self.pid = announcement.get("pid") if isinstance(announcement.get("pid"), int) else None
        self.scheduler = clean(announcement.get("scheduler") or "", 80, single_line=True)
        self.state = clean(announcement.get("state") or "", 20, single_line=True)
        #: other live bridges that serve the same store (several processes running one scheduler each)
        self.others = others
        self.announcement_key = f"{PREFIX}:{self.id}"
        self.requests_key = _key(announcement.get("requests")) or f"{PREFIX}:{self.id}:requests"
        self.runs_key = _key(announcement.get("runs"))
        #: how outcomes name the bridge: the scheduler's host and pid
        self.label = clean(f"{self.scheduler or 'scheduler'} pid {self.pid} on {self.host}", 200,
                           single_line=True)
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<BridgeClient {self.name} {self.label} store {self.location.label}>"

    # -- ScheduleControl ------------------------------------------------------------------------
    def pause(self, job_id: str) -> ActionOutcome:
        return self._request("pause", job_id)

    def resume(self, job_id: str) -> ActionOutcome:
        return self._request("resume", job_id)

    def run_now(self, job_id: str) -> ActionOutcome:
        return self._request("run", job_id)

    def remove(self, job_id: str) -> ActionOutcome:
        return self._request("remove", job_id)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # noqa: BLE001 - closing only
                    pass
                self._client = None

    # -- history ----------------------------------------------------------------------------
    def history(self, limit: int = 500) -> list[JobRun]:
        """The last ``limit`` run events the bridge recorded for this store, newest last.

        A Redis that fails raises a one-line :class:`SourceError`.
        """
        from taskwatch.sources.errors import SourceError

        if self.runs_key is None or limit <= 0:
            return []
        try:
            with self._lock:
                entries = self._redis().xrevrange(self.runs_key, count=int(limit))
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"bridge history on {mask_url(self.redis_url)}: {describe(exc)}") from None
        runs = [run for _id, fields in reversed(entries) if (run := self._run(fields)) is not None]
        return runs

    def _run(self, fields: dict[bytes, bytes]) -> JobRun | None:
        def text(name: str, limit: int, *, single_line: bool = True) -> str | None:
            raw = fields.get(name.encode())
            return clean(raw, limit, single_line=single_line) if raw else None

        def number(name: str) -> float | None:
            raw = fields.get(name.encode())
            try:
                value = float(raw) if raw else None
            except ValueError:
                return None
            return value if value is not None and value == value and abs(value) < 1e11 else None

        event, job, store, at = text("event", 20), text("job", 200), text("store", 200), number("at")
        if event not in EVENTS or not job or store != self.alias or at is None:
            return None
        return JobRun(store=self.location.label, job_id=job, event=event, at=at,
                      scheduled=number("scheduled"), duration=number("duration"),
                      exception=text("exception", EXCEPTION_LIMIT, single_line=False),
                      traceback=text("traceback", TRACEBACK_LIMIT, single_line=False))

    # -- plumbing ---------------------------------------------------------------------------
    def _redis(self) -> redis.Redis:
        if self._client is None:
            parsed = parse_redis_url(self.redis_url, what="bridge Redis URL")
            self._client = connect(parsed, timeout=self.timeout, read_timeout=self.timeout + 2.0)
        return self._client

    def _arguments(self, job_id: str) -> dict[str, Any]:
        return {"store": self.location.label, "job": job_id, "via": self.via, "bridge": self.label}

    def _request(self, action: str, job_id: str) -> ActionOutcome:
        arguments = self._arguments(job_id)
        if self.read_only:
            return ActionOutcome(action, (job_id,), arguments,
                                 error=f"{action}: refused, taskwatch is read-only (--read-only); nothing was sent")
        rid = uuid.uuid4().hex
        request_key, reply_key = f"{PREFIX}:request:{rid}", f"{PREFIX}:reply:{rid}"
        request = json.dumps({"v": VERSION, "action": action, "job": job_id, "store": self.alias,
                              "wait": self.timeout})
        try:
            with self._lock:
                client = self._redis()
                if not client.exists(self.announcement_key):
                    return ActionOutcome(action, (job_id,), arguments, error=(
                        f"the bridge in {self.label} is gone (its scheduler stopped?): nothing was sent"))
                pipe = client.pipeline(transaction=True)
                pipe.set(request_key, request, px=max(1, int(self.timeout * 1000)))
                pipe.lpush(self.requests_key, rid)
                pipe.expire(self.requests_key, 300)
                pipe.execute()
                started = time.monotonic()
                popped = client.blpop([reply_key], timeout=self.timeout)
                if popped is None:
                    withdrawn = client.delete(request_key)
                    client.lrem(self.requests_key, 0, rid)
        except Exception as exc:  # noqa: BLE001 - Redis failed
            return ActionOutcome(action, (job_id,), arguments,
                                 error=clean(f"bridge Redis {mask_url(self.redis_url)}: {describe(exc)}",
                                             400, single_line=True))
        if popped is None:
            if withdrawn:
                return ActionOutcome(action, (job_id,), arguments, error=(
                    f"the bridge in {self.label} did not take the request within {self.timeout:g} s: "
                    "nothing was done"))
            return ActionOutcome(action, (job_id,), arguments, replies=(WorkerReply(
                self.label, False, f"took the request but did not answer within {self.timeout:g} s; "
                "it may have been done"),))
        reply = _json(popped[1])
        ok = reply.get("ok") is True
        said = clean(reply.get("text") or ("done" if ok else "failed"), 300, single_line=True)
        arguments["answered_in"] = round(time.monotonic() - started, 3)
        next_run = reply.get("next_run")
        if isinstance(next_run, int | float) and not isinstance(next_run, bool):
            arguments["next_run"] = float(next_run)
        return ActionOutcome(action, (job_id,), arguments, replies=(WorkerReply(self.label, ok, said),))


def _json(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, bytes | str) or len(raw) > MAX_ANNOUNCEMENT:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def find_bridge(location: StoreLocation, redis_urls: Sequence[str], *, timeout: float,
                read_only: bool = True) -> BridgeClient | None:
    """A live bridge serving ``location``'s store, on the first of ``redis_urls`` that has one.

    Only reads. Unreachable Redis servers and bad URLs are skipped (the
    bridge is an extra, not a source whose absence is an error). When
    several live bridges serve the store, the one that beat last is used and
    ``others`` counts the rest.
    """
    wanted = list(location.identity())
    for url in redis_urls:
        try:
            client = connect(parse_redis_url(url, what="bridge Redis URL"), timeout=timeout)
        except RedisURLError:
            continue
        try:
            found = _find_on(client, wanted)
        except Exception:  # noqa: BLE001 - this Redis does not answer: try the next
            found = None
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        if found is not None:
            announcement, alias, others = found
            return BridgeClient(location, url, announcement, alias=alias, read_only=read_only,
                                timeout=timeout, others=others)
    return None


def _find_on(client: redis.Redis, wanted: list[str]) -> tuple[dict[str, Any], str, int] | None:
    members = [m.decode("ascii", "replace") for m in client.smembers(INDEX_KEY)]
    ids = sorted(m for m in members if len(m) == 32 and m.isalnum())[:MAX_BRIDGES]
    if not ids:
        return None
    matches: list[tuple[float, dict[str, Any], str]] = []
    for bridge_id, raw in zip(ids, client.mget([f"{PREFIX}:{i}" for i in ids]), strict=True):
        announcement = _json(raw)
        if announcement.get("v") != VERSION or announcement.get("id") != bridge_id:
            continue
        for store in announcement.get("stores") or ():
            if isinstance(store, dict) and store.get("identity") == wanted and isinstance(store.get("alias"), str):
                beat = announcement.get("heartbeat")
                matches.append((float(beat) if isinstance(beat, int | float) else 0.0, announcement,
                                store["alias"]))
                break
    if not matches:
        return None
    matches.sort(key=lambda match: match[0])
    _beat, announcement, alias = matches[-1]
    return announcement, alias, len(matches) - 1
