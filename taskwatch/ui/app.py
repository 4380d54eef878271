"""The Textual application: wiring of sources, engine state and widgets.

All network I/O happens in thread workers; their results come back as
messages and are applied on the UI thread. Polls never overlap: the next
one is armed with a one-shot timer only after the previous result has been
drawn (dolphie's pattern), so a slow broker slows the refresh, never the
keyboard.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from taskwatch import __version__
from taskwatch.config import Settings
from taskwatch.engine.workers import WorkerTable
from taskwatch.sources.inspect import Inspector
from taskwatch.ui.css import css_path
from taskwatch.ui.messages import WorkersPolled
from taskwatch.ui.widgets.status_bar import StatusBar
from taskwatch.ui.widgets.workers_table import WorkersTable

if TYPE_CHECKING:
    from celery import Celery


class TaskwatchApp(App[int]):
    CSS_PATH = css_path()
    TITLE = "taskwatch"
    SUB_TITLE = __version__
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        # k9s/htop users press Ctrl-C to leave; Textual maps it to copy.
        Binding("ctrl+c", "quit", "Quit", id="quit-ctrl-c", show=False, priority=True),
        Binding("r", "refresh", "Refresh now", id="refresh"),
    ]

    def __init__(self, settings: Settings, celery_app: Celery | None = None) -> None:
        super().__init__()
        assert settings.broker_url, "the CLI checks that a broker is configured"
        self.settings = settings
        self.worker_table = WorkerTable()
        self.inspector = Inspector(settings.broker_url, app=celery_app, timeout=settings.inspect_timeout)
        self._next_poll = None

    def compose(self) -> ComposeResult:
        yield StatusBar(
            self.settings.broker_url or "",
            self.settings.profile,
            self.settings.read_only,
            id="status",
        )
        yield WorkersTable(id="workers")
        yield Static("Asking the workers… (ping)", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(signum, self.exit)
            except (NotImplementedError, RuntimeError, ValueError):  # not main thread / platform
                pass
        self.query_one(WorkersTable).focus()
        self.poll_workers()

    # -- polling ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def poll_workers(self) -> None:
        self.post_message(WorkersPolled(self.inspector.poll_workers()))

    @on(WorkersPolled)
    def _workers_polled(self, message: WorkersPolled) -> None:
        self.worker_table.apply_poll(message.poll)
        self.query_one(StatusBar).show(self.worker_table)
        self.query_one(WorkersTable).show(self.worker_table)
        empty = self.query_one("#empty", Static)
        if self.worker_table.workers:
            empty.display = False
        else:
            empty.display = True
            empty.update(
                "No worker answered ping. Are workers running against this broker?"
                if not self.worker_table.broker_error
                else "The broker does not answer; retrying."
            )
        self._arm_next_poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "inspect" and event.state == WorkerState.ERROR:
            self._arm_next_poll()  # a bug in a poll must not stop polling

    def _arm_next_poll(self) -> None:
        if self._next_poll is not None:
            self._next_poll.stop()
        self._next_poll = self.set_timer(self.settings.refresh_interval, self.poll_workers)

    # -- actions ------------------------------------------------------------
    def action_refresh(self) -> None:
        if self._next_poll is not None:
            self._next_poll.stop()
        self.poll_workers()

    async def action_quit(self) -> None:
        self.exit(0)

    def on_unmount(self) -> None:
        self.inspector.close()
