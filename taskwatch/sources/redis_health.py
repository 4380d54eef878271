"""What a Redis broker says about two risks ``taskwatch doctor`` checks. Read-only.

* The pub/sub output-buffer limit (``CONFIG GET client-output-buffer-limit``,
  its ``pubsub`` class): Redis closes a subscriber whose unread output passes
  it, and every event in the buffer is lost.
* ETA/countdown tasks the workers hold: kombu keeps each in the ``unacked``
  hash (delivery tag -> ``[message, exchange, routing_key]``) with its
  delivery time in the ``unacked_index`` zset, and puts it back in its queue
  once it is older than the ``visibility_timeout`` (``kombu/transport/redis.py``
  ``QoS.append`` / ``restore_visible``): a task due later than that runs twice.

Every call has the fail-fast client's timeouts (:func:`~taskwatch.sources.redis_url.connect`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from taskwatch.records import HeldEta, PubsubLimit
from taskwatch.sources.envelope import decode_message
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.redis_url import connect, parse_redis_url
from taskwatch.text import mask_url

#: Most ``unacked`` entries read (HSCAN, 1000 a step).
MAX_UNACKED = 20_000


class ConfigRefused(SourceError):
    """The server answered, but refused ``CONFIG GET`` (managed services, ACLs)."""


def _client(url: str, transport_options: Mapping[str, Any] | None, timeout: float) -> tuple[Any, str]:
    parsed = parse_redis_url(url, transport_options, what="broker URL")
    return connect(parsed, timeout=timeout), parsed.key_prefix


def pubsub_limit(url: str, transport_options: Mapping[str, Any] | None = None,
                 timeout: float = 2.0) -> PubsubLimit:
    """The broker's pub/sub output-buffer limit.

    Raises :class:`ConfigRefused` when the server refuses CONFIG, and
    :class:`SourceError` when it cannot be reached; both one masked line.
    """
    import redis

    client, _ = _client(url, transport_options, timeout)
    try:
        value = client.config_get("client-output-buffer-limit").get("client-output-buffer-limit", "")
    except redis.ResponseError as exc:
        raise ConfigRefused(f"Redis at {mask_url(url)} refused CONFIG GET: {describe(exc)}") from None
    except (redis.RedisError, OSError) as exc:
        raise SourceError(f"broker {mask_url(url)}: {describe(exc)}") from None
    finally:
        client.close()
    limit = parse_pubsub_limit(str(value))
    if limit is None:
        raise ConfigRefused(f"Redis at {mask_url(url)} gave no pubsub output-buffer limit ({value!r})")
    return limit


def parse_pubsub_limit(value: str) -> PubsubLimit | None:
    """The ``pubsub`` class of ``normal 0 0 0 replica ... pubsub 33554432 8388608 60``."""
    words = value.split()
    for i, word in enumerate(words):
        if word == "pubsub" and i + 3 < len(words):
            try:
                return PubsubLimit(_bytes(words[i + 1]), _bytes(words[i + 2]), int(words[i + 3]))
            except ValueError:
                return None
    return None


#: Redis's memory units (``redis.conf``): k = 1000, kb = 1024.
_UNITS = (("kb", 1024), ("mb", 1024**2), ("gb", 1024**3), ("k", 1000), ("m", 1000**2), ("g", 1000**3))


def _bytes(word: str) -> int:
    """CONFIG GET answers in bytes; a value as written in redis.conf may carry a unit."""
    lowered = word.lower()
    for suffix, factor in _UNITS:
        if lowered.endswith(suffix):
            return int(lowered[: -len(suffix)]) * factor
    return int(lowered)


def held_etas(url: str, transport_options: Mapping[str, Any] | None = None, timeout: float = 2.0,
              limit: int = MAX_UNACKED) -> tuple[list[HeldEta], bool]:
    """Tasks with an ETA among the messages workers hold, and whether all were read.

    Reads at most ``limit`` entries of the ``unacked`` hash and their
    delivery times; messages without an ETA (prefetched ones) are left out.
    Raises :class:`SourceError` (one masked line) when the broker cannot be read.
    """
    import redis

    options = dict(transport_options or {})
    client, prefix = _client(url, options, timeout)
    unacked = prefix + str(options.get("unacked_key") or "unacked")
    index = prefix + str(options.get("unacked_index_key") or "unacked_index")
    entries: dict[bytes, bytes] = {}
    complete = True
    try:
        cursor = 0
        while True:
            cursor, batch = client.hscan(unacked, cursor, count=1000)
            entries.update(batch)
            if not cursor:
                break
            if len(entries) >= limit:
                complete = False
                break
        tags = list(entries)
        with client.pipeline(transaction=False) as pipe:
            for tag in tags:  # ZMSCORE would need Redis 6.2
                pipe.zscore(index, tag)
            delivered = pipe.execute() if tags else []
    except (redis.RedisError, OSError) as exc:
        raise SourceError(f"broker {mask_url(url)}: reading unacked: {describe(exc)}") from None
    finally:
        client.close()
    found = []
    for (_, value), at in zip(entries.items(), delivered, strict=True):
        held = _held(value, at)
        if held is not None:
            found.append(held)
    return found, complete


def _held(value: bytes, delivered_at: float | None) -> HeldEta | None:
    try:
        entry = json.loads(value)
    except (ValueError, RecursionError):
        return None
    message = entry[0] if isinstance(entry, list) and entry else None
    if not isinstance(message, dict):
        return None
    peeked = decode_message(json.dumps(message))
    eta = parse_eta(peeked.eta)
    if peeked.id is None or eta is None:
        return None
    return HeldEta(peeked.id, peeked.task, eta, float(delivered_at) if delivered_at is not None else None)


def parse_eta(text: str | None) -> float | None:
    """Epoch seconds of Celery's ISO 8601 ``eta`` (UTC when it names no zone); None if unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
