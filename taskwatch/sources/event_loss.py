"""Did RabbitMQ really drop our events? Asked of the management API.

RabbitMQ drops messages older than the event queue's TTL (Celery's
``event_queue_ttl``) without a word, and 3.10's management API has no
"expired" counter. It does count, per queue, the messages routed into it
(``message_stats.publish``), delivered from it (``deliver_get``) and held in
it (``messages``): what went in and neither came out nor is still there was
dropped. Those figures are sampled by the statistics collector every
``collect_statistics_interval`` (5 s by default), by each channel and by the
queue apart, so a reading taken while a burst is under way adds up counts of
different moments (the queue's own sample was seen more than 5 s old). A
reading is trusted only from one statistics interval after the receiver
caught up, when it counts at least every message the receiver had read by
then and shows the queue empty (as a caught-up ``no_ack`` consumer leaves
it); one that never does within ``within`` seconds leaves the loss
unconfirmed.

Being far behind does not mean a loss: a ``no_ack`` consumer's messages leave
the queue for the socket as fast as it takes them, and only what waits *in
the queue* expires.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from taskwatch.sources.queues.common import QueueProbeError
from taskwatch.sources.queues.rabbitmq_api import ManagementQueueProbe

#: RabbitMQ's default ``collect_statistics_interval``, in seconds
STATS_INTERVAL = 5.0


@dataclass(frozen=True)
class LossVerdict:
    """Messages dropped from the queue in its life so far; None when it could
    not be told, with ``why`` (one line, credentials masked)."""

    dropped: int | None
    why: str = ""


class EventLossCheck:
    """Reads how many messages RabbitMQ dropped from one event queue.

    ``api_url``: the management API (``http://user:pass@host:15672``); each
    request has ``timeout`` seconds. Run it on a thread of its own: it waits
    for the statistics to cover what it is asked about.
    """

    POLL = 1.0  # seconds between readings

    def __init__(self, api_url: str, *, timeout: float = 2.0,
                 stats_interval: float = STATS_INTERVAL, within: float = 3 * STATS_INTERVAL) -> None:
        self.api = ManagementQueueProbe(api_url, timeout=timeout)
        self.stats_interval = stats_interval
        self.within = within

    def dropped(self, queue: str, vhost: str, read: int, since: float,
                stop: threading.Event) -> LossVerdict:
        """Messages dropped from ``queue`` (on ``vhost``) so far, read from
        statistics sampled after ``since`` (a ``time.monotonic()``, when the
        receiver had read ``read`` messages from it), waiting at most
        ``within`` seconds past the first trustworthy moment."""
        try:  # at once: an API that cannot answer says so without the wait
            self.api.queue_counts(queue, vhost)
        except QueueProbeError as exc:
            return LossVerdict(None, str(exc))
        settled = since + self.stats_interval
        if stop.wait(max(0.0, settled - time.monotonic())):
            return LossVerdict(None, "stopped")
        deadline = time.monotonic() + self.within
        while True:
            try:
                counts = self.api.queue_counts(queue, vhost)
            except QueueProbeError as exc:
                return LossVerdict(None, str(exc))
            if counts is not None:
                published, delivered, messages = counts
                dropped = published - delivered - messages
                # Caught up, a no_ack consumer leaves nothing in the queue: a
                # sample that still holds messages predates the catching up.
                if delivered >= read and messages == 0 and dropped >= 0:
                    return LossVerdict(dropped)
            if time.monotonic() >= deadline:
                return LossVerdict(None, f"the management API's statistics did not catch up within "
                                         f"{self.stats_interval + self.within:g} s")
            if stop.wait(self.POLL):
                return LossVerdict(None, "stopped")

    def close(self) -> None:
        self.api.close()
