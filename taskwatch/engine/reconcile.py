"""What the workers say wins: inspect rounds reconciled with the events, and workers that die.

Events are lost, duplicated and reordered; a worker's ``inspect`` reply is its
own word on what it holds, given after the round started. So, each round
(:meth:`ClusterState.apply_task_poll`):

* a task a worker lists is running (``active``) or waiting there
  (``reserved``, ``scheduled``), whatever the events said before the round
  started: a redelivered task whose first run succeeded runs again. An event
  newer than the round's start is newer than the reply, and is left alone;
  a revoked task runs again only if the run listed started after the revoke
  (a terminated task stays listed as active until its pool child is gone);
* a running or received task that its worker, answering in full (all three
  kinds), no longer lists in two rounds in a row, and that no event moved
  since before the first of them, is :data:`LOST` (two rounds, because a task
  that finished during a round has its events still in flight).

And each round (:func:`sweep_workers`), the running and received tasks of a
worker found offline (no heartbeat, no answer) are :data:`LOST`, once, when
it is found so. A worker that shut down (``worker-offline``: a warm
shutdown) loses only the tasks it held without running them (the broker
hands them out again): it sends worker-offline first and then finishes the
tasks it runs, whose outcome events follow.

A lost task is not final: any later event, reply or stored result replaces
it, and its ``lost`` record stays as history. Its ``state_ts`` stays the
time of its last event, so an older event arriving late does not bring it
back. Event times are the workers' clocks: each host's measured clock offset
(see ``ClusterState._behind``) brings them to this machine's before they are
compared with a round's start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskwatch.engine.entities import (
    FINAL,
    LOST,
    NOT_HELD,
    RECEIVED,
    REVOKED,
    SHUT_DOWN,
    STARTED,
    Lost,
    Task,
    rank,
)
from taskwatch.engine.values import moment
from taskwatch.records import TASK_KINDS, HeldTask, TaskPoll
from taskwatch.text import clean

if TYPE_CHECKING:
    from taskwatch.engine.state import ClusterState


def before_round(state: ClusterState, task: Task, round_start: float) -> bool:
    """The task's latest event happened (on this machine's clock) before ``round_start``."""
    base = state._offsets.get(task.worker or "")
    return task.state_ts + (base[0] if base else 0.0) < round_start


def apply_held(state: ClusterState, task: Task, held: HeldTask, round_start: float) -> None:
    """A task a worker listed in a round that started at ``round_start``: the worker's word."""
    wanted = STARTED if held.kind == "active" else RECEIVED
    current = task.state
    if current is wanted:
        return
    start = moment(held.time_start)
    forward = current not in FINAL and current is not LOST and rank(current) < rank(wanted)
    if not forward:
        if not before_round(state, task, round_start):
            return  # an event newer than the round's start is newer than the reply
        if current is REVOKED and wanted is STARTED and (start is None or start <= task.state_ts):
            return  # terminated: the worker says task-revoked, then lists it until the pool child is gone
        if current in FINAL:  # run again (redelivered): the earlier outcome is not this run's
            task.finished = task.runtime = None
        if wanted is STARTED and start is not None:
            task.started = start
    elif wanted is STARTED and task.started is None:
        task.started = start
    task.state = wanted
    task.state_ts = max(task.state_ts, start or 0.0)
    state._missing.pop(task.uuid, None)


def reconcile_absent(state: ClusterState, poll: TaskPoll, held_ids: set[str]) -> list[str]:
    """Running and received tasks that workers answering in full no longer list:
    lost on the second such round in a row. Returns the ids found lost."""
    answered = [set(poll.answered.get(kind, ())) for kind in TASK_KINDS]
    hosts = {clean(h, 200, single_line=True) for h in set.intersection(*answered)} if answered else set()
    missing = state._missing
    still: dict[str, float] = {}
    lost: list[str] = []
    if hosts:
        for task in state.tasks.values():
            if ((task.state is STARTED or task.state is RECEIVED) and task.worker in hosts
                    and task.uuid not in held_ids and before_round(state, task, poll.started_at)):
                first = missing.get(task.uuid)
                if first is not None and first < poll.started_at and before_round(state, task, first):
                    mark_lost(state, task, Lost(poll.started_at, task.worker, NOT_HELD, first, task.state))
                    lost.append(task.uuid)
                else:
                    still[task.uuid] = first if first is not None else poll.started_at
    state._missing = still
    return lost


def sweep_workers(state: ClusterState, now: float) -> list[str]:
    """Workers found offline since the last sweep: their running and received
    tasks are lost. Returns the ids found lost."""
    gone: dict[str, tuple[str, float]] = {}
    for worker in state.workers.values():
        cause = worker.down_cause(now)
        if cause is None:
            worker.gone_at = None
            continue
        seen = worker.last_seen()
        if worker.gone_at is not None or seen is None:
            continue
        worker.gone_at = now
        gone[worker.hostname] = (cause, worker.offline_at if cause == SHUT_DOWN and worker.offline_at else seen)
    lost: list[str] = []
    if gone:
        for task in state.tasks.values():
            if (task.state is STARTED or task.state is RECEIVED) and task.worker in gone:
                cause, since = gone[task.worker]
                if cause == SHUT_DOWN and task.state is STARTED:
                    continue  # a warm shutdown says so first, then finishes what runs: its events follow
                mark_lost(state, task, Lost(now, task.worker, cause, since, task.state))
                lost.append(task.uuid)
    return lost


def mark_lost(state: ClusterState, task: Task, lost: Lost) -> None:
    task.lost = lost
    task.state = LOST
    state._missing.pop(task.uuid, None)
    state._lost.add(task.uuid)


def lost_ids(state: ClusterState) -> list[str]:
    """Tasks lost now (not since replaced by a real state); forgets the others."""
    tasks = state.tasks
    state._lost = {u for u in state._lost if u in tasks and tasks[u].state is LOST}
    return list(state._lost)
