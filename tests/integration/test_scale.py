"""At scale, on a private Redis: 200 workers heartbeating that never answer inspect,
and a deep queue. The full figures (1,000,000 messages, 100k tasks, CPU, key
latency) are bench/scale.py's; these pin the behaviours."""

from __future__ import annotations

import threading
import time

import redis
from celery import Celery

from bench.stream import heartbeat
from taskwatch.config import Settings
from taskwatch.monitor import DETAILS_EVERY, Monitor
from tests.waiting import wait_until

CHANNEL = "/0.celeryev/worker.heartbeat"
HOSTS = [f"silent{i:03d}@scale-test" for i in range(200)]


def _beat(url: str, stop: threading.Event) -> None:
    """Every host's heartbeat once a second (Celery's window is 2 x freq = 4 s)."""
    client = redis.Redis.from_url(url)
    clock = 0
    while not stop.is_set():
        pipe = client.pipeline(transaction=False)
        for host in HOSTS:
            clock += 1
            pipe.publish(CHANNEL, heartbeat(host, clock, time.time()))
        pipe.execute()
        stop.wait(1.0)
    client.close()


def test_200_heartbeating_hosts_that_never_answer_are_online_and_do_not_hold_up_rounds(fresh_redis):
    timeout = 2.0
    monitor = Monitor.from_settings(Settings(broker_url=fresh_redis.url(0), inspect_timeout=timeout),
                                    backfill=0).start()
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(fresh_redis.url(0), stop), daemon=True)
    try:
        wait_until(lambda: monitor.events_connected, what="events to connect")
        beating.start()
        wait_until(lambda: len(monitor.state.hosts_alive_by_heartbeat(time.time())) == len(HOSTS),
                   what="200 hosts alive by heartbeat")
        first = monitor.poll()  # asks everyone: the silent hosts cost it the timeout, once
        assert first.duration >= timeout and not first.workers.pings
        rounds = [monitor.poll() for _ in range(DETAILS_EVERY - 1)]
        # Without remembering who did not answer, each of these waited the full timeout.
        assert all(r.duration < timeout / 2 for r in rounds), [round(r.duration, 3) for r in rounds]
        assert not any(r.errors for r in (first, *rounds))
        now = time.time()
        with monitor.state.lock:
            workers = dict(monitor.state.workers)
        assert sorted(workers) == HOSTS and all(w.online(now) for w in workers.values())
    finally:
        stop.set()
        monitor.stop()


def test_a_deep_queue_is_counted_exactly_and_peeked_without_reading_it(fresh_redis):
    """100,000 copies of a real Celery message behind one that Celery sent first:
    the depth is exact and a peek reads ten messages, whatever the depth."""
    depth = 100_000
    url = fresh_redis.url(0)
    app = Celery("scale", broker=url, set_as_current=False)
    first = app.send_task("reports.process_report", args=(1, "pdf"), queue="celery").id
    client = redis.Redis.from_url(url)
    (message,) = client.lrange("celery", 0, -1)
    pipe = client.pipeline(transaction=False)
    for _ in range(10):
        pipe.lpush("celery", *[message] * ((depth - 1) // 10))
    pipe.lpush("celery", *[message] * ((depth - 1) % 10))
    pipe.execute()
    monitor = Monitor.from_settings(Settings(broker_url=url, inspect_timeout=0.2), events=False, backfill=0)
    try:
        report = monitor.poll()
        assert report.queues_error is None
        assert monitor.state.queues["celery"].messages == depth
        before = int(client.info("stats")["total_net_output_bytes"])
        peeked = monitor.peek("celery", 10)
        sent = int(client.info("stats")["total_net_output_bytes"]) - before
    finally:
        monitor.stop()
    assert len(peeked) == 10 and peeked[0].id == first
    # Ten messages and the INFO reply, not the list (100,000 x len(message)).
    assert sent < 10 * len(message) + 10_000, sent
