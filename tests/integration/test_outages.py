"""Broker outages, end to end: real Redis servers killed, restarted and frozen
under a real ``taskwatch`` process, and RabbitMQ closing its connections.

What each scenario must show: the outage noticed (a gap, the broker's state
in words), taskwatch back on its own once the broker is, and a document or
a screen that says what happened, never a password.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import quote

import redis

from bench.stream import messages
from taskwatch.demo.redis_server import RedisServer
from tests.cluster import child_env
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
