"""Without events, a worker's active count is what inspect said (issue 15 item 9)."""

from taskwatch.engine import snapshot
from taskwatch.engine.state import ClusterState
from taskwatch.records import TaskPoll, WorkerReport
from taskwatch.sources.inspect import Inspector, held_tasks

T0 = 1_795_000_000.0


def active(host, *ids):
    return [{"id": i, "name": "n", "args": [], "kwargs": {}, "hostname": host, "time_start": T0} for i in ids]


def test_snapshot_without_events_shows_the_active_count_inspect_reported():
    s = ClusterState()
    s.apply_worker_report(WorkerReport(T0, pings={"a@h": {"ok": "pong"}, "b@h": {"ok": "pong"}}))
    held = held_tasks("active", "a@h", active("a@h", "t1", "t2", "t3"))
    s.apply_task_poll(TaskPoll(T0, tasks=tuple(held), active_answered=("a@h", "b@h")))
    workers = {w["hostname"]: w["active"] for w in snapshot.build(s, "redis://x", T0 + 1)["workers"]}
    assert workers == {"a@h": 3, "b@h": 0}


def test_a_heartbeat_count_is_not_replaced_by_inspect():
    s = ClusterState()
    s.apply_events([{"type": "worker-heartbeat", "hostname": "a@h", "timestamp": T0, "active": 5, "freq": 2.0}],
                   received_at=T0)
    s.apply_task_poll(TaskPoll(T0, tasks=tuple(held_tasks("active", "a@h", active("a@h", "t1"))),
                               active_answered=("a@h",)))
    assert s.workers["a@h"].active == 5


def test_poll_tasks_says_which_workers_answered_active():
    inspector = Inspector("redis://127.0.0.1:1/0")
    replies = {"active": {"a@h": active("a@h", "t1"), "b@h": [], "c@h": {"error": "no"}},
               "reserved": {"a@h": [], "d@h": []}}
    inspector._ask = lambda command, hosts: replies.get(command, {})
    try:
        poll = inspector.poll_tasks(["a@h", "b@h", "c@h", "d@h"], kinds=("active", "reserved"))
    finally:
        inspector.close()
    assert sorted(poll.active_answered) == ["a@h", "b@h"]
