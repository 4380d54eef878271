from datetime import UTC, datetime, timedelta

from celery import Celery
from celery.schedules import crontab

from taskwatch.engine.schedules import beat_entries


def test_beat_entries_next_runs():
    app = Celery("t", set_as_current=False)
    app.conf.timezone = "UTC"
    app.conf.beat_schedule = {
        "every-15s": {"task": "ping", "schedule": 15.0, "args": ("x",)},
        "every-5-min": {"task": "crunch", "schedule": crontab(minute="*/5", app=app)},
        "daily": {"task": "report", "schedule": crontab(hour=2, minute=10, app=app)},
        "hourly-td": {"task": "td", "schedule": timedelta(hours=1)},
        "[bold]x[/]\x1b[2J": {"task": "evil", "schedule": 60},
    }
    now = datetime(2026, 11, 27, 14, 3, 30, tzinfo=UTC).timestamp()
    entries = {e.name: e for e in beat_entries(app.conf, now)}
    assert entries["every-15s"].next_run == now + 15 and not entries["every-15s"].exact
    assert entries["every-15s"].args == "('x',)"
    five = datetime.fromtimestamp(entries["every-5-min"].next_run, UTC)
    assert (five.hour, five.minute, five.second) == (14, 5, 0) and entries["every-5-min"].exact
    daily = datetime.fromtimestamp(entries["daily"].next_run, UTC)
    assert (daily.day, daily.hour, daily.minute) == (28, 2, 10)
    assert entries["every-5-min"].schedule == "cron */5 * * * *"
    assert entries["hourly-td"].next_run == now + 3600
    assert "[bold]x[/]" in entries  # hostile names kept as text, escapes gone
    order = [e.name for e in beat_entries(app.conf, now)]
    assert order[0] == "every-15s" and order[-1] == "daily"
