"""Celery event receivers for Redis and AMQP brokers.

A receiver hands events over in batches to a sink (the engine). Losing the
connection is reported as a gap (start, end, reason) so the engine can
repair what it missed; the receiver then reconnects with backoff until
stopped.

Redis: read fast, decode behind. One thread does nothing but move the pub/sub
connection's bytes into a bounded :class:`~taskwatch.sources.spool.Spool`; a
second one splits them into messages (hiredis), decodes and applies them. A
burst at a publisher's full speed becomes lag, not loss; past the spool's
limit the bytes are counted and the stretch is a gap. Where the time goes per
message: ``bench/profile_receiver.py``.

AMQP (:mod:`taskwatch.sources.events_amqp`): the same split, one step later:
py-amqp reads and frames in the reading thread, which puts each message's raw
body into a bounded spool of bodies; the decoder thread decodes and applies.

Decoding is :mod:`taskwatch.sources.event_decode`'s.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskwatch.sources.errors import describe
from taskwatch.sources.event_decode import decode_payload
from taskwatch.sources.protocols import EventSink
from taskwatch.sources.redis_url import (
    REDIS_SCHEMES,
    RedisTarget,
    RedisURL,
    connect,
    glob_escape,
    parse_redis_url,
)
from taskwatch.sources.spool import DEFAULT_LIMIT, Break, PubSubFrames, Spool
from taskwatch.text import mask_url

if TYPE_CHECKING:
    import redis

@dataclass
class ReceiverStatus:
    connected: bool = False
    error: str | None = None
    since: float | None = None  # when the current state began
    reconnects: int = 0


class _Receiver(threading.Thread):
    """Shared loop: connect, read until failure, report the gap, back off, retry."""

    # Capped at 1 s: a broker back from a restart is heard again within about
    # a second (plus the connect), and a refused connect costs the broker little.
    BACKOFF = (0.1, 0.25, 0.5, 1.0)
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
        #: epoch seconds of the last byte (or connect) from the broker
        self.last_contact: float | None = None

    def stop(self, timeout: float = 0.5) -> None:
        """Stop, waiting at most ``timeout`` s: a thread stuck connecting to a
        broker that does not answer ends on its own (it is a daemon)."""
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
                if self.stopped:
                    break
                self._lost(f"cannot connect for events: {describe(exc)}")
                self._tell_broker(describe(exc))
                self._stop_event.wait(self.BACKOFF[min(attempt, len(self.BACKOFF) - 1)])
                attempt += 1
                continue
            attempt = 0
            now = time.time()
            self.last_contact = now
            self.status = ReceiverStatus(True, None, now, self.status.reconnects)
            self._tell_broker(None)
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

    def _tell_broker(self, error: str | None) -> None:
        """Say whether the broker answers (None) or why not, with the last time it did."""
        on_broker = getattr(self.sink, "on_broker", None)
        if on_broker is not None:
            on_broker(time.time(), error, self.last_contact)

    def _lost(self, reason: str) -> None:
        now = time.time()
        if self.status.connected or self.status.since is None:
            self.sink.on_disconnect(now, reason)
            self.status.reconnects += 1 if self.status.connected else 0
        self.status = ReceiverStatus(False, mask_url(reason), now, self.status.reconnects)

    def unapplied(self) -> int:
        """Bytes read and not yet applied: nothing is read ahead here."""
        return 0

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


def _never_wait() -> None:
    pass


class _ReadAhead(_Receiver):
    """A receiver whose thread (the reader) only moves what it reads into
    ``spool``, while a second thread (the decoder, ``taskwatch-events-decode``)
    decodes it and hands it to the sink behind it: the sink may take its time
    (a key being drawn, a slow apply) without the reading waiting on it.

    Subclasses set ``spool`` (with ``pending`` and ``wake()``) and write
    ``_decode_loop``, which hands each batch over with :meth:`_hand_over`.
    """

    WAKE = 0.25  # seconds a read or a take waits before looking at the clock and the stop flag
    GIVE_WAY_EVERY = 16  # messages (a power of two)

    def __init__(self, broker_url: str, sink: EventSink, *, name: str) -> None:
        super().__init__(broker_url, sink, name=name)
        self._busy = False  # the decoder holds a batch taken from the spool
        # Waits while the screen answers a key (the monitor's); called every
        # GIVE_WAY_EVERY messages decoded, not only between batches: a batch
        # of 500 single-event messages is 5-10 ms of decoding the key's
        # frame would otherwise share the GIL with.
        self._give_way: Callable[[], None] = getattr(sink, "give_way", _never_wait)
        self._decoder = threading.Thread(target=self._decode_loop, name="taskwatch-events-decode",
                                         daemon=True)

    def start(self) -> None:
        self._decoder.start()
        super().start()

    def stop(self, timeout: float = 0.5) -> None:
        ends = time.monotonic() + timeout
        super().stop(timeout)
        self.spool.wake()
        if self._decoder.is_alive() and threading.current_thread() is not self._decoder:
            self._decoder.join(max(0.05, ends - time.monotonic()))

    def unapplied(self) -> int:
        """Bytes in the spool, and a batch being decoded or applied (counted as one byte)."""
        return self.spool.pending + (1 if self._busy else 0)

    def _overflow(self, full: bool) -> None:
        """The spool began refusing what is read (a gap opens) or took it again (it closes)."""
        spool = self.spool
        now = time.time()
        if full:
            self.sink.on_disconnect(
                now, f"event spool full ({spool.limit / 2**20:.0f} MB waiting to be decoded): "
                     "events dropped until it drains")
        else:
            self.sink.on_connect(now)

    def _hand_over(self, batch: list[dict[str, Any]], drained: bool, read_at: float | None = None) -> None:
        if batch:
            events = batch.copy()
            batch.clear()
            self.sink.on_events(events, time.time(), drained, read_at)
            time.sleep(0)  # let the UI thread in between batches

    def _decode_loop(self) -> None: raise NotImplementedError


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
    """Bytes of events waiting at the broker for us (None: it does not say),
    and where it cuts us off; bytes read and waiting in our spool to be
    decoded, the spool's limit, and bytes it dropped for being full."""

    waiting: int | None
    limit: int | None = None
    spooled: int = 0
    spool_limit: int | None = None
    dropped: int = 0


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


