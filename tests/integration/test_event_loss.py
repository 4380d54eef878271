"""Events RabbitMQ drops past ``event_queue_ttl``: suspected from the lag, confirmed
(or not) by the management API, on the real RabbitMQ."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import Celery
from kombu import Connection

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from tests.cluster import AmqpEvents
from tests.proxy import FreezableLink
from tests.waiting import wait_until

TTL = 1.0


@contextmanager
def _watching(rabbitmq_url: str, api: str | None) -> Iterator[tuple[Monitor, AmqpEvents, FreezableLink]]:
    """A monitor whose event connection goes through a link the test can freeze."""
    app = Celery("proj", set_as_current=False)
    app.conf.event_queue_ttl = TTL
    with FreezableLink(("127.0.0.1", 5672)) as link:
        url = rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{link.port}")
        assert url != rabbitmq_url
        settings = Settings(broker_url=url, rabbitmq_api=api)
        monitor = Monitor.from_settings(settings, app, backfill=0)
        # Frozen, the link carries no heartbeat either: on a loaded machine
        # the burst may take longer to publish than two 10 s intervals.
        monitor.receiver.HEARTBEAT = 60.0
        with monitor, \
                Connection(rabbitmq_url, connect_timeout=5) as conn:
            wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
            events = AmqpEvents(conn)
            events.send("first")  # caught up: the baseline for this host's clock
            wait_until(lambda: "first" in monitor.state.tasks, what="the first event (the caught-up baseline)")
            yield monitor, events, link


def _fall_behind(monitor: Monitor, events: AmqpEvents, link: FreezableLink, count: int, padding: str) -> None:
    """The receiver reads nothing while ``count`` events come, and they age past the TTL.

    The link is frozen, as a reader starved of CPU or a slow network would
    be: RabbitMQ fills the sockets' buffers, and the rest waits in our queue.
    (Holding the events, as the screen does for a key, would not do: the
    receiver's reading goes on meanwhile, only applying waits.)"""
    link.freeze()
    for i in range(count):
        events.send(f"late-{i}", padding)
    time.sleep(TTL + 0.5)  # the subject: what waits for the receiver ages past its TTL
    link.thaw()
    wait_until(lambda: monitor.state.counters.max_lag > TTL, what="the receiver to read the burst late")


def _catch_up(monitor: Monitor, events: AmqpEvents) -> None:
    """Send one fresh event after another until one arrives less than TTL/2
    late: however long the rest of the backlog takes on a busy machine, the
    receiver is then caught up (one event sent at once could arrive behind
    that rest, and nothing would come after it)."""
    sent = [0]

    def caught_up() -> bool:
        if f"after-{sent[0]}" in monitor.state.tasks and monitor.state.counters.lag < TTL / 2:
            return True
        if sent[0] == 0 or f"after-{sent[0]}" in monitor.state.tasks:
            sent[0] += 1
            events.send(f"after-{sent[0]}")
        return False

    wait_until(caught_up, what="the receiver to catch up")


def _late(monitor: Monitor) -> int:
    return sum(1 for t in list(monitor.state.tasks) if t.startswith("late-"))


def test_falling_behind_rabbitmqs_event_ttl_is_a_gap(rabbitmq_url):
    """Without the management API, being about event_queue_ttl behind is a gap,
    said to be unconfirmed, closed once caught up."""
    with _watching(rabbitmq_url, None) as (monitor, events, link):
        _fall_behind(monitor, events, link, 20_000, "x" * 1000)  # about 20 MB: most waits in the queue
        wait_until(lambda: monitor.state.gaps, what="a gap for falling behind event_queue_ttl")
        reason = monitor.state.gaps[0].reason
        assert "event_queue_ttl" in reason and "unconfirmed" in reason
        # The loss was real: RabbitMQ dropped what waited past the TTL.
        assert _late(monitor) < 20_000
        _catch_up(monitor, events)
        wait_until(lambda: monitor.state.gaps[0].end is not None, what="the gap closed once caught up")


@pytest.mark.rabbitmq
def test_events_rabbitmq_dropped_are_a_gap_with_the_count_its_management_api_confirms(
        rabbitmq_url, rabbitmq_api):
    with _watching(rabbitmq_url, rabbitmq_api) as (monitor, events, link):
        _fall_behind(monitor, events, link, 20_000, "x" * 1000)
        _catch_up(monitor, events)
        gaps = wait_until(lambda: monitor.state.gaps, timeout=40,
                          what="the management API to confirm the drops")
        assert len(gaps) == 1 and gaps[0].end is not None
        reason = gaps[0].reason
        assert "dropped by RabbitMQ" in reason and "event_queue_ttl 1 s" in reason, reason
        dropped = int(reason.split()[0])
        # What was published and never read, counted by the test and by the receiver.
        assert dropped == events.sent - monitor.receiver.messages_read
        assert dropped == 20_000 - _late(monitor) > 0
        assert monitor.expiry_false_alarms == 0


@pytest.mark.rabbitmq
def test_falling_behind_the_ttl_without_drops_is_no_gap(rabbitmq_url, rabbitmq_api):
    """A few small events, held past the TTL: RabbitMQ pushed them to our socket
    at once (no_ack), so none waited in the queue to expire. The lag alone
    said "lost"; the management API says nothing was dropped."""
    with _watching(rabbitmq_url, rabbitmq_api) as (monitor, events, link):
        _fall_behind(monitor, events, link, 200, "")
        _catch_up(monitor, events)
        wait_until(lambda: monitor.state.gaps or monitor.expiry_false_alarms, timeout=40,
                   what="the management API's answer")
        assert monitor.state.counters.max_lag > TTL  # it was behind by more than the TTL
        assert _late(monitor) == 200  # and lost nothing
        assert monitor.state.gaps == []
        assert monitor.expiry_false_alarms == 1


@pytest.mark.rabbitmq
def test_a_management_api_that_cannot_be_asked_leaves_the_gap_unconfirmed_and_masked(rabbitmq_url):
    """Nothing listens on the API's port: the stretch behind the TTL is a gap
    from the lag, as without the API, saying why it is unconfirmed."""
    with _watching(rabbitmq_url, "http://guest:s3cret@127.0.0.1:1") as (monitor, events, link):
        _fall_behind(monitor, events, link, 200, "")
        _catch_up(monitor, events)
        gaps = wait_until(lambda: monitor.state.gaps, what="the unconfirmed gap")
        reason = gaps[0].reason
        assert "unconfirmed" in reason and "127.0.0.1:1" in reason and "event_queue_ttl 1 s" in reason, reason
        assert "s3cret" not in reason and gaps[0].end is not None
