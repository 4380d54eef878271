"""Queue depths and peeking, as plain data.

Three probes answer the same questions (:class:`QueueProbe`):

* :class:`RedisQueueProbe` reads kombu's Redis layout (``kombu/transport/redis.py``)
  with read-only commands only (LLEN, LRANGE, HLEN, HSCAN, SMEMBERS, SCAN):

  - a queue is a list named after it; priorities other than 0 live in extra
    lists ``<queue><sep><step>`` (``sep`` is ``"\\x06\\x16"``, steps
    ``0, 3, 6, 9`` by default). Messages are ``LPUSH``ed and consumed with
    ``BRPOP`` (``RPOP`` for ``basic_get``), so the next one out is at index -1;
    kombu puts a message back (``_do_restore_message``) with ``RPUSH``, at the
    front. An empty list does not exist in Redis: an empty queue and an
    unknown name both read as 0.
  - messages a worker has taken but not acknowledged (prefetched, and every
    ETA/countdown task until it runs) are not in the lists: they sit in the
    hash ``unacked`` (delivery tag -> JSON ``[message, exchange, routing_key]``).
  - queues are found through the bindings: sets ``_kombu.binding.<exchange>``
    (and, since kombu 5.7, ``_kombu.binding_permanent.<exchange>``) whose
    members are ``routing_key<sep>pattern<sep>queue``.
  - kombu's ``global_keyprefix`` transport option prefixes every key.

* :class:`AmqpQueueProbe` asks RabbitMQ by a passive ``queue.declare`` per
  queue: ready messages and consumers. AMQP has no way to list queues, nor to
  count unacknowledged messages.
* :class:`ManagementQueueProbe` reads RabbitMQ's management HTTP API: every
  queue with ready and unacknowledged messages, consumers and rates.

:func:`queue_probe` picks one for a broker URL. Nothing here raises for an
unreachable broker in :meth:`~QueueProbe.depths`: every row then carries a
one-line, masked ``error``. ``discover`` and ``peek`` raise
:class:`QueueProbeError` (a :class:`~taskwatch.sources.errors.SourceError`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from taskwatch.records import (
    SOURCE_AMQP,
    SOURCE_MANAGEMENT,
    SOURCE_REDIS,
    PeekedMessage,
    QueueDepth,
)
from taskwatch.sources.broker import BadURL
from taskwatch.sources.envelope import decode_message
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.protocols import QueueProbe
from taskwatch.sources.redis_url import REDIS_SCHEMES, connect, glob_escape, parse_redis_url
from taskwatch.text import clean, mask_secrets, mask_url

if TYPE_CHECKING:
    import httpx
    import redis
    from kombu import Connection

__all__ = [
    "DEFAULT_PRIORITY_STEPS",
    "DEFAULT_SEP",
    "AmqpQueueProbe",
    "ManagementQueueProbe",
    "QueueDepth",
    "QueueProbe",
    "QueueProbeError",
    "RedisQueueProbe",
    "is_internal_queue",
    "queue_probe",
]


#: kombu/transport/redis.py: ``Channel.sep`` and ``PRIORITY_STEPS``.
DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
DEFAULT_UNACKED_KEY = "unacked"
#: Most entries of the ``unacked`` hash parsed per ``depths()`` call.
DEFAULT_MAX_UNACKED = 10_000
#: Most messages one ``peek()`` returns.
MAX_PEEK = 1000

_BINDING = "_kombu.binding."
_BINDING_PERMANENT = "_kombu.binding_permanent."
_HSCAN_COUNT = 1000
_SCAN_COUNT = 1000
_NO_SUCH_QUEUE = "no such queue"

_T = TypeVar("_T")


class QueueProbeError(SourceError):
    """A queue probe could not answer; ``str()`` is one masked line."""


# -- which queues are Celery's plumbing --------------------------------------

_DELAYED = re.compile(r"(?:\A|_)celery_delayed_\d+\Z")
_BCAST = re.compile(r"bcast\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def is_internal_queue(name: str, exchange: str = "") -> bool:
    """True for queues that carry Celery's own traffic, not tasks.

    Left out of discovery (they can still be asked for by name):

    * remote control: exchanges ``<control>.pidbox`` and
      ``reply.<control>.pidbox``, queues ``<node>.<control>.pidbox`` and
      ``<id>.reply.<control>.pidbox`` (``kombu/pidbox.py``);
    * events: exchange ``celeryev``, receiver queues ``celeryev.<uuid>``
      (``celery/events/receiver.py``);
    * anonymous broadcast queues ``bcast.<uuid>`` (``kombu/common.py``);
    * RabbitMQ native delayed delivery for quorum queues,
      ``[<prefix>_]celery_delayed_<level>``
      (``kombu/transport/native_delayed_delivery.py``): they hold ETA tasks
      on their way back, not a queue anyone consumes.
    """
    if exchange.endswith(".pidbox") or exchange == "celeryev":
        return True
    return (
        not name
        or name.endswith(".pidbox")
        or name.startswith("celeryev.")
        or _DELAYED.search(name) is not None
        or _BCAST.match(name) is not None
    )


# -- Redis -------------------------------------------------------------------


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
        :meth:`_unacked_queues`). A broker error makes every row carry it.
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
        prefix = self._k(_BINDING)
        permanent = self._k(_BINDING_PERMANENT)
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
            name = _text(key)
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
                binding = self._parse_binding(member)
                if binding is not None:
                    table[binding] = None
        return {exchange: list(table) for exchange, table in tables.items()}

    def _parse_binding(self, member: bytes) -> tuple[str, str, str] | None:
        # kombu: member = sep.join([routing_key, pattern, queue]); get_table splits on sep.
        parts = _text(member).split(self.sep)
        if len(parts) < 3:
            return None
        return parts[0], parts[1], self.sep.join(parts[2:])

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
                route = _unacked_route(value)
                routes[route] = routes.get(route, 0) + 1
            if not cursor:
                break
        tables = self._tables_for({exchange for exchange, _ in routes if exchange}, client)
        by_queue: dict[str, int] = {}
        for (exchange, routing_key), count in routes.items():
            for queue in self._unacked_queues(exchange, routing_key, tables, names):
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
                pipe.smembers(self._k(_BINDING + exchange))
            replies = pipe.execute(raise_on_error=False)
        tables: dict[str, list[tuple[str, str, str]]] = {}
        for exchange, members in zip(ordered, replies, strict=True):
            if isinstance(members, Exception):
                continue
            parsed = (self._parse_binding(m) for m in members)
            tables[exchange] = [b for b in parsed if b is not None]
        return tables

    @staticmethod
    def _unacked_queues(
        exchange: str,
        routing_key: str,
        tables: Mapping[str, list[tuple[str, str, str]]],
        names: set[str],
    ) -> set[str]:
        """The queue(s) an ``unacked`` entry belongs to.

        The same rule as kombu's restore (``Channel._lookup`` in
        ``kombu/transport/virtual/base.py`` and ``virtual/exchange.py``):

        1. no exchange (Celery's default for ``send_task(queue=...)``): the
           routing key is the queue;
        2. otherwise the exchange's binding table: a binding with a pattern is
           a topic binding (``*`` one word, ``#`` any text, matched on the
           binding key, not the stored regex), one without is direct
           (routing key equal). A message routed to several queues counts
           for each, as kombu would restore a copy to each;
        3. no table or no match: the routing key, if it names a queue asked
           about (the usual ``exchange == routing key == queue`` setup).
        """
        if not exchange:
            return {routing_key} if routing_key else set()
        found: set[str] = set()
        for binding_key, pattern, queue in tables.get(exchange, ()):
            if pattern:
                if _topic_match(binding_key, routing_key):
                    found.add(queue)
            elif binding_key == routing_key:
                found.add(queue)
        if not found and routing_key in names:
            found.add(routing_key)
        return found

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


def _unacked_route(value: bytes) -> tuple[str, str]:
    """``(exchange, routing_key)`` of one ``unacked`` entry ``[message, exchange, routing_key]``.

    kombu writes the entry with ``dumps([message._raw, EX, RK])``
    (``QoS.append``), so the two strings are read off its end without
    parsing the message (:func:`_tail_strings`, half the cost of a
    ``depths()`` on a big hash otherwise). Anything else is parsed whole,
    falling back on the message's ``properties.delivery_info``; ``("", "")``
    when neither can be read (counted nowhere).
    """
    tail = _tail_strings(value)
    if tail is not None:
        return tail
    try:
        entry = json.loads(value)
    except (ValueError, RecursionError):
        return "", ""
    if isinstance(entry, list) and len(entry) >= 3:
        exchange, routing_key = entry[-2], entry[-1]
        if isinstance(exchange, str) and isinstance(routing_key, str):
            return exchange, routing_key
        message = entry[0]
    else:
        message = entry
    info: Any = message.get("properties") if isinstance(message, dict) else None
    info = info.get("delivery_info") if isinstance(info, dict) else None
    if isinstance(info, dict):
        exchange, routing_key = info.get("exchange") or "", info.get("routing_key") or ""
        if isinstance(exchange, str) and isinstance(routing_key, str):
            return exchange, routing_key
    return "", ""


_WHITESPACE = frozenset(b" \t\r\n")


def _tail_strings(value: bytes) -> tuple[str, str] | None:
    """The last two strings of ``[{...}, "exchange", "routing_key"]``, read backwards.

    Linear time, no copies of the message; None unless the entry ends
    exactly like that. A JSON string's opening quote is the first quote,
    going left from its closing one, preceded by an even number of
    backslashes.
    """
    position = _skip_space_left(value, len(value))
    if position < 1 or value[position - 1] != ord("]"):
        return None
    position -= 1
    found: list[str] = []
    for _ in range(2):
        position = _skip_space_left(value, position)
        if position < 1 or value[position - 1] != ord('"'):
            return None
        close = position - 1
        start = close
        while True:
            start = value.rfind(b'"', 0, start)
            if start < 0:
                return None
            backslash = start
            while backslash > 0 and value[backslash - 1] == ord("\\"):
                backslash -= 1
            if (start - backslash) % 2 == 0:
                break
        try:
            text = json.loads(value[start : close + 1])
        except ValueError:
            return None
        if not isinstance(text, str):
            return None
        found.append(text)
        position = _skip_space_left(value, start)
        if position < 1 or value[position - 1] != ord(","):
            return None
        position -= 1
    position = _skip_space_left(value, position)
    if position < 1 or value[position - 1] != ord("}"):
        return None
    routing_key, exchange = found
    return exchange, routing_key


def _skip_space_left(value: bytes, position: int) -> int:
    while position > 0 and value[position - 1] in _WHITESPACE:
        position -= 1
    return position


def _topic_match(binding_key: str, routing_key: str) -> bool:
    r"""Topic matching exactly as kombu's ``TopicExchange.key_to_pattern`` builds it.

    ``*`` is one word, ``#`` any text (``.*?``); the words are joined with
    ``\.``, so ``orders.#`` matches ``orders.x`` but not ``orders`` (unlike
    RabbitMQ, where ``#`` may match zero words).
    """
    words = [
        r"[^.]+" if word == "*" else r".*?" if word == "#" else re.escape(word)
        for word in binding_key.split(".")
    ]
    return re.match(r"\.".join(words) + r"\Z", routing_key) is not None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


# -- RabbitMQ over AMQP -------------------------------------------------------


class AmqpQueueProbe:
    """Ready messages and consumers of RabbitMQ queues by passive ``queue.declare``.

    Each queue gets a fresh channel: RabbitMQ closes the channel of a
    declare that fails (404 for a missing queue), and the other queues must
    not pay for it. AMQP cannot list queues (``discover`` raises) nor count
    unacknowledged messages (``unacked`` is None): use
    :class:`ManagementQueueProbe` for those.
    """

    source = SOURCE_AMQP
    can_discover = False
    can_peek = False

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def discover(self) -> set[str]:
        raise QueueProbeError(
            "RabbitMQ cannot list its queues over AMQP: pass the management API "
            "(--rabbitmq-api http://user:password@host:15672) to discover queues"
        )

    def depths(self, names: Iterable[str]) -> list[QueueDepth]:
        """One passive declare per queue, in order, on one connection.

        A missing queue gives ``error="no such queue"`` and the next queue
        still works. A connection that used to work and went stale (RabbitMQ
        restarted) is reopened once at once; timeouts are not retried.
        """
        wanted = list(dict.fromkeys(names))
        rows: list[QueueDepth] = []
        with self._lock:
            for index, name in enumerate(wanted):
                for attempt in (1, 2):
                    reused = self._conn is not None
                    try:
                        conn = self._connection()
                    except QueueProbeError as exc:
                        return rows + [
                            QueueDepth(name=n, source=self.source, error=str(exc))
                            for n in wanted[index:]
                        ]
                    try:
                        rows.append(self._declare(conn, name))
                    except Exception as exc:  # noqa: BLE001 - the connection broke
                        self._reset()
                        if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                            continue
                        error = f"{mask_url(self.url)}: {describe(exc)}"
                        rows.append(
                            QueueDepth(
                                name=name,
                                source=self.source,
                                error=clean(error, 300, single_line=True),
                            )
                        )
                    break
        return rows

    def peek(self, queue: str, n: int = 10) -> list[PeekedMessage]:
        raise QueueProbeError(_NO_PEEK)

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _connection(self) -> Connection:
        if self._conn is not None:
            return self._conn
        from kombu import Connection

        conn: Connection | None = None
        try:
            conn = Connection(
                self.url,
                connect_timeout=self.timeout,
                transport_options={"read_timeout": self.timeout, "write_timeout": self.timeout},
            )
            if conn.transport.driver_type != "amqp":
                raise QueueProbeError(f"broker {mask_url(self.url)} is not an AMQP URL")
            conn.ensure_connection(max_retries=0, timeout=self.timeout)
        except QueueProbeError:
            _release(conn)
            raise
        except Exception as exc:  # noqa: BLE001 - kombu wraps transport errors in many types
            _release(conn)
            raise QueueProbeError(
                clean(
                    f"cannot reach broker {mask_url(self.url)}: {describe(exc)}",
                    400,
                    single_line=True,
                )
            ) from None
        self._conn = conn
        return conn

    def _reset(self) -> None:
        conn, self._conn = self._conn, None
        _release(conn)

    def _declare(self, conn: Connection, name: str) -> QueueDepth:
        """Passive declare on a fresh channel; channel errors (404, 405, ...)
        become the row's error, connection errors propagate."""
        from amqp.exceptions import ChannelError, NotFound

        channel = conn.channel()
        try:
            ok = channel.queue_declare(queue=name, passive=True)
        except NotFound:
            row = QueueDepth(name=name, source=self.source, error=_NO_SUCH_QUEUE)
        except ChannelError as exc:
            row = QueueDepth(name=name, source=self.source, error=describe(exc))
        else:
            row = QueueDepth(name=name, source=self.source, messages=int(ok.message_count),
                             consumers=int(ok.consumer_count))
        finally:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - the server may have closed it already
                pass
        return row


def _release(conn: Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.release()
    except Exception:  # noqa: BLE001 - the connection is already broken
        pass


_NO_PEEK = (
    "peeking is not offered on RabbitMQ: reading a message without consuming it "
    "means taking it and requeueing it, which marks it redelivered and can reorder the queue"
)


# -- RabbitMQ management API --------------------------------------------------

_COLUMNS = ",".join(
    [
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "message_stats.publish_details.rate",
        "message_stats.deliver_get_details.rate",
        "message_stats.ack_details.rate",
        "message_stats.redeliver_details.rate",
    ]
)
_RATES = ("publish", "deliver_get", "ack", "redeliver")
_PAGE_SIZE = 500
_MAX_PAGES = 200


class ManagementQueueProbe:
    """RabbitMQ queues from the management HTTP API (``GET /api/queues/<vhost>``).

    ``api_url`` is the API's base, credentials included:
    ``http://guest:guest@127.0.0.1:15672``. Pages of 500 queues, only the
    columns used. Its figures are the management plugin's statistics,
    refreshed every 5 s by default (``collect_statistics_interval``).
    """

    source = SOURCE_MANAGEMENT
    can_discover = True
    can_peek = False

    def __init__(self, api_url: str, timeout: float = 2.0, *, vhost: str = "/") -> None:
        import httpx

        self.api_url = api_url
        self.timeout = timeout
        self.vhost = vhost or "/"
        try:
            url = httpx.URL(api_url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise BadURL(f"bad RabbitMQ API URL {mask_url(api_url)!r}: {describe(exc)}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise BadURL(
                f"bad RabbitMQ API URL {mask_url(api_url)!r}: expected http://user:password@host:15672"
            )
        self._auth = (url.username, url.password or "") if url.username else None
        self._base = str(url.copy_with(username=None, password=None)).rstrip("/")
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def discover(self) -> set[str]:
        with self._lock:
            queues = self._fetch()
        return {name for name in queues if not is_internal_queue(name)}

    def depths(self, names: Iterable[str]) -> list[QueueDepth]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return []
        try:
            with self._lock:
                queues = self._fetch()
        except QueueProbeError as exc:
            return [QueueDepth(name=n, source=self.source, error=str(exc)) for n in wanted]
        rows = []
        for name in wanted:
            item = queues.get(name)
            if item is None:
                rows.append(QueueDepth(name=name, source=self.source, error=_NO_SUCH_QUEUE))
                continue
            rows.append(
                QueueDepth(
                    name=name,
                    source=self.source,
                    messages=_count(item.get("messages_ready")),
                    unacked=_count(item.get("messages_unacknowledged")),
                    consumers=_count(item.get("consumers")),
                    rates=_rates(item.get("message_stats")),
                )
            )
        return rows

    def peek(self, queue: str, n: int = 10) -> list[PeekedMessage]:
        raise QueueProbeError(_NO_PEEK)

    def close(self) -> None:
        """Drop the HTTP connection; the probe reconnects if used again."""
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    def _http(self) -> httpx.Client:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                base_url=self._base,
                auth=self._auth,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                headers={"Accept": "application/json"},
            )
        return self._client

    def _fetch(self) -> dict[str, dict[str, Any]]:
        import httpx

        path = f"/api/queues/{quote(self.vhost, safe='')}"
        queues: dict[str, dict[str, Any]] = {}
        page = 1
        while page <= _MAX_PAGES:
            params = {"page": page, "page_size": _PAGE_SIZE, "columns": _COLUMNS}
            try:
                response = self._http().get(path, params=params)
            except httpx.HTTPError as exc:
                raise self._error(describe(exc)) from None
            if response.status_code == 401:
                raise self._error("the management API refused the credentials (401)")
            if response.status_code == 404:
                raise self._error(f"no vhost {self.vhost!r} (404)")
            if response.status_code != 200:
                raise self._error(f"HTTP {response.status_code}")
            try:
                doc = response.json()
            except ValueError:
                raise self._error("the answer is not JSON") from None
            items = doc.get("items") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise self._error("unexpected answer (no items)")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    queues[item["name"]] = item
            page_count = doc.get("page_count")
            if not isinstance(page_count, int) or page >= page_count:
                break
            page += 1
        return queues

    def _error(self, text: str) -> QueueProbeError:
        return QueueProbeError(
            clean(
                mask_secrets(f"RabbitMQ API {mask_url(self.api_url)}: {text}"),
                400,
                single_line=True,
            )
        )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rates(stats: object) -> dict[str, float]:
    rates: dict[str, float] = {}
    if not isinstance(stats, dict):
        return rates
    for name in _RATES:
        details = stats.get(f"{name}_details")
        rate = details.get("rate") if isinstance(details, dict) else None
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            rates[name] = float(rate)
    return rates


# -- factory -----------------------------------------------------------------

_AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")


def queue_probe(
    broker_url: str,
    *,
    transport_options: Mapping[str, Any] | None = None,
    rabbitmq_api: str | None = None,
    timeout: float = 2.0,
) -> QueueProbe:
    """The probe for ``broker_url``'s transport.

    Redis (``redis``, ``rediss``, ``unix``, ``redis+socket``, ``sentinel`` with the
    ``master_name`` transport option): :class:`RedisQueueProbe`, honouring the
    ``global_keyprefix``, ``sep``, ``priority_steps`` and ``unacked_key``
    transport options. RabbitMQ: :class:`ManagementQueueProbe` when
    ``rabbitmq_api`` is given (on the broker URL's vhost), else
    :class:`AmqpQueueProbe`. Raises :class:`~taskwatch.sources.broker.BadURL`
    for other transports and bad URLs.
    """
    options = dict(transport_options or {})
    if not broker_url or "://" not in broker_url:
        raise BadURL(f"bad broker URL {mask_url(broker_url)!r}: expected transport://host")
    scheme = broker_url.split("://", 1)[0].strip().lower()
    if scheme in REDIS_SCHEMES:
        steps = options.get("priority_steps") or DEFAULT_PRIORITY_STEPS
        return RedisQueueProbe(
            broker_url,
            key_prefix=str(options.get("global_keyprefix") or ""),
            priority_steps=tuple(steps),
            sep=str(options.get("sep") or DEFAULT_SEP),
            timeout=timeout,
            unacked_key=str(options.get("unacked_key") or DEFAULT_UNACKED_KEY),
            master_name=options.get("master_name"),
            sentinel_kwargs=options.get("sentinel_kwargs"),
        )
    if scheme in _AMQP_SCHEMES:
        if rabbitmq_api:
            return ManagementQueueProbe(rabbitmq_api, timeout, vhost=_amqp_vhost(broker_url))
        return AmqpQueueProbe(broker_url, timeout)
    raise BadURL(
        f"queue depths are not available for {scheme}:// brokers (only Redis and RabbitMQ)"
    )


def _amqp_vhost(url: str) -> str:
    """kombu's rule: ``amqp://host//`` and ``amqp://host`` are vhost ``/``."""
    from kombu.utils.url import url_to_parts

    try:
        path = url_to_parts(url.split(";", 1)[0]).path
    except ValueError:
        return "/"
    return path or "/"
