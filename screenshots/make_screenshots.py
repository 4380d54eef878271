"""Regenerate the README's screenshots from the real app on the demo cluster.

    .venv/bin/python screenshots/make_screenshots.py

Starts the demo cluster (private Redis, real workers, traffic), runs the app
headless at fixed sizes, waits until the workers are on screen and saves SVGs
next to this file.
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
from taskwatch.ui.app import TaskwatchApp  # noqa: E402
from taskwatch.ui.widgets.status_bar import StatusBar  # noqa: E402

SHOTS = {"workers.svg": (100, 24), "workers-80x24.svg": (80, 24)}


async def shoot(cluster: DemoCluster, name: str, size: tuple[int, int]) -> None:
    settings = Settings(broker_url=cluster.broker_url, profile="demo", refresh_interval=1.0)
    app = TaskwatchApp(settings)
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 60
        while "2/2 workers" not in app.query_one(StatusBar).render().plain:
            if time.monotonic() > deadline:
                raise SystemExit("the demo workers did not come up within 60 s")
            await pilot.pause(0.2)
        await pilot.pause(2.5)  # let a couple of polls land so counters are not all zero
        app.save_screenshot(name, str(HERE))
        print(f"wrote {HERE / name}")


def main() -> None:
    with DemoCluster() as cluster:
        for name, size in SHOTS.items():
            asyncio.run(shoot(cluster, name, size))


if __name__ == "__main__":
    main()
