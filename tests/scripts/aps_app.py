"""A real APScheduler 3.x process for the tests, set up as a FastAPI app would.

    python tests/scripts/aps_app.py --store URL --runs FILE [--jobs classic] [--bridge REDIS_URL [--bridge-ttl S]]

An ``AsyncIOScheduler`` (timezone UTC) with one job store at ``--store``
(``redis://host:port/db``, ``sqlite:///file``, ``postgresql+psycopg2://...``),
built with APScheduler's own store classes as the user's app would. The job
set ``--jobs`` is added with ``replace_existing=True`` unless
``--no-add`` (then the store's jobs are run as they are). Every run of a job
appends one JSON line ``{"job": id, "at": epoch}`` to ``--runs``: the tests'
proof that the scheduler ran it. Prints ``READY`` once started. SIGTERM
shuts it down.

Job functions are referenced as ``tests.scripts.aps_jobs:<name>`` so the
store holds ``module:qualname`` references, as real apps' stores do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger  # noqa: E402
from apscheduler.triggers.combining import AndTrigger, OrTrigger  # noqa: E402
from apscheduler.triggers.cron import CronTrigger  # noqa: E402
from apscheduler.triggers.interval import IntervalTrigger  # noqa: E402

JOBS = "tests.scripts.aps_jobs"


def job_store(url: str):  # noqa: ANN201 - an APScheduler store
    if url.startswith(("redis://", "rediss://")):
        from urllib.parse import parse_qsl, urlsplit

        from apscheduler.jobstores.redis import RedisJobStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        keys = {k: query[k] for k in ("jobs_key", "run_times_key") if k in query}
        return RedisJobStore(db=int(parts.path.lstrip("/") or 0), host=parts.hostname or "127.0.0.1",
                             port=parts.port or 6379, password=parts.password, **keys)
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    base, _, query = url.partition("?")
    table = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("tablename", "apscheduler_jobs")
    return SQLAlchemyJobStore(url=base, tablename=table)


def add_classic(scheduler: AsyncIOScheduler, now: datetime) -> None:
    """Interval, cron, date, calendar-interval and combined-trigger jobs."""
    add = scheduler.add_job
    add(f"{JOBS}:tick", IntervalTrigger(minutes=15, start_date=now - timedelta(minutes=3), timezone=UTC),
        id="every-15-min", name="Every 15 min", args=["every-15-min"], replace_existing=True)
    add(f"{JOBS}:tick", CronTrigger(hour=8, minute=0, day_of_week="mon-fri", timezone=UTC),
        id="digest-0800", name="08:00 digest", args=["digest-0800"], kwargs={"to": ["ops@example.com"]},
        misfire_grace_time=300, coalesce=True, max_instances=2, replace_existing=True)
    add(f"{JOBS}:tick", "date", run_date=now + timedelta(days=2), id="once", name="Once",
        args=["once"], replace_existing=True)
    add(f"{JOBS}:tick", CalendarIntervalTrigger(months=1, hour=0, minute=0, timezone=UTC),
        id="monthly", name="Monthly", args=["monthly"], replace_existing=True)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    add(f"{JOBS}:tick", AndTrigger([IntervalTrigger(hours=1, start_date=midnight, timezone=UTC),
                                    CronTrigger(day_of_week="sat,sun", hour="*", timezone=UTC)]),
        id="weekend-hourly", name="Hourly at weekends", args=["weekend-hourly"], replace_existing=True)
    add(f"{JOBS}:tick", OrTrigger([CronTrigger(hour=6, minute=30, timezone=UTC),
                                   CronTrigger(hour=18, minute=30, timezone=UTC)]),
        id="twice-daily", name="Twice daily", args=["twice-daily"], replace_existing=True)


def add_fast(scheduler: AsyncIOScheduler, now: datetime) -> None:
    """A job every second and one that raises every second (for history and live control)."""
    scheduler.add_job(f"{JOBS}:tick", IntervalTrigger(seconds=1, timezone=UTC), id="fast", name="Fast",
                      args=["fast"], replace_existing=True)
    scheduler.add_job(f"{JOBS}:boom", IntervalTrigger(seconds=1, timezone=UTC), id="boom", name="Boom",
                      args=["boom"], replace_existing=True)
    scheduler.add_job(f"{JOBS}:tick", IntervalTrigger(hours=1, start_date=now + timedelta(hours=1), timezone=UTC),
                      id="hourly", name="Hourly", args=["hourly"], replace_existing=True)


def add_control(scheduler: AsyncIOScheduler, now: datetime) -> None:
    """``fast``, plus ``custom``: hourly (Europe/Berlin), its args holding a user's object."""
    from zoneinfo import ZoneInfo

    from tests.scripts.aps_jobs import Payload

    add_fast(scheduler, now)
    berlin = ZoneInfo("Europe/Berlin")
    scheduler.add_job(f"{JOBS}:carry", IntervalTrigger(hours=1, start_date=now + timedelta(hours=1), timezone=berlin),
                      id="custom", name="Custom", args=["custom", Payload("secret", [1, 2, 3])],
                      replace_existing=True)


JOB_SETS = {"classic": add_classic, "fast": add_fast, "control": add_control,
            "none": lambda scheduler, now: None}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--jobs", default="classic", choices=sorted(JOB_SETS))
    parser.add_argument("--no-add", action="store_true")
    parser.add_argument("--bridge", default=None)
    parser.add_argument("--bridge-ttl", type=float, default=15.0)
    options = parser.parse_args()
    os.environ["TASKWATCH_TEST_RUNS"] = options.runs

    scheduler = AsyncIOScheduler(jobstores={"default": job_store(options.store)}, timezone=UTC)
    if not options.no_add:
        JOB_SETS[options.jobs](scheduler, datetime.now(UTC))
    if options.bridge:
        from taskwatch.bridge import attach

        attach(scheduler, options.bridge, ttl=options.bridge_ttl)
    scheduler.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("READY", flush=True)
    await stop.wait()
    scheduler.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main())
