"""Empty views say what would fill them: -A for the beat schedule, a result backend for the past."""

from __future__ import annotations

import asyncio

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.ui.app import TaskwatchApp
from tests.ui.test_views import screen_text
from tests.waiting import pilot_wait_until


def _app(settings: Settings, celery_app=None) -> TaskwatchApp:
    monitor = Monitor.from_settings(settings, celery_app, events=False, backfill=0)
    return TaskwatchApp(settings, celery_app, monitor=monitor, poll=False)


def _shown(app: TaskwatchApp, selector: str) -> str:
    widget = app.screen.query_one(selector)
    return screen_text(app, selector) if widget.display else ""


def test_broker_alone_says_what_would_fill_upcoming_and_the_past():
    app = _app(Settings(broker_url="redis://unused.invalid:6379/0", refresh_interval=3600))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await pilot_wait_until(pilot, lambda: "-A APP" in _shown(app, "#upcoming-hint"),
                                   what="the Upcoming view to name -A")
            await pilot.press("3")
            await pilot_wait_until(pilot, lambda: "--result-backend" in _shown(app, "#tasks-hint"),
                                   what="the tasks view to name --result-backend")
            assert "-A APP" in _shown(app, "#tasks-hint")

    asyncio.run(scenario())


def test_with_an_app_and_a_result_backend_no_hint_shows():
    from taskwatch.sources.celery_app import load_app

    settings = Settings(app="taskwatch.demo.app", broker_url="redis://unused.invalid:6379/0",
                        result_backend="redis://unused.invalid:6379/1", refresh_interval=3600)
    app = _app(settings, load_app("taskwatch.demo.app"))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            app.read_schedules()  # poll=False: nothing is read unless asked
            table = app.query_one("#upcoming-table")
            await pilot_wait_until(pilot, lambda: table.row_count > 0, what="the demo's beat entries")
            assert _shown(app, "#upcoming-hint") == ""
            await pilot.press("3")
            await pilot.pause()
            assert _shown(app, "#tasks-hint") == ""

    asyncio.run(scenario())
