"""Celery event receivers for Redis and AMQP brokers.

Each receiver is one long-lived daemon thread that reads the broker as fast
as it can, decodes events to plain dicts and hands them over in batches to a
sink (the engine). Losing the connection is reported as a gap (start,
end, reason) so the engine can repair what it missed; the receiver then
reconnects with backoff until stopped.

Decoding is the hot path: kombu's JSON envelope, a base64 body, and a JSON
event or (``task.multi``) a list of events. orjson does both JSON parses;
bodies that are not JSON (a cluster configured with a pickle or msgpack
``event_serializer``) are counted, never unpickled.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskwatch.sources.errors import describe
from taskwatch.sources.protocols import EventSink
from taskwatch.sources.redis_url import (
    REDIS_SCHEMES,
    RedisTarget,
    RedisURL,
    connect,
    glob_escape,
    parse_redis_url,
)
from taskwatch.text import mask_url

if TYPE_CHECKING:
    import redis

_b64decode = base64.b64decode
_loads = orjson.loads


def _json(data: bytes | str) -> Any:
    try:
        return _loads(data)
    except orjson.JSONDecodeError:
        # orjson insists on valid UTF-8; events are untrusted: decode what
        # can be decoded and keep the rest as replacement characters.
        if isinstance(data, bytes):
            return json.loads(data.decode("utf-8", errors="replace"))
        raise


def decode_envelope(data: bytes | str) -> list[dict[str, Any]] | None:
    """Events in one kombu message from Redis pub/sub; None if undecodable."""
    try:
        envelope = _json(data)
        body = envelope["body"]
        if envelope.get("content-type", "application/json") != "application/json":
            return None
        properties = envelope.get("properties")
        if properties and properties.get("body_encoding") == "base64":
            body = _b64decode(body)
        return _events(_json(body))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def decode_body(body: bytes | str, content_type: str | None) -> list[dict[str, Any]] | None:
    """Events in an AMQP message body (no envelope); None if undecodable."""
    if content_type not in (None, "application/json"):
        return None
    try:
        return _events(_json(body))
    except (ValueError, TypeError):
        return None


def _events(payload: Any) -> list[dict[str, Any]] | None:
    if type(payload) is dict:
        return [payload]
    if type(payload) is list:
        return [e for e in payload if type(e) is dict]
    return None


@dataclass
class ReceiverStatus:
    connected: bool = False
    error: str | None = None
    since: float | None = None  # when the current state began
    reconnects: int = 0


class _Receiver(threading.Thread):
    """Shared loop: connect, read until failure, report the gap, back off, retry."""

    BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
    #: seconds after which the broker drops events nobody read (RabbitMQ's
    #: message TTL on our queue); None where it keeps them (Redis pub/sub
    #: cuts the connection instead)
    queue_ttl: float | None = None

    def __init__(self, broker_url: str, sink: EventSink, *, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.broker_url = broker_url
        self.sink = sink
        self.status = ReceiverStatus()
        self._stop_event = threading.Event()
        # Events per hand-over: small enough that the engine's lock is never
        # held for long (the UI reads under it), big enough to amortise.
        self.batch_max = 500
        # Pause before reconnecting after a drop, so a server that keeps
        # cutting us off is not hammered.
        self.reconnect_delay = 0.1

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_event.set()
        self._interrupt()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        attempt = 0
        while not self.stopped:
            try:
                self._open()
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                self._lost(f"cannot connect for events: {describe(exc)}")
                self._stop_event.wait(self.BACKOFF[min(attempt, len(self.BACKOFF) - 1)])
                attempt += 1
                continue
            attempt = 0
            now = time.time()
            self.status = ReceiverStatus(True, None, now, self.status.reconnects)
            self.sink.on_connect(now)
            try:
                self._read_loop()
            except Exception as exc:  # noqa: BLE001 - the connection broke: record, reconnect
                if not self.stopped:
                    self._lost(f"event connection lost: {describe(exc)}")
                    self._stop_event.wait(self.reconnect_delay)
            finally:
                self._close()
        self.status.connected = False

    def _lost(self, reason: str) -> None:
        now = time.time()
        if self.status.connected or self.status.since is None:
            self.sink.on_disconnect(now, reason)
            self.status.reconnects += 1 if self.status.connected else 0
        self.status = ReceiverStatus(False, mask_url(reason), now, self.status.reconnects)

    def backlog(self) -> Backlog | None:
        """Events waiting at the broker for this receiver; None where it cannot tell.

        RabbitMQ: our queue is exclusive, so no other connection may look at
        it; the receiver's own connection is busy reading. Not measured.
        """
        return None

    # subclass hooks
    def _open(self) -> None: raise NotImplementedError
    def _read_loop(self) -> None: raise NotImplementedError
    def _close(self) -> None: raise NotImplementedError
    def _interrupt(self) -> None: pass


def redis_event_channel(broker_url: str, transport_options: Mapping[str, Any] | None = None,
                        exchange: str = "celeryev") -> str:
    """The pub/sub channel workers publish events on, without routing key.

    kombu: ``<global_keyprefix><keyprefix_fanout><exchange>[/<routing key>]``
    where ``keyprefix_fanout`` is ``/{db}.`` unless the ``fanout_prefix``
    transport option says otherwise. Raises
    :class:`~taskwatch.sources.redis_url.RedisURLError` for a bad URL.
    """
    return _event_channel(parse_redis_url(broker_url, transport_options, what="broker URL"),
                          transport_options, exchange)


def _event_channel(parsed: RedisURL, transport_options: Mapping[str, Any] | None,
                   exchange: str) -> str:
    options = dict(transport_options or {})
    db = parsed.db
    fanout_prefix = options.get("fanout_prefix", True)
    if fanout_prefix is True:
        prefix = f"/{db}."
    elif isinstance(fanout_prefix, str):
        prefix = fanout_prefix.format(db=db) if "{db}" in fanout_prefix else fanout_prefix
    else:
        prefix = ""
    return f"{parsed.key_prefix}{prefix}{exchange}"


def redis_client(parsed: RedisURL, target: RedisTarget | None = None, timeout: float = 3.0,
                 client_name: str | None = None) -> redis.Redis:
    """A fail-fast client for one target of a parsed broker URL (default: the first).

    ``client_name`` is set on every connection it opens (CLIENT SETNAME), so
    the connection can be found again in CLIENT LIST.
    """
    extra: dict[str, Any] = {"client_name": client_name} if client_name else {}
    # Reads wait in select() with their own timeout; the read timeout bounds
    # a read on a connection that went silent half-way through a reply.
    return connect(parsed, target, timeout=timeout, read_timeout=max(timeout, 5.0),
                   keepalive=True, **extra)


@dataclass(frozen=True)
class Backlog:
    """Bytes of events waiting at the broker for us, and where it cuts us off."""

    waiting: int
    limit: int | None = None


def _pubsub_hard_limit(client: Any) -> int | None:
    """The ``pubsub`` hard limit of ``client-output-buffer-limit``, in bytes (0: none)."""
    import redis

    try:
        value = client.config_get("client-output-buffer-limit").get("client-output-buffer-limit", "")
    except redis.RedisError:
        return None  # CONFIG refused (managed services, ACLs)
    parts = str(value).split()
    for i, word in enumerate(parts[:-1]):
        if word == "pubsub":
            try:
                return int(parts[i + 1])
            except ValueError:
                return None
    return None


class RedisEventReceiver(_Receiver):
    """PSUBSCRIBEs to the event channel; one batch per burst of messages."""

    def __init__(self, broker_url: str, sink: EventSink, *,
                 transport_options: Mapping[str, Any] | None = None,
                 exchange: str = "celeryev", timeout: float = 3.0) -> None:
        super().__init__(broker_url, sink, name="taskwatch-events-redis")
        self.transport_options = dict(transport_options or {})
        self._parsed = parse_redis_url(broker_url, transport_options, what="broker URL")
        self.channel = _event_channel(self._parsed, transport_options, exchange)
        self.timeout = timeout
        # Our pub/sub connection's name, to find it in CLIENT LIST (backlog).
        self.client_name = f"taskwatch-events-{os.getpid()}-{id(self):x}"
        self._pubsub = None
        self._client = None
        self._side = None  # a second connection, for backlog(); used by the polling thread only
        # the server we listen to (one of several in kombu's a;b form)
        self._target = self._parsed.targets[0]
        self._limit: int | None | bool = False  # pub/sub hard limit; False: not asked yet

    def backlog(self) -> Backlog | None:
        """What Redis holds for us and we have not read yet, or None if it cannot tell.

        Redis queues pub/sub messages per subscriber (its output buffer); a
        reader that falls behind sees it grow until Redis cuts the connection
        at the ``client-output-buffer-limit pubsub`` hard limit (32 MB by
        default), which loses every message in it. CLIENT LIST shows that
        buffer (``omem``). Managed Redis services may refuse CLIENT LIST or
        CONFIG GET: then nothing is claimed.
        """
        import redis

        try:
            if self._side is None:
                self._side = redis_client(self._parsed, self._target, min(self.timeout, 2.0))
            clients = self._side.client_list(_type="pubsub")
            if self._limit is False:
                self._limit = _pubsub_hard_limit(self._side)
        except (redis.RedisError, OSError, ValueError):
            self._close_side()
            return None
        for entry in clients:
            if entry.get("name") == self.client_name:
                try:
                    return Backlog(int(entry.get("omem", 0)), self._limit or None)
                except (TypeError, ValueError):
                    return None
        return None

    def _close_side(self) -> None:
        side, self._side = self._side, None
        if side is not None:
            try:
                side.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass

    def stop(self, timeout: float = 2.0) -> None:
        super().stop(timeout)
        self._close_side()

    def _candidates(self) -> list[RedisTarget]:
        """The servers to try, the one that worked last first (kombu's ``a;b`` failover form).

        A sentinel URL names sentinels, not servers: it is one target.
        """
        targets = list(self._parsed.targets)
        start = targets.index(self._target) if self._target in targets else 0
        return targets[start:] + targets[:start]

    def _open(self) -> None:
        error: Exception | None = None
        for target in self._candidates():
            client = None
            try:
                client = redis_client(self._parsed, target, self.timeout, client_name=self.client_name)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                escaped = glob_escape(self.channel)
                pubsub.psubscribe(f"{escaped}/*")
                pubsub.subscribe(self.channel)  # brokers with fanout_patterns off
            except Exception as exc:  # noqa: BLE001 - the next host, then the caller's backoff
                error = exc
                if client is not None:
                    client.close()
                continue
            if target is not self._target:
                self._target = target
                self._close_side()  # the backlog probe must look at the server we listen to
            self._client, self._pubsub = client, pubsub
            return
        assert error is not None
        raise error

    # A connection that goes silent without closing (a network partition, a
    # frozen NAT entry) reads nothing forever, and looks idle rather than
    # broken. After IDLE_PING seconds without a message, PING; no answer in
    # PING_WAIT seconds is a lost connection (a gap, then a reconnect).
    IDLE_PING = 15.0
    PING_WAIT = 5.0

    def _read_loop(self) -> None:
        pubsub = self._pubsub
        sink = self.sink
        get = pubsub.get_message
        decode = decode_envelope
        batch_max = self.batch_max
        last_seen = time.monotonic()
        pinged_at: float | None = None
        while not self.stopped:
            message = get(timeout=0.5)
            if message is None:
                now = time.monotonic()
                if pinged_at is not None:
                    if now - pinged_at > self.PING_WAIT:
                        raise ConnectionError(f"no answer from Redis to a ping in {self.PING_WAIT:.0f} s")
                elif now - last_seen > self.IDLE_PING:
                    pubsub.ping()
                    pinged_at = now
                continue
            last_seen = time.monotonic()
            pinged_at = None
            batch: list[dict[str, Any]] = []
            bad = 0
            drained = False
            while True:
                if message is not None and message["type"] in ("pmessage", "message"):
                    events = decode(message["data"])
                    if events is None:
                        bad += 1
                    else:
                        batch.extend(events)
                if len(batch) >= batch_max:
                    break
                message = get(timeout=0.0)
                if message is None:
                    drained = True
                    break
            if batch:
                sink.on_events(batch, time.time(), drained)
                time.sleep(0)  # let the UI thread in between batches
            if bad:
                sink.on_undecodable(bad)

    def _close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        for thing in (pubsub, client):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001, S110 - closing a broken connection
                    pass

    def _interrupt(self) -> None:
        pass  # get_message wakes up every 0.5 s and sees the stop flag


class AmqpEventReceiver(_Receiver):
    """An exclusive, auto-deleted ``celeryev.<uuid>`` queue bound to ``#``, as Celery's own."""

    HEARTBEAT = 10.0  # seconds (AMQP heartbeats)

    def __init__(self, broker_url: str, sink: EventSink, *,
                 exchange: str = "celeryev", timeout: float = 3.0,
                 queue_ttl: float = 5.0, queue_expires: float = 60.0) -> None:
        super().__init__(broker_url, sink, name="taskwatch-events-amqp")
        self.exchange_name = exchange
        self.timeout = timeout
        self.queue_ttl = queue_ttl
        self.queue_expires = queue_expires
        self._conn = None
        self._consumer = None
        self._batch: list[dict[str, Any]] = []
        self._bad = 0

    def _open(self) -> None:
        import uuid

        from celery.events.event import get_exchange
        from kombu import Connection, Consumer, Queue

        # Heartbeats both ways: a link that dies silently is noticed
        # (heartbeat_check in the read loop) instead of looking idle.
        conn = Connection(self.broker_url, connect_timeout=self.timeout, heartbeat=self.HEARTBEAT)
        conn.ensure_connection(max_retries=0, timeout=self.timeout)
        exchange = get_exchange(conn, name=self.exchange_name)
        queue = Queue(
            f"celeryev.taskwatch.{uuid.uuid4()}", exchange=exchange, routing_key="#",
            auto_delete=True, durable=False, exclusive=True,
            message_ttl=self.queue_ttl, expires=self.queue_expires,
        )
        consumer = Consumer(conn.channel(), queues=[queue], callbacks=[self._on_message],
                            no_ack=True, accept=["application/json"])
        consumer.consume()
        self._conn, self._consumer = conn, consumer

    def _on_message(self, body: Any, message: Any) -> None:  # kombu callback
        events = decode_body(message.body, message.content_type)
        if events is None:
            self._bad += 1
        else:
            self._batch.extend(events)

    def _read_loop(self) -> None:
        import socket

        conn = self._conn
        while not self.stopped:
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
            except socket.timeout:  # noqa: UP041 - py-amqp raises socket.timeout
                pass
            # drain what is already buffered without waiting
            drained = False
            while len(self._batch) < self.batch_max:
                try:
                    conn.drain_events(timeout=0.0)
                except (TimeoutError, socket.timeout):  # noqa: UP041
                    drained = True
                    break
            conn.heartbeat_check()  # raises when the server has gone quiet for two intervals
            if self._batch:
                batch, self._batch = self._batch, []
                self.sink.on_events(batch, time.time(), drained)
            if self._bad:
                bad, self._bad = self._bad, 0
                self.sink.on_undecodable(bad)

    def _close(self) -> None:
        conn = self._conn
        self._conn = self._consumer = None
        if conn is not None:
            try:
                # Drop it without the close handshake: release() waits for
                # the server's Close-Ok with no timeout, which a dead link
                # never sends. RabbitMQ deletes our exclusive queue anyway.
                conn.collect()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass


def event_receiver(broker_url: str, sink: EventSink, *, transport_options: Mapping[str, Any] | None = None,
                   exchange: str = "celeryev", timeout: float = 3.0,
                   queue_ttl: float | None = None, queue_expires: float | None = None) -> _Receiver:
    """The receiver for this broker's transport.

    ``queue_ttl`` / ``queue_expires``: the app's ``event_queue_ttl`` and
    ``event_queue_expires`` (RabbitMQ), as Celery's own receivers use them.
    """
    scheme = check_event_transport(broker_url)
    if scheme in REDIS_SCHEMES:
        return RedisEventReceiver(broker_url, sink, transport_options=transport_options,
                                  exchange=exchange, timeout=timeout)
    return AmqpEventReceiver(broker_url, sink, exchange=exchange, timeout=timeout,
                             queue_ttl=5.0 if queue_ttl is None else queue_ttl,
                             queue_expires=60.0 if queue_expires is None else queue_expires)


_AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")


def check_event_transport(broker_url: str) -> str:
    """The URL's scheme when taskwatch can listen to events on it; else ValueError."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme not in REDIS_SCHEMES + _AMQP_SCHEMES:
        raise ValueError(f"events over {scheme}:// are not supported (Redis and AMQP are)")
    return scheme

