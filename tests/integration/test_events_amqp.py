"""The AMQP event receiver reads first and decodes behind, on the real RabbitMQ:
what the decoder cannot keep up with waits in the receiver's spool of bodies
(lag, not loss at RabbitMQ's message TTL), bounded, never silently."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from kombu import Connection

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.sources.spool import BodySpool
from tests.cluster import AmqpEvents
from tests.waiting import wait_until

TTL = 1.0


@contextmanager
def _held_monitor(rabbitmq_url: str, spool: BodySpool | None = None,
                  heartbeat: float | None = None) -> Iterator[tuple[Monitor, AmqpEvents]]:
    """A monitor on RabbitMQ (event_queue_ttl 1 s, no management API), caught
    up once, then held as while the screen answers keys: nothing is applied."""
    app = Celery("proj", set_as_current=False)
    app.conf.event_queue_ttl = TTL
    monitor = Monitor.from_settings(Settings(broker_url=rabbitmq_url), app, backfill=0)
    if spool is not None:
        monitor.receiver.spool = spool
    if heartbeat is not None:
        monitor.receiver.HEARTBEAT = heartbeat
    with monitor, Connection(rabbitmq_url, connect_timeout=5) as conn:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        publisher = AmqpEvents(conn)
        publisher.send("first")  # caught up: the baseline for this host's clock
        wait_until(lambda: "first" in monitor.state.tasks, what="the first event")
        monitor.HOLD_MAX = 60.0
        monitor.hold_events(60.0)
        yield monitor, publisher


def test_a_burst_held_past_the_ttl_is_lag_not_loss(rabbitmq_url):
    """While nothing is applied for longer than RabbitMQ's message TTL, the
    receiver keeps reading the queue empty into its spool: every event is
    applied afterwards, none expired, no gap (without the management API a
    lag past the TTL used to be an unconfirmed gap, and a real loss)."""
    with _held_monitor(rabbitmq_url) as (monitor, publisher):
        ids = [f"held-{i}" for i in range(3000)]
        for u in ids:
            publisher.send(u, "x" * 200)
        sent_at = time.monotonic()
        receiver, counters = monitor.receiver, monitor.state.counters
        # Read while held, from the connection's own thread.
        wait_until(lambda: receiver.messages_read == publisher.sent, what="the burst read while held",
                   detail=lambda: f"{receiver.messages_read} of {publisher.sent}")
        assert not any(u in monitor.state.tasks for u in ids)
        assert receiver.unapplied() >= 3000 * 200
        monitor.measure_backlog()  # what the header shows: "behind N s, X/256 MB spooled"
        assert counters.spooled == receiver.spool.pending >= 3000 * 200
        assert counters.spool_limit == 256 * 1024 * 1024 and counters.spool_dropped == 0
        assert counters.backlog is None  # RabbitMQ's side is not measured
        # The subject: the events wait, in our spool, longer than RabbitMQ would keep them.
        time.sleep(max(0.0, sent_at + TTL + 0.5 - time.monotonic()))
        monitor.release_events()
        wait_until(lambda: all(u in monitor.state.tasks for u in ids), what="every held event applied")
        assert counters.max_lag > TTL  # it was that far behind, and lost nothing
        assert monitor.drain_events(5.0) == 0
        assert monitor.state.gaps == []
        assert receiver.dropped_messages == 0 and receiver.status.reconnects == 0
        # py-amqp took what the socket held in each recv() (its private
        # _quick_recv replaced): if a py-amqp release changes that, say so here.
        assert receiver.reading_ahead


def test_a_full_spool_drops_counts_and_is_a_gap_closed_once_it_drains(rabbitmq_url):
    """Past the spool's limit whole messages are dropped and counted, never
    silently: the stretch is a gap, closed once the decoder has made room, and
    what comes after it is applied again."""
    spool = BodySpool(limit=1024 * 1024)
    with _held_monitor(rabbitmq_url, spool) as (monitor, publisher):
        ids = [f"o-{i}" for i in range(4000)]
        for u in ids:  # about 4 MB of bodies: four times the spool
            publisher.send(u, "y" * 1000)
        receiver = monitor.receiver
        wait_until(lambda: receiver.messages_read == publisher.sent, what="the burst read")
        assert spool.dropped > 2 * 1024 * 1024 and spool.dropped_messages > 2000
        wait_until(lambda: monitor.state.open_gaps(), what="a gap for the overflow")
        assert "spool full" in monitor.state.open_gaps()[0].reason
        monitor.measure_backlog()
        assert monitor.state.counters.spool_dropped == spool.dropped
        assert monitor.state.counters.spooled == spool.pending <= spool.limit + 1100
        monitor.release_events()
        wait_until(lambda: not monitor.state.open_gaps(), what="the gap closed once the spool drained")
        publisher.send("after")
        wait_until(lambda: "after" in monitor.state.tasks, what="an event after the overflow")
        assert monitor.drain_events(5.0) == 0
        seen = sum(1 for u in ids if u in monitor.state.tasks)
        # Every message read was either applied or counted as dropped.
        assert seen + spool.dropped_messages == len(ids) and seen > 0
        assert spool.overflows == 1 and len(monitor.state.gaps) == 1
        assert monitor.state.counters.events_undecodable == 0
        assert receiver.status.reconnects == 0


def test_heartbeats_go_on_while_the_decoder_is_held(rabbitmq_url):
    """The reading thread checks (and sends) the AMQP heartbeats whatever the
    decoder does: held for four heartbeat intervals, the connection stays up
    (RabbitMQ closes one silent for two)."""
    beat = 1.0
    with _held_monitor(rabbitmq_url, heartbeat=beat) as (monitor, publisher):
        publisher.send("held")
        receiver = monitor.receiver
        wait_until(lambda: receiver.messages_read == publisher.sent, what="the event read while held")
        time.sleep(4 * beat)  # the subject: held longer than RabbitMQ's heartbeat timeout
        assert "held" not in monitor.state.tasks
        assert receiver.status.connected and receiver.status.reconnects == 0
        assert monitor.state.gaps == []
        monitor.release_events()
        wait_until(lambda: "held" in monitor.state.tasks, what="the held event applied")
        assert receiver.status.reconnects == 0 and monitor.state.gaps == []


def test_drain_applies_what_the_spool_holds_before_a_snapshot_is_made(rabbitmq_url):
    """snapshot --listen: events read while listening but still in the spool are applied first."""
    with _held_monitor(rabbitmq_url) as (monitor, publisher):
        for i in range(2000):
            publisher.send(f"spooled-{i}")
        wait_until(lambda: monitor.receiver.messages_read == publisher.sent, what="the events read")
        assert monitor.receiver.unapplied() > 0
        assert monitor.drain_events(0.2) > 0  # held: nothing can be applied yet
        monitor.release_events()
        assert monitor.drain_events(30.0) == 0
        assert sum(1 for t in monitor.state.tasks if t.startswith("spooled-")) == 2000


def test_snapshot_listening_to_rabbitmq_applies_a_burst_before_printing(rabbitmq_api, tmp_path):
    """``snapshot --json --listen`` on RabbitMQ (a vhost of its own) while a burst of
    single-event messages comes at a publisher's full speed: every task is in the
    document, no gap."""
    from bench.amqp_receiver import PrivateVhost, publish
    from bench.stream import bodies
    from tests.cluster import child_env

    tasks = 5000
    stream = [(key, body, n) for key, _host, body, n in bodies(tasks, shape="single")]
    listen = 20.0
    with PrivateVhost() as vhost:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "taskwatch", "snapshot", "--json", "--listen", f"{listen:g}", "-b", vhost.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=tmp_path)
        try:
            wait_until(lambda: vhost.consumers("celeryev.taskwatch."), what="taskwatch listening to the events")
            publish(vhost.name, stream)
            assert time.monotonic() - started < listen, "the burst outlasted --listen: the machine is too slow"
            out, err = process.communicate(timeout=listen + 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, (out + err).decode()[-2000:]
    stats = json.loads(out)["stats"]
    assert stats["tasks_seen"] == tasks, stats
    assert not stats["gaps"], stats["gaps"]
