"""Task selection for the tasks view: the fast paths agree with the plain definition."""

from __future__ import annotations

import random

from taskwatch.engine.query import TABS, in_tab, select_tasks, tab_counts
from taskwatch.engine.state import ClusterState, Task

STATES = ["PENDING", "SENT", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED",
          "PROGRESS"]  # the last: a custom state (update_state) as a result backend may report


def random_state(n: int = 3000, seed: int = 3) -> ClusterState:
    rng = random.Random(seed)
    state = ClusterState(max_tasks=10**6)
    for i in range(n):
        task = Task(f"id-{i:05d}")
        task.state = rng.choice(STATES)
        task.eta = rng.choice([None, None, "2026-11-27T14:07:05+00:00"])
        task.name = rng.choice(["shop.add", "reports.process_report", "emails.send_email"])
        task.args = f"({i},)"
        state.tasks[task.uuid] = task
    return state


def test_select_and_counts_agree_with_in_tab():
    state = random_state()
    newest_first = list(reversed(state.tasks.values()))
    for tab in TABS:
        expected = [t.uuid for t in newest_first if in_tab(t, tab)]
        assert select_tasks(state, tab) == expected, tab
    counts = tab_counts(state)
    assert counts == {tab: sum(in_tab(t, tab) for t in newest_first) for tab in TABS}
    assert counts["all"] == 3000 and all(counts[tab] > 0 for tab in TABS)


def test_filter_and_limit():
    state = random_state()
    reports = select_tasks(state, "failed", "PROCESS_REPORT")
    assert reports and all(state.tasks[i].name == "reports.process_report" for i in reports)
    assert all(state.tasks[i].state in ("FAILURE", "REVOKED", "REJECTED") for i in reports)
    assert select_tasks(state, "failed", "process_report", limit=5) == reports[:5]
    assert select_tasks(state, "all", "id-00042") == ["id-00042"]
    assert select_tasks(ClusterState(), "active") == [] and tab_counts(ClusterState())["all"] == 0


def test_name_filter_is_exact():
    state = random_state()
    extra = Task("id-x")
    extra.name, extra.state, extra.args = "shop.add_many", "SUCCESS", "('shop.add',)"
    state.tasks[extra.uuid] = extra
    exact = select_tasks(state, "all", "name=shop.add")
    assert exact and all(state.tasks[i].name == "shop.add" for i in exact)
    assert "id-x" in select_tasks(state, "all", "shop.add")  # the substring filter still finds it


def test_exact_arguments_are_shown_like_event_reprs():
    from taskwatch.engine.query import shown_args

    assert shown_args('[7, "pdf"]', exact=True) == "(7, 'pdf')"
    assert shown_args('{"a": [1, true, null]}', exact=True) == "{'a': [1, True, None]}"
    assert shown_args('["\\u001b]0;x\\u0007"]', exact=True) == "('\\x1b]0;x\\x07',)"  # escapes stay text
    assert shown_args('[1, "abc…', exact=True) == '[1, "abc…'  # cut at the bound: as stored
    assert shown_args("[" * 5000, exact=True) == "[" * 5000
    assert shown_args("(7, 'pdf')", exact=False) == "(7, 'pdf')" and shown_args(None, exact=True) == ""


def test_a_selection_gives_way_at_its_checkpoints_and_stops_once_superseded():
    import pytest

    from taskwatch.engine.query import CHUNK, Superseded, select_with_counts
    from taskwatch.engine.state import ClusterState

    state = ClusterState()
    state.apply_events([{"type": "task-received", "uuid": f"t{i}", "name": "a.b", "args": f"({i},)",
                         "hostname": "w@h", "timestamp": 1_800_000_000.0 + i} for i in range(CHUNK * 3)],
                       1_800_000_100.0)
    calls = []
    ids, _, filtered = select_with_counts(state, "all", "(1", lambda: calls.append(1) and False)
    assert len(calls) == 4 and ids == select_with_counts(state, "all", "(1")[0]
    asked = iter([False, False, True])
    with pytest.raises(Superseded):
        select_with_counts(state, "all", "(1", lambda: next(asked))


def test_counting_running_tasks_gives_way_every_chunk_and_counts_the_same():
    from taskwatch.engine.query import CHUNK, running_by_name

    state = random_state(n=CHUNK * 2 + 10)
    calls: list[int] = []
    counted = running_by_name(state, lambda: calls.append(1))
    assert len(calls) == 3
    started = [t.name for t in state.tasks.values() if t.state == "STARTED"]
    assert counted == {name: started.count(name) for name in set(started)}
    assert running_by_name(state) == counted
