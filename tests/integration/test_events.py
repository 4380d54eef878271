"""Event ingestion against real brokers and real workers."""

from __future__ import annotations

import base64
import json
import time
import uuid

import redis
from celery import Celery

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from tests.cluster import delete_amqp_queue, start_worker, wait_for_ping
from tests.proxy import FreezableLink
from tests.waiting import wait_until


def producer(broker_url: str, backend_url: str | None = None) -> Celery:
    app = Celery("producer", broker=broker_url, backend=backend_url, set_as_current=False)
    app.conf.task_routes = {"reports.*": {"queue": "reports"}, "emails.*": {"queue": "emails"}}
    return app


def test_task_lifecycle_from_real_workers(demo_workers):
    settings = Settings(broker_url=demo_workers.broker_url, result_backend=demo_workers.result_backend)
    with Monitor.from_settings(settings, backfill=0) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        app = producer(demo_workers.broker_url, demo_workers.result_backend)
        result = app.send_task("tasks.add", args=(20, 22))
        assert result.get(timeout=30) == 42
        state = monitor.state
        wait_until(lambda: result.id in state.tasks and state.tasks[result.id].state == "SUCCESS",
                           what="the task's events to reach SUCCESS")
        task = state.tasks[result.id]
        assert task.name == "tasks.add" and task.args == "(20, 22)" and task.result == "42"
        assert task.worker in demo_workers.hostnames
        assert task.received and task.started and task.finished and task.runtime is not None
        # Heartbeats make both workers online without asking them.
        wait_until(lambda: all(h in state.workers and state.workers[h].last_heartbeat
                                       for h in demo_workers.hostnames),
                           what="a heartbeat from every demo worker")
        assert state.gaps == []


def _publish(client: redis.Redis, channel: str, body: object) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    client.publish(channel, json.dumps({
        "body": base64.b64encode(raw).decode(), "content-type": "application/json",
        "content-encoding": "utf-8", "headers": {},
        "properties": {"body_encoding": "base64", "delivery_info": {"routing_key": "task.multi"}},
    }))


def test_hostile_event_stream_is_stored_as_data(fresh_redis):
    url = fresh_redis.url(0)
    with Monitor.from_settings(Settings(broker_url=url)) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        client = redis.Redis(port=fresh_redis.port)
        now = time.time()
        hostile = "[bold red]X[/] \x1b]0;owned\x07 \x1b[2J done"
        _publish(client, "/0.celeryev/task.multi", [
            {"type": "task-received", "uuid": "h1", "name": "[link=http://x]n[/link]", "args": hostile,
             "kwargs": "{}", "hostname": "w@h\x1b[31m", "timestamp": now},
            {"type": "task-failed", "uuid": "h1", "exception": hostile, "traceback": "Traceback\n" + hostile,
             "hostname": "w@h", "timestamp": now + 0.1},
        ])
        # Invalid UTF-8 inside the JSON body, and junk that is not an event at all.
        _publish(client, "/0.celeryev/task.multi",
                 b'[{"type": "task-received", "uuid": "h2", "name": "n", "args": "\xff\xfe", "timestamp": 1.0}]')
        client.publish("/0.celeryev/task.multi", b"\x80\x04not json at all")
        wait_until(lambda: "h2" in monitor.state.tasks and monitor.state.counters.events_undecodable == 1,
                           what="the invalid-UTF-8 event applied and the junk counted")
        task = monitor.state.tasks["h1"]
        assert task.args == "[bold red]X[/]   done"
        assert task.name == "[link=http://x]n[/link]"
        assert task.worker == "w@h"
        assert task.traceback == "Traceback\n[bold red]X[/]   done"
        assert monitor.state.tasks["h2"].args == "\ufffd\ufffd"


