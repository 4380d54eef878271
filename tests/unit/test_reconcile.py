"""What the workers say wins, and workers that die: the reconciling rules on plain data.

The same rules run against real workers in tests/integration/test_worker_death.py.
"""

from taskwatch.engine import snapshot
from taskwatch.engine.entities import LOST, NO_HEARTBEAT, NOT_HELD, SHUT_DOWN
from taskwatch.engine.query import in_tab, timeline
from taskwatch.engine.reconcile import lost_ids
from taskwatch.engine.state import ClusterState
from taskwatch.records import TaskPoll
from taskwatch.sources.inspect import held_tasks

T0 = 1_795_000_000.0
KINDS = ("active", "reserved", "scheduled")


def ev(kind, uuid="t1", ts=T0, host="w1@h", **fields):
    return {"type": kind, "uuid": uuid, "timestamp": ts, "hostname": host, "utcoffset": 0,
            "pid": 1, "clock": 1, **fields}


def heartbeat(host="w1@h", ts=T0):
    return {"type": "worker-heartbeat", "hostname": host, "timestamp": ts, "freq": 2.0, "active": 1}


def poll(at, *held, answered=("w1@h",), kinds=KINDS):
    """A round that started at ``at``: ``held`` are (kind, host, id, time_start)."""
    tasks = []
    for kind, host, uuid, start in held:
        entry = {"id": uuid, "name": "n", "args": [], "kwargs": {}, "time_start": start}
        tasks += held_tasks(kind, host, [{"eta": "2030-01-01T00:00:00", "request": entry}
                                         if kind == "scheduled" else entry])
    return TaskPoll(at, tasks=tuple(tasks), answered={kind: tuple(answered) for kind in kinds})


def running(s, uuid="t1", ts=T0, host="w1@h"):
    s.apply_events([ev("task-received", uuid, ts, host, name="n", args="()"),
                    ev("task-started", uuid, ts + 1, host)], received_at=ts + 1)
    return s.tasks[uuid]


def test_a_task_a_worker_lists_as_active_runs_again_though_its_events_said_success():
    """A redelivered task: its first run's success is older than the round the worker listed it in."""
    s = ClusterState()
    task = running(s)
    s.apply_events([ev("task-succeeded", ts=T0 + 2, result="1", runtime=1.0)], received_at=T0 + 2)
    s.apply_task_poll(poll(T0 + 10, ("active", "w1@h", "t1", T0 + 5)))
    assert (task.state, task.started, task.finished, task.runtime) == ("STARTED", T0 + 5, None, None)
    assert in_tab(task, "active") and not in_tab(task, "succeeded")
    # The second run's outcome is the task's.
    s.apply_events([ev("task-succeeded", ts=T0 + 11, result="2", runtime=6.0)], received_at=T0 + 11)
    assert (task.state, task.result) == ("SUCCESS", "2")


def test_an_event_newer_than_the_round_wins_over_the_reply():
    """The task finished after the round started: the reply saying active is the older word."""
    s = ClusterState()
    task = running(s)
    s.apply_events([ev("task-succeeded", ts=T0 + 12, result="1", runtime=1.0)], received_at=T0 + 12)
    s.apply_task_poll(poll(T0 + 10, ("active", "w1@h", "t1", T0 + 1)))
    assert task.state == "SUCCESS"


def test_the_hosts_clock_offset_is_allowed_for():
    """A worker whose clock is 30 s behind: its success at (its) T0+2 happened after the round."""
    s = ClusterState()
    s.apply_events([ev("task-received", ts=T0 - 30, name="n"), ev("task-started", ts=T0 - 29)],
                   received_at=T0 + 1)
    s.apply_events([ev("task-succeeded", ts=T0 - 20, result="1", runtime=1.0)], received_at=T0 + 10)
    s.apply_task_poll(poll(T0 + 9, ("active", "w1@h", "t1", T0 - 29)))
    assert s.tasks["t1"].state == "SUCCESS"


