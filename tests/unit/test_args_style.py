"""Positional arguments read in one style, Celery's tuples, whatever sent them (issue 15 item 8)."""

import pytest

from taskwatch.engine.state import ClusterState
from taskwatch.records import StoredResult
from taskwatch.reprs import tuple_style

T0 = 1_795_000_000.0


@pytest.mark.parametrize(("text", "shown"), [
    ("[989, 'csv']", "(989, 'csv')"),
    ("['https://api.example.com/health']", "('https://api.example.com/health',)"),
    ("[]", "()"),
    ("[5,]", "(5,)"),
    ("[[1, 2], {3: (4,)}]", "([1, 2], {3: (4,)})"),
    ("['a]', \"b[\", 'it\\'s]', 'c\\\\']", "('a]', \"b[\", 'it\\'s]', 'c\\\\')"),
])
def test_a_whole_list_repr_reads_as_a_tuple(text, shown):
    assert tuple_style(text) == shown


@pytest.mark.parametrize("text", [
    "(265, 'xlsx')", "[1, 2, 'a long val…", "[1, 2", "[1] + [2]", "[1, (2]", "['unterminated]",
    "[1, 2]]", "'[1]'", "",
])
def test_anything_but_one_whole_list_stays_as_it_is(text):
    assert tuple_style(text) == text


def test_event_and_stored_reprs_are_converted_once_when_stored():
    s = ClusterState()
    s.apply_events([
        {"type": "task-sent", "uuid": "a", "timestamp": T0, "name": "r", "args": "[989, 'csv']"},
        {"type": "task-received", "uuid": "b", "timestamp": T0, "hostname": "w", "name": "r",
         "args": "(265, 'xlsx')"},
        {"type": "task-received", "uuid": "c", "timestamp": T0, "hostname": "w", "name": "r",
         "args": "[7, 'a very long value cut by the producer…"},
    ])
    s.apply_stored_result(StoredResult(task_id="d", status="SUCCESS", args="[2]"), recovered=False)
    assert [s.tasks[i].args for i in "abcd"] == [
        "(989, 'csv')", "(265, 'xlsx')", "[7, 'a very long value cut by the producer…", "(2,)"]
