"""A Celery app with the seed-style beat schedule, for real ``celery beat`` runs in tests.

The broker comes from ``CELERY_BROKER_URL`` (a private Redis per test).
``TASKWATCH_TEST_REDBEAT=1`` points RedBeat at the same Redis (and drops the
solar entry, which RedBeat cannot store). Beat syncs
its schedule file after every send (``beat_sync_every = 1``) so a test sees
each run in the file at once, and wakes at least every second.
"""

from __future__ import annotations

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab, solar

app = Celery("beat_app", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:1/0"))
app.conf.update(
    timezone="Europe/Berlin",
    enable_utc=True,
    beat_sync_every=1,
    beat_max_loop_interval=1,
    task_default_queue="celery",
    task_routes={"reports.*": {"queue": "reports"}},
    beat_schedule={
        "every-minute": {"task": "monitoring.heartbeat", "schedule": 60.0},
        "daily-report": {"task": "reports.daily", "schedule": crontab(hour=8, minute=0),
                         "args": ("sales",)},
        "monday-digest": {"task": "emails.digest",
                          "schedule": crontab(hour=9, minute=0, day_of_week="mon"),
                          "options": {"queue": "emails"}},
        "quarter-hour": {"task": "monitoring.sweep", "schedule": timedelta(minutes=15)},
        "monthly-invoices": {"task": "billing.invoices",
                             "schedule": crontab(minute=0, hour=0, day_of_month="1"),
                             "kwargs": {"month": "previous"}},
        "tick": {"task": "monitoring.tick", "schedule": 2.0},
        "berlin-sunrise": {"task": "lights.off", "schedule": solar("sunrise", 52.5, 13.4)},
    },
)
if os.environ.get("TASKWATCH_TEST_REDBEAT"):
    app.conf.redbeat_redis_url = app.conf.broker_url
    app.conf.redbeat_key_prefix = "rb-test:"
    app.conf.redbeat_lock_timeout = 30
    # RedBeat's JSON encoder knows intervals, crontabs and its rrule, not solar.
    del app.conf.beat_schedule["berlin-sunrise"]
