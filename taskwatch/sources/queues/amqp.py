"""RabbitMQ queue depths over AMQP: one passive ``queue.declare`` per queue."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from taskwatch.records import SOURCE_AMQP, PeekedMessage, QueueDepth
from taskwatch.sources.errors import describe
from taskwatch.sources.queues.common import NO_PEEK, NO_SUCH_QUEUE, QueueProbeError
from taskwatch.text import clean, mask_url

if TYPE_CHECKING:
    from kombu import Connection


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
        raise QueueProbeError(NO_PEEK)

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
            row = QueueDepth(name=name, source=self.source, error=NO_SUCH_QUEUE)
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

