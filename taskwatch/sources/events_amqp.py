"""Celery events over AMQP (RabbitMQ): read first, decode behind.

Each receiver has an exclusive, auto-deleted ``celeryev.taskwatch.<uuid>``
queue bound to ``#`` on the event exchange, as Celery's own receivers do,
with the app's message TTL (``event_queue_ttl``, 5 s by default): what waits
in it longer, RabbitMQ drops without a word.

So the queue must be emptied as fast as messages come. py-amqp reads and
frames the connection itself (its bytes cannot be taken from it), so the
reading thread does the least it can once a message is framed: kombu's
``on_message`` puts the raw body, its content type and the time it was read
into a bounded :class:`~taskwatch.sources.spool.BodySpool`. A second thread
(``taskwatch-events-decode``) decodes the bodies and hands the events to the
sink in batches; the sink may wait there (a key being drawn, ``give_way``)
without the reading waiting with it. A burst the decoder cannot keep up with
is lag, not loss. Past ``spool_limit`` bytes waiting, bodies are dropped and
counted, and that stretch is a gap, as the Redis receiver's spool does.

The reading thread also checks the AMQP heartbeats, whatever the decoder
is doing. Where its time goes: ``bench/amqp_receiver.py``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from taskwatch.sources.event_decode import decode_body
from taskwatch.sources.events import Backlog, _ReadAhead
from taskwatch.sources.protocols import EventSink
from taskwatch.sources.spool import DEFAULT_LIMIT, BodySpool

#: bytes one recv() may take for py-amqp (see :func:`_read_ahead`)
READ_AHEAD = 16 * 1024


def _read_ahead(conn: Any) -> bool:
    """Let py-amqp's plain-TCP transport take what the socket holds, up to
    ``READ_AHEAD`` bytes, in one recv() instead of reading each part of each
    frame (header, payload, end byte) with a recv() of exactly its size:
    nine system calls a message, and as many times the GIL given up and
    waited for while the decoder runs. py-amqp keeps what is read beyond a
    frame in its read buffer (``_read`` slices it off) and frames from it.
    Its private ``_quick_recv`` is replaced only on the transport class it
    is known for; True when it was."""
    transport = getattr(conn.connection, "transport", None)
    if transport is None or type(transport).__name__ != "TCPTransport" or \
            not hasattr(transport, "_quick_recv") or getattr(transport, "sock", None) is None:
        return False
    recv = transport.sock.recv
    transport._quick_recv = lambda n: recv(n if n > READ_AHEAD else READ_AHEAD)
    return True


class AmqpEventReceiver(_ReadAhead):
    """Reads the event queue into a spool of bodies; decodes behind (see the module)."""

    HEARTBEAT = 10.0  # seconds (AMQP heartbeats)
    BEAT_CHECK = 1.0  # seconds between two looks at the heartbeats while messages flow
    #: seconds the decoder waits for more when it finds less than a batch: a
    #: batch is then handed over (the engine's lock, the expiry watch, a turn
    #: for the UI thread) at most that often, not for every message
    GATHER = 0.01

    def __init__(self, broker_url: str, sink: EventSink, *,
                 exchange: str = "celeryev", timeout: float = 3.0,
                 queue_ttl: float = 5.0, queue_expires: float = 60.0,
                 spool_limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(broker_url, sink, name="taskwatch-events-amqp")
        self.exchange_name = exchange
        self.timeout = timeout
        self.queue_ttl = queue_ttl
        self.queue_expires = queue_expires
        self.spool = BodySpool(spool_limit)
        self._conn = None
        self._consumer = None
        #: the current connection's event queue, its vhost, and the messages
        #: read from it (what the management API is asked about), kept or not
        self.queue_name: str | None = None
        self.vhost = "/"
        self.messages_read = 0
        self.reading_ahead = False  # py-amqp's reads take what is there (_read_ahead)

    @property
    def dropped_messages(self) -> int:
        """Messages read and dropped because the spool was full."""
        return self.spool.dropped_messages

    def backlog(self) -> Backlog:
        """What the spool holds undecoded. What waits at RabbitMQ is not
        measured: our queue is exclusive (no other connection may look at
        it) and this one is busy reading."""
        spool = self.spool
        return Backlog(None, spooled=spool.pending, spool_limit=spool.limit, dropped=spool.dropped)

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
        # on_message, not callbacks: kombu would decode every body with its
        # own json first (and raise on a non-JSON one), in this thread.
        consumer = Consumer(conn.channel(), queues=[queue], on_message=self._on_message,
                            no_ack=True, accept=["application/json"])
        consumer.consume()
        self.reading_ahead = _read_ahead(conn)
        self._conn, self._consumer = conn, consumer
        self.queue_name, self.vhost, self.messages_read = queue.name, conn.virtual_host or "/", 0

    def _on_message(self, message: Any) -> None:  # kombu's on_message: the raw message
        self.messages_read += 1
        self.spool.put(message.body, message.content_type, time.time())

    def _read_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        spool = self.spool
        drain, wake = conn.drain_events, self.WAKE
        # The socket waits WAKE seconds for a frame: set once here, py-amqp
        # leaves it as it is for each frame read with that same timeout.
        sock = getattr(getattr(conn.connection, "transport", None), "sock", None)
        if sock is not None:
            sock.settimeout(wake)
        full = False  # an overflow still under way from before a reconnect is a gap again
        beat_at = 0.0
        # py-amqp sends a heartbeat only from a check made after one interval
        # without traffic: checks must come several times an interval.
        beat_every = min(self.BEAT_CHECK, self.HEARTBEAT / 4)
        while not self.stopped:
            try:
                drain(timeout=wake)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - py-amqp raises socket.timeout
                pass
            if spool.full:
                spool.admits()  # ends an overflow the decoder has made room for, messages or not
            if spool.full is not full:
                full = spool.full
                self._overflow(full)
            now = time.monotonic()
            if now >= beat_at:
                conn.heartbeat_check()  # raises when the server has gone quiet for two intervals
                beat_at = now + beat_every

    def _decode_loop(self) -> None:
        """Decode what the spool holds, hand over in batches of ``batch_max``
        events or where the spool runs dry (then it is ``drained``)."""
        spool = self.spool
        batch: list[dict[str, Any]] = []
        while not self.stopped:
            try:
                batch_max = self.batch_max
                items = spool.take(self.WAKE, batch_max)
                if not items:
                    continue
                self._busy = True
                if len(items) < batch_max:
                    self._stop_event.wait(self.GATHER)
                    items += spool.take(0.0, batch_max - len(items))
                bad = 0
                read_at = 0.0
                give_way, every = self._give_way, self.GIVE_WAY_EVERY - 1
                for i, (body, content_type, read_at) in enumerate(items):
                    if not i & every:
                        give_way()
                    events = decode_body(body, content_type)
                    if events is None:
                        bad += 1
                        continue
                    batch.extend(events)
                    if len(batch) >= batch_max:
                        self._hand_over(batch, False, read_at)
                del items
                self._hand_over(batch, not spool.pending, read_at)
                self._busy = False
                if bad:
                    self.sink.on_undecodable(bad)
            except Exception:  # noqa: BLE001 - a decoder that died would stop every event
                batch.clear()
                self._busy = False
                self.sink.on_undecodable(1)
                self._stop_event.wait(0.01)

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
