"""Engine logic on plain data: merging, ordering, eviction, stats, hostile text."""

import base64
import json

from taskwatch.engine.sketch import QuantileSketch
from taskwatch.engine.state import ClusterState, WorkerInfo
from taskwatch.records import TaskPoll
from taskwatch.sources.event_decode import decode_body, decode_envelope
from taskwatch.sources.events import redis_event_channel
from taskwatch.sources.inspect import held_tasks

T0 = 1_795_000_000.0


def ev(kind, uuid="t1", ts=T0, **fields):
    return {"type": kind, "uuid": uuid, "timestamp": ts, "hostname": "w1@h", "utcoffset": 0,
            "pid": 1, "clock": 1, **fields}


def test_lifecycle_in_order():
    s = ClusterState()
    s.apply_events([
        ev("task-received", name="shop.add", args="(1, 2)", kwargs="{}", retries=0, root_id="t1"),
        ev("task-started", ts=T0 + 1),
        ev("task-succeeded", ts=T0 + 2, result="3", runtime=1.0),
    ], received_at=T0 + 2)
    t = s.tasks["t1"]
    assert (t.state, t.name, t.args, t.result, t.worker) == ("SUCCESS", "shop.add", "(1, 2)", "3", "w1@h")
    assert (t.received, t.started, t.finished, t.runtime) == (T0, T0 + 1, T0 + 2, 1.0)
    assert s.counters.tasks_seen == 1 and s.counters.events_received == 3
    stats = s.names["shop.add"]
    assert (stats.received, stats.succeeded, stats.failed) == (1, 1, 0)


def test_out_of_order_never_regresses_a_finished_task():
    s = ClusterState()
    s.apply_events([ev("task-failed", ts=T0 + 2, exception="ValueError('x')", traceback="Traceback...")])
    s.apply_events([ev("task-started", ts=T0 + 1), ev("task-received", ts=T0, name="n", args="()")])
    t = s.tasks["t1"]
    assert t.state == "FAILURE"
    assert t.name == "n" and t.started == T0 + 1  # fields still merged
    assert t.exception == "ValueError('x')"


def test_unknown_task_events_create_the_task_and_duplicates_are_harmless():
    s = ClusterState()
    s.apply_events([ev("task-started", uuid="x")] * 3)
    assert s.tasks["x"].state == "STARTED" and s.counters.tasks_seen == 1


def test_retry_then_received_again_moves_forward():
    s = ClusterState()
    s.apply_events([
        ev("task-received", name="n", retries=0), ev("task-started", ts=T0 + 1),
        ev("task-retried", ts=T0 + 2, exception="Retry in 5s"),
        ev("task-received", ts=T0 + 7, name="n", retries=1), ev("task-started", ts=T0 + 7.5),
    ])
    t = s.tasks["t1"]
    assert (t.state, t.retries) == ("STARTED", 1)
    assert s.names["n"].retried == 1


def test_hostile_text_is_stored_as_data():
    s = ClusterState()
    hostile = "[bold red]X[/] \x1b]0;owned\x07\x1b[2J\x9b31m\udcff"
    s.apply_events([ev("task-received", name="n\x1b[31m", args=hostile, kwargs="{}"),
                    ev("task-failed", ts=T0 + 1, exception=hostile, traceback=hostile + "\nline2")])
    t = s.tasks["t1"]
    assert t.args == "[bold red]X[/] \ufffd"
    assert "\x1b" not in t.exception and "\x07" not in t.traceback
    assert t.traceback.endswith("\nline2")
    assert t.name == "n"


def test_eviction_drops_finished_tasks_first():
    s = ClusterState(max_tasks=3)
    s.apply_events([ev("task-received", uuid="running", name="n")])
    for i in range(5):
        s.apply_events([ev("task-succeeded", uuid=f"done{i}", ts=T0 + i, result="1")])
    assert "running" in s.tasks
    assert len(s.tasks) == 3
    assert set(s.tasks) == {"running", "done3", "done4"}
    assert s.counters.tasks_evicted == 3 and s.counters.tasks_seen == 6