def test_pubsub_connection_killed_is_a_gap_and_repaired(fresh_redis):
    """The server cuts taskwatch off; tasks finish meanwhile; the next round
    finds them in the result backend, marked as recovered."""
    broker, backend = fresh_redis.url(0), fresh_redis.url(1)
    worker = start_worker(broker, backend, f"gap-{uuid.uuid4().hex[:6]}@taskwatch-test", ["celery"], 1)
    try:
        wait_for_ping(broker, [worker.hostname], timeout=60)
        with Monitor.from_settings(Settings(broker_url=broker, result_backend=backend), backfill=0) as monitor:
            monitor.receiver.reconnect_delay = 3.0  # a wide window, so events are surely missed
            wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
            app = producer(broker, backend)
            before = app.send_task("tasks.add", args=(1, 1))
            before.get(timeout=30)
            wait_until(lambda: before.id in monitor.state.tasks
                                   and monitor.state.tasks[before.id].state == "SUCCESS",
                                   what="the first task's events to reach SUCCESS")

            client = redis.Redis(port=fresh_redis.port)
            killed = client.client_kill_filter(_type="pubsub")
            assert killed >= 1
            wait_until(lambda: monitor.state.open_gaps(), what="a gap opened by the killed connection")
            during = [app.send_task("tasks.add", args=(i, i)) for i in range(5)]
            for result in during:
                result.get(timeout=30)
            assert not any(r.id in monitor.state.tasks for r in during)  # we were deaf

            wait_until(lambda: monitor.events_connected and not monitor.state.open_gaps(),
                                   what="the receiver back and the gap closed")
            report = monitor.poll()
            assert report.repaired >= 5, report
            (gap,) = monitor.state.gaps
            assert gap.end is not None and gap.end > gap.start
            assert "lost" in gap.reason and gap.repaired
            for i, result in enumerate(during):
                task = monitor.state.tasks[result.id]
                assert (task.state, task.recovered, task.name) == ("SUCCESS", True, "tasks.add")
                assert task.result == str(2 * i)
            assert monitor.state.tasks[before.id].recovered is False
    finally:
        worker.stop()


def test_events_over_rabbitmq(rabbitmq_url, redis_server):
    queue = f"taskwatch-ev-{uuid.uuid4().hex[:8]}"
    worker = start_worker(rabbitmq_url, redis_server.url(4), f"{queue}@taskwatch-test", [queue], 1)
    try:
        wait_for_ping(rabbitmq_url, [worker.hostname], timeout=60)
        with Monitor.from_settings(Settings(broker_url=rabbitmq_url), backfill=0) as monitor:
            wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
            app = producer(rabbitmq_url, redis_server.url(4))
            result = app.send_task("tasks.add", args=(2, 3), queue=queue)
            assert result.get(timeout=30) == 5
            wait_until(lambda: result.id in monitor.state.tasks
                                   and monitor.state.tasks[result.id].state == "SUCCESS",
                                   what="the task's events to reach SUCCESS")
            task = monitor.state.tasks[result.id]
            assert task.worker == worker.hostname and task.result == "5"
    finally:
        worker.stop()
        delete_amqp_queue(rabbitmq_url, queue)


def test_holding_events_delays_them_and_loses_none(fresh_redis):
    """While the screen answers a key the receiver applies nothing; afterwards, everything."""
    url = fresh_redis.url(0)
    with Monitor.from_settings(Settings(broker_url=url)) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        client = redis.Redis(port=fresh_redis.port)
        now = time.time()
        _publish(client, "/0.celeryev/task.multi", [
            {"type": "task-received", "uuid": "before", "name": "n", "timestamp": now, "hostname": "w@h"}])
        wait_until(lambda: "before" in monitor.state.tasks, what="the event published before the hold")
        monitor.HOLD_MAX = 30.0  # long enough for a loaded machine; the cap is checked below
        monitor.hold_events(30.0)
        ids = [f"held-{i}" for i in range(300)]
        for i in range(0, 300, 30):
            _publish(client, "/0.celeryev/task.multi", [
                {"type": "task-received", "uuid": u, "name": "n", "timestamp": now, "hostname": "w@h"}
                for u in ids[i:i + 30]])
        # A negative check needs time to go wrong: were the hold ignored, the
        # receiver would apply these within a few milliseconds.
        time.sleep(0.1)
        assert not any(u in monitor.state.tasks for u in ids)
        monitor.release_events()
        wait_until(lambda: all(u in monitor.state.tasks for u in ids), what="all 300 held events applied")
        # A hold ends by itself even if nobody releases it, and is capped.
        del monitor.HOLD_MAX
        monitor.hold_events(60)
        asked = time.monotonic()
        assert monitor._hold_until <= asked + Monitor.HOLD_MAX  # 60 s asked, HOLD_MAX granted
        _publish(client, "/0.celeryev/task.multi", [
            {"type": "task-received", "uuid": "late", "name": "n", "timestamp": now, "hostname": "w@h"}])
        # Nobody releases it: the event still lands, long before the 60 s asked for.
        wait_until(lambda: "late" in monitor.state.tasks, timeout=30,
                   what="the event sent during an unreleased hold")
        assert monitor.state.gaps == []


