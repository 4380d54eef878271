"""The demo Celery app: a small shop's background jobs, in the style of Celery's guide.

Broker and result backend come from ``CELERY_BROKER_URL`` and
``CELERY_RESULT_BACKEND``. Task bodies only sleep and roll dice: no real
network I/O. Some tasks fail, some retry, some are slow, so every pane of
taskwatch has something to show.
"""

from __future__ import annotations

import os
import random
import smtplib
import time
import uuid
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RESULT_BACKEND = "redis://127.0.0.1:6379/1"

app = Celery(
    "taskwatch_demo",
    broker=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
    backend=os.environ.get("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
)

app.conf.update(
    result_extended=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    task_track_started=True,
    result_expires=3600 * 24,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
    # beat writes its schedule file after every run (the default is every 3
    # minutes), so the Upcoming view's last and next runs are beat's own.
    beat_sync_every=1,
    task_routes={
        "emails.*": {"queue": "emails"},
        "reports.*": {"queue": "reports"},
        "monitoring.*": {"queue": "monitoring"},
    },
    beat_schedule={
        "ping-api-every-15s": {
            "task": "monitoring.ping_service",
            "schedule": 15.0,
            "args": ("https://api.example.com/health",),
        },
        "crunch-numbers-every-5-min": {
            "task": "tasks.crunch_numbers",
            "schedule": crontab(minute="*/5"),
            "args": (4,),
        },
        "nightly-sales-report": {
            "task": "reports.process_report",
            "schedule": crontab(hour=2, minute=10),
            "args": (1,),
            "kwargs": {"fmt": "pdf"},
        },
    },
)

REPORT_FORMATS = ("pdf", "csv", "xlsx")


# -- emails ----------------------------------------------------------------


def _deliver(to: str, subject: str) -> str:
    """Pretend to hand a message to an SMTP relay; it drops the line now and then."""
    if "@" not in to:
        raise ValueError(f"invalid recipient address: {to}")
    time.sleep(random.uniform(0.05, 0.4))
    if random.random() < 0.25:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    return f"<{uuid.uuid4().hex[:16]}@mail.example.com>"


@app.task(name="emails.send_email", bind=True, max_retries=3)
def send_email(self: Task, to: str, subject: str, body: str = "") -> dict[str, Any]:
    """Send one e-mail; a dropped SMTP connection is retried a few seconds later."""
    try:
        message_id = _deliver(to, subject)
    except smtplib.SMTPServerDisconnected as exc:
        raise self.retry(exc=exc, countdown=random.randint(2, 6)) from exc
    return {"to": to, "subject": subject, "message_id": message_id, "size": len(body)}


# -- reports ---------------------------------------------------------------


def _load_rows(report_id: int) -> list[dict[str, Any]]:
    if report_id % 17 == 0 or random.random() < 0.08:
        raise ValueError(f"report {report_id} has no rows")
    return [
        {"sku": f"SKU-{n:05d}", "qty": random.randint(1, 9)} for n in range(random.randint(20, 400))
    ]


def _render(rows: list[dict[str, Any]], fmt: str) -> int:
    if fmt not in REPORT_FORMATS:
        # Deliberately unescaped: a hostile format string lands in the traceback as is.
        raise ValueError(f"unsupported report format: {fmt}")
    if random.random() < 0.05:
        raise KeyError("unit_price")
    return max(1, len(rows) // 40)


@app.task(name="reports.process_report")
def process_report(report_id: int, fmt: str = "pdf") -> dict[str, Any]:
    """Build a report: slow (0.5-3 s) and sometimes it fails with a real traceback."""
    time.sleep(random.uniform(0.5, 3.0))
    rows = _load_rows(report_id)
    pages = _render(rows, fmt)
    return {
        "report_id": report_id,
        "format": fmt,
        "rows": len(rows),
        "pages": pages,
        "url": f"s3://reports/{report_id}.{fmt}",
    }


# -- monitoring and misc ---------------------------------------------------


@app.task(name="monitoring.ping_service")
def ping_service(url: str) -> dict[str, Any]:
    """Quick health probe, simulated."""
    latency = random.uniform(0.005, 0.2)
    time.sleep(latency)
    status = 503 if random.random() < 0.05 else 200
    return {"url": url, "status": status, "latency_ms": round(latency * 1000, 1)}


@app.task(name="tasks.add")
def add(x: float, y: float) -> float:
    return x + y


@app.task(name="tasks.crunch_numbers")
def crunch_numbers(seconds: float) -> dict[str, Any]:
    """A slow task: works in small steps for about `seconds` seconds."""
    deadline = time.monotonic() + seconds
    checksum = 0
    steps = 0
    while time.monotonic() < deadline:
        checksum = (checksum * 31 + sum(range(steps % 1000))) % 1_000_003
        steps += 1
        time.sleep(0.05)
    return {"seconds": seconds, "steps": steps, "checksum": checksum}
