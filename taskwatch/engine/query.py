"""Selecting and ordering what the views show: plain functions over the state."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from taskwatch.engine.entities import LOST, Attempt
from taskwatch.engine.state import (
    FAILURE,
    FINAL,
    RECEIVED,
    REJECTED,
    RETRY,
    REVOKED,
    SENT,
    STARTED,
    SUCCESS,
    ClusterState,
    Task,
)

# Task view tabs, in order. Each is (id, label, predicate).
TABS = ("active", "reserved", "scheduled", "failed", "succeeded", "all")
TAB_LABELS = {
    "active": "Active", "reserved": "Reserved", "scheduled": "Scheduled",
    "failed": "Failed", "succeeded": "Succeeded", "all": "All",
}


NAME_FILTER = "name="  # a filter of this form matches a task name exactly
#: tasks matched between two calls of a selection's checkpoint
CHUNK = 4096


class Superseded(Exception):  # noqa: N818 - a signal, not an error
    """A selection's checkpoint said its answer is no longer wanted."""


def in_tab(task: Task, tab: str) -> bool:
    state = task.state
    if tab == "all":
        return True
    if tab == "active":
        return state is STARTED
    if tab == "reserved":
        return (state is RECEIVED or state is SENT or state is RETRY) and not task.eta
    if tab == "scheduled":
        return state not in FINAL and state is not STARTED and state is not LOST and bool(task.eta)
    if tab == "failed":  # and lost: no worker holds it, no outcome came (see engine/reconcile.py)
        return state is FAILURE or state is REVOKED or state is REJECTED or state is LOST
    if tab == "succeeded":
        return state is SUCCESS
    raise ValueError(tab)


def shown_args(text: str | None, exact: bool) -> str:
    """Arguments as Celery's own reprs show them, whatever their source.

    Exact arguments (from inspect or the result backend) are kept as JSON,
    which a later retry can rebuild losslessly; shown next to event reprs
    (``(7, 'pdf')``) they would read ``[7, "pdf"]``. Shown as the Python
    repr of the decoded values instead (json.loads is safe on any input; a
    value cut at the length bound stays as it is).
    """
    if not text or not exact:
        return text or ""
    try:
        return repr(tuple(value) if isinstance(value := json.loads(text), list) else value)
    except (ValueError, RecursionError):  # cut short, or nested beyond reason
        return text


def matches(task: Task, needle: str) -> bool:
    """Case-insensitive substring over name, id, worker, args, kwargs, exception."""
    for value in (task.name, task.uuid, task.worker, task.args, task.kwargs, task.exception, task.queue):
        if value is not None and needle in value.lower():
            return True
    return False