def test_eviction_falls_back_to_oldest_when_nothing_finished():
    s = ClusterState(max_tasks=2)
    s.apply_events([ev("task-received", uuid=f"r{i}", name="n") for i in range(4)])
    assert set(s.tasks) == {"r2", "r3"}


def test_worker_online_follows_heartbeats_like_celery():
    s = ClusterState()
    s.apply_events([{"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "active": 3,
                     "processed": 10, "loadavg": [0.1, 0.2, 0.3], "sw_ver": "5.7.0", "timestamp": T0}],
                   received_at=T0)
    w = s.workers["w@h"]
    assert w.online(T0 + 4.5) and not w.online(T0 + 6)
    assert (w.active, w.processed, w.loadavg) == (3, 10, [0.1, 0.2, 0.3])
    s.apply_events([{"type": "worker-offline", "hostname": "w@h", "timestamp": T0 + 1}], received_at=T0 + 1)
    assert not w.online(T0 + 1.5)


def test_worker_seen_only_by_ping():
    w = WorkerInfo("w@h")
    w.last_ping = T0
    assert w.online(T0 + 1) and not w.online(T0 + 60)


def test_inspect_replies_give_exact_arguments():
    s = ClusterState()
    s.apply_events([ev("task-received", name="n", args="('a very long string that was cut…',)")])
    s.apply_task_poll(TaskPoll(T0 + 2, tasks=tuple(held_tasks("active", "w1@h", [{
        "id": "t1", "name": "n", "args": ["a very long string that was not cut", {"nested": [1, 2]}],
        "kwargs": {"b": b"x".hex()}, "time_start": T0 + 1, "delivery_info": {"routing_key": "emails"},
    }]))))
    t = s.tasks["t1"]
    assert t.exact_args and t.args == "('a very long string that was not cut', {'nested': [1, 2]})"
    assert t.call.args == ("a very long string that was not cut", {"nested": [1, 2]})
    assert t.call.kwargs == {"b": "78"}
    assert (t.state, t.queue, t.started) == ("STARTED", "emails", T0 + 1)
    # A later repr from an event does not overwrite exact values.
    s.apply_events([ev("task-received", name="n", args="('cut…',)")])
    assert t.args.startswith("('a very long")


def test_scheduled_replies_and_recovered_flag():
    s = ClusterState()
    new = s.apply_task_poll(TaskPoll(T0, tasks=tuple(held_tasks("scheduled", "w@h", [
        {"eta": "2026-11-27T15:00:00+00:00", "priority": 6,
         "request": {"id": "e1", "name": "n", "args": [1], "kwargs": {}}}]))), recovered=True)
    assert new == 1
    t = s.tasks["e1"]
    assert (t.state, t.eta, t.recovered) == ("RECEIVED", "2026-11-27T15:00:00+00:00", True)


def test_quantile_sketch_is_within_two_percent():
    sketch = QuantileSketch()
    values = [i / 1000 for i in range(1, 10001)]
    for v in values:
        sketch.add(v)
    assert abs(sketch.quantile(0.5) - 5.0) / 5.0 < 0.02
    assert abs(sketch.quantile(0.95) - 9.5) / 9.5 < 0.02
    assert QuantileSketch().quantile(0.5) is None


def test_rate_and_failure_ratio_per_name():
    s = ClusterState()
    events = []
    for i in range(60):
        events.append(ev("task-received", uuid=f"t{i}", ts=T0 + i, name="n"))
        if i % 4 == 0:
            events.append(ev("task-failed", uuid=f"t{i}", ts=T0 + i + 0.5, exception="E()"))
        else:
            events.append(ev("task-succeeded", uuid=f"t{i}", ts=T0 + i + 0.5, runtime=0.25))
    s.apply_events(events)
    stats = s.names["n"]
    assert (stats.succeeded, stats.failed) == (45, 15)
    assert stats.failure_ratio == 0.25
    assert stats.rate(T0 + 59) == 1.0  # 60 finished in the last minute
    assert stats.rate(T0 + 89) == 0.5
    assert stats.rate(T0 + 500) == 0.0
    assert abs(stats.runtimes.quantile(0.5) - 0.25) < 0.005


