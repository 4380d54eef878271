"""The demo's APScheduler 3.x process: ``python -m taskwatch.demo.scheduler``.

Keeps four jobs (interval, cron, date; one fails now and then) in a Redis job store at
``TASKWATCH_JOBSTORE`` (``redis://host:port/db``), timezone UTC, with
taskwatch's bridge attached on the same Redis. SIGTERM,
SIGINT and SIGHUP shut it down cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from types import FrameType
from urllib.parse import urlsplit

from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.blocking import BlockingScheduler

DEFAULT_JOBSTORE_URL = "redis://127.0.0.1:6379/2"

#: Fixed ids, so a restart replaces the jobs instead of adding copies.
HEARTBEAT_JOB_ID = "demo-heartbeat"
CLEANUP_JOB_ID = "demo-nightly-cleanup"
WARMUP_JOB_ID = "demo-cache-warmup"
FEED_JOB_ID = "demo-partner-feed"
JOB_IDS = (HEARTBEAT_JOB_ID, CLEANUP_JOB_ID, WARMUP_JOB_ID, FEED_JOB_ID)

log = logging.getLogger("taskwatch.demo.scheduler")


def jobstore_from_url(url: str) -> RedisJobStore:
    """A `RedisJobStore` for ``redis://[:password@]host:port/db``."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a redis:// URL: {url!r}")
    db = int(parts.path.lstrip("/") or 0)
    return RedisJobStore(
        db=db,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        password=parts.password,
        ssl=parts.scheme == "rediss",
    )


def build_scheduler(jobstore_url: str, now: datetime | None = None) -> BlockingScheduler:
    """A scheduler with the three demo jobs (not started)."""
    now = now or datetime.now(UTC)
    scheduler = BlockingScheduler(
        jobstores={"default": jobstore_from_url(jobstore_url)}, timezone="UTC"
    )
    scheduler.add_job(
        "taskwatch.demo.jobs:check_heartbeat",
        "interval",
        seconds=20,
        id=HEARTBEAT_JOB_ID,
        name="Heartbeat probe",
        kwargs={"url": "https://status.example.com/heartbeat"},
        replace_existing=True,
    )
    scheduler.add_job(
        "taskwatch.demo.jobs:nightly_cleanup",
        "cron",
        hour=3,
        minute=0,
        id=CLEANUP_JOB_ID,
        name="Nightly cleanup",
        kwargs={"max_age_days": 30},
        replace_existing=True,
    )
    scheduler.add_job(
        "taskwatch.demo.jobs:warm_report_cache",
        "date",
        run_date=now + timedelta(minutes=10),
        id=WARMUP_JOB_ID,
        name="Report cache warm-up",
        args=[[3, 5, 8]],
        replace_existing=True,
    )
    scheduler.add_job(
        "taskwatch.demo.jobs:sync_partner_feed",
        "interval",
        seconds=30,
        id=FEED_JOB_ID,
        name="Partner feed sync",
        kwargs={"partner": "acme"},
        replace_existing=True,
    )
    return scheduler


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwinds BlockingScheduler.start() in the main thread; main() shuts down.
    raise SystemExit(0)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = os.environ.get("TASKWATCH_JOBSTORE", DEFAULT_JOBSTORE_URL)
    scheduler = build_scheduler(url)
    # taskwatch's bridge: each run recorded, and control from taskwatch at once.
    from taskwatch.bridge import attach

    bridge = attach(scheduler, url)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    log.info("scheduler starting, job store %s", url)
    try:
        scheduler.start()
    except SystemExit:
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        bridge.close()
    log.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
