"""Queue depths, unacked counts, discovery and peeking against real brokers.

Redis tests use private servers (`fresh_redis`, `redis_server`) and messages
published by real Celery apps; the ETA test runs a real worker. RabbitMQ
tests use the machine's broker (`rabbitmq_url`) and, when its management
plugin answers on 15672, the HTTP API.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Connection, Exchange, Queue

from taskwatch.demo.redis_server import RedisServer, find_redis_server, free_port
from taskwatch.sources.broker import BadURL
from taskwatch.sources.queues import (
    AmqpQueueProbe,
    ManagementQueueProbe,
    QueueProbeError,
    RedisQueueProbe,
    is_internal_queue,
    queue_probe,
)
from taskwatch.sources.queues.routing import unacked_route
from tests.cluster import service_reachable, start_worker, wait_for_ping
from tests.waiting import wait_until

RABBITMQ_API = "http://guest:guest@127.0.0.1:15672"


def producer(url: str, **conf: object) -> Celery:
    app = Celery("taskwatch-test-producer", broker=url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=False,
        accept_content=["json", "pickle"],
        **conf,
    )
    return app


def raw_client(server: RedisServer, db: int = 0) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, db=db, socket_timeout=2)


# -- depths ------------------------------------------------------------------


def test_plain_and_priority_messages_are_summed_and_split(fresh_redis):
    app = producer(fresh_redis.url())
    for i in range(5):
        app.send_task("x", args=[i], queue="work")
    for i in range(3):
        app.send_task("x", args=[i], queue="work", priority=9)
    app.send_task("x", queue="other")

    probe = queue_probe(fresh_redis.url())
    try:
        work, other, missing = probe.depths(["work", "other", "never-used"])
    finally:
        probe.close()

    assert (work.name, work.messages, work.by_priority) == ("work", 8, {"0": 5, "9": 3})
    assert (work.unacked, work.consumers, work.source, work.error) == (0, None, "redis", None)
    assert (other.messages, other.by_priority) == (1, {"0": 1})
    # Redis cannot tell an empty queue from one that never existed.
    assert (missing.messages, missing.by_priority, missing.error) == (0, {}, None)


def test_transport_options_prefix_sep_and_steps_are_honoured(fresh_redis):
    options = {"global_keyprefix": "shop:", "sep": ":", "priority_steps": list(range(10))}
    app = producer(fresh_redis.url(), broker_transport_options=options)
    app.send_task("x", queue="work")
    app.send_task("x", queue="work")
    app.send_task("x", queue="work", priority=5)
    assert raw_client(fresh_redis).llen("shop:work:5") == 1  # kombu's own layout

    probe = queue_probe(fresh_redis.url(), transport_options=options)
    plain = queue_probe(fresh_redis.url())
    try:
        (depth,) = probe.depths(["work"])
        assert (depth.messages, depth.by_priority) == (3, {"0": 2, "5": 1})
        assert probe.discover() == {"work"}
        assert [m.priority for m in probe.peek("work")] == [0, 0, 5]
        # Without the prefix the same broker looks empty.
        assert plain.depths(["work"])[0].messages == 0
        assert plain.discover() == set()
    finally:
        probe.close()
        plain.close()


def test_depths_is_one_round_trip_per_call_for_many_queues(fresh_redis):
    app = producer(fresh_redis.url())
    names = [f"q{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        for _ in range(i):
            app.send_task("x", queue=name)
    client = raw_client(fresh_redis)
    probe = RedisQueueProbe(fresh_redis.url())
    try:
        probe.depths(names)  # connect
        before = client.info("stats")["total_commands_processed"]
        rows = probe.depths(names)
        after = client.info("stats")["total_commands_processed"]
    finally:
        probe.close()
    assert [r.messages for r in rows] == list(range(20))
    # 4 LLENs per queue + HLEN, nothing else (the INFO call counts itself once).
    assert after - before == 20 * 4 + 1 + 1


# -- unacked -----------------------------------------------------------------


def test_eta_tasks_taken_by_a_worker_are_unacked_on_their_queue_not_lost(fresh_redis):
    url = fresh_redis.url(0)
    worker = start_worker(
        url,
        fresh_redis.url(1),
        f"eta-{uuid.uuid4().hex[:6]}@taskwatch-test",
        ["tw-eta", "tw-idle"],
        1,
    )
    probe = RedisQueueProbe(url)
    try:
        wait_for_ping(url, [worker.hostname], timeout=60)
        app = producer(url)
        for n in range(3):
            app.send_task(
                "emails.send_email",
                args=[f"user{n}@example.com", "hi"],
                queue="tw-eta",
                countdown=600,
            )


        def held() -> list | None:
            rows = probe.depths(["tw-eta", "tw-idle"])
            return rows if rows[0].unacked == 3 else None

        eta, idle = wait_until(held, what="the worker to hold the 3 ETA tasks unacked",
                               detail=worker.log_tail)
        assert (eta.messages, eta.unacked, eta.unacked_partial) == (0, 3, False), (
            f"{eta}\n{worker.log_tail()}"
        )
        assert (idle.messages, idle.unacked) == (0, 0)
    finally:
        worker.stop()  # warm shutdown: kombu puts unacked messages back in their list
    eta, idle = probe.depths(["tw-eta", "tw-idle"])
    probe.close()
    assert (eta.messages, eta.unacked) == (3, 0)


def _unacked_entry(message: dict, exchange: str, routing_key: str) -> str:
    return json.dumps([message, exchange, routing_key])


def test_unacked_entries_follow_kombus_restore_routing(fresh_redis):
    url = fresh_redis.url()
    app = producer(url)
    app.send_task("x", args=["template"], queue="tw-template")
    client = raw_client(fresh_redis)
    template = json.loads(client.lindex("tw-template", 0))
    # Real bindings: a direct exchange with another routing key, and a topic exchange.
    with Connection(url) as conn:
        Queue(
            "tw-direct",
            Exchange("billing", type="direct"),
            routing_key="invoice",
            channel=conn.default_channel,
        ).declare()
        Queue(
            "tw-orders",
            Exchange("events", type="topic"),
            routing_key="orders.#",
            channel=conn.default_channel,
        ).declare()
    entries = {
        "a1": _unacked_entry(template, "", "tw-plain"),  # default exchange
        "a2": _unacked_entry(template, "", "tw-plain"),
        "b1": _unacked_entry(template, "billing", "invoice"),  # direct binding
        "c1": _unacked_entry(template, "events", "orders.eu.new"),  # topic binding
        "c2": _unacked_entry(template, "events", "orders.x"),
        "c3": _unacked_entry(template, "events", "orders"),  # kombu: 'orders.#' needs the dot
        "d1": _unacked_entry(template, "events", "refunds.eu"),  # matches nothing
        "e1": _unacked_entry(template, "tw-named", "tw-named"),  # exchange == rk == queue
        "f1": "not json at all",
        "f2": json.dumps({"unexpected": "shape"}),
    }
    client.hset("unacked", mapping=entries)

    probe = RedisQueueProbe(url)
    try:
        rows = {
            r.name: r
            for r in probe.depths(
                ["tw-plain", "tw-direct", "tw-orders", "tw-named", "invoice", "tw-template"]
            )
        }
    finally:
        probe.close()
    assert {name: row.unacked for name, row in rows.items()} == {
        "tw-plain": 2,
        "tw-direct": 1,
        "tw-orders": 2,
        "tw-named": 1,
        "invoice": 0,
        "tw-template": 0,
    }
    assert client.hlen("unacked") == len(entries)  # read-only


def test_a_big_unacked_hash_is_read_in_bounded_batches(fresh_redis):
    url = fresh_redis.url()
    producer(url).send_task("emails.send_email", args=["a@example.com", "s" * 200], queue="tpl")
    client = raw_client(fresh_redis)
    template = json.loads(client.lindex("tpl", 0))
    with client.pipeline(transaction=False) as pipe:
        for i in range(5000):
            queue = f"q{i % 20:02d}"
            pipe.hset("unacked", uuid.uuid4().hex, _unacked_entry(template, "", queue))
        pipe.execute()
    names = [f"q{i:02d}" for i in range(20)]

    full = RedisQueueProbe(url)
    capped = RedisQueueProbe(url, max_unacked=1000)
    try:
        rows = full.depths(names)
        capped_rows = capped.depths(names)
    finally:
        full.close()
        capped.close()
    assert [r.unacked for r in rows] == [250] * 20
    assert not any(r.unacked_partial for r in rows)
    # Capped: a lower bound, said so.
    assert all(r.unacked_partial for r in capped_rows)
    assert 1000 <= sum(r.unacked or 0 for r in capped_rows) < 5000


def test_unacked_routes_are_read_off_the_end_exactly_like_a_full_parse():
    """The fast path for ``[message, exchange, routing_key]`` agrees with json.loads."""
    rng = random.Random(20261127)
    alphabet = '"\\,}]{[ ab\u00e9'
    for _ in range(20_000):
        exchange = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        routing_key = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        message = {"body": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))}
        entry = json.dumps([message, exchange, routing_key], ensure_ascii=rng.random() < 0.5)
        assert unacked_route(entry.encode()) == (exchange, routing_key), entry
    message = {"properties": {"delivery_info": {"exchange": "ex", "routing_key": "rk"}}}
    assert unacked_route(json.dumps(message).encode()) == ("ex", "rk")
    assert unacked_route(b"\xff garbage") == ("", "")


@pytest.mark.parametrize(
    ("name", "exchange", "internal"),
    [
        ("celery", "celery", False),
        ("emails", "", False),
        ("alpha@web-1.celery.pidbox", "celery.pidbox", True),
        ("5f0e.reply.celery.pidbox", "reply.celery.pidbox", True),
        ("anything", "reply.celery.pidbox", True),
        ("celeryev.6f1c1a0e-1c2b-4a7e-9d0a-0123456789ab", "celeryev", True),
        ("bcast.6f1c1a0e-1c2b-4a7e-9d0a-0123456789ab", "", True),
        ("bcast.jobs", "", False),
        ("celery_delayed_27", "", True),
        ("shop_celery_delayed_3", "", True),
        ("", "", True),
    ],
)
def test_celerys_plumbing_is_recognised(name, exchange, internal):
    assert is_internal_queue(name, exchange) is internal


# -- discovery ---------------------------------------------------------------


def test_discovery_lists_task_queues_from_bindings_not_celerys_plumbing(fresh_redis):
    url = fresh_redis.url()
    app = producer(url)
    app.send_task("x", queue="work")
    app.send_task("x", queue="reports")
    with Connection(url) as conn:
        channel = conn.default_channel
        Queue(
            "declared-only", Exchange("declared-only"), "declared-only", channel=channel
        ).declare()
        # What workers, `celery inspect` and event receivers leave in the bindings.
        node = app.control.mailbox.Node("alpha@host", channel=channel)
        node.listen()
        app.control.ping(timeout=0.05, connection=conn)
        app.events.Receiver(conn, handlers={}).queue(channel).declare()
        # (kombu drops fanout bindings of auto-delete queues when the channel
        # closes: look while they are alive, as they are under live workers.)
        keys = {k.decode() for k in raw_client(fresh_redis).keys("_kombu.binding*")}
        assert {"_kombu.binding.celery.pidbox", "_kombu.binding.celeryev"} <= keys
        probe = RedisQueueProbe(url)
        try:
            assert probe.discover() == {"work", "reports", "declared-only"}
        finally:
            probe.close()


def test_discovery_on_the_demo_workers_broker(demo_workers):
    probe = RedisQueueProbe(demo_workers.broker_url)
    try:
        found = probe.discover()
    finally:
        probe.close()
    assert {"celery", "emails", "monitoring", "reports"} <= found
    assert not [q for q in found if q.endswith(".pidbox") or q.startswith("celeryev.")]


# -- peek --------------------------------------------------------------------


def test_peek_shows_the_next_messages_in_consumption_order_without_taking_them(fresh_redis):
    url = fresh_redis.url()
    app = producer(url, broker_transport_options={"queue_order_strategy": "priority"})
    sent = []
    for n, priority in enumerate([9, 0, 3, 0, 9, 0, 6]):
        args = [n, {"nested": ["é", 2**70, 1.5, None]}, "x" * 3]
        result = app.send_task(
            "tasks.add", args=args, kwargs={"n": n}, queue="work", priority=priority, countdown=None
        )
        sent.append((result.id, priority, args))
    client = raw_client(fresh_redis)
    lengths = [client.llen(k) for k in ("work", "work\x06\x163", "work\x06\x166", "work\x06\x169")]

    probe = RedisQueueProbe(url)
    try:
        peeked = probe.peek("work", n=10)
        first_two = probe.peek("work", n=2)
    finally:
        probe.close()

    # Priority 0 (plain list) first, oldest first; then 3, 6, 9.
    expected = sorted(sent, key=lambda s: s[1])  # sorted() is stable: FIFO within a priority
    assert [m.id for m in peeked] == [s[0] for s in expected]
    assert [m.id for m in first_two] == [s[0] for s in expected[:2]]
    for message, (_, priority, args) in zip(peeked, expected, strict=True):
        assert message.exact_args is True
        assert message.call.args == tuple(args)
        assert message.task == "tasks.add" and message.queue == "work"
        assert message.priority == priority and message.error is None
        assert message.content_type == "application/json" and message.body_size
    assert [
        client.llen(k) for k in ("work", "work\x06\x163", "work\x06\x166", "work\x06\x169")
    ] == lengths

    # kombu's own consumer takes them in exactly that order.
    consumed: list[str] = []
    with Connection(url) as conn:

        def on_message(body: object, message) -> None:  # noqa: ANN001 - kombu's callback
            consumed.append(message.headers["id"])
            message.ack()

        with conn.Consumer(Queue("work"), callbacks=[on_message], accept=["json"]):
            while len(consumed) < len(sent):
                conn.drain_events(timeout=2)
    assert consumed == [m.id for m in peeked]


def test_pickle_message_peeks_as_headers_only_and_is_never_unpickled(fresh_redis, tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):  # runs Path.touch(marker) if anyone unpickles it
            return (Path.touch, (marker,))

    app = producer(fresh_redis.url())
    result = app.send_task(
        "tasks.trap", args=[Trap()], queue="work", serializer="pickle", argsrepr="[<Trap>]"
    )
    probe = RedisQueueProbe(fresh_redis.url())
    try:
        (message,) = probe.peek("work")
    finally:
        probe.close()
    assert not marker.exists()
    assert message.id == result.id and message.task == "tasks.trap"
    assert message.content_type == "application/x-python-serialize"
    assert (message.args, message.exact_args, message.error) == ("[<Trap>]", False, None)
    assert message.body_size and message.body_size > 0


def test_hostile_argsrepr_comes_back_as_literal_text(fresh_redis):
    url = fresh_redis.url()
    app = producer(url)
    hostile = "[bold red]X[/] \x1b]0;title\x07\x1b[31mred\x1b[0m\nnext line \udcff"
    app.send_task(
        "tasks.x",
        args=["[link=file:///etc]y[/link]", "\x1b[2J"],
        queue="work",
        argsrepr=hostile,
        kwargsrepr="{'k': '\x9b31m'}",
        serializer="pickle",
    )
    app.send_task("tasks.x", args=["[bold]z[/]", "\x1b]0;t\x07"], queue="work", argsrepr=hostile)
    # A producer that writes invalid UTF-8 into the envelope.
    envelope = json.loads(raw_client(fresh_redis).lindex("work", 0))
    envelope["headers"]["argsrepr"] = "PLACEHOLDER"
    raw = json.dumps(envelope).encode().replace(b"PLACEHOLDER", b"bad \xff\xfe utf-8 [b]x[/b]")
    raw_client(fresh_redis).lpush("work", raw)

    probe = RedisQueueProbe(url)
    try:
        pickled, exact, broken = probe.peek("work")
    finally:
        probe.close()
    assert pickled.args == "[bold red]X[/] red next line \ufffd"
    assert pickled.kwargs == "{'k': ''}"
    assert exact.argsrepr == pickled.args
    assert exact.args == "('[bold]z[/]', '\\x1b]0;t\\x07')"  # a repr: escapes are text
    assert broken.argsrepr == "bad \ufffd\ufffd utf-8 [b]x[/b]" and broken.exact_args
    for message in (pickled, exact, broken):
        for text in (message.args, message.kwargs, message.argsrepr, message.task, message.id):
            assert text is not None
            assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text), text


# -- failures ----------------------------------------------------------------


def test_unreachable_redis_fails_fast_with_a_masked_one_line_error(fresh_redis):
    url = f"redis://:s3cret@{fresh_redis.host}:{fresh_redis.port}/0"
    fresh_redis.kill()
    probe = RedisQueueProbe(url, timeout=2.0)
    try:
        started = time.monotonic()
        (row,) = probe.depths(["celery"])
        elapsed = time.monotonic() - started
        with pytest.raises(QueueProbeError) as discover_error:
            probe.discover()
        with pytest.raises(QueueProbeError) as peek_error:
            probe.peek("celery")
    finally:
        probe.close()
    # Refused is answered at once; without fail-fast options redis-py would
    # retry with backoff for about 4 s, twice the probe's timeout.
    assert elapsed < probe.timeout
    assert row.messages is None and row.unacked is None
    for text in (row.error, str(discover_error.value), str(peek_error.value)):
        assert text and "s3cret" not in text and "****" in text and "\n" not in text
        assert "refused" in text.lower()


def test_a_silent_server_times_out_instead_of_hanging():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections in the kernel, never answers
    port = listener.getsockname()[1]
    probe = RedisQueueProbe(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        (row,) = probe.depths(["celery"])  # a hang would end in pytest-timeout
    finally:
        probe.close()
        listener.close()
    assert row.error and "timeout" in row.error.lower()  # the probe's own timeout ended it


def test_a_restarted_server_is_reconnected_without_an_error(fresh_redis):
    probe = RedisQueueProbe(fresh_redis.url())
    try:
        assert probe.depths(["celery"])[0].error is None
        fresh_redis.restart()
        producer(fresh_redis.url()).send_task("x", queue="celery")
        (row,) = probe.depths(["celery"])
    finally:
        probe.close()
    assert (row.error, row.messages) == (None, 1)


def test_factory_picks_the_probe_for_the_url():
    assert isinstance(queue_probe("redis://localhost:6379/3"), RedisQueueProbe)
    assert isinstance(
        queue_probe("rediss://:pw@localhost:6380/0?ssl_cert_reqs=none"), RedisQueueProbe
    )
    amqp = queue_probe("amqp://guest:guest@localhost:5672//")
    assert isinstance(amqp, AmqpQueueProbe)
    api = queue_probe("amqp://guest:guest@localhost:5672/shop", rabbitmq_api=RABBITMQ_API)
    assert isinstance(api, ManagementQueueProbe) and api.vhost == "shop"
    api.close()
    with pytest.raises(BadURL, match="master_name"):
        queue_probe("sentinel://localhost:26379")
    with pytest.raises(BadURL, match="sqs://"):
        queue_probe("sqs://key:secret@")
    with pytest.raises(BadURL) as bad_db:
        queue_probe("redis://:hunter2@localhost:6379/notanumber")
    assert "hunter2" not in str(bad_db.value)


@pytest.fixture
def sentinel(fresh_redis: RedisServer, tmp_path: Path) -> Iterator[int]:
    """A real redis-sentinel watching `fresh_redis` as master ``tw-master``; yields its port."""
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor tw-master {fresh_redis.host} {fresh_redis.port} 1\n"
    )
    log = open(tmp_path / "sentinel.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [find_redis_server(), str(config), "--sentinel"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or service_reachable("127.0.0.1", port, timeout=0.2),
            what=f"redis-sentinel to listen on {port}",
            detail=(tmp_path / "sentinel.log").read_text,
        )
        if process.poll() is not None:
            pytest.fail((tmp_path / "sentinel.log").read_text())
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_sentinel_url_resolves_the_master(fresh_redis, sentinel):
    producer(fresh_redis.url(2)).send_task("x", queue="work")
    probe = queue_probe(
        f"sentinel://127.0.0.1:1/2;sentinel://127.0.0.1:{sentinel}",
        transport_options={"master_name": "tw-master"},
    )
    try:
        assert probe.depths(["work"])[0].messages == 1
    finally:
        probe.close()
    wrong = queue_probe(
        f"sentinel://127.0.0.1:{sentinel}/2", transport_options={"master_name": "nope"}
    )
    try:
        (row,) = wrong.depths(["work"])
    finally:
        wrong.close()
    assert row.error and "nope" in row.error


# -- RabbitMQ ------------------------------------------------------------------


@pytest.fixture
def rabbit_queue(rabbitmq_url: str) -> Iterator[tuple[str, str]]:
    """A fresh queue holding 3 messages, one of them taken (unacked) by a consumer.

    Yields (broker URL, queue name); the queue is deleted afterwards.
    """
    name = f"taskwatch-test-{uuid.uuid4().hex[:10]}"
    with Connection(rabbitmq_url, connect_timeout=3) as conn:
        queue = Queue(name, durable=False, auto_delete=False, channel=conn.default_channel)
        queue.declare()
        with conn.Producer() as publish:
            for n in range(3):
                publish.publish({"n": n}, routing_key=name)
        consumer_conn = Connection(rabbitmq_url, connect_timeout=3)
        channel = consumer_conn.channel()
        channel.basic_qos(0, 1, False)
        channel.basic_consume(name, callback=lambda message: None)
        try:
            yield rabbitmq_url, name
        finally:
            consumer_conn.release()
            queue.delete()


@pytest.mark.rabbitmq
def test_amqp_passive_declare_counts_ready_messages_and_consumers(rabbit_queue):
    url, name = rabbit_queue
    probe = queue_probe(url)
    assert isinstance(probe, AmqpQueueProbe)
    missing = f"taskwatch-missing-{uuid.uuid4().hex[:8]}"
    try:

        def counted() -> list | None:
            rows = probe.depths([missing, name, missing + "-2"])
            return rows if rows[1].messages == 2 else None

        gone, row, again = wait_until(counted, what="RabbitMQ to count 2 ready messages")
        with pytest.raises(QueueProbeError, match="management API"):
            probe.discover()
        with pytest.raises(QueueProbeError, match="redelivered"):
            probe.peek(name)
    finally:
        probe.close()
    assert (gone.error, gone.messages) == ("no such queue", None)
    assert (again.error, again.messages) == ("no such queue", None)
    assert (row.messages, row.consumers, row.unacked, row.error) == (2, 1, None, None)
    assert row.source == "amqp"


@pytest.mark.rabbitmq
def test_amqp_unreachable_is_reported_per_queue_fast(rabbitmq_url):
    probe = AmqpQueueProbe("amqp://guest:s3cret@127.0.0.1:1//", timeout=3.0)
    try:
        started = time.monotonic()
        rows = probe.depths(["a", "b"])
        elapsed = time.monotonic() - started
    finally:
        probe.close()
    # Refused is answered at once: both queues' errors within one timeout
    # means one attempt, not one per queue nor retries.
    assert elapsed < probe.timeout
    assert [r.name for r in rows] == ["a", "b"]
    for row in rows:
        assert row.error and "s3cret" not in row.error and "\n" not in row.error


@pytest.mark.rabbitmq
def test_management_api_lists_queues_with_unacked_and_consumers(rabbit_queue, rabbitmq_api):
    url, name = rabbit_queue
    probe = queue_probe(url, rabbitmq_api=rabbitmq_api)
    assert isinstance(probe, ManagementQueueProbe)
    try:
        # The plugin refreshes its statistics every 5 s.
        def settled() -> tuple | None:
            found = probe.discover()
            row, gone = probe.depths([name, f"{name}-missing"])
            counts = (row.messages, row.unacked, row.consumers)
            ready = counts == (2, 1, 1) and "publish" in row.rates and name in found
            return (found, row, gone) if ready else None

        found, row, gone = wait_until(settled, what="the management API's statistics for the queue")
        assert name in found
        with pytest.raises(QueueProbeError, match="redelivered"):
            probe.peek(name)
    finally:
        probe.close()
    assert (row.messages, row.unacked, row.consumers, row.error) == (2, 1, 1, None)
    assert row.source == "management"
    assert "publish" in row.rates
    assert gone.error == "no such queue"


@pytest.mark.rabbitmq
def test_management_api_errors_are_masked(rabbitmq_api):
    wrong = ManagementQueueProbe("http://guest:wrong-pw@127.0.0.1:15672", timeout=2)
    down = ManagementQueueProbe("http://guest:wrong-pw@127.0.0.1:1", timeout=1)
    elsewhere = ManagementQueueProbe(rabbitmq_api, vhost=f"nope-{uuid.uuid4().hex[:6]}")
    try:
        (refused,) = wrong.depths(["celery"])
        (unreachable,) = down.depths(["celery"])
        with pytest.raises(QueueProbeError) as no_vhost:
            elsewhere.discover()
    finally:
        wrong.close()
        down.close()
        elsewhere.close()
    assert refused.error and "401" in refused.error and "wrong-pw" not in refused.error
    assert unreachable.error and "wrong-pw" not in unreachable.error
    assert "404" in str(no_vhost.value)