def _tab_states(tab: str, states: set[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The states that put a task in ``tab``: (without an ETA, with an ETA).

    ``in_tab`` decides on a task's state and whether it has an ETA, nothing
    else; asking it once per state present makes a pass over 100k tasks a
    set lookup per task instead of a function call.
    """
    probe = Task("")
    plain, timed = set(), set()
    for state in states:
        probe.state = state
        probe.eta = None
        if in_tab(probe, tab):
            plain.add(state)
        probe.eta = "eta"
        if in_tab(probe, tab):
            timed.add(state)
    return frozenset(plain), frozenset(timed)


def select_tasks(state: ClusterState, tab: str = "all", needle: str = "", limit: int | None = None) -> list[str]:
    """Ids of the tasks in ``tab`` matching ``needle``, newest first.

    "Newest" is first seen: the state keeps that order (backfilled tasks
    put in place once, see ``ClusterState.ordered_tasks``), so no sort per
    call is needed however many tasks there are. A needle ``name=NAME`` selects
    the tasks of exactly that name (Enter on the task names view).
    """
    chosen = _filtered(_in_tab(_newest_first(state), tab), needle)
    if limit is not None:
        chosen = chosen[:limit]
    return [task.uuid for task in chosen]


def tab_counts(state: ClusterState) -> dict[str, int]:
    return _counts(_newest_first(state))


def select_with_counts(
    state: ClusterState, tab: str = "all", needle: str = "",
    checkpoint: Callable[[], bool] | None = None,
) -> tuple[list[str], dict[str, int], dict[str, int] | None]:
    """What the tasks view shows on each refresh, in one pass over the tasks:
    the ids of ``tab`` matching ``needle`` (newest first), every tab's count,
    and, with a needle, every tab's count of the tasks it matches (None without).

    The needle is matched once per task, whatever the tab: the tab's ids and
    the filtered counts are both taken from those matches. ``checkpoint`` is
    called every :data:`CHUNK` tasks matched (it may wait, to give way to the
    screen); when it returns True the selection is abandoned (:class:`Superseded`).
    """
    tasks = _newest_first(state)
    if checkpoint is not None and checkpoint():
        raise Superseded
    totals = _counts(tasks)
    if not needle:
        return [task.uuid for task in _in_tab(tasks, tab)], totals, None
    if checkpoint is None:
        matched = _filtered(tasks, needle)
    else:
        matched = []
        for start in range(0, len(tasks), CHUNK):
            if checkpoint():
                raise Superseded
            matched += _filtered(tasks[start:start + CHUNK], needle)
    return [task.uuid for task in _in_tab(matched, tab)], totals, _counts(matched)


def _newest_first(state: ClusterState) -> list[Task]:
    tasks = state.ordered_tasks()
    tasks.reverse()
    return tasks


def _filtered(tasks: list[Task], needle: str) -> list[Task]:
    if needle.startswith(NAME_FILTER):
        exact_name = needle[len(NAME_FILTER):]
        return [task for task in tasks if task.name == exact_name]
    if not needle:
        return tasks
    needle = needle.lower()
    return [task for task in tasks if matches(task, needle)]


def _in_tab(tasks: list[Task], tab: str) -> list[Task]:
    if tab == "all":
        return tasks
    plain, timed = _tab_states(tab, {task.state for task in tasks})
    return [task for task in tasks if task.state in (timed if task.eta else plain)]


def _counts(tasks: list[Task]) -> dict[str, int]:
    by_kind = Counter((task.state, not task.eta) for task in tasks)
    counts = dict.fromkeys(TABS, 0)
    counts["all"] = len(tasks)
    states = {kind for kind, _ in by_kind}
    for tab in TABS[:-1]:
        plain, timed = _tab_states(tab, states)
        counts[tab] = sum(n for (kind, no_eta), n in by_kind.items() if kind in (plain if no_eta else timed))
    return counts


def running_by_name(state: ClusterState, checkpoint: Callable[[], object] | None = None) -> Counter[str]:
    """How many tasks of each name are running now (started, not finished).

    ``checkpoint`` is called every :data:`CHUNK` tasks (it may wait, to give
    way to a key): one pass over 100k tasks is 10-20 ms of the GIL."""
    if checkpoint is not None:
        checkpoint()  # before the copy: a key being drawn waits for no list of every task
    with state.lock:
        tasks = list(state.tasks.values())
    counts: Counter[str] = Counter()
    for start in range(0, len(tasks), CHUNK):
        if start and checkpoint is not None:
            checkpoint()
        counts.update(task.name for task in tasks[start:start + CHUNK]
                      if task.state is STARTED and task.name is not None)
    return counts


def timeline(task: Task, attempts: Sequence[Attempt] = ()) -> list[tuple[float, str]]:
    """When what happened to the task, oldest first: each attempt that ended in
    a retry (with the exception it retried on), then the latest one and the outcome."""
    points: list[tuple[float | None, str]] = [(task.sent, "sent")]
    for number, attempt in enumerate(attempts, 1):
        points += [
            (attempt.received, f"received (attempt {number})"),
            (attempt.started, f"started (attempt {number})"),
            (attempt.retried, f"retried (attempt {number}): {attempt.exception or '?'}"),
        ]
    # The task's own received/started are its latest attempt's, unless no
    # later attempt was seen (then they are the retried one's, listed above).
    last = attempts[-1].retried if attempts else None
    latest = f" (attempt {len(attempts) + 1})" if attempts else ""
    for ts, what in ((task.received, "received"), (task.started, "started")):
        if ts is not None and (last is None or ts > last):
            points.append((ts, what + latest))
    if task.lost is not None:  # kept once it reported again: what happened in between
        points.append((task.lost.at, f"lost: {task.lost.reason()}"))
    points.append((task.finished, task.state.lower() if task.state in FINAL else "finished"))
    return sorted((ts, what) for ts, what in points if ts is not None)


def parse_eta(value: str | None) -> float | None:
    """An ETA or expiry as Celery sends it (ISO 8601; naive means UTC) -> epoch seconds."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def elapsed(task: Task, now: float | None = None) -> float | None:
    """Runtime when finished, runtime so far when running.

    Celery reports a runtime only with task-succeeded; for a failed (or
    revoked, or retried) task it is the time from started to finished.
    """
    if task.started is not None and task.state is STARTED and task.runtime is None:
        return max(0.0, (time.time() if now is None else now) - task.started)
    return runtime(task)


def runtime(task: Task) -> float | None:
    """How long a task ran: Celery's own figure (task-succeeded), else started to finished.

    The one rule for the TUI and ``snapshot``; None while it has not finished.
    """
    if task.runtime is not None:
        return task.runtime
    if task.started is not None and task.finished is not None and task.finished >= task.started:
        return task.finished - task.started
    return None
