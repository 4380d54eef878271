"""The monitor on plain sources: gap -> repair with no broker.

The real sources are exercised against Redis, RabbitMQ and workers in
tests/integration; here they are plain objects of the shapes in
``taskwatch.sources.protocols``, so the monitor's own logic (what a gap
makes the next round ask, what it marks recovered) is pinned on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from taskwatch.engine.state import FAILURE, STARTED, SUCCESS
from taskwatch.monitor import Monitor
from taskwatch.records import ExactCall, HeldTask, ResultPage, StoredResult, TaskPoll, WorkerReport
from taskwatch.sources.factory import Sources

HOST = "w1@h"


@dataclass
class Status:
    connected: bool = True
    error: str | None = None
    since: float | None = None


class Receiver:
    queue_ttl = None

    def __init__(self, sink) -> None:
        self.sink = sink
        self.status = Status()

    def start(self) -> None: ...
    def stop(self, timeout: float = 2.0) -> None: ...
    def is_alive(self) -> bool: return True
    def backlog(self): return None


@dataclass
class Workers:
    held: list[HeldTask] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def poll_workers(self, expect=(), *, details=True, on_pong=None) -> WorkerReport:
        self.asked.append("workers")
        return WorkerReport(time.time(), pings={HOST: {"ok": "pong"}},
                            stats={HOST: {"pool": {"implementation": "celery.concurrency.prefork:TaskPool",
                                                   "max-concurrency": 2}}},
                            queues={HOST: ("celery",)})

    def poll_tasks(self, hosts) -> TaskPoll:
        self.asked.append("tasks")
        return TaskPoll(time.time(), tasks=tuple(self.held))

    def quick_round(self, hosts):
        return self.poll_workers(hosts), self.poll_tasks(hosts)

    def close(self) -> None: ...


@dataclass
class Backend:
    rows: dict[str, StoredResult]
    url: str = "redis://backend/1"
    asked_for: list[list[str]] = field(default_factory=list)

    def get(self, ids):
        self.asked_for.append(sorted(ids))
        return {i: self.rows[i] for i in ids if i in self.rows}

    def recent(self, limit, *, states=None):
        return sorted(self.rows.values(), key=lambda r: -(r.date_done or 0))[:limit]

    def scan(self, states):
        rows = tuple(r for r in self.rows.values() if r.status in states)
        yield ResultPage(rows, len(self.rows), True)

    def close(self) -> None: ...


def event(kind: str, uuid: str, ts: float, **fields) -> dict:
    return {"type": kind, "uuid": uuid, "hostname": HOST, "timestamp": ts, "clock": 1, **fields}


def test_a_gap_is_repaired_from_the_workers_and_the_result_backend():
    t0 = time.time() - 60
    backend = Backend({
        # finished while events were lost: we saw it received, never its end
        "t1": StoredResult("t1", SUCCESS, result="42", date_done=t0 + 20, name="tasks.add",
                           call=ExactCall((20, 22), {}), args="(20, 22)", kwargs="{}"),
        # never seen at all: failed inside the gap
        "t3": StoredResult("t3", FAILURE, exception="ValueError('x')", result="ValueError('x')",
                           date_done=t0 + 25, name="tasks.fail"),
        # finished long before the gap: not part of the repair
        "old": StoredResult("old", SUCCESS, date_done=t0 - 3600, name="tasks.add"),
    })
    workers = Workers(held=[HeldTask("active", HOST, "t4", name="tasks.slow",
                                     call=ExactCall(("a" * 3000,), {"deep": [[[[["x"]]]]]}),
                                     time_start=t0 + 22)])
    sources = Sources(broker_url="redis://fake/0", workers=workers, conf={},
                      events=Receiver, results=lambda: backend)
    monitor = Monitor(sources, backfill=0)
    state = monitor.state

    monitor.on_events([event("task-received", "t1", t0, name="tasks.add", args="(20, 22)", kwargs="{}"),
                       event("task-received", "t2", t0 + 1, name="tasks.add")], t0 + 1)
    monitor.on_disconnect(t0 + 10, "event connection lost: reset by peer")
    assert len(state.open_gaps()) == 1 and not state.gaps_to_repair()
    monitor.on_connect(t0 + 30)
    assert not state.open_gaps() and len(state.gaps_to_repair()) == 1

    report = monitor.poll()

    assert report.repaired == 2 and not report.errors
    assert not state.gaps_to_repair() and state.gaps[0].repaired
    t1, t3, t4 = state.tasks["t1"], state.tasks["t3"], state.tasks["t4"]
    assert (t1.state, t1.result, t1.recovered) == (SUCCESS, "42", True)
    assert (t3.state, t3.exception, t3.recovered, t3.name) == (FAILURE, "ValueError('x')", True, "tasks.fail")
    # What a worker holds comes back exact, and counts as filled in after the gap.
    assert (t4.state, t4.recovered, t4.call.args[0]) == (STARTED, True, "a" * 3000)
    assert "old" not in state.tasks
    # The backend was asked about exactly the tasks left unfinished.
    assert backend.asked_for == [["t1", "t2", "t4"]]
    assert state.names["tasks.fail"].failed == 1

    # The next round has nothing left to repair and asks the backend about no
    # task: only whether it answers (a key no result has).
    assert monitor.poll().repaired == 0 and backend.asked_for[1:] == [[Monitor.NO_SUCH_TASK]]


def test_no_gap_no_repair_and_reconnect_forgets_the_lag():
    workers = Workers()
    monitor = Monitor(Sources(broker_url="redis://fake/0", workers=workers, conf={}, events=Receiver),
                      backfill=0)
    now = time.time()
    monitor.on_events([event("task-received", "t0", now - 10, name="n")], now - 10)  # caught up: baseline
    monitor.on_events([event("task-received", "t1", now - 5, name="n")], now, drained=False)
    assert monitor.state.counters.lag > 4
    monitor.on_disconnect(now, "lost")
    monitor.on_connect(now + 1)
    assert monitor.state.counters.lag == 0.0
    report = monitor.poll()
    assert report.repaired == 0 and workers.asked == ["workers", "tasks"]
    assert monitor.state.workers[HOST].pool == "prefork"
