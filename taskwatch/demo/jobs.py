"""Job functions for the demo APScheduler process (referenced as "module:function").

Each job hands work to the Celery cluster, so its effect shows up in taskwatch.
"""

from __future__ import annotations

import logging

from taskwatch.demo.app import app

log = logging.getLogger(__name__)


def check_heartbeat(url: str) -> str:
    """Every 20 s: ask a worker to probe a service."""
    result = app.send_task("monitoring.ping_service", args=[url])
    log.info("heartbeat probe of %s sent as %s", url, result.id)
    return str(result.id)


def nightly_cleanup(max_age_days: int = 30) -> str:
    """Daily at 03:00 UTC: a slow housekeeping task."""
    result = app.send_task("tasks.crunch_numbers", args=[5], kwargs={})
    log.info("cleanup of data older than %d days sent as %s", max_age_days, result.id)
    return str(result.id)


def warm_report_cache(report_ids: list[int]) -> list[str]:
    """Once, shortly after start: pre-render a few reports."""
    ids = [str(app.send_task("reports.process_report", args=[rid, "pdf"]).id) for rid in report_ids]
    log.info("cache warm-up sent %d reports", len(ids))
    return ids


_feed_runs = 0


def sync_partner_feed(partner: str) -> int:
    """Every 30 s: pull a partner's feed; every third pull the partner times out."""
    global _feed_runs
    _feed_runs += 1
    if _feed_runs % 3 == 0:
        raise ConnectionError(f"{partner} feed timed out after 10 s")
    return _feed_runs
