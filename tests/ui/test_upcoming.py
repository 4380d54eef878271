"""The Upcoming view against a real celery beat: every column at 80x24, days and times to go, late when beat stops."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.sources.beat.file import BeatFileSource
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.format import run_day
from tests.integration.test_beat_sources import BEAT_APP, Beat, _beat_app
from tests.ui.test_views import screen_lines, screen_text
from tests.waiting import pilot_wait_until, wait_until


def test_upcoming_at_80x24_shows_every_entry_with_its_day_and_turns_late_when_beat_stops(fresh_redis, tmp_path: Path):
    beat = Beat(fresh_redis.url(0), tmp_path)
    try:
        source = BeatFileSource(str(beat.schedule), _beat_app().conf)

        def tick_ran_twice() -> bool:
            try:
                return any(j.name == "tick" and (j.total_runs or 0) >= 2 for j in source.jobs())
            except Exception:  # noqa: BLE001 - not written yet
                return False

        wait_until(tick_ran_twice, 60, what="beat to run tick twice", detail=beat.tail)
        settings = Settings(app=BEAT_APP, broker_url=fresh_redis.url(0), beat_schedule=str(beat.schedule),
                            refresh_interval=0.5)
        monitor = Monitor.from_settings(settings, _beat_app(), events=False, backfill=0)
        app = TaskwatchApp(settings, _beat_app(), monitor=monitor, poll=False)

        async def scenario() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press("5")
                app.read_schedules()
                await pilot_wait_until(pilot, lambda: len(monitor.schedules.rows()) >= 7
                                       and any("monday-digest" in line for line in screen_lines(app)),
                                       what="beat's entries in Upcoming")
                await pilot.pause()
                shown = "\n".join(screen_lines(app))
                header = next(line for line in shown.splitlines() if "Job" in line)
                for title in ("Job", "From", "Next run", "In"):
                    assert title in header, header
                now = time.time()
                rows = {r.job.name: r for r in monitor.schedules.rows()}
                for name in ("every-minute", "daily-report", "monday-digest", "quarter-hour", "monthly-invoices"):
                    row = rows[name]
                    line = next(line for line in shown.splitlines() if line.lstrip().startswith(name[:20]))
                    assert "beat" in line
                    # The next run with its day when it is not today (the same local-time rule as the cell).
                    assert run_day(row.job.next_run, now) in line, (name, line)
                    assert " in " in f" {line} "
                order = [r.job.next_run for r in monitor.schedules.rows() if r.job.next_run is not None]
                assert order == sorted(order)

                beat.stop()
                await pilot_wait_until(pilot, lambda: "⚠ beat late" in screen_text(app, "#status"),
                                       timeout=30, what="the header to say beat is late")
                await pilot_wait_until(pilot, lambda: any(
                    line.lstrip().startswith("tick") and "late" in line for line in screen_lines(app)),
                    what="the tick row to say late", detail=lambda: "\n".join(screen_lines(app)))

        asyncio.run(scenario())
    finally:
        beat.stop()


def test_a_store_error_in_the_hint_is_shown_as_text_not_markup():
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from taskwatch.ui.views.registry import _show_hint

    shown = "✖ redis://h/2: [bold]WRONGTYPE[/bold] [red]x"

    class Hint(App):
        def compose(self) -> ComposeResult:
            yield Static(id="hint")

    async def scenario() -> None:
        async with Hint().run_test() as pilot:
            hint = pilot.app.query_one("#hint", Static)
            _show_hint(hint, True, shown)
            await pilot.pause()
            assert str(hint.render()) == shown

    asyncio.run(scenario())
