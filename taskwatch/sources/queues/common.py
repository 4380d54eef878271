"""What every queue probe shares: its error, its row texts, and which queues are Celery's plumbing."""

from __future__ import annotations

import re

from taskwatch.sources.errors import SourceError

NO_SUCH_QUEUE = "no such queue"
NO_PEEK = (
    "peeking is not offered on RabbitMQ: reading a message without consuming it "
    "means taking it and requeueing it, which marks it redelivered and can reorder the queue"
)


class QueueProbeError(SourceError):
    """A queue probe could not answer; ``str()`` is one masked line."""


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

