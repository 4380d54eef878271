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
from taskwatch.monitor import Monitor
from taskwatch.ui.css import css_path
from taskwatch.ui.messages import Polled
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

    REDRAW_INTERVAL = 0.5  # seconds between redraws from the engine's state

    def __init__(self, settings: Settings, celery_app: Celery | None = None, *, monitor: Monitor | None = None) -> None:
        super().__init__()
        assert settings.broker_url, "the CLI checks that a broker is configured"
        self.settings = settings
        self.monitor = monitor or Monitor(settings, celery_app)
        self._next_poll = None
        self._broker_error: str | None = None
        self._drawn_version = -1

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
        self.monitor.start()  # the event receiver thread
        self.poll_workers()
        self.set_interval(self.REDRAW_INTERVAL, self._redraw)

    # -- polling ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def poll_workers(self) -> None:
        self.post_message(Polled(self.monitor.poll()))

    @on(Polled)
    def _polled(self, message: Polled) -> None:
        workers = message.report.workers
        self._broker_error = workers.broker_error if workers is not None else None
        self._redraw(force=True)
        self._arm_next_poll()

    def _redraw(self, force: bool = False) -> None:
        """Draw from the engine's state, at most a few times a second."""
        state = self.monitor.state
        self.query_one(StatusBar).show(
            state, broker_error=self._broker_error, events_connected=self.monitor.events_connected
        )
        if not force and state.version == self._drawn_version:
            return
        self._drawn_version = state.version
        self.query_one(WorkersTable).show(state)
        empty = self.query_one("#empty", Static)
        if state.workers:
            empty.display = False
        else:
            empty.display = True
            empty.update(
                "No worker answered ping. Are workers running against this broker?"
                if not self._broker_error
                else "The broker does not answer; retrying."
            )

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
        self.monitor.stop()