def test_a_held_receiver_spools_what_redis_would_have_held(fresh_redis):
    """Events held back wait in the receiver's spool, read off the socket: Redis's
    buffer for us (which it cuts off at its limit) stays small, and the monitor
    says how much is waiting where."""
    url = fresh_redis.url(0)
    with Monitor.from_settings(Settings(broker_url=url)) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        counters = monitor.state.counters

        def drained() -> bool:
            # The receiver PINGs after IDLE_PING s without a byte: a reply read
            # into the spool a moment ago (a 20-byte pong) may still wait for the
            # decoder, as it once did on a busy machine.
            monitor.measure_backlog()
            return counters.backlog == 0 and counters.spooled == 0

        wait_until(drained, what="nothing at Redis or in the spool yet",
                   detail=lambda: f"spooled {counters.spooled}, at Redis {counters.backlog} bytes")
        assert counters.backlog_limit == 32 * 1024 * 1024  # Redis's default pubsub hard limit
        assert counters.spool_limit == monitor.receiver.spool.limit
        client = redis.Redis(port=fresh_redis.port)
        now = time.time()
        payload = "x" * 2000
        ids = [f"b-{i}" for i in range(6000)]
        pipe = client.pipeline(transaction=False)
        for i in range(0, len(ids), 20):
            _publish(pipe, "/0.celeryev/task.multi", [
                {"type": "task-received", "uuid": u, "name": "n", "args": payload, "timestamp": now,
                 "hostname": "w@h"} for u in ids[i:i + 20]])
        # About 16 MB published while nothing is applied.
        monitor.HOLD_MAX = 30.0
        monitor.hold_events(30.0)
        pipe.execute()

        def spooled() -> int:
            monitor.measure_backlog()
            return counters.spooled or 0

        wait_until(lambda: spooled() > 12 * 1024 * 1024, what="more than 12 MB in the spool",
                   detail=lambda: f"spooled {counters.spooled}, at Redis {counters.backlog} bytes")
        assert counters.backlog is not None and counters.backlog < 4 * 1024 * 1024
        monitor.release_events()
        wait_until(lambda: all(u in monitor.state.tasks for u in ids), what="all 6000 events applied")
        wait_until(drained, what="nothing left at Redis or in the spool",
                   detail=lambda: f"spooled {counters.spooled}, at Redis {counters.backlog} bytes")
        assert counters.spool_dropped == 0
        assert monitor.state.gaps == []


def test_a_burst_past_redis_limit_is_lag_not_loss(fresh_redis):
    """Single-event messages (one per pub/sub message, the costly shape) published
    at full speed while nothing is applied, more than Redis lets a subscriber
    leave unread: Redis never cuts the receiver off, every task arrives."""
    from bench.stream import messages

    url = fresh_redis.url(0)
    client = redis.Redis(port=fresh_redis.port)
    client.config_set("client-output-buffer-limit", "pubsub 4mb 0 0")  # a tight server
    try:
        stream = messages(5000, shape="single")  # 15,000 messages, about 10 MB
        with Monitor.from_settings(Settings(broker_url=url), backfill=0) as monitor:
            wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
            monitor.HOLD_MAX = 60.0
            monitor.hold_events(60.0)
            pipe = client.pipeline(transaction=False)
            for message in stream:
                pipe.publish(message.channel, message.data)
            pipe.execute()
            wait_until(lambda: monitor.receiver.spool.written >= sum(len(m.data) for m in stream),
                       what="the burst read into the spool")
            monitor.release_events()
            state = monitor.state
            wait_until(lambda: state.counters.events_received == len(stream), what="every event applied",
                       detail=lambda: f"{state.counters.events_received} of {len(stream)}, gaps {state.gaps}")
            assert state.counters.tasks_seen == 5000 and state.gaps == []
            assert monitor.receiver.status.reconnects == 0
    finally:
        client.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


