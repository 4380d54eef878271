"""Queue depths and peeking, as plain data.

Three probes answer the same questions (:class:`QueueProbe`):

* :class:`RedisQueueProbe` (:mod:`.redis`) reads kombu's Redis layout (``kombu/transport/redis.py``)
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

* :class:`AmqpQueueProbe` (:mod:`.amqp`) asks RabbitMQ by a passive ``queue.declare`` per
  queue: ready messages and consumers. AMQP has no way to list queues, nor to
  count unacknowledged messages.
* :class:`ManagementQueueProbe` (:mod:`.rabbitmq_api`) reads RabbitMQ's management HTTP API: every
  queue with ready and unacknowledged messages, consumers and rates.

:func:`queue_probe` picks one for a broker URL. Nothing here raises for an
unreachable broker in :meth:`~QueueProbe.depths`: every row then carries a
one-line, masked ``error``. ``discover`` and ``peek`` raise
:class:`QueueProbeError` (a :class:`~taskwatch.sources.errors.SourceError`).

kombu's routing rules (which queue an ``unacked`` entry belongs to, topic
matching, binding tables) are copied in :mod:`.routing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskwatch.records import QueueDepth
from taskwatch.sources.broker import BadURL
from taskwatch.sources.protocols import QueueProbe
from taskwatch.sources.queues.amqp import AmqpQueueProbe
from taskwatch.sources.queues.common import QueueProbeError, is_internal_queue
from taskwatch.sources.queues.rabbitmq_api import ManagementQueueProbe
from taskwatch.sources.queues.redis import (
    DEFAULT_PRIORITY_STEPS,
    DEFAULT_SEP,
    DEFAULT_UNACKED_KEY,
    RedisQueueProbe,
)
from taskwatch.sources.redis_url import REDIS_SCHEMES
from taskwatch.text import mask_url

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

