"""The views, driven with Textual's Pilot against real workers on a private Redis."""

from __future__ import annotations

import asyncio
import uuid

from celery import Celery
from rich.text import Text
from textual.css.query import NoMatches

from taskwatch.config import Settings
from taskwatch.engine.state import FAILURE
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.screens.task_detail import TaskDetail
from taskwatch.ui.widgets.task_list import TaskList
from tests.waiting import pilot_wait_until


def plain(widget) -> str:
    shown = widget.render()
    return shown.plain if isinstance(shown, Text) else str(shown)


def screen_lines(app: TaskwatchApp) -> list[str]:
    """The whole screen as the terminal shows it, one string a row (what fits, not what a widget holds)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text().splitlines()


def screen_text(app: TaskwatchApp, selector: str) -> str:
    """What the widget `selector` of the top screen shows; "" until it is composed."""
    try:
        return plain(app.screen.query_one(selector))
    except NoMatches:
        return ""


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
            await pilot_wait_until(pilot, lambda: app.monitor.events_connected,
                                   what="the event receiver to connect")
            producer = Celery("p", broker=demo_workers.broker_url, set_as_current=False)
            producer.conf.task_routes = {"emails.*": {"queue": "emails"}}
            failing = producer.send_task("emails.send_email", args=(hostile, "hi"))
            await pilot.press("3")
            await pilot.press("slash")
            for ch in marker:
                await pilot.press(ch)
            await pilot.press("enter")
            task_list = app.query_one(TaskList)
            await pilot_wait_until(pilot, lambda: task_list.ids == [failing.id]
                                   and app.monitor.state.tasks[failing.id].state == FAILURE,
                                   what="the failed task, alone in the filtered list")
            assert app.focused is None  # keys go to the app, which drives the list
            await pilot.press("enter")
            # The list asks the app to open the task (a message): the screen comes after.
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, TaskDetail)
                                   and "Traceback" in screen_text(app, "#detail-body"),
                                   what="the task detail with its traceback")
            shown = plain(app.screen.query_one("#detail-body"))
            assert "ValueError" in shown and "Traceback" in shown
            assert "[bold red]X[/]" in shown  # markup shown literally
            assert "\x1b" not in shown and "\x07" not in shown
            await pilot.press("escape")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, TaskDetail),
                                   what="escape to close the detail")
            assert task_list.selected == failing.id
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def test_every_view_at_80x24(demo_workers):
    async def scenario() -> None:
        app = make_app(demo_workers)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot_wait_until(pilot, lambda: len(app.monitor.state.workers) >= 2,
                                   what="both demo workers known")
            switcher = app.query_one("#switcher")
            for key, view in zip("12345", ("workers", "queues", "tasks", "names", "upcoming"), strict=True):
                await pilot.press(key)
                await pilot_wait_until(pilot, lambda view=view: app.view == view == switcher.current,
                                       what=f"key {key} to show the {view} view")
            await pilot.press("1")
            table = app.query_one("#workers-table")
            assert table.virtual_size.width <= 80
            for host in demo_workers.hostnames:
                assert host in table.row_keys

    asyncio.run(scenario())


def test_action_keys_are_reserved_and_help_lists_them(demo_workers):
    async def scenario() -> None:
        app = make_app(demo_workers, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            for action in ("revoke", "terminate", "retry", "trigger", "pause"):
                assert app.check_action(action, ()) is None  # shown, greyed
            # x is greyed out: the key reaches no action, opens nothing, and
            # the app goes on (the action itself is only reserved so far).
            ran: list[str] = []
            app.action_revoke = lambda: ran.append("revoke")
            screen = app.screen
            await pilot.press("x")
            assert ran == []
            assert app.screen is screen and app.view == "workers" and app.return_code is None
            await pilot.press("question_mark")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, HelpScreen),
                                   what="? to open the help")
            shown = plain(app.screen.query_one("Static"))
            for words in ("Revoke", "Retry", "Filter", "Command palette", "Open"):
                assert words in shown
            await pilot.press("escape")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen),
                                   what="escape to close the help")

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
            await pilot_wait_until(pilot, lambda: queue in table.row_keys,
                                   what=f"{queue} discovered and listed")
            # Filter down to the queue, as a user would: a cursor moved to a row
            # index can land elsewhere if a redraw reorders the rows first.
            await pilot.press("slash", *queue, "enter")
            await pilot_wait_until(pilot, lambda: table.row_count == 1 and table.selected_key == queue,
                                   what=f"the filter to leave {queue} alone, selected")
            await pilot.press("enter")
            # Enter posts a request the app answers by pushing the window, and the
            # window reads the queue on a thread: wait for the messages themselves.
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, QueuePeek)
                                   and "Next messages in" in screen_text(app, "#peek-body"),
                                   what=f"the peek window to show {queue}'s messages")
            shown = screen_text(app, "#peek-body")
            assert shown.count("tasks.add") == 3
            assert "[b]0[/b]" in shown  # markup in an argument is just characters
            await pilot.press("escape")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, QueuePeek),
                                   what="escape to close the peek window")

    asyncio.run(scenario())
    assert client.llen(queue) == 3  # nothing was consumed
    client.delete(queue)
