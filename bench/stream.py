"""A synthetic stream of Celery events exactly as workers put them on Redis.

Each message is kombu's JSON envelope (base64 body), published on
``/<db>.celeryev/<routing key>``. Two shapes:

* ``batched`` (workers running the event loop): task events come in
  ``task.multi`` batches like a worker's buffered dispatcher sends them;
* ``single`` (producers' ``task-sent``, beat, lightly loaded workers): one
  event per message, on its own routing key (``task.received``, ...), the
  body a JSON object.

Heartbeats are one per message in both. Deterministic for a given seed.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/.venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task\n'
    "    R = retval = fun(*args, **kwargs)\n"
    '  File "/srv/app/shop/reports.py", line 88, in process_report\n'
    "    rows = load_rows(report_id)\n"
    '  File "/srv/app/shop/reports.py", line 41, in load_rows\n'
    '    raise ValueError(f"report {{report_id}} has no rows")\n'
    "ValueError: report {n} has no rows\n"
)
NAMES = ("emails.send_email", "reports.process_report", "tasks.add", "monitoring.ping_service")


@dataclass
class Message:
    channel: str
    data: bytes
    events: int


def envelope(body: object, routing_key: str, hostname: str) -> bytes:
    payload = json.dumps(body).encode()
    return json.dumps({
        "body": base64.b64encode(payload).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"hostname": hostname},
        "properties": {
            "delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }).encode()


def task_events(n_tasks: int, *, seed: int = 7, fail_ratio: float = 0.05, workers: int = 4,
                start: float = 1_795_000_000.0) -> Iterator[tuple[str, dict]]:
    """(hostname, event) in the order a cluster would emit them."""
    rnd = random.Random(seed)
    hosts = [f"worker{i}@node-{i}" for i in range(workers)]
    clock = 0
    t = start
    for i in range(n_tasks):
        t += 0.0001
        host = hosts[i % workers]
        task_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        name = NAMES[i % len(NAMES)]
        common = {"hostname": host, "utcoffset": 0, "pid": 1000 + i % 8}
        clock += 1
        yield host, {**common, "clock": clock, "uuid": task_id, "name": name,
                     "args": repr((f"user{i}@example.com", f"Order {i} shipped")) if name == NAMES[0] else repr((i, "pdf")),
                     "kwargs": "{}", "root_id": task_id, "parent_id": None, "retries": 0,
                     "eta": None, "expires": None, "timestamp": t, "type": "task-received"}
        clock += 1
        yield host, {**common, "clock": clock, "uuid": task_id, "timestamp": t + 0.001, "type": "task-started"}
        clock += 1
        runtime = rnd.uniform(0.001, 0.5)
        if rnd.random() < fail_ratio:
            yield host, {**common, "clock": clock, "uuid": task_id,
                         "exception": f"ValueError('report {i} has no rows')",
                         "traceback": TRACEBACK.format(n=i), "timestamp": t + runtime, "type": "task-failed"}
        else:
            yield host, {**common, "clock": clock, "uuid": task_id, "result": repr(i * 2),
                         "runtime": runtime, "timestamp": t + runtime, "type": "task-succeeded"}


SHAPES = ("batched", "single")


def messages(n_tasks: int, *, db: int = 0, batch: int = 12, seed: int = 7, fail_ratio: float = 0.05,
             workers: int = 4, shape: str = "batched") -> list[Message]:
    """The stream as pub/sub messages: per-worker ``task.multi`` batches (or,
    ``shape="single"``, one event per message) plus heartbeats."""
    prefix = f"/{db}.celeryev/"
    return [Message(prefix + key, envelope(body, key, host), events)
            for key, host, body, events in bodies(n_tasks, batch=batch, seed=seed, fail_ratio=fail_ratio,
                                                   workers=workers, shape=shape)]


def bodies(n_tasks: int, *, batch: int = 12, seed: int = 7, fail_ratio: float = 0.05,
           workers: int = 4, shape: str = "batched") -> Iterator[tuple[str, str, object, int]]:
    """(routing key, hostname, body, events in it) of each message, any broker."""
    if shape not in SHAPES:
        raise ValueError(f"shape is one of {SHAPES}, not {shape!r}")
    buffers: dict[str, list[dict]] = {}
    count = 0
    for host, event in task_events(n_tasks, seed=seed, fail_ratio=fail_ratio, workers=workers):
        if shape == "single":
            key = event["type"].replace("-", ".")
            yield key, host, event, 1
            count += 1
            if count % 2000 == 0:
                yield from _heartbeats([f"worker{i}@node-{i}" for i in range(workers)], count, event)
            continue
        buffer = buffers.setdefault(host, [])
        buffer.append(event)
        if len(buffer) >= batch:
            yield "task.multi", host, buffer, len(buffer)
            buffers[host] = []
        count += 1
        if count % 2000 == 0:
            yield from _heartbeats(list(buffers), count, event)
    for host, buffer in buffers.items():
        if buffer:
            yield "task.multi", host, buffer, len(buffer)


def heartbeat_event(hostname: str, clock: int, timestamp: float, *, active: int = 0,
                    processed: int = 0) -> dict:
    """One ``worker-heartbeat`` event as a Celery 5.7 worker sends it (every ``freq`` = 2 s)."""
    return {"hostname": hostname, "utcoffset": 0, "pid": 999, "clock": clock, "freq": 2.0,
            "active": active, "processed": processed, "loadavg": [1.0, 0.9, 0.8],
            "sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux",
            "timestamp": timestamp, "type": "worker-heartbeat"}


def heartbeat(hostname: str, clock: int, timestamp: float, *, active: int = 0, processed: int = 0) -> bytes:
    """One ``worker-heartbeat`` message as a Celery 5.7 worker publishes it
    on ``/<db>.celeryev/worker.heartbeat``."""
    beat = heartbeat_event(hostname, clock, timestamp, active=active, processed=processed)
    return envelope(beat, "worker.heartbeat", hostname)


def _heartbeats(hosts: list[str], count: int, event: dict) -> Iterator[tuple[str, str, object, int]]:
    for i, h in enumerate(hosts):
        beat = heartbeat_event(h, count, event["timestamp"] + i * 1e-6, active=4, processed=count // len(hosts))
        yield "worker.heartbeat", h, beat, 1
