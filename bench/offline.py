"""Offline: replay a worker-format event stream through taskwatch's engine and
through ``celery.events.state.State`` (what ``celery events`` and Flower use).

    .venv/bin/python bench/offline.py [--tasks 50000]

Both sides start from the same raw pub/sub payloads (kombu envelopes). The
peer decodes the way kombu does (json + base64 + json) and calls
``State.event`` per event through Celery's own ``EventReceiver``; taskwatch runs its receiver's decoder and
``ClusterState.apply_events`` per message batch. Also reported: apply-only
rates on already-decoded dicts. Prints events/s for each and the ratio.

Last, listing: what one refresh of a tasks list costs over the state built.
taskwatch selects the failed tab, newest first, and counts every tab (what
its tasks view does on each re-selection); the peer is
``State.tasks_by_time()`` filtered to failures (what ``celery events`` calls
to draw its list; Flower sorts the same way).
"""

from __future__ import annotations

import argparse
import base64
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stream import messages  # noqa: E402
from taskwatch.engine.state import ClusterState  # noqa: E402
from taskwatch.sources.event_decode import decode_envelope  # noqa: E402


def run_taskwatch(payloads: list[bytes]) -> tuple[float, ClusterState]:
    state = ClusterState(max_tasks=10**7)
    gc.collect()
    t0 = time.perf_counter()
    for data in payloads:
        events = decode_envelope(data)
        state.apply_events(events, 1_795_000_100.0)
    return time.perf_counter() - t0, state


def celery_receiver(state):
    """Celery's own EventReceiver, dispatching every event to ``State.event``."""
    from celery import Celery
    from celery.events.receiver import EventReceiver

    app = Celery("bench", broker="memory://", set_as_current=False)
    return EventReceiver(app.connection_for_read().default_channel, handlers={"*": state.event}, app=app)


def run_celery(payloads: list[bytes]):
    """The path `celery events` and Flower run for each Redis pub/sub message:
    kombu's envelope parse and body decode, then EventReceiver._receive
    (clock, timestamp localisation) and State.event per event."""
    from celery.events.state import State
    from kombu.serialization import loads as kombu_loads
    from kombu.utils.json import loads as kombu_json

    state = State(max_tasks_in_memory=10**7)
    receiver = celery_receiver(state)
    gc.collect()
    t0 = time.perf_counter()
    for data in payloads:
        envelope = kombu_json(data)
        body = kombu_loads(
            base64.b64decode(envelope["body"]), envelope["content-type"], envelope["content-encoding"],
            accept={"application/json"},
        )
        receiver._receive(body, None)
    return time.perf_counter() - t0, state


def apply_only(decoded: list[list[dict]]) -> tuple[float, float]:
    from celery.events.state import State

    ours = ClusterState(max_tasks=10**7)
    t0 = time.perf_counter()
    for events in decoded:
        ours.apply_events(events, 1_795_000_100.0)
    t_ours = time.perf_counter() - t0
    theirs = State(max_tasks_in_memory=10**7)
    t0 = time.perf_counter()
    for events in decoded:
        for event in events:
            theirs.event({**event, "local_received": 1_795_000_100.0})
    return t_ours, time.perf_counter() - t0


def listing(state: ClusterState, celery_state, repeat: int) -> tuple[float, float]:
    from taskwatch.engine.query import select_tasks, tab_counts

    def ours() -> None:
        select_tasks(state, "failed")
        select_tasks(state, "all")
        tab_counts(state)

    def theirs() -> None:
        tasks = celery_state.tasks_by_time()
        [uuid for uuid, task in tasks if task.state == "FAILURE"]
        list(tasks)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(ours), best(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stream = messages(args.tasks)
    payloads = [m.data for m in stream]
    total = sum(m.events for m in stream)
    print(f"stream: {args.tasks:,} tasks, {total:,} events in {len(payloads):,} messages")

    ours = min(run_taskwatch(payloads)[0] for _ in range(args.repeat))
    theirs = min(run_celery(payloads)[0] for _ in range(args.repeat))
    _, state = run_taskwatch(payloads)
    _, celery_state = run_celery(payloads)
    assert len(state.tasks) == args.tasks, len(state.tasks)
    assert len(celery_state.tasks) == args.tasks, len(celery_state.tasks)
    print(f"decode+apply  taskwatch {total / ours:>10,.0f} events/s   "
          f"celery State {total / theirs:>10,.0f} events/s   ratio {theirs / ours:.1f}x")

    decoded = [decode_envelope(p) for p in payloads]
    results = [apply_only(decoded) for _ in range(args.repeat)]
    t_ours = min(r[0] for r in results)
    t_theirs = min(r[1] for r in results)
    print(f"apply only    taskwatch {total / t_ours:>10,.0f} events/s   "
          f"celery State {total / t_theirs:>10,.0f} events/s   ratio {t_theirs / t_ours:.1f}x")

    t_ours, t_theirs = listing(state, celery_state, args.repeat)
    print(f"list {args.tasks:,} tasks (failed, all, tab counts)  taskwatch {t_ours * 1000:,.1f} ms   "
          f"celery State.tasks_by_time {t_theirs * 1000:,.1f} ms   ratio {t_theirs / t_ours:.1f}x")


if __name__ == "__main__":
    main()