def test_a_task_its_worker_stops_listing_is_lost_on_the_second_round_and_keeps_its_history():
    s = ClusterState()
    task = running(s)
    s.apply_task_poll(poll(T0 + 10))
    assert task.state == "STARTED" and not s.lost_now  # one round: its events may be in flight
    s.apply_task_poll(poll(T0 + 12))
    assert s.lost_now == ["t1"] and task.state == LOST
    assert (task.lost.cause, task.lost.worker, task.lost.since, task.lost.was) == (NOT_HELD, "w1@h", T0 + 10, "STARTED")
    assert "w1@h no longer holds it" in task.lost.reason()
    assert in_tab(task, "failed") and not any(in_tab(task, tab) for tab in ("active", "reserved", "scheduled"))
    assert [what for _, what in timeline(task)][:2] == ["received", "started"]
    assert timeline(task)[-1][1].startswith("lost: worker w1@h no longer holds it")
    assert lost_ids(s) == ["t1"]
    # Its outcome, whenever it comes, is the real state; the loss stays as history.
    s.apply_events([ev("task-succeeded", ts=T0 + 3, result="1", runtime=2.0)], received_at=T0 + 13)
    assert task.state == "SUCCESS" and task.lost is not None and lost_ids(s) == []
    assert s.names["n"].succeeded == 1


def test_a_worker_that_did_not_answer_in_full_says_nothing():
    s = ClusterState()
    task = running(s)
    for i in range(4):  # its reserved reply never came; another worker answered everything
        s.apply_task_poll(poll(T0 + 10 + i, kinds=("active", "scheduled")))
        s.apply_task_poll(poll(T0 + 10.5 + i, answered=("w2@h",)))
    assert task.state == "STARTED"


def test_a_task_that_moved_between_two_rounds_is_not_lost():
    """Reserved at the first round, started between the two: its worker's replies raced its move."""
    s = ClusterState()
    s.apply_events([ev("task-received", ts=T0, name="n")], received_at=T0)
    task = s.tasks["t1"]
    s.apply_task_poll(poll(T0 + 10))
    s.apply_events([ev("task-started", ts=T0 + 11)], received_at=T0 + 11)
    s.apply_task_poll(poll(T0 + 12))
    assert task.state == "STARTED"
    s.apply_task_poll(poll(T0 + 14, ("active", "w1@h", "t1", T0 + 11)))
    s.apply_task_poll(poll(T0 + 16, ("active", "w1@h", "t1", T0 + 11)))
    assert task.state == "STARTED"


def test_an_older_event_does_not_bring_a_lost_task_back_a_newer_one_does():
    s = ClusterState()
    task = running(s)
    s.apply_task_poll(poll(T0 + 10))
    s.apply_task_poll(poll(T0 + 12))
    s.apply_events([ev("task-started", ts=T0 + 1)], received_at=T0 + 13)  # a duplicate, late
    assert task.state == LOST
    s.apply_events([ev("task-received", ts=T0 + 20, host="w2@h")], received_at=T0 + 20)  # redelivered
    assert (task.state, task.worker) == ("RECEIVED", "w2@h")


def test_a_lost_task_a_worker_lists_again_is_held_again():
    s = ClusterState()
    task = running(s)
    s.apply_task_poll(poll(T0 + 10))
    s.apply_task_poll(poll(T0 + 12))
    s.apply_task_poll(poll(T0 + 14, ("reserved", "w2@h", "t1", None), answered=("w1@h", "w2@h")))
    assert (task.state, task.worker) == ("RECEIVED", "w2@h")
    assert in_tab(task, "reserved")


