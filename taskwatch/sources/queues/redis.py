"""Queue depths, ``unacked`` counts, discovery and peeking on a kombu Redis broker.

Read-only commands only (LLEN, LRANGE, HLEN, HSCAN, SMEMBERS, SCAN); the
layout is kombu's (``kombu/transport/redis.py``), described in
:mod:`taskwatch.sources.queues`. Connections come from
:mod:`taskwatch.sources.redis_url`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from taskwatch.records import SOURCE_REDIS, PeekedMessage, QueueDepth
from taskwatch.sources.envelope import decode_message
from taskwatch.sources.errors import describe
from taskwatch.sources.queues.common import QueueProbeError, is_internal_queue
from taskwatch.sources.queues.routing import (
    BINDING,
    BINDING_PERMANENT,
    parse_binding,
    text_of,
    unacked_queues,
    unacked_route,
)
from taskwatch.sources.redis_url import connect, glob_escape, parse_redis_url
from taskwatch.text import clean, mask_url

if TYPE_CHECKING:
    import redis

#: kombu/transport/redis.py: ``Channel.sep`` and ``PRIORITY_STEPS``.
DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
DEFAULT_UNACKED_KEY = "unacked"
#: Most entries of the ``unacked`` hash parsed per ``depths()`` call.
DEFAULT_MAX_UNACKED = 10_000
#: Most messages one ``peek()`` returns.
MAX_PEEK = 1000

_HSCAN_COUNT = 1000
_SCAN_COUNT = 1000

_T = TypeVar("_T")


@dataclass
class _Unacked:
    """The ``unacked`` hash, counted per queue."""

    by_queue: dict[str, int]
    partial: bool


class RedisQueueProbe:
    """Queue depths, ``unacked`` counts, discovery and peeking on a Redis broker.

    ``url`` takes every form :mod:`taskwatch.sources.redis_url` parses:
    ``redis://[user:password@]host[:port][/db]``,
    ``rediss://...?ssl_cert_reqs=required&ssl_ca_certs=...``,
    ``redis+socket:///path/to/socket``, and ``sentinel://host:26379;sentinel://...``
    (with ``master_name``). A kombu failover list ``redis://a;redis://b`` is
    used as kombu does: when a server refuses, the next one is tried, and
    the one that answered is kept. ``key_prefix``, ``sep``,
    ``priority_steps`` and ``unacked_key`` are kombu's ``global_keyprefix``,
    ``sep``, ``priority_steps`` and ``unacked_key`` transport options.

    Every command has ``timeout`` as socket timeout and a refused connection
    is reported at once (redis-py 8 would otherwise retry with backoff for
    seconds). The connection is made on first use. Safe to share between
    threads (calls are serialized).
    """

    source = SOURCE_REDIS
    can_discover = True
    can_peek = True

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "",
        priority_steps: Sequence[int] = DEFAULT_PRIORITY_STEPS,
        sep: str = DEFAULT_SEP,
        timeout: float = 2.0,
        unacked_key: str = DEFAULT_UNACKED_KEY,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        master_name: str | None = None,
        sentinel_kwargs: Mapping[str, Any] | None = None,
        ssl_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix or ""
        self.sep = sep or DEFAULT_SEP
        self.timeout = timeout
        self.unacked_key = unacked_key or DEFAULT_UNACKED_KEY
        self.max_unacked = max(0, int(max_unacked))
        self.master_name = master_name
        self._sentinel_kwargs = dict(sentinel_kwargs or {})
        self._steps = _priority_steps(priority_steps)
        # kombu's failover form (redis://a;redis://b): one target per host,
        # the next tried when one refuses. A sentinel URL is one target.
        options: dict[str, Any] = {"master_name": master_name, "sentinel_kwargs": sentinel_kwargs}
        self._parsed = parse_redis_url(url, options, ssl_options=ssl_options, what="broker URL")
        self._targets = list(self._parsed.targets)
        self._target = self._targets[0]
        self._client: redis.Redis | None = None
        self._connected_once = False
        self._lock = threading.Lock()

    # -- keys -----------------------------------------------------------------

    def list_keys(self, queue: str) -> list[tuple[str, str]]:
        """``(priority label, key without prefix)`` of ``queue``'s lists, in
        the order kombu consumes them.

        kombu's ``_brpop_start`` asks ``BRPOP`` for ``[_q_for_pri(queue, pri)
        for pri in priority_steps ...]`` and BRPOP takes from the first
        non-empty key, so the step listed first (0, the plain list) is
        drained first: on Redis a *lower* priority number goes out first.
        """
        keys: list[tuple[str, str]] = []
        for step in self._steps:
            key = queue if step == 0 else f"{queue}{self.sep}{step}"
            keys.append((str(step), key))
        return keys

    # -- public API -----------------------------------------------------------

    def discover(self) -> set[str]:
        """Names of the task queues bound on the broker (see :func:`is_internal_queue`).

        SCANs for ``_kombu.binding.*`` / ``_kombu.binding_permanent.*`` (one
        pass over the keyspace, 1000 keys a step) and reads them with
        SMEMBERS in one pipeline. A queue that has no binding is not found:
        one only ever written to with a raw LPUSH, or declared by plain kombu
        on the default exchange (Celery itself always binds its queues).
        """
        return self._call(self._discover, "cannot list queues")

    def depths(self, names: Iterable[str]) -> list[QueueDepth]:
        """Depth of each queue in ``names`` (in order, duplicates dropped).

        All list lengths, and the size of the ``unacked`` hash, come from one
        pipelined round trip. When the hash is not empty it is read with HSCAN
        (1000 entries a step, at most ``max_unacked`` entries per call) and
        each entry is attributed to the queue kombu would restore it to (see
        :func:`~.routing.unacked_queues`). A broker error makes every row carry it.
        """
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return []
        try:
            return self._call(lambda client: self._depths(client, wanted), "")
        except QueueProbeError as exc:
            return [QueueDepth(name=n, source=self.source, error=str(exc)) for n in wanted]

    def peek(self, queue: str, n: int = 10) -> list[PeekedMessage]:
        """The next ``n`` messages ``queue`` will hand out, first one first.

        One pipelined ``LRANGE key -n -1`` per priority list, each reversed
        (index -1 goes out first), concatenated in kombu's consumption order
        (:meth:`list_keys`). Nothing is removed or changed. Messages taken by
        workers (``unacked``) are not waiting and are not shown.
        """
        n = min(int(n), MAX_PEEK)
        if n <= 0:
            return []
        raw = self._call(lambda client: self._peek(client, queue, n), f"cannot peek at {queue!r}")
        return [decode_message(item, queue=queue) for item in raw]

    def locate(self, queue: str, task_id: str, limit: int = 10_000) -> tuple[str, bytes] | None:
        """The full key and exact stored bytes of task ``task_id``'s message in
        ``queue``, looking at up to ``limit`` messages per priority list; None
        when it is not waiting there. A read: LRANGE in pages."""

        def find(client: redis.Redis) -> tuple[str, bytes] | None:
            needle = task_id.encode("utf-8", errors="replace")
            for _, key in self.list_keys(queue):
                full = self._k(key)
                for start in range(0, max(limit, 0), 500):
                    page = client.lrange(full, start, start + 499)
                    for raw in page:
                        if needle in raw and decode_message(raw).id == task_id:
                            return full, raw
                    if len(page) < 500:
                        break
            return None

        return self._call(find, f"cannot look into {queue!r}")

    def close(self) -> None:
        """Drop the connection; the probe reconnects if used again."""
        with self._lock:
            self._reset()

    # -- internals ------------------------------------------------------------

    def _k(self, key: str) -> str:
        return self.key_prefix + key

    def _call(self, fn: Callable[[redis.Redis], _T], what: str) -> _T:
        """Run ``fn`` with a client; one immediate retry if a connection that
        used to work went stale (the server restarted), never for timeouts."""
        import redis

        with self._lock:
            stale_retry = self._connected_once
            failed_hosts = 0
            while True:
                try:
                    client = self._get_client()
                    result = fn(client)
                    self._connected_once = True
                    return result
                except redis.ConnectionError as exc:
                    # redis.TimeoutError is not a ConnectionError: never retried.
                    self._reset()
                    if stale_retry:
                        stale_retry = self._connected_once = False
                        continue
                    failed_hosts += 1
                    if failed_hosts < len(self._targets):  # the next host of a;b
                        index = (self._targets.index(self._target) + 1) % len(self._targets)
                        self._target = self._targets[index]
                        continue
                    raise self._error(what, exc) from None
                except (redis.RedisError, OSError, ValueError) as exc:
                    self._reset()
                    raise self._error(what, exc) from None
                except QueueProbeError:
                    self._reset()
                    raise

    def _error(self, what: str, exc: BaseException) -> QueueProbeError:
        head = f"{what}: " if what else ""
        return QueueProbeError(
            clean(f"{head}{mask_url(self.url)}: {describe(exc)}", 400, single_line=True)
        )

    def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass

    def _get_client(self) -> redis.Redis:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> redis.Redis:
        # _call() handles stale connections
        return connect(self._parsed, self._target, timeout=self.timeout, max_connections=4)

    # discovery

    def _discover(self, client: redis.Redis) -> set[str]:
        tables = self._binding_tables(client)
        names: set[str] = set()
        for exchange, members in tables.items():
            for _routing_key, _pattern, queue in members:
                if not is_internal_queue(queue, exchange):
                    names.add(queue)
        return names

    def _binding_tables(self, client: redis.Redis) -> dict[str, list[tuple[str, str, str]]]:
        """Exchange -> ``(routing_key, pattern, queue)`` of every binding table."""
        prefix = self._k(BINDING)
        permanent = self._k(BINDING_PERMANENT)
        match = glob_escape(self._k("_kombu.binding")) + "*"
        keys: list[bytes] = []
        cursor = 0
        while True:
            cursor, batch = client.scan(cursor, match=match, count=_SCAN_COUNT)
            keys.extend(batch)
            if not cursor:
                break
        exchanges: list[tuple[str, bytes]] = []
        for key in dict.fromkeys(keys):
            name = text_of(key)
            if name.startswith(prefix):
                exchanges.append((name[len(prefix) :], key))
            elif name.startswith(permanent):
                exchanges.append((name[len(permanent) :], key))
        if not exchanges:
            return {}
        with client.pipeline(transaction=False) as pipe:
            for _, key in exchanges:
                pipe.smembers(key)
            replies = pipe.execute(raise_on_error=False)
        # Both sets of an exchange hold the same members: keep each binding once.
        tables: dict[str, dict[tuple[str, str, str], None]] = {}
        for (exchange, _), members in zip(exchanges, replies, strict=True):
            if isinstance(members, Exception):
                continue  # not a set: not kombu's
            table = tables.setdefault(exchange, {})
            for member in members:
                binding = parse_binding(member, self.sep)
                if binding is not None:
                    table[binding] = None
        return {exchange: list(table) for exchange, table in tables.items()}


    # depths

    def _depths(self, client: redis.Redis, names: list[str]) -> list[QueueDepth]:
        import redis

        with client.pipeline(transaction=False) as pipe:
            layout: list[tuple[str, list[str]]] = []
            for name in names:
                labels = []
                for label, key in self.list_keys(name):
                    pipe.llen(self._k(key))
                    labels.append(label)
                layout.append((name, labels))
            pipe.hlen(self._k(self.unacked_key))
            replies = pipe.execute(raise_on_error=False)
        hash_size = replies[-1]
        unacked: _Unacked | None = None
        unacked_error: str | None = None
        if isinstance(hash_size, Exception):
            unacked_error = f"unacked: {describe(hash_size)}"
        elif hash_size:
            try:
                unacked = self._count_unacked(client, set(names))
            except redis.ConnectionError:
                raise  # the whole call failed: _call reports it on every row
            except redis.RedisError as exc:  # a timeout, WRONGTYPE, ...: lengths stand
                unacked_error = f"unacked: {describe(exc)}"
        else:
            unacked = _Unacked(by_queue={}, partial=False)

        rows: list[QueueDepth] = []
        position = 0
        for name, labels in layout:
            by_priority: dict[str, int] = {}
            errors: list[str] = []
            for label in labels:
                reply = replies[position]
                position += 1
                if isinstance(reply, Exception):
                    errors.append(describe(reply))
                elif reply:
                    by_priority[label] = int(reply)
            counted = not errors
            if unacked is None and unacked_error:
                errors.append(unacked_error)
            rows.append(QueueDepth(
                name=name, source=self.source, by_priority=by_priority,
                messages=sum(by_priority.values()) if counted else None,
                unacked=unacked.by_queue.get(name, 0) if unacked is not None else None,
                unacked_partial=unacked.partial if unacked is not None else False,
                error=clean("; ".join(dict.fromkeys(errors)), 300, single_line=True) if errors else None,
            ))
        return rows

    def _count_unacked(self, client: redis.Redis, names: set[str]) -> _Unacked:
        """Count ``unacked`` entries per queue, reading at most ``max_unacked``.

        HSCAN may return an entry twice; entries are counted once by delivery tag.
        """
        key = self._k(self.unacked_key)
        seen: set[bytes] = set()
        routes: dict[tuple[str, str], int] = {}
        cursor = 0
        partial = False
        while True:
            if len(seen) >= self.max_unacked:
                partial = True
                break
            count = min(_HSCAN_COUNT, max(self.max_unacked - len(seen), 1))
            cursor, batch = client.hscan(key, cursor, count=count)
            for tag, value in batch.items():
                if tag in seen:
                    continue
                seen.add(tag)
                route = unacked_route(value)
                routes[route] = routes.get(route, 0) + 1
            if not cursor:
                break
        tables = self._tables_for({exchange for exchange, _ in routes if exchange}, client)
        by_queue: dict[str, int] = {}
        for (exchange, routing_key), count in routes.items():
            for queue in unacked_queues(exchange, routing_key, tables, names):
                by_queue[queue] = by_queue.get(queue, 0) + count
        return _Unacked(by_queue=by_queue, partial=partial)

    def _tables_for(
        self, exchanges: set[str], client: redis.Redis
    ) -> dict[str, list[tuple[str, str, str]]]:
        if not exchanges:
            return {}
        ordered = sorted(exchanges)
        with client.pipeline(transaction=False) as pipe:
            for exchange in ordered:
                pipe.smembers(self._k(BINDING + exchange))
            replies = pipe.execute(raise_on_error=False)
        tables: dict[str, list[tuple[str, str, str]]] = {}
        for exchange, members in zip(ordered, replies, strict=True):
            if isinstance(members, Exception):
                continue
            parsed = (parse_binding(m, self.sep) for m in members)
            tables[exchange] = [b for b in parsed if b is not None]
        return tables

    # peek

    def _peek(self, client: redis.Redis, queue: str, n: int) -> list[bytes]:
        with client.pipeline(transaction=False) as pipe:
            for _, key in self.list_keys(queue):
                pipe.lrange(self._k(key), -n, -1)
            replies = pipe.execute(raise_on_error=False)
        out: list[bytes] = []
        for (_, key), reply in zip(self.list_keys(queue), replies, strict=True):
            if isinstance(reply, Exception):
                raise QueueProbeError(
                    clean(f"cannot peek at {key!r}: {describe(reply)}", 300, single_line=True)
                )
            out.extend(reversed(reply))
            if len(out) >= n:
                break
        return out[:n]


def _priority_steps(steps: Sequence[int]) -> tuple[int, ...]:
    """kombu's steps, in its order, duplicates dropped; 0 stands for the plain list."""
    cleaned: list[int] = []
    for step in steps or DEFAULT_PRIORITY_STEPS:
        value = int(step)
        if value not in cleaned:
            cleaned.append(value)
    return tuple(cleaned)

