"""Backfilled tasks sort newest first like the live ones (issue 15 item 4)."""

from taskwatch.engine import snapshot
from taskwatch.engine.query import select_tasks
from taskwatch.engine.state import ClusterState
from taskwatch.records import StoredResult

T0 = 1_795_000_000.0


def received(uuid, ts):
    return {"type": "task-received", "uuid": uuid, "timestamp": ts, "hostname": "w@h", "name": "n",
            "args": "()"}


def test_backfilled_tasks_sort_newest_first_after_the_live_ones():
    s = ClusterState()
    s.apply_events([received("live-1", T0 + 100), received("live-2", T0 + 101)])
    # The result backend answers newest first, after the first live events arrived.
    for uuid, done in (("old-3", T0 + 50), ("old-2", T0 + 40), ("old-1", T0 + 30)):
        s.apply_stored_result(StoredResult(task_id=uuid, status="SUCCESS", result="1", date_done=done),
                              recovered=False)
    s.apply_events([received("live-3", T0 + 102)])
    expected = ["live-3", "live-2", "live-1", "old-3", "old-2", "old-1"]
    assert select_tasks(s, "all") == expected
    assert select_tasks(s, "succeeded") == ["old-3", "old-2", "old-1"]
    document = snapshot.build(s, "redis://x", T0 + 200)  # the JSON agrees
    assert [t["id"] for t in document["tasks"]] == expected
    assert list(s.tasks) == expected[::-1]  # eviction takes the oldest first: the backfilled ones

