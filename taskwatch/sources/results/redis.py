"""Celery's Redis result backend, read-only: ``celery-task-meta-<id>`` keys."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from taskwatch.records import ResultPage, StoredResult
from taskwatch.sources.errors import describe
from taskwatch.sources.redis_url import RedisURLError, connect, glob_escape, parse_redis_url
from taskwatch.sources.results.common import (
    MAX_VALUE_BYTES,
    UNKNOWN,
    ResultBackendError,
    UnsupportedBackend,
)
from taskwatch.sources.results.decode import (
    STATUS_PREFIX,
    Decoded,
    decode,
    from_decoded,
    from_stored,
    peek_status,
)
from taskwatch.text import mask_url

if TYPE_CHECKING:
    import redis

class RedisResultBackend:
    """Reads ``celery-task-meta-*`` keys; never writes.

    Every call has socket timeouts and no retries, so an unreachable server
    fails within ``timeout`` with a :class:`ResultBackendError`.
    """

    #: keys per pipelined batch (one round trip each)
    chunk = 500

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        key_prefix: str = "celery-task-meta-",
        *,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:

        self.url = url
        self.timeout = timeout
        self.key_prefix = key_prefix
        self.max_value_bytes = max_value_bytes
        self._prefix = key_prefix.encode()
        try:
            parsed = parse_redis_url(url, what="result backend URL")
        except RedisURLError as exc:
            raise UnsupportedBackend(str(exc)) from None
        self._client: redis.Redis = connect(parsed, timeout=timeout)
        #: what the last ``recent`` call looked at: keys seen, complete scan, seconds
        self.last_scan: dict[str, Any] = {}

    def close(self) -> None:
        self._client.close()

    def _error(self, exc: BaseException) -> ResultBackendError:
        return ResultBackendError(
            f"cannot read result backend {mask_url(self.url)}: {describe(exc)}"
        )

    def get(self, ids: Sequence[str]) -> dict[str, StoredResult]:
        """The stored results of ``ids``; ids without a result are absent."""
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        keys = [
            self._prefix + task_id.encode("utf-8", errors="surrogateescape") for task_id in wanted
        ]
        found: dict[str, StoredResult] = {}
        for task_id, (raw, size) in zip(wanted, self._read(keys), strict=True):
            if raw is not None:
                found[task_id] = from_stored(task_id, raw, size)
        return found

    def recent(
        self, limit: int, *, states: set[str] | None = None, scan_budget: int = 50_000
    ) -> list[StoredResult]:
        """The newest ``limit`` results (in ``states``, if given), newest first.

        "Newest" is decided by ``date_done``, which only the stored value
        holds: keys are found with ``SCAN MATCH <prefix>*`` until about
        ``scan_budget`` keys have been examined (``last_scan["complete"]``
        says whether the whole keyspace was covered), every value found is
        read (pipelined ``MGET`` batches) and decoded, and the newest
        ``limit`` are kept. Results without a ``date_done`` (STARTED, RETRY)
        come after all finished ones. With ``states``, values whose leading
        ``{"status": ...`` (Celery writes it first) is not wanted are skipped
        undecoded. The cost grows with the number of result keys scanned,
        not with ``limit``; ``scan_budget`` bounds it (about 1 s for 50,000
        keys here, 0.6 s with a ``states`` filter). Values are read whole but
        one over ``max_value_bytes`` is not decoded (its status still shows).
        """
        if limit <= 0:
            return []
        started = time.monotonic()
        keys, complete = self._scan(scan_budget)
        wanted = None if states is None else {s.upper() for s in states}
        # Keep (rank, -seq, ...) of the best `limit`; only those are rendered.
        heap: list[tuple[tuple[bool, float], int, bytes, bytes, Decoded]] = []
        for seq, (key, raw) in enumerate(zip(keys, self._read_whole(keys), strict=True)):
            if not raw:
                continue
            if wanted is not None and UNKNOWN not in wanted:
                match = STATUS_PREFIX.match(raw, 0, 256)
                if match is not None and match.group(1).decode("ascii") not in wanted:
                    continue
            decoded = decode(raw[: self.max_value_bytes], len(raw))
            status, date_done = peek_status(raw, decoded)
            if wanted is not None and status not in wanted:
                continue
            entry = ((date_done is not None, date_done or 0.0), -seq, key, raw, decoded)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
        heap.sort(key=lambda e: e[:2], reverse=True)
        self.last_scan = {
            "keys": len(keys),
            "complete": complete,
            "seconds": time.monotonic() - started,
        }
        return [from_decoded(self._task_id(key), raw, decoded) for _, _, key, raw, decoded in heap]

    def scan(self, states: set[str], *, count: int = 1000) -> Iterator[ResultPage]:
        """Every stored result in ``states``, one ``SCAN`` step per page.

        A step is one ``SCAN MATCH <prefix>* COUNT count``, one pipelined
        ``GETRANGE`` of the first 256 bytes of each key found (Celery's JSON
        starts with ``{"status": ...``, so unwanted values are skipped
        unread) and one pipelined read of the rest. Values whose status
        cannot be seen in their head (pickle, other serializers) are read and
        decoded to tell. SCAN may return a key twice; nothing is written.
        """
        import redis

        wanted = {s.upper() for s in states}
        match = glob_escape(self._prefix) + b"*"
        cursor = 0
        while True:
            try:
                cursor, keys = self._client.scan(cursor, match=match, count=count)
                heads = self._heads(keys) if keys else []
            except redis.RedisError as exc:
                raise self._error(exc) from None
            picked = []
            for key, head in zip(keys, heads, strict=True):
                if not isinstance(head, bytes) or not head:
                    continue  # gone meanwhile, or not a string
                status = STATUS_PREFIX.match(head)
                if status is None or status.group(1).decode("ascii") in wanted:
                    picked.append(key)
            results = []
            for key, (raw, size) in zip(picked, self._read(picked), strict=True):
                if raw is not None:
                    result = from_stored(self._task_id(key), raw, size)
                    if result.status in wanted:
                        results.append(result)
            yield ResultPage(tuple(results), len(keys), cursor == 0)
            if cursor == 0:
                return

    def _heads(self, keys: Sequence[bytes]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.getrange(key, 0, 255)
        return pipe.execute(raise_on_error=False)

    def _task_id(self, key: bytes) -> str:
        return key[len(self._prefix) :].decode("utf-8", errors="replace")

    # -- I/O -----------------------------------------------------------------
    def _scan(self, budget: int) -> tuple[list[bytes], bool]:
        """Result keys, and whether the scan got through the whole keyspace."""
        import redis

        count = 1000
        match = glob_escape(self._prefix) + b"*"
        seen: dict[bytes, None] = {}
        cursor = 0
        examined = 0
        try:
            while True:
                cursor, batch = self._client.scan(cursor, match=match, count=count)
                examined += count
                seen.update(dict.fromkeys(batch))
                if cursor == 0:
                    return list(seen), True
                if examined >= budget:
                    return list(seen), False
        except redis.RedisError as exc:
            raise self._error(exc) from None

    def _read_whole(self, keys: Sequence[bytes]) -> Iterator[bytes | None]:
        """Each key's value (None if missing or not a string), MGET in batches.

        Three times faster than a GET per key with redis-py's parser.
        """
        import redis

        step = self.chunk * 4
        for start in range(0, len(keys), step):
            try:
                pipe = self._client.pipeline(transaction=False)
                for first in range(start, min(start + step, len(keys)), self.chunk):
                    pipe.mget(keys[first : first + self.chunk])
                batches = pipe.execute()
            except redis.RedisError as exc:
                raise self._error(exc) from None
            for values in batches:
                yield from values

    def _read(self, keys: Sequence[bytes]) -> Iterator[tuple[bytes | None, int | None]]:
        """(value or None, full size when cut) per key, in pipelined batches."""
        import redis

        cap = self.max_value_bytes
        for start in range(0, len(keys), self.chunk):
            batch = keys[start : start + self.chunk]
            try:
                pipe = self._client.pipeline(transaction=False)
                for key in batch:
                    pipe.getrange(key, 0, cap - 1)
                values = pipe.execute(raise_on_error=False)
                cut = [
                    k
                    for k, v in zip(batch, values, strict=True)
                    if isinstance(v, bytes) and len(v) >= cap
                ]
                sizes: dict[bytes, int] = {}
                if cut:
                    pipe = self._client.pipeline(transaction=False)
                    for key in cut:
                        pipe.strlen(key)
                    sizes = dict(zip(cut, pipe.execute(raise_on_error=False), strict=True))
            except redis.RedisError as exc:
                raise self._error(exc) from None
            for key, value in zip(batch, values, strict=True):
                if not isinstance(value, bytes) or not value:
                    # Missing (GETRANGE of a missing key is empty), or not a
                    # string at all (WRONGTYPE): not a Celery result.
                    yield (None, None)
                else:
                    size = sizes.get(key)
                    yield (value, size if isinstance(size, int) else None)


