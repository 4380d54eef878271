"""Broker outages, end to end: real Redis servers killed, restarted and frozen
under a real ``taskwatch`` process, and RabbitMQ closing its connections.

What each scenario must show: the outage noticed (a gap, the broker's state
in words), taskwatch back on its own once the broker is, and a document or
a screen that says what happened, never a password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from urllib.parse import quote

import kombu.pools
import redis

from bench.stream import messages
from taskwatch.config import Settings
from taskwatch.demo.redis_server import RedisServer
from taskwatch.monitor import Monitor
from tests.cluster import child_env, delete_amqp_queue, start_worker, wait_for_ping
from tests.procnet import tcp_ports
from tests.waiting import wait_until

PASSWORD = "s3/cr#t?@:%pw"  # every character a URL parser could take for a delimiter
#: How long the broker stays dead: longer than redis-py's own retries of a
#: refused connection (about 3.9 s), which would hide a shorter outage.
OUTAGE = 4.0


def _subscribed(client: redis.Redis) -> bool:
    try:
        return client.pubsub_numpat() >= 1
    except redis.RedisError:
        return False


def _delivered(client: redis.Redis) -> bool:
    """Redis has handed every published message to its subscribers' sockets."""
    subscribers = client.client_list(_type="pubsub")
    return bool(subscribers) and all(int(c.get("omem", 1)) == 0 for c in subscribers)


def _first_round_done(client: redis.Redis) -> bool:
    """taskwatch's first round has reached its last step (the result backend's
    backfill SCANs): its connections to the broker are open and kept."""
    return client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0) >= 1


def _publish(client: redis.Redis, n_tasks: int, seed: int) -> None:
    pipe = client.pipeline(transaction=False)
    for message in messages(n_tasks, seed=seed):
        pipe.publish(message.channel, message.data)
    pipe.execute()
    wait_until(lambda: _delivered(client), what="the events handed to the subscriber")