class RedisEventReceiver(_ReadAhead):
    """PSUBSCRIBEs to the event channel; reads into a spool, decodes behind.

    This thread (the reader) does nothing but move the connection's bytes
    into ``spool``; a second thread (the decoder, ``taskwatch-events-decode``)
    splits them into messages, decodes them and hands them to the sink in
    batches. The sink may take its time (a held key, a slow apply): the
    reader keeps the server's buffer for us empty meanwhile, so a burst is
    never cut off by Redis's output-buffer limit, only delayed. Past
    ``spool_limit`` bytes waiting, what arrives is counted and dropped, and
    that stretch is a gap (opened when the dropping starts, closed when the
    decoder has brought the spool down to three quarters of the limit).
    """

    def __init__(self, broker_url: str, sink: EventSink, *,
                 transport_options: Mapping[str, Any] | None = None,
                 exchange: str = "celeryev", timeout: float = 3.0,
                 spool_limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(broker_url, sink, name="taskwatch-events-redis")
        self.transport_options = dict(transport_options or {})
        self._parsed = parse_redis_url(broker_url, transport_options, what="broker URL")
        self.channel = _event_channel(self._parsed, transport_options, exchange)
        self.timeout = timeout
        # Our pub/sub connection's name, to find it in CLIENT LIST (backlog).
        self.client_name = f"taskwatch-events-{os.getpid()}-{id(self):x}"
        self._client = None
        self._connection = None
        self._sock: socket.socket | None = None
        self._side = None  # a second connection, for backlog(); used by the polling thread only
        # the server we listen to (one of several in kombu's a;b form)
        self._target = self._parsed.targets[0]
        self._limit: int | None | bool = False  # pub/sub hard limit; False: not asked yet
        self.spool = Spool(spool_limit)

    def stop(self, timeout: float = 0.5) -> None:
        super().stop(timeout)
        self._close_side()

    def backlog(self) -> Backlog | None:
        """What Redis holds for us unread, and what the spool holds undecoded.

        Redis queues pub/sub messages per subscriber (its output buffer); a
        reader that falls behind sees it grow until Redis cuts the connection
        at the ``client-output-buffer-limit pubsub`` hard limit (32 MB by
        default), which loses every message in it. CLIENT LIST shows that
        buffer (``omem``). Managed Redis services may refuse CLIENT LIST or
        CONFIG GET: then only the spool is told.
        """
        import redis

        spool = self.spool
        spooled = {"spooled": spool.pending, "spool_limit": spool.limit, "dropped": spool.dropped}
        try:
            if self._side is None:
                self._side = redis_client(self._parsed, self._target, min(self.timeout, 2.0))
            clients = self._side.client_list(_type="pubsub")
            if self._limit is False:
                self._limit = _pubsub_hard_limit(self._side)
        except (redis.RedisError, OSError, ValueError):
            self._close_side()
            return Backlog(None, **spooled)
        for entry in clients:
            if entry.get("name") == self.client_name:
                try:
                    return Backlog(int(entry.get("omem", 0)), self._limit or None, **spooled)
                except (TypeError, ValueError):
                    break
        return Backlog(None, **spooled)

    def _close_side(self) -> None:
        side, self._side = self._side, None
        if side is not None:
            try:
                side.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass

    def _candidates(self) -> list[RedisTarget]:
        """The servers to try, the one that worked last first (kombu's ``a;b`` failover form).

        A sentinel URL names sentinels, not servers: it is one target.
        """
        targets = list(self._parsed.targets)
        start = targets.index(self._target) if self._target in targets else 0
        return targets[start:] + targets[:start]

    def _open(self) -> None:
        """Connect (redis-py: TLS, AUTH, SELECT, CLIENT SETNAME), then subscribe
        on the bare socket: from here on the bytes are ours to read."""
        error: Exception | None = None
        for target in self._candidates():
            client = connection = None
            try:
                client = redis_client(self._parsed, target, self.timeout, client_name=self.client_name)
                connection = client.connection_pool.get_connection()
                sock = connection._sock
                if sock is None:
                    raise ConnectionError("no socket after connecting")
                escaped = glob_escape(self.channel)
                sock.sendall(_command(b"PSUBSCRIBE", f"{escaped}/*".encode())
                             + _command(b"SUBSCRIBE", self.channel.encode()))  # fanout_patterns off
            except Exception as exc:  # noqa: BLE001 - the next host, then the caller's backoff
                error = exc
                if connection is not None:
                    connection.disconnect()
                if client is not None:
                    client.close()
                continue
            if target is not self._target:
                self._target = target
                self._close_side()  # the backlog probe must look at the server we listen to
            self._client, self._connection, self._sock = client, connection, sock
            self.spool.mark()  # a new connection: the decoder starts afresh
            return
        assert error is not None
        raise error

    # A connection that goes silent without closing (a network partition, a
    # frozen NAT entry, a stopped server) reads nothing forever, and looks
    # idle rather than broken. After IDLE_PING seconds without a byte, PING:
    # no byte SILENT seconds after it and the broker is "not answering" (the
    # header says so, with the time of the last byte; the connection is
    # kept, so a broker that wakes up loses nothing); none in PING_WAIT
    # seconds is a lost connection (a gap, then a reconnect). A byte of any
    # kind is an answer: while messages arrive nothing times out.
    IDLE_PING = 0.5
    SILENT = 1.0
    PING_WAIT = 5.0

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        sock.settimeout(self.WAKE)
        spool = self.spool
        room, commit = spool.room, spool.commit
        recv_into = sock.recv_into
        last_seen = time.monotonic()
        pinged_at: float | None = None
        silent = False
        full = spool.full
        while not self.stopped:
            view = room()
            if spool.full is not full:
                full = spool.full
                self._overflow(full)
            try:
                n = recv_into(view)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - ssl raises socket.timeout
                now = time.monotonic()
                if pinged_at is not None:
                    if now - pinged_at > self.PING_WAIT:
                        raise ConnectionError(
                            f"no answer from Redis to a ping in {self.PING_WAIT:.0f} s") from None
                    if not silent and now - pinged_at > self.SILENT:
                        silent = True
                        self._tell_broker(f"not answering: no reply to a ping in {self.SILENT:g} s")
                elif now - last_seen > self.IDLE_PING:
                    sock.sendall(_PING)
                    pinged_at = now
                continue
            finally:
                del view  # the spool may unmap its block once read
            if not n:
                raise ConnectionError("connection closed by the server")
            commit(n)
            last_seen = time.monotonic()
            self.last_contact = time.time()
            pinged_at = None
            if silent:
                silent = False
                self._tell_broker(None)

    def _decode_loop(self) -> None:
        """Split what the spool holds into messages, decode, hand over in batches.

        A batch ends at ``batch_max`` events or where the spool runs dry (then
        it is ``drained``: caught up)."""
        spool = self.spool
        frames = PubSubFrames()
        payloads: list[bytes] = []
        batch: list[dict[str, Any]] = []
        while not self.stopped:
            try:
                items = spool.take(self.WAKE)
                self._busy = bool(items)
                for item in items:
                    if type(item) is Break:
                        self._hand_over(batch, drained=False)
                        frames.reset(resync=item.resync)
                    else:
                        frames.feed(item, payloads)
                        self._decode(payloads, batch)
                    del item  # the spool may unmap its block once read
                del items
                self._hand_over(batch, drained=not spool.pending)
                self._busy = False
                if frames.errors:
                    self.sink.on_undecodable(frames.errors)
                    frames.errors = 0
            except Exception:  # noqa: BLE001 - a decoder that died would stop every event
                payloads.clear()
                batch.clear()
                frames.reset(resync=True)
                self.sink.on_undecodable(1)
                self._stop_event.wait(0.01)

    def _decode(self, payloads: list[bytes], batch: list[dict[str, Any]]) -> None:
        decode = decode_payload
        batch_max = self.batch_max
        give_way, every = self._give_way, self.GIVE_WAY_EVERY - 1
        bad = 0
        for i, data in enumerate(payloads):
            if not i & every:
                give_way()
            events = decode(data)
            if events is None:
                bad += 1
                continue
            batch.extend(events)
            if len(batch) >= batch_max:
                self._hand_over(batch, drained=False)
        payloads.clear()
        if bad:
            self.sink.on_undecodable(bad)

    def _close(self) -> None:
        connection, client = self._connection, self._client
        self._connection = self._client = self._sock = None
        for closing in (connection.disconnect if connection is not None else None,
                        client.close if client is not None else None):
            if closing is not None:
                try:
                    closing()
                except Exception:  # noqa: BLE001, S110 - closing a broken connection
                    pass

    def _interrupt(self) -> None:
        pass  # a read wakes up every WAKE seconds and sees the stop flag


def _command(*parts: bytes) -> bytes:
    """One command in RESP, as redis-py would send it."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


_PING = _command(b"PING")


def event_receiver(broker_url: str, sink: EventSink, *, transport_options: Mapping[str, Any] | None = None,
                   exchange: str = "celeryev", timeout: float = 3.0,
                   queue_ttl: float | None = None, queue_expires: float | None = None,
                   spool_limit: int = DEFAULT_LIMIT) -> _Receiver:
    """The receiver for this broker's transport.

    ``queue_ttl`` / ``queue_expires``: the app's ``event_queue_ttl`` and
    ``event_queue_expires`` (RabbitMQ), as Celery's own receivers use them.
    ``spool_limit``: bytes read and not yet decoded the receiver may hold.
    """
    scheme = check_event_transport(broker_url)
    if scheme in REDIS_SCHEMES:
        return RedisEventReceiver(broker_url, sink, transport_options=transport_options,
                                  exchange=exchange, timeout=timeout, spool_limit=spool_limit)
    from taskwatch.sources.events_amqp import AmqpEventReceiver

    return AmqpEventReceiver(broker_url, sink, exchange=exchange, timeout=timeout,
                             queue_ttl=5.0 if queue_ttl is None else queue_ttl,
                             queue_expires=60.0 if queue_expires is None else queue_expires,
                             spool_limit=spool_limit)


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")


def check_event_transport(broker_url: str) -> str:
    """The URL's scheme when taskwatch can listen to events on it; else ValueError."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme not in REDIS_SCHEMES + AMQP_SCHEMES:
        raise ValueError(f"events over {scheme}:// are not supported (Redis and AMQP are)")
    return scheme