def test_a_full_spool_is_a_gap_and_reading_resumes(fresh_redis):
    """Past the spool's limit the bytes are dropped and counted, never silently:
    the stretch is a gap, closed once the decoder has caught up, and the events
    after it are read again (the decoder finds the next message start)."""
    from taskwatch.sources.spool import Spool

    url = fresh_redis.url(0)
    monitor = Monitor.from_settings(Settings(broker_url=url), backfill=0)
    monitor.receiver.spool = Spool(limit=1024 * 1024, block=64 * 1024)
    with monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        client = redis.Redis(port=fresh_redis.port)
        now = time.time()
        monitor.HOLD_MAX = 60.0
        monitor.hold_events(60.0)
        pipe = client.pipeline(transaction=False)
        ids = [f"o-{i}" for i in range(4000)]
        for u in ids:  # about 4 MB: four times the spool
            _publish(pipe, "/0.celeryev/task.received",
                     {"type": "task-received", "uuid": u, "name": "n", "args": "y" * 600, "timestamp": now,
                      "hostname": "w@h"})
        pipe.execute()
        spool = monitor.receiver.spool
        wait_until(lambda: spool.dropped > 2 * 1024 * 1024, what="the overflow dropped and counted")
        wait_until(lambda: monitor.state.open_gaps(), what="a gap for the overflow")
        assert "spool full" in monitor.state.open_gaps()[0].reason
        monitor.release_events()
        wait_until(lambda: not monitor.state.open_gaps(), what="the gap closed once the spool drained")
        _publish(client, "/0.celeryev/task.received",
                 {"type": "task-received", "uuid": "after", "name": "n", "timestamp": time.time(),
                  "hostname": "w@h"})
        wait_until(lambda: "after" in monitor.state.tasks, what="an event after the overflow")
        seen = sum(1 for u in ids if u in monitor.state.tasks)
        assert 0 < seen < len(ids)
        assert monitor.state.counters.events_undecodable <= 1  # at most the message cut at the drop
        monitor.measure_backlog()
        assert monitor.state.counters.spool_dropped == spool.dropped > 0
        assert monitor.receiver.status.reconnects == 0


def test_a_silently_dead_event_connection_is_a_gap(fresh_redis):
    """A link that stops carrying bytes without closing is noticed by an idle ping."""
    with FreezableLink(("127.0.0.1", fresh_redis.port)) as link, \
            Monitor.from_settings(Settings(broker_url=f"redis://127.0.0.1:{link.port}/0")) as monitor:
        monitor.receiver.IDLE_PING = 1.0
        monitor.receiver.PING_WAIT = 1.0
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        link.freeze()  # half-open: nothing passes, nothing closes
        wait_until(lambda: monitor.state.gaps, what="the idle ping to open a gap")
        assert "ping" in monitor.state.gaps[0].reason