def _envelope(body, encoding="base64", content_type="application/json"):
    raw = json.dumps(body).encode()
    return json.dumps({
        "body": base64.b64encode(raw).decode() if encoding == "base64" else raw.decode(),
        "content-type": content_type, "content-encoding": "utf-8",
        "headers": {}, "properties": {"body_encoding": encoding, "delivery_info": {}},
    }).encode()


def test_decode_single_and_multi():
    one = ev("task-started")
    assert decode_envelope(_envelope(one)) == [one]
    assert decode_envelope(_envelope([one, one, "junk"])) == [one, one]


def test_decode_rejects_what_it_must_not_read():
    assert decode_envelope(b"not json") is None
    assert decode_envelope(_envelope(ev("x"), content_type="application/x-python-serialize")) is None
    assert decode_envelope(json.dumps({"body": "!!!notbase64", "properties": {"body_encoding": "base64"}}).encode()) is None
    assert decode_body(b"\x80\x04K\x01.", "application/x-python-serialize") is None


def test_decode_invalid_utf8_as_replacement_characters():
    payload = b'{"type": "task-received", "uuid": "u", "args": "\xff\xfe"}'
    envelope = json.dumps({"body": base64.b64encode(payload).decode(),
                           "content-type": "application/json",
                           "properties": {"body_encoding": "base64"}}).encode()
    (event,) = decode_envelope(envelope)
    assert event["args"] == "\ufffd\ufffd"


def test_event_channel_names():
    assert redis_event_channel("redis://h:6379/3") == "/3.celeryev"
    assert redis_event_channel("redis://h/0", {"global_keyprefix": "app:"}) == "app:/0.celeryev"
    assert redis_event_channel("redis://h/0", {"fanout_prefix": False}) == "celeryev"
    assert redis_event_channel("redis://h/5", {"fanout_prefix": "/{db}.x."}) == "/5.x.celeryev"


def test_runtime_of_a_failed_task_is_started_to_finished():
    from taskwatch.engine.query import elapsed

    s = ClusterState()
    s.apply_events([ev("task-received", name="n"), ev("task-started", ts=T0 + 1),
                    ev("task-failed", ts=T0 + 3.5, exception="E()")])
    assert elapsed(s.tasks["t1"]) == 2.5  # Celery's task-failed carries no runtime
    # Retried, then running again: the runtime so far, not the old attempt's.
    s.apply_events([ev("task-received", uuid="r", name="n"), ev("task-started", uuid="r", ts=T0 + 1),
                    ev("task-retried", uuid="r", ts=T0 + 2), ev("task-started", uuid="r", ts=T0 + 10)])
    assert elapsed(s.tasks["r"], now=T0 + 12) == 2.0
    s.apply_events([ev("task-received", uuid="q", name="n")])
    assert elapsed(s.tasks["q"]) is None


def test_eta_strings_as_celery_sends_them():
    from taskwatch.engine.query import parse_eta

    assert parse_eta("2026-11-27T14:07:05.500000+00:00") == 1_795_788_425.5
    assert parse_eta("2026-11-27T15:07:05.500000+01:00") == 1_795_788_425.5
    assert parse_eta("2026-11-27T14:07:05.500000") == 1_795_788_425.5  # naive: UTC, as Celery means it
    assert parse_eta("soon\x1b[2J") is None and parse_eta(None) is None and parse_eta("") is None


