"""Retries of one task id are one task with attempts (issue 15 items 1 and 2)."""

from taskwatch.engine import snapshot
from taskwatch.engine.query import timeline
from taskwatch.engine.state import ClusterState
from taskwatch.records import StoredResult

T0 = 1_795_000_000.0


def ev(kind, uuid="t1", ts=T0, **fields):
    return {"type": kind, "uuid": uuid, "timestamp": ts, "hostname": "w1@h", "utcoffset": 0,
            "pid": 1, "clock": 1, **fields}


def retried_once(parent="p0"):
    """What a worker sends for a task that retried once: Celery names the retry's parent itself."""
    return [
        ev("task-received", uuid=parent, name="shop.order", args="()"),
        ev("task-received", ts=T0 + 1, name="shop.mail", args="(1,)", retries=0, parent_id=parent,
           root_id=parent),
        ev("task-started", ts=T0 + 2),
        ev("task-retried", ts=T0 + 3, exception="SMTPError('down')",
           traceback="Traceback...\ncelery.exceptions.Retry: Retry in 5s\n"),
        ev("task-received", ts=T0 + 3.1, name="shop.mail", args="(1,)", retries=1, parent_id="t1",
           root_id=parent),
        ev("task-started", ts=T0 + 8),
        ev("task-succeeded", ts=T0 + 9, result="'sent'", runtime=1.0),
    ]


def test_a_retried_task_is_never_its_own_parent_nor_child():
    s = ClusterState()
    s.apply_events(retried_once())
    t = s.tasks["t1"]
    assert t.parent_id == "p0"
    assert not t.children
    assert s.tasks["p0"].children == ["t1"]


def test_a_retry_seen_alone_has_no_parent():
    s = ClusterState()
    s.apply_events([ev("task-received", name="n", retries=1, parent_id="t1", root_id="t1")])
    assert s.tasks["t1"].parent_id is None and not s.tasks["t1"].children


def test_a_stored_result_of_a_retry_does_not_make_the_task_its_own_parent():
    s = ClusterState()
    s.apply_stored_result(StoredResult(task_id="t1", status="SUCCESS", result="1", date_done=T0,
                                       parent_id="t1", children=("t1", "c1")), recovered=False)
    t = s.tasks["t1"]
    assert t.parent_id is None and t.children == ["c1"]


def test_a_task_that_succeeded_after_a_retry_shows_no_failure_and_keeps_each_attempt():
    s = ClusterState()
    s.apply_events(retried_once())
    t = s.tasks["t1"]
    assert (t.state, t.result, t.exception, t.traceback) == ("SUCCESS", "'sent'", None, None)
    (attempt,) = s.attempts["t1"]
    assert (attempt.received, attempt.started, attempt.retried) == (T0 + 1, T0 + 2, T0 + 3)
    assert attempt.exception == "SMTPError('down')" and "Retry" in attempt.traceback
    assert s.names["shop.mail"].retried == 1
    assert [what for _, what in timeline(t, s.attempts["t1"])] == [
        "received (attempt 1)", "started (attempt 1)", "retried (attempt 1): SMTPError('down')",
        "received (attempt 2)", "started (attempt 2)", "success",
    ]
    document = snapshot.task_document(t, s.attempts["t1"])
    assert document["exception"] is None and document["state"] == "SUCCESS"
    assert [a["exception"] for a in document["attempts"]] == ["SMTPError('down')"]


def test_a_retried_event_arriving_after_the_retry_and_its_outcome_changes_neither():
    events = retried_once()
    late = events.pop(3)  # task-retried, from the first worker, arrives last
    s = ClusterState()
    s.apply_events(events)
    s.apply_events([late, late])  # and twice
    t = s.tasks["t1"]
    assert (t.state, t.exception) == ("SUCCESS", None)
    (attempt,) = s.attempts["t1"]
    assert (attempt.received, attempt.started) == (None, None)  # the task's are the later attempt's
    assert s.names["shop.mail"].retried == 1


def test_attempts_go_with_their_task_when_it_is_evicted():
    s = ClusterState(max_tasks=2)
    s.apply_events(retried_once())
    s.apply_events([ev("task-received", uuid=f"n{i}", ts=T0 + 20 + i, name="n") for i in range(3)])
    assert "t1" not in s.tasks and "t1" not in s.attempts


def test_a_stored_retry_row_does_not_become_the_outcome():
    s = ClusterState()
    s.apply_stored_result(StoredResult(task_id="t1", status="RETRY", exception="Retry in 5s",
                                       traceback="Traceback..."), recovered=False)
    s.apply_events([ev("task-succeeded", ts=T0 + 9, result="1")])
    assert (s.tasks["t1"].state, s.tasks["t1"].exception, s.tasks["t1"].traceback) == ("SUCCESS", None, None)
