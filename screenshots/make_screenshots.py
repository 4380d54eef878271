"""Regenerate the README's screenshots from the real app on the demo cluster.

    .venv/bin/python screenshots/make_screenshots.py

Starts the demo cluster (private Redis, real workers, beat, APScheduler,
traffic), lets it run for a little while, then drives the app headless at
100x30 (and the workers view at 80x24) and saves one SVG per view.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from taskwatch.config import Settings  # noqa: E402
from taskwatch.demo.cluster import DemoCluster  # noqa: E402
from taskwatch.sources.celery_app import load_app  # noqa: E402
from taskwatch.ui.app import TaskwatchApp  # noqa: E402
from taskwatch.ui.screens.confirm import Confirm  # noqa: E402
from taskwatch.ui.screens.task_detail import TaskDetail  # noqa: E402

WARM_UP = 25.0  # seconds of demo traffic before the first picture


async def until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("the demo cluster did not produce what the screenshots need in time")
        await pilot.pause(0.2)


async def shoot(cluster: DemoCluster, size: tuple[int, int], views: dict[str, str]) -> None:
    settings = Settings(broker_url=cluster.broker_url, result_backend=cluster.result_backend,
                        jobstores=(cluster.jobstore_url,), beat_schedule=str(cluster.beat_schedule),
                        profile="demo", refresh_interval=1.0)
    app = TaskwatchApp(settings, load_app("taskwatch.demo.app"))
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(app.state.workers) >= 2 and app.state.counters.events_received > 50)
        await pilot.pause(WARM_UP if size[0] > 80 else 3.0)
        for name, key in views.items():
            if name == "detail":
                await pilot.press("3")
                app.show_task_tab("failed")
                await pilot.pause(2.5)
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, TaskDetail))
                await pilot.pause(0.5)
            elif name == "confirm-retry":
                # The newest failure, retried: F, R, and this is the question (answered n).
                await pilot.press("F")
                await pilot.pause(2.5)
                await pilot.press("R")
                await until(pilot, lambda: isinstance(app.screen, Confirm))
                await pilot.pause(0.5)
            else:
                await pilot.press(key)
                await pilot.pause(2.5)
            app.save_screenshot(name + ".svg", str(HERE))
            print(f"wrote {HERE / (name + '.svg')}")
            if name == "detail":
                await pilot.press("escape")
            if name == "confirm-retry":
                await pilot.press("n")


def main() -> None:
    with DemoCluster() as cluster:
        asyncio.run(shoot(cluster, (100, 30), {
            "workers": "1", "queues": "2", "tasks": "3", "names": "4", "upcoming": "5", "detail": "",
            "confirm-retry": "",
        }))
        asyncio.run(shoot(cluster, (80, 24), {"workers-80x24": "1", "tasks-80x24": "3", "upcoming-80x24": "5"}))


if __name__ == "__main__":
    main()
