"""The views, driven with Textual's Pilot against real workers on a private Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

from celery import Celery
from rich.text import Text

from taskwatch.config import Settings
from taskwatch.engine.state import FAILURE
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.screens.task_detail import TaskDetail
from taskwatch.ui.widgets.task_list import TaskList


async def wait_until(pilot, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.1)


def make_app(workers, **extra) -> TaskwatchApp:
    settings = Settings(broker_url=workers.broker_url, result_backend=workers.result_backend,
                        refresh_interval=0.5, backfill=50, **extra)
    return TaskwatchApp(settings)


def test_find_a_failed_task_open_its_traceback_and_come_back(demo_workers):
    marker = f"nobody-{uuid.uuid4().hex[:8]}"
    hostile = f"[bold red]X[/] \x1b]0;owned\x07 {marker}"

    async def scenario() -> None:
        app = make_app(demo_workers)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.monitor.events_connected)
            producer = Celery("p", broker=demo_workers.broker_url, set_as_current=False)
            producer.conf.task_routes = {"emails.*": {"queue": "emails"}}
            failing = producer.send_task("emails.send_email", args=(hostile, "hi"))
            await pilot.press("3")
            await pilot.press("slash")
            for ch in marker:
                await pilot.press(ch)
            await pilot.press("enter")
            task_list = app.query_one(TaskList)
            await wait_until(pilot, lambda: task_list.ids == [failing.id]
                             and app.monitor.state.tasks[failing.id].state == FAILURE)
            assert app.focused is None  # keys go to the app, which drives the list
            await pilot.press("enter")
            assert isinstance(app.screen, TaskDetail)
            await pilot.pause(0.2)
            body: Text = app.screen.query_one("#detail-body").render()  # type: ignore[assignment]
            plain = body.plain if isinstance(body, Text) else str(body)
            assert "ValueError" in plain and "Traceback" in plain
            assert "[bold red]X[/]" in plain  # markup shown literally
            assert "\x1b" not in plain and "\x07" not in plain
            await pilot.press("escape")
            assert not isinstance(app.screen, TaskDetail)
            assert task_list.selected == failing.id
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def test_every_view_at_80x24(demo_workers):
    async def scenario() -> None:
        app = make_app(demo_workers)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: len(app.monitor.state.workers) >= 2)
            for key, view in zip("12345", ("workers", "queues", "tasks", "names", "upcoming"), strict=True):
                await pilot.press(key)
                await pilot.pause(0.2)
                assert app.view == view
                assert app.query_one("#switcher").current == view
            await pilot.press("1")
            table = app.query_one("#workers-table")
            assert table.virtual_size.width <= 80
            for host in demo_workers.hostnames:
                assert host in [row.key.value for row in table.ordered_rows]

    asyncio.run(scenario())


def test_action_keys_are_reserved_and_help_lists_them(demo_workers):
    async def scenario() -> None:
        app = make_app(demo_workers, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            for action in ("revoke", "terminate", "retry", "trigger", "pause"):
                assert app.check_action(action, ()) is None  # shown, greyed
            await pilot.press("x")  # does nothing, raises nothing
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            shown = app.screen.query_one("Static").render()
            plain = shown.plain if isinstance(shown, Text) else str(shown)
            for words in ("Revoke", "Retry", "Filter", "Command palette", "Open"):
                assert words in plain
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    asyncio.run(scenario())


def test_peek_a_queue_without_consuming_it(demo_workers):
    import redis

    from taskwatch.ui.screens.queue_peek import QueuePeek
    from taskwatch.ui.views.queues import QueuesTable

    queue = f"peek-{uuid.uuid4().hex[:8]}"
    producer = Celery("p", broker=demo_workers.broker_url, set_as_current=False)
    for i in range(3):
        producer.send_task("tasks.add", args=(i, f"[b]{i}[/b]"), queue=queue)
    port = int(demo_workers.broker_url.rsplit(":", 1)[1].split("/")[0])
    client = redis.Redis(port=port)
    assert client.llen(queue) == 3

    async def scenario() -> None:
        app = make_app(demo_workers)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("2")
            table = app.query_one(QueuesTable)
            await wait_until(pilot, lambda: queue in [row.key.value for row in table.ordered_rows])
            table.move_cursor(row=table.get_row_index(queue))  # as j/k would
            await pilot.press("enter")
            assert isinstance(app.screen, QueuePeek)
            body = app.screen.query_one("#peek-body")
            await wait_until(pilot, lambda: "tasks.add" in str(body.render()))
            shown = body.render()
            plain = shown.plain if isinstance(shown, Text) else str(shown)
            assert plain.count("tasks.add") == 3
            assert "[b]0[/b]" in plain  # markup in an argument is just characters
            await pilot.press("escape")
            assert not isinstance(app.screen, QueuePeek)

    asyncio.run(scenario())
    assert client.llen(queue) == 3  # nothing was consumed
    client.delete(queue)
