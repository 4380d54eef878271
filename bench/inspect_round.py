"""Inspect round latency with two live workers: taskwatch vs a stock Celery inspect.

    .venv/bin/python bench/inspect_round.py [--rounds 20]

Starts the demo's two workers on a private Redis. A round is ``ping`` +
``active`` + ``reserved`` + ``scheduled``. taskwatch targets the workers it
knows with ``destination`` and a reply ``limit``, sends the four at once and
returns when they have all answered; the stock way (``app.control.inspect()``, as Flower and
``celery inspect`` call it) waits out the timeout on every call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskwatch.demo.cluster import DemoCluster  # noqa: E402
from taskwatch.sources.inspect import Inspector  # noqa: E402


def wait_for_workers(inspector: Inspector, count: int, timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll = inspector.poll_workers(details=False)
        if len(poll.pings) >= count:
            return sorted(poll.pings)
        time.sleep(0.5)
    raise SystemExit("workers did not come up")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1.0, help="inspect timeout for both sides")
    args = parser.parse_args()
    with DemoCluster(producer=False) as cluster:
        inspector = Inspector(cluster.broker_url, timeout=args.timeout)
        hosts = wait_for_workers(inspector, 2)
        print(f"workers: {', '.join(hosts)}")
        inspector.quick_round(hosts)  # warm-up: opens each thread's broker connection once
        ours = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            workers, tasks = inspector.quick_round(hosts)
            ours.append(time.perf_counter() - t0)
            assert len(workers.pings) == 2 and not tasks.broker_error, (workers, tasks)
        inspector.close()

        from celery import Celery

        app = Celery("bench", broker=cluster.broker_url, set_as_current=False)
        theirs = []
        for _ in range(min(args.rounds, 5)):
            t0 = time.perf_counter()
            stock = app.control.inspect(timeout=args.timeout)
            stock.ping(), stock.active(), stock.reserved(), stock.scheduled()
            theirs.append(time.perf_counter() - t0)
    print(f"taskwatch round: p50 {statistics.median(ours) * 1000:.1f} ms, p95 {pct(ours, 0.95) * 1000:.1f} ms "
          f"({args.rounds} rounds)")
    print(f"stock inspect round: p50 {statistics.median(theirs) * 1000:.1f} ms ({len(theirs)} rounds)")
    print(f"ratio: {statistics.median(theirs) / statistics.median(ours):.0f}x faster")


if __name__ == "__main__":
    main()
