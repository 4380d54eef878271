"""``RedisJobStore``, read-only: the jobs hash and the run-times sorted set.

APScheduler keeps each job's pickled state in a hash (``apscheduler.jobs``:
job id -> state) and its next run in a sorted set (``apscheduler.run_times``:
job id -> UTC epoch); a paused job is in the hash only. It writes both in
one MULTI/EXEC. The scheduler finds due jobs through the sorted set, so its
score is the next run that counts; the state's own ``next_run_time`` is
compared with it and a disagreement is shown as the job's ``problem``.

One poll is one pipelined round trip of two read commands (HGETALL, ZRANGE
WITHSCORES), sent together so Redis answers them back to back. Should the
two still disagree (a write landed between them), the poll is read once
more before a disagreement is believed. No MULTI: a read-only ACL user may
not have it. A missing hash is an empty store (Redis deletes empty keys).
"""

from __future__ import annotations

import threading
from typing import Any

from taskwatch.records import ScheduledJob
from taskwatch.sources.apscheduler import JobStoreError, StoreReader
from taskwatch.sources.apscheduler.decode import INDEX_DISAGREES, JobDecoder, sort_jobs
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import describe
from taskwatch.sources.redis_url import connect
from taskwatch.text import clean

__all__ = ["RedisStoreReader"]


class RedisStoreReader(StoreReader):
    """A :class:`~taskwatch.sources.protocols.ScheduleSource` over one ``RedisJobStore``."""


    def __init__(self, location: StoreLocation, *, timeout: float = 2.0) -> None:
        if location.kind != "redis" or location.redis is None:
            raise JobStoreError(f"{location.label} is not a Redis job store")
        self.location = location
        self.label = location.label
        self.timeout = timeout
        self._decoder = JobDecoder(self.label)
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def decoded(self) -> int:
        """How many rows were really decoded (not answered from the cache)."""
        return self._decoder.decoded

    def _redis(self) -> Any:
        if self._client is None:
            assert self.location.redis is not None
            self._client = connect(self.location.redis, timeout=self.timeout,
                                   client_name="taskwatch-jobstore")
        return self._client

    def _fail(self, exc: BaseException) -> JobStoreError:
        return JobStoreError(clean(f"cannot read job store {self.label}: {describe(exc)}",
                                   400, single_line=True))

    def _read(self) -> tuple[dict[bytes, bytes], dict[bytes, float]]:
        import redis

        try:
            pipe = self._redis().pipeline(transaction=False)
            pipe.hgetall(self.location.jobs_key)
            pipe.zrange(self.location.run_times_key, 0, -1, withscores=True)
            states, run_times = pipe.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None
        for key, reply in ((self.location.jobs_key, states), (self.location.run_times_key, run_times)):
            if isinstance(reply, BaseException):
                if "WRONGTYPE" in str(reply):
                    kind = "a hash" if key == self.location.jobs_key else "a sorted set"
                    raise JobStoreError(clean(
                        f"job store {self.label}: key {key!r} is not {kind} "
                        "(another program's key? set jobs_key= / run_times_key=)", 400, single_line=True))
                raise self._fail(reply)
        return dict(states), {member: float(score) for member, score in run_times}

    def jobs(self) -> list[ScheduledJob]:
        """Every job in the store, by next run (paused last); the store is only read."""
        with self._lock:
            states, run_times = self._read()
            if self._disagree(states, run_times):
                states, run_times = self._read()
            found = [
                self._decoder.decode(_text(job_id), blob, next_run=run_times.get(job_id))
                for job_id, blob in states.items()
            ]
        return sort_jobs(found)

    def _disagree(self, states: dict[bytes, bytes], run_times: dict[bytes, float]) -> bool:
        """A score without a job or a job whose decoded state names another run:
        maybe a write between the two commands."""
        if any(member not in states for member in run_times):
            return True
        for job_id, blob in states.items():
            job = self._decoder.decode(_text(job_id), blob, next_run=run_times.get(job_id))
            if job.problem and INDEX_DISAGREES in job.problem:
                return True
        return False

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._decoder.clear()
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing only
                pass


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