def test_snapshot_listens_through_a_broker_killed_and_restarted(tmp_path):
    """Done when of issue 14: ``snapshot --json --listen`` against a password-protected
    Redis killed (-9) and restarted on the same port mid-stream, 2,000 tasks' events
    before and 2,000 after: exit 0, a gap recorded, all 4,000 tasks counted, and the
    password nowhere in what it printed."""
    listen = 15.0
    with RedisServer(password=PASSWORD) as server:
        url = server.url(0)
        assert quote(PASSWORD, safe="") in url
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "taskwatch", "snapshot", "--json", "--listen", f"{listen:g}",
             "-b", url, "--result-backend", server.url(1)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=tmp_path)
        try:
            client = redis.Redis(port=server.port, password=PASSWORD)
            wait_until(lambda: _subscribed(client), what="taskwatch subscribed to the events")
            _publish(client, 2000, seed=1)
            wait_until(lambda: _first_round_done(client), what="taskwatch's first round to end")
            server.kill()
            time.sleep(OUTAGE)  # the outage itself, not a wait for something to happen
            server.restart()
            returned = time.monotonic()
            client = redis.Redis(port=server.port, password=PASSWORD)
            wait_until(lambda: _subscribed(client), what="taskwatch subscribed again after the restart")
            back = time.monotonic() - returned
            _publish(client, 2000, seed=2)
            assert time.monotonic() - started < listen, "the scenario outlasted --listen: the machine is too slow"
            out, err = process.communicate(timeout=listen + 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    text = (out + err).decode()
    assert process.returncode == 0, text[-2000:]
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text
    document = json.loads(out)
    stats = document["stats"]
    assert stats["tasks_seen"] == 4000, stats
    assert stats["gaps"], stats
    assert all(gap["end"] is not None and gap["repaired"] for gap in stats["gaps"]), stats["gaps"]
    assert document["broker_error"] is None
    (broker,) = [h for h in document["health"] if h["source"] == "broker"]
    assert broker["state"] == "ok" and broker["last_ok"] is not None
    assert back < 5.0, f"subscribed again {back:.1f} s after the broker returned"


def _close_own_amqp_connections() -> int:
    """RabbitMQ closes this process's connections, as ``rabbitmqctl
    close_all_connections`` would, without touching anybody else's (the
    machine's RabbitMQ is shared)."""
    ports = sorted(tcp_ports(remote_port=5672))
    expr = ("[rabbit_networking:close_connection(P, \"taskwatch outage test\") || P <- rabbit_networking:connections(), "
            "lists:member(proplists:get_value(peer_port, rabbit_networking:connection_info(P, [peer_port])), "
            f"[{','.join(map(str, ports))}])].")
    done = subprocess.run(["rabbitmqctl", "eval", expr], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return len(ports)


def test_rabbitmq_closing_connections_is_not_an_outage(rabbitmq_url, redis_server):
    """RabbitMQ closes every connection taskwatch holds (the inspector's, each
    pool thread's, the event receiver's) while it stays up: the next round
    reaches the worker at once and the broker is never called down."""
    queue = f"taskwatch-out-{uuid.uuid4().hex[:8]}"
    worker = start_worker(rabbitmq_url, redis_server.url(5), f"{queue}@taskwatch-test", [queue], 1)
    try:
        wait_for_ping(rabbitmq_url, [worker.hostname], timeout=60)
        with Monitor.from_settings(Settings(broker_url=rabbitmq_url), backfill=0) as monitor:
            wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
            wait_until(lambda: worker.hostname in monitor.state.hosts_alive_by_heartbeat(time.time()),
                       what="the worker's heartbeat")
            first = monitor.poll()  # ping, stats, queues, the task inspects: connections kept
            assert not first.errors, first.errors
            quick = monitor.poll()  # the quick round: one connection per pool thread
            assert not quick.errors and worker.hostname in quick.workers.pings, quick
            ok_since = monitor.broker_health.since
            closed = _close_own_amqp_connections()
            assert closed >= 3, closed
            report = monitor.poll()
            assert report.workers.broker_error is None and not report.errors, report
            assert report.tasks is not None and report.tasks.broker_error is None
            report = monitor.poll()  # the other path (ping alone, then inspects)
            assert not report.errors, report.errors
            health = monitor.broker_health
            assert health.state == "ok" and health.since == ok_since  # never down meanwhile
            wait_until(lambda: monitor.events_connected, what="the event receiver back")
    finally:
        # kombu's producer pools are per process and per URL: the connections
        # RabbitMQ closed must not be handed to the tests that follow.
        kombu.pools.reset()
        worker.stop()
        delete_amqp_queue(rabbitmq_url, queue)


def _event_message(task_id: str, args: str = "()") -> bytes:
    from bench.stream import envelope

    return envelope({"type": "task-received", "uuid": task_id, "name": "tasks.add", "args": args,
                     "kwargs": "{}", "timestamp": time.time(), "hostname": "w@h", "clock": 1},
                    "task.received", "w@h")


def test_redis_cutting_the_event_connection_for_its_buffer_limit_is_a_gap(fresh_redis):
    """Redis closes a subscriber whose output buffer passes the pub/sub limit:
    a gap, said as such, never silence; the receiver is back and hears what follows."""
    client = redis.Redis(port=fresh_redis.port)
    client.config_set("client-output-buffer-limit", "pubsub 64kb 0 0")
    with Monitor.from_settings(Settings(broker_url=fresh_redis.url(0)), backfill=0) as monitor:
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        client.publish("/0.celeryev/task.received", _event_message("big", "x" * 1_000_000))
        wait_until(lambda: monitor.state.gaps, what="a gap for the connection Redis closed")
        assert "closed by the server" in monitor.state.gaps[0].reason
        assert "big" not in monitor.state.tasks
        wait_until(lambda: monitor.events_connected and not monitor.state.open_gaps(),
                   what="the receiver back and the gap closed")
        assert monitor.receiver.status.reconnects == 1
        client.publish("/0.celeryev/task.received", _event_message("after"))
        wait_until(lambda: "after" in monitor.state.tasks, what="an event after the cut")
        report = monitor.poll()
        assert monitor.state.gaps[0].repaired and report.workers.broker_error is None


def test_no_read_timeout_while_messages_arrive(fresh_redis):
    """Messages arriving slower than they are applied (the decoder held) for
    longer than every idle and ping timer: nothing times out, the broker is
    never called silent, nothing is lost."""
    import threading

    client = redis.Redis(port=fresh_redis.port)
    with Monitor.from_settings(Settings(broker_url=fresh_redis.url(0)), backfill=0) as monitor:
        receiver = monitor.receiver
        receiver.IDLE_PING, receiver.SILENT, receiver.PING_WAIT = 0.2, 0.3, 0.6  # any false alarm shows
        wait_until(lambda: monitor.events_connected, what="the event receiver to connect")
        wait_until(lambda: monitor.broker_health is not None, what="the broker's state")
        ok_since = monitor.broker_health.since
        monitor.HOLD_MAX = 60.0
        monitor.hold_events(60.0)
        sent: list[str] = []
        flowing = threading.Event()

        def publish() -> None:
            deadline = time.monotonic() + 3.0  # five times PING_WAIT
            while time.monotonic() < deadline:
                sent.append(f"s-{len(sent)}")
                client.publish("/0.celeryev/task.received", _event_message(sent[-1], "y" * 2000))
                flowing.wait(0.05)

        publisher = threading.Thread(target=publish)
        publisher.start()
        publisher.join()
        monitor.release_events()
        wait_until(lambda: all(s in monitor.state.tasks for s in sent), what="every event applied")
        assert monitor.state.gaps == [] and receiver.status.reconnects == 0
        health = monitor.broker_health
        assert health.state == "ok" and health.since == ok_since


def test_snapshot_prints_its_document_when_the_broker_freezes(tmp_path):
    """A broker stopped (SIGSTOP) mid ``--listen``: the document still comes, soon
    after the listening (not after every socket timeout in turn), saying the broker
    is not answering and when it last did; exit 1, the password nowhere."""
    import signal

    listen = 3.0
    with RedisServer(password=PASSWORD) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskwatch", "snapshot", "--json", "--listen", f"{listen:g}",
             "-b", server.url(0), "--result-backend", server.url(1)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=tmp_path)
        client = redis.Redis(port=server.port, password=PASSWORD)
        try:
            wait_until(lambda: _subscribed(client) and _first_round_done(client),
                       what="taskwatch listening, its first round done")
            frozen_at = time.time()
            os.kill(server.pid, signal.SIGSTOP)
            try:
                # Far less than the broker's socket timeouts one after another (34.7 s for --listen 5).
                out, err = process.communicate(timeout=listen + 15)
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    text = (out + err).decode()
    assert process.returncode == 1, text[-2000:]
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text
    document = json.loads(out)
    assert document["broker_error"] and "****" in document["broker_error"]
    broker = document["health"][0]
    assert (broker["source"], broker["state"], broker["reason"]) == ("broker", "down", "not answering"), broker
    last_ok = datetime.fromisoformat(broker["last_ok"].replace("Z", "+00:00")).timestamp()
    assert last_ok <= frozen_at + 0.5, (broker, frozen_at)  # its last real answer, not when it was missed