def test_implausible_times_from_the_wire_are_dropped():
    s = ClusterState()
    for i, bad in enumerate([1e300, float("inf"), float("nan"), -5.0, 1e12 * 1e3, True, "soon"]):
        s.apply_events([ev("task-received", uuid=f"t{i}", ts=bad, name="n"),
                        ev("task-succeeded", uuid=f"t{i}", ts=bad, runtime=bad)], received_at=T0)
        t = s.tasks[f"t{i}"]
        assert (t.received, t.runtime, t.state) == (0.0, None, "SUCCESS"), bad
    assert s.counters.max_lag == 0.0


def test_states_read_from_a_result_backend_count_like_event_states():
    """The backend's status strings are decoded, not the engine's constants."""
    import json as _json

    from taskwatch.engine.query import select_tasks, tab_counts
    from taskwatch.sources.results.decode import from_stored

    s = ClusterState()
    for tid, status in (("t1", "SUCCESS"), ("t2", "FAILURE")):
        raw = _json.dumps({"status": status, "result": 1, "traceback": "tb" if status == "FAILURE" else None,
                           "children": [], "date_done": "2026-11-27T00:00:00", "task_id": tid,
                           "name": "proj.add"}).encode()
        s.apply_stored_result(from_stored(tid, raw, None), recovered=False)
    assert (s.names["proj.add"].succeeded, s.names["proj.add"].failed) == (1, 1)
    assert select_tasks(s, "failed") == ["t2"] and tab_counts(s)["succeeded"] == 1


def test_a_producer_clock_ahead_of_the_worker_does_not_hide_the_result():
    s = ClusterState()
    s.apply_events([ev("task-sent", ts=T0 + 5, name="n"),  # the producer's clock is 5 s ahead
                    ev("task-received", ts=T0), ev("task-started", ts=T0 + 0.5)])
    assert s.tasks["t1"].state == "STARTED"  # moving forward beats an older timestamp
    s.apply_events([ev("task-received", ts=T0 + 0.1)])
    assert s.tasks["t1"].state == "STARTED"  # an older event that moves backward does not
    s.apply_events([ev("task-succeeded", ts=T0 + 1, runtime=0.5)])
    assert s.tasks["t1"].state == "SUCCESS" and s.names["n"].succeeded == 1


def test_numbers_too_big_for_a_float_are_ignored():
    s = ClusterState()
    s.apply_events([ev("task-succeeded", runtime=10**400, name="n"),
                    {"type": "worker-heartbeat", "hostname": "w1@h", "timestamp": T0, "freq": 2.0,
                     "loadavg": [10**400, 1.0, float("inf")], "active": 1, "processed": 1}], received_at=T0)
    assert s.tasks["t1"].runtime is None and s.workers["w1@h"].loadavg == [1.0]


def test_evicting_unfinished_tasks_drops_the_oldest():
    s = ClusterState(max_tasks=1000)
    s.apply_events([ev("task-received", uuid=f"u{i}", ts=T0 + i, name="n") for i in range(1500)])
    assert len(s.tasks) == 1000 and next(iter(s.tasks)) == "u500"
    assert s.counters.tasks_evicted == 500


def test_lag_takes_clock_differences_out():
    """A worker clock 30 s behind is not 30 s of lag; a backlog read while not drained is."""
    s = ClusterState()
    now = T0 + 100
    skewed = now - 30  # the worker's clock reads 30 s less
    s.apply_events([ev("task-received", uuid="a", ts=skewed - 0.01)], received_at=now, drained=True)
    assert s.counters.lag == 0.0
    s.apply_events([ev("task-received", uuid="b", ts=skewed + 1 - 0.02)], received_at=now + 1, drained=True)
    assert s.counters.lag < 0.05
    # A burst: batches keep coming full, each event older on arrival.
    for i in range(1, 6):
        s.apply_events([ev("task-received", uuid=f"c{i}", ts=skewed + 2)], received_at=now + 2 + i, drained=False)
    assert 4.9 < s.counters.lag < 5.1 and 4.9 < s.counters.max_lag < 5.1
    # Caught up again.
    s.apply_events([ev("task-received", uuid="d", ts=skewed + 8)], received_at=now + 8.01, drained=True)
    assert s.counters.lag < 0.05