def test_events_over_a_unix_socket(tmp_path):
    """kombu's redis+socket:// and socket:// brokers."""
    import subprocess

    from taskwatch.demo.redis_server import find_redis_server

    path = tmp_path / "redis.sock"
    server = subprocess.Popen([find_redis_server(), "--port", "0", "--unixsocket", str(path), "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(path.exists, what="redis-server's unix socket")
        client = redis.Redis(unix_socket_path=str(path))
        wait_until(lambda: client.ping(), what="redis-server to answer on its unix socket")
        for scheme in ("redis+socket", "socket"):
            with Monitor.from_settings(Settings(broker_url=f"{scheme}://{path}")) as monitor:
                assert monitor.events_error is None
                wait_until(lambda: monitor.events_connected, what=f"the event receiver to connect over {scheme}://")
                _publish(client, "/0.celeryev/task.multi", [
                    {"type": "task-received", "uuid": scheme, "name": "n", "timestamp": time.time(),
                     "hostname": "w@h"}])
                wait_until(lambda uuid=scheme: uuid in monitor.state.tasks, what=f"the event sent over {scheme}://")
    finally:
        server.terminate()
        server.wait(10)


def test_a_transport_without_events_says_so():
    monitor = Monitor.from_settings(Settings(broker_url="sqs://"), backfill=0)
    assert monitor.receiver is None and "sqs" in monitor.events_error


def test_events_fail_over_to_the_next_host(fresh_redis):
    """kombu's ``redis://a;redis://b``: a dead first host does not mean no events."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{dead}/0;{fresh_redis.url(0)}"
    with Monitor.from_settings(Settings(broker_url=url)) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to fail over and connect")
        client = redis.Redis(port=fresh_redis.port)
        _publish(client, "/0.celeryev/task.multi", [
            {"type": "task-received", "uuid": "via-b", "name": "n", "timestamp": time.time(), "hostname": "w@h"}])
        wait_until(lambda: "via-b" in monitor.state.tasks, what="the event published on the second host")
        monitor.measure_backlog()
        assert monitor.state.counters.backlog == 0  # measured on the server it listens to


def test_a_non_json_event_over_rabbitmq_is_counted_not_a_gap(rabbitmq_url):
    """A cluster with a pickle event_serializer: those bodies are counted, never
    unpickled, and the connection stays up for the JSON ones."""
    from kombu import Connection, Exchange, Producer

    with Monitor.from_settings(Settings(broker_url=rabbitmq_url), backfill=0) as monitor, \
            Connection(rabbitmq_url, connect_timeout=5) as conn:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        producer = Producer(conn.channel(), exchange=Exchange("celeryev", type="topic"))
        event = {"type": "task-received", "name": "n", "hostname": "w@h", "timestamp": time.time()}
        producer.publish({**event, "uuid": "pickled"}, routing_key="task.received", serializer="pickle")
        producer.publish({**event, "uuid": "json"}, routing_key="task.received", serializer="json")
        wait_until(lambda: "json" in monitor.state.tasks, what="the JSON event after the pickled one")
        assert "pickled" not in monitor.state.tasks
        assert monitor.state.counters.events_undecodable == 1
        assert monitor.state.gaps == [] and monitor.receiver.status.reconnects == 0


def test_amqp_event_queue_follows_the_apps_settings():
    """event_queue_ttl/expires from the -A app, as Celery's own receivers use them."""
    app = Celery("proj", set_as_current=False)
    app.conf.event_queue_ttl, app.conf.event_queue_expires = 30, 120
    monitor = Monitor.from_settings(Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//"), app, backfill=0)
    assert (monitor.receiver.queue_ttl, monitor.receiver.queue_expires) == (30.0, 120.0)
    plain = Monitor.from_settings(Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//"), backfill=0)
    assert (plain.receiver.queue_ttl, plain.receiver.queue_expires) == (5.0, 60.0)  # Celery's defaults


def test_a_reconnect_forgets_the_lag_measured_before_it(fresh_redis):
    with Monitor.from_settings(Settings(broker_url=fresh_redis.url(0))) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        monitor.state.counters.lag = 9.0  # as left by a burst cut off mid-way
        fresh_redis.kill()
        fresh_redis.restart()
        wait_until(lambda: monitor.state.gaps and monitor.state.gaps[0].end is not None,
                           what="the restart's gap to open and close")
        assert monitor.state.counters.lag == 0.0


def test_drain_applies_what_the_spool_holds_before_a_snapshot_is_made(fresh_redis):
    """snapshot --listen: events read while listening but still spooled are applied first."""
    with Monitor.from_settings(Settings(broker_url=fresh_redis.url(0))) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        client = redis.Redis(port=fresh_redis.port)
        monitor.HOLD_MAX = 60.0
        monitor.hold_events(60.0)  # the decoder waits; the reader keeps spooling
        now = time.time()
        for i in range(2_000):
            _publish(client, "/0.celeryev/task.multi",
                     [{"type": "task-received", "uuid": f"spooled-{i}", "name": "n", "hostname": "w@h",
                       "timestamp": now, "clock": i}])
        wait_until(lambda: monitor.receiver.unapplied() > 0, what="events waiting in the spool")
        assert monitor.drain_events(0.2) > 0  # held: nothing can be applied yet
        monitor.release_events()
        assert monitor.drain_events(30.0) == 0
        assert sum(1 for t in monitor.state.tasks if t.startswith("spooled-")) == 2_000