def test_a_worker_without_heartbeats_loses_its_running_and_reserved_tasks_once():
    s = ClusterState()
    s.apply_events([heartbeat(ts=T0)], received_at=T0)
    task = running(s, ts=T0)
    s.apply_events([ev("task-received", "t2", T0, name="n")], received_at=T0 + 1)
    s.apply_events([ev("task-received", "t3", T0, name="n"), ev("task-succeeded", "t3", T0 + 1)],
                   received_at=T0 + 1)
    assert s.sweep_workers(T0 + 4.9) == []
    assert sorted(s.sweep_workers(T0 + 6)) == ["t1", "t2"]
    assert s.sweep_workers(T0 + 8) == []  # found once
    assert (task.state, task.lost.cause, task.lost.since, task.lost.at) == (LOST, NO_HEARTBEAT, T0, T0 + 6)
    assert "worker w1@h went offline (no heartbeat since" in task.lost.reason()
    assert task.lost.reason().endswith("while the task was running")
    assert s.tasks["t2"].lost.reason().endswith("while it held the task, not started")
    assert s.tasks["t3"].state == "SUCCESS"
    assert s.workers["w1@h"].down_cause(T0 + 8) == NO_HEARTBEAT
    document = snapshot.build(s, "redis://h", T0 + 8)
    (worker,) = document["workers"]
    assert (worker["online"], worker["state"], worker["lost"]) == (False, NO_HEARTBEAT, 2)
    assert document["stats"]["tasks_lost"] == 2
    lost = next(t for t in document["tasks"] if t["id"] == "t1")["lost"]
    assert (lost["cause"], lost["worker"], lost["since"]) == (NO_HEARTBEAT, "w1@h", snapshot.iso(T0))
    # It comes back: online again, and found lost again only if it goes again.
    s.apply_events([heartbeat(ts=T0 + 20)], received_at=T0 + 20)
    assert s.sweep_workers(T0 + 21) == [] and s.workers["w1@h"].gone_at is None


def test_a_warm_shutdown_is_told_apart_and_what_it_finished_is_not_lost():
    s = ClusterState()
    s.apply_events([heartbeat(ts=T0)], received_at=T0)
    running(s, ts=T0)
    s.apply_events([ev("task-received", "t2", T0, name="n"), ev("task-received", "t3", T0, name="n"),
                    ev("task-started", "t3", T0 + 1),
                    {"type": "worker-offline", "hostname": "w1@h", "timestamp": T0 + 2}], received_at=T0 + 2)
    assert s.workers["w1@h"].down_cause(T0 + 2.5) == SHUT_DOWN
    # It says so before it finishes what it runs: only what it held without running is lost.
    assert s.sweep_workers(T0 + 2.5) == ["t2"]
    assert s.tasks["t2"].lost.reason().startswith("worker w1@h shut down (at ")
    s.apply_events([ev("task-succeeded", ts=T0 + 3, result="1", runtime=1.0),
                    ev("task-succeeded", "t3", T0 + 3, result="1", runtime=1.0)], received_at=T0 + 3)
    assert [s.tasks[t].state for t in ("t1", "t3")] == ["SUCCESS", "SUCCESS"]
    assert s.tasks["t1"].lost is None


def test_pings_keep_a_worker_online_only_while_it_answers():
    s = ClusterState()
    s.apply_pong("w1@h", T0)
    assert s.workers["w1@h"].online(T0 + 4)
    assert not s.workers["w1@h"].online(T0 + 6)
    assert s.workers["w1@h"].down_cause(T0 + 6) == "no answer"


def test_the_workers_view_says_why_a_worker_is_offline():
    from taskwatch.ui.widgets.workers_table import _cells

    s = ClusterState()
    s.apply_events([heartbeat("w1@h", T0), heartbeat("w2@h", T0)], received_at=T0)
    s.apply_events([{"type": "worker-offline", "hostname": "w2@h", "timestamp": T0 + 1}], received_at=T0 + 1)
    shown = {host: _cells(worker, T0 + 3, 20)["state"].plain for host, worker in s.workers.items()}
    assert shown == {"w1@h": "online", "w2@h": "shut down"}
    assert _cells(s.workers["w1@h"], T0 + 10, 20)["state"].plain == "no heartbeat"


def test_a_terminated_task_still_listed_while_its_pool_child_dies_stays_revoked():
    """Terminate: the worker sends task-revoked at once and lists the task as active
    until it has reaped the child. A run that started after the revoke is a new one."""
    s = ClusterState()
    task = running(s)
    s.apply_events([ev("task-revoked", ts=T0 + 3, terminated=True, signum=15)], received_at=T0 + 3)
    s.apply_task_poll(poll(T0 + 5, ("active", "w1@h", "t1", T0 + 1)))
    assert task.state == "REVOKED"
    for at in (T0 + 7, T0 + 9):
        s.apply_task_poll(poll(at))
    assert task.state == "REVOKED" and task.lost is None
    s.apply_task_poll(poll(T0 + 20, ("active", "w2@h", "t1", T0 + 15), answered=("w1@h", "w2@h")))
    assert (task.state, task.worker) == ("STARTED", "w2@h")
