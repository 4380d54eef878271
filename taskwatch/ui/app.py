"""The Textual application: wiring of the monitor, the engine's state and the views.

All network I/O happens off the UI thread: the monitor's event receiver
thread, and one poll round at a time in a thread worker whose result comes
back as a message (the next round is armed only after that, dolphie's
pattern, so rounds never overlap and a slow broker slows the refresh, never
the keyboard). Views redraw from the state a few times a second; only the
visible view does any work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Static
from textual.worker import Worker, WorkerState

from taskwatch import __version__
from taskwatch.config import Settings
from taskwatch.engine.query import TABS, Superseded, select_with_counts
from taskwatch.engine.state import ClusterState
from taskwatch.monitor import Monitor
from taskwatch.text import clean, mask_secrets
from taskwatch.ui.actions import ActionDone, ActionKeys
from taskwatch.ui.collector import QuietCollector
from taskwatch.ui.commands import TaskwatchCommands
from taskwatch.ui.css import css_path
from taskwatch.ui.filter_keys import FilterBoxKeys
from taskwatch.ui.messages import Polled, Pong, SchedulesRead, TasksSelected
from taskwatch.ui.prompt_frames import KeyClock
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.screens.queue_peek import QueuePeek
from taskwatch.ui.screens.schedule_detail import ScheduleDetail
from taskwatch.ui.screens.task_detail import TaskDetail
from taskwatch.ui.screens.views import ViewsScreen
from taskwatch.ui.views.queues import QueuesTable
from taskwatch.ui.views.registry import (
    RESERVED_ACTIONS,
    VIEW_ACTIONS,
    VIEW_NAMED,
    VIEWS,
    View,
    show_tasks_hint,
)
from taskwatch.ui.widgets.filter_box import FilterBox
from taskwatch.ui.widgets.footer import QuietFooter
from taskwatch.ui.widgets.status_bar import StatusBar, schedule_alert
from taskwatch.ui.widgets.tab_bar import TabBar
from taskwatch.ui.widgets.task_list import TaskList
from taskwatch.ui.widgets.workers_table import WorkersTable

if TYPE_CHECKING:
    from celery import Celery

T = TypeVar("T")


class TaskwatchApp(FilterBoxKeys, ActionKeys, App[int]):
    CSS_PATH = css_path()
    TITLE = "taskwatch"
    SUB_TITLE = __version__
    COMMANDS = {TaskwatchCommands}
    COMMAND_PALETTE_BINDING = "colon"
    AUTO_FOCUS = None  # nothing holds focus but the filter box while it is open

    # Every key lives here and drives the visible view: switching views
    # moves no focus (restyling on focus changes was most of a keypress's
    # cost under load), and the footer stays the same everywhere.
    BINDINGS = [
        *(view.binding() for view in VIEWS),  # the number keys: 1 workers … 5 upcoming
        Binding("j,down", "nav('down')", "Down", show=False, id="nav.down"),
        Binding("k,up", "nav('up')", "Up", show=False, id="nav.up"),
        Binding("pagedown", "nav('page_down')", "Page down", show=False, id="nav.page-down"),
        Binding("pageup", "nav('page_up')", "Page up", show=False, id="nav.page-up"),
        Binding("g,home", "nav('top')", "Top", show=False, id="nav.top"),
        Binding("G,end", "nav('bottom')", "Bottom", show=False, id="nav.bottom"),
        Binding("h,left", "nav('left')", "Scroll left", show=False, id="nav.left"),
        Binding("l,right", "nav('right')", "Scroll right", show=False, id="nav.right"),
        Binding("enter", "open", "Open", id="open",
                tooltip="Task: detail. Queue: peek at its next messages. Task name: its tasks."),
        Binding("left_square_bracket", "task_tab(-1)", "Prev tab", key_display="[", id="tasks.prev-tab"),
        Binding("right_square_bracket", "task_tab(1)", "Next tab", key_display="]", id="tasks.next-tab"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("r", "refresh", "Refresh", show=False, id="refresh"),
        Binding("F", "failed_tab", "Failed tasks", show=False, id="tasks.failed"),
        Binding("space", "mark", "Mark", show=False, id="tasks.mark",
                tooltip="Mark the task: x, X and R act on every marked task"),
        Binding("x", "revoke", "Revoke", id="revoke", tooltip="Revoke the marked or selected tasks"),
        Binding("X", "terminate", "Terminate", show=False, id="terminate",
                tooltip="Revoke and kill the marked or selected tasks (signal chosen when asked)"),
        Binding("R", "retry", "Retry", id="retry",
                tooltip="Send failed tasks again with their exact arguments; on a task name, all its failures"),
        Binding("t", "trigger", "Run now", show=False, id="trigger",
                tooltip="Run the beat entry or APScheduler job now"),
        Binding("P", "purge", "Purge", show=False, id="purge", tooltip="Delete every message waiting in the queue"),
        Binding("c", "worker_control", "Control", show=False, id="worker.control",
                tooltip="Pool size, limits, consumers, events, restart, shutdown"),
        Binding("p", "pause", "Pause/resume", show=False, id="pause",
                tooltip="Pause the APScheduler job, or resume it (next run from its trigger)"),
        Binding("D", "remove_job", "Remove job", show=False, id="remove-job",
                tooltip="Remove the APScheduler job from its store"),
        Binding("q", "quit", "Quit", id="quit"),
        # k9s/htop users press Ctrl-C to leave; Textual maps it to copy.
        Binding("ctrl+c", "quit", "Quit", id="quit-ctrl-c", show=False, priority=True),
    ]

    REDRAW_INTERVAL = 0.5  # seconds between redraws from the engine's state
    FREEZE_INTERVAL = 0.25  # seconds between moving what is alive out of the collector's walks (ui/collector.py)
    SELECT_INTERVAL = 2.0  # at most this often the tasks list is re-selected while data flows

    EXIT_GRACE = 3.0  # seconds a signalled shutdown may take before it is forced

    def __init__(self, settings: Settings, celery_app: Celery | None = None, *,
                 monitor: Monitor | None = None, poll: bool = True,
                 cleanups: list[Callable[[], None]] | None = None, theme: str | None = None) -> None:
        """``cleanups`` run before a forced exit (see :meth:`_on_signal`); ``theme``
        replaces the default theme (the CLI picks one for the terminal: :func:`theme_for`)."""
        super().__init__()
        self._theme_name = theme
        self.cleanups = list(cleanups or ())
        self._run_finished = False
        self._previous_handlers: dict[int, object] = {}
        self._reported: set[str] = set()
        assert settings.broker_url, "the CLI checks that a broker is configured"
        self.settings = settings
        self.state = monitor.state if monitor is not None else ClusterState(max_tasks=settings.max_tasks)
        # Built on a worker thread at mount when not given: it imports Celery,
        # which the first frame need not wait for.
        self._monitor = monitor
        self._monitor_lock = threading.Lock()
        self._celery_app = celery_app
        self._poll_enabled = poll
        self._next_poll = None
        self._broker_error: str | None = None
        self._drawn_version = -1
        self.view = VIEWS[0].name
        self.task_tab = "all"
        self.needle = ""
        self._selected_version = -1
        self._status_bar: StatusBar | None = None
        self._selected_key: tuple[str, str] | None = None
        self._selected_at = 0.0
        self._selecting = False
        self._task_header = ""
        self._asked = False  # no round of asking has finished yet
        self._collector = QuietCollector()
        self.key_clock = KeyClock()  # its screens draw a key's answer at once (ui/prompt_frames.py)
        self._next_schedules = None
        self._select_timer = None
        self._typing_until = 0.0
        self._schedule_errors: set[str] = set()
        self._leaving = False  # quitting: rounds still out are not waited for

    # -- layout -------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return ViewsScreen(id="_default")

    def _on_main_screen(self) -> bool:
        """The views show: no detail, peek, help or command palette covers them
        (and the app is not closing: a poll's answer may arrive once its screens are gone)."""
        return bool(self.screen_stack) and isinstance(self.screen, ViewsScreen)

    def compose(self) -> ComposeResult:
        self._status_bar = StatusBar(self.settings.broker_url or "", self.settings.profile,
                                     self.settings.read_only, id="status")
        yield self._status_bar
        yield TabBar([(v.name, f"{v.key} {v.label}") for v in VIEWS], self.view, id="views")
        with ContentSwitcher(initial=self.view, id="switcher"):
            for view in VIEWS:
                yield view.pane(self)
        yield FilterBox(placeholder="filter: name, id, args, exception… (Enter keeps, Esc clears)", id="filter")
        yield QuietFooter(compact=True)

    def on_mount(self) -> None:
        if self._theme_name is not None:
            self.theme = self._theme_name
        # A plain signal handler, not the event loop's: when the terminal has
        # gone away the loop itself can be stuck writing to it.
        self._loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
            except (ValueError, OSError):  # not the main thread (tests drive the app elsewhere)
                pass
        self.query_one("#filter", Input).visible = False  # see ui/filter_keys.py
        self.set_focus(None)
        self.set_interval(self.REDRAW_INTERVAL, self._redraw)
        self.set_interval(self.FREEZE_INTERVAL, self._collector.tick)
        self._redraw(force=True)
        self._start_monitor()

    @property
    def started_monitor(self) -> Monitor | None:
        """The monitor once built (on a worker thread at start-up), else None: never builds it."""
        return self._monitor

    @property
    def asked(self) -> bool:
        """Whether a round of asking has ended (before that, silence means nothing yet)."""
        return self._asked

    @property
    def broker_error(self) -> str | None:
        """Why the last round could not reach the broker, or None."""
        return self._broker_error

    @property
    def monitor(self) -> Monitor:
        # Built on first use by a thread worker (start-up, or an early `r`):
        # two threads must not each build one.
        with self._monitor_lock:
            if self._monitor is None:
                self._monitor = Monitor.from_settings(self.settings, self._celery_app, state=self.state)
            return self._monitor

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _start_monitor(self) -> None:
        monitor = self.monitor
        monitor.on_pong = lambda: self.post_message(Pong())
        monitor.start()  # the event receiver thread
        if self._poll_enabled:
            if monitor.has_schedules:
                self.call_from_thread(self.read_schedules)
            report = self._unless_leaving(monitor.poll)
            if report is not None:
                self.post_message(Polled(report))

    #: How long a thread holds the GIL while another waits for it (Python's
    #: default is 5 ms). A key passes three threads before it is on screen
    #: (the input reader, the event loop, the output writer), and each could
    #: wait that long behind the event decoder under a burst.
    SWITCH_INTERVAL = 0.001

    def run(self, *args, **kwargs):  # noqa: ANN201 - Textual's signature
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, self.SWITCH_INTERVAL))
        try:
            return super().run(*args, **kwargs)
        finally:
            sys.setswitchinterval(interval)
            self._collector.release()
            self._run_finished = True

    def _fatal_error(self) -> None:
        """A crash report without secrets (overrides Textual 8's, which shows every
        frame's local variables: settings, URLs and clients with their passwords).

        The plain traceback, every line passed through ``mask_secrets``; the
        exit and the bell as Textual's own.
        """
        import traceback

        from rich.text import Text

        self.bell()
        report = mask_secrets("".join(traceback.format_exc()))
        self._exit_renderables.append(Text(clean(report, 20_000)))
        self._close_messages_no_wait()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            # Until this key's answer is on screen the event receiver waits
            # (events queue up in its spool); its frame is drawn as soon as
            # it is ready; no sweep of the collector until keys pause.
            self._collector.key()
            self.key_clock.key()
            if self._monitor is not None:
                held_at = self._monitor.hold_events()
                self.call_after_refresh(self._monitor.release_events, held_at)
        await super().on_event(event)

    def _on_signal(self, signum: int, frame: object = None) -> None:
        """SIGTERM, or SIGHUP when the SSH link drops: leave, and make sure of it.

        With the terminal gone, the app can block forever writing to it (seen
        after a killed tmux/SSH session). A watchdog then runs the cleanups
        (the demo stops its cluster) and ends the process.
        """
        self._leaving = True
        threading.Thread(target=self._force_exit, args=(128 + signum,), daemon=True,
                         name="taskwatch-exit-watchdog").start()
        self._loop.call_soon_threadsafe(self.exit, 128 + signum)

    def _force_exit(self, code: int) -> None:
        time.sleep(self.EXIT_GRACE)
        if self._run_finished:
            return  # the shutdown finished: whoever ran the app cleans up
        for cleanup in self.cleanups:
            try:
                cleanup()
            except Exception:  # noqa: BLE001, S110 - exiting anyway
                pass
        os._exit(code)

    # -- polling ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def poll_workers(self) -> None:
        report = self._unless_leaving(self.monitor.poll)
        if report is not None:
            self.post_message(Polled(report))

    # Schedule sources (job stores, beat's state) are read on their own
    # worker and timer: a slow store never holds up asking the workers.
    @work(thread=True, exclusive=True, group="schedules", exit_on_error=False)
    def read_schedules(self) -> None:
        errors = self._unless_leaving(self.monitor.poll_schedules)
        if errors is not None:
            self.post_message(SchedulesRead(errors))

    def _unless_leaving(self, call: Callable[[], T]) -> T | None:
        """``call()`` (network I/O, from a thread worker) on a daemon thread of
        its own; None if the app is leaving first.

        Thread workers run in asyncio's default executor, which quitting
        waits for: a round stuck on a broker that does not answer would hold
        the shell for its socket timeouts. This worker returns at once when
        the app leaves, and the stuck thread, a daemon, ends with the process.
        """
        done = threading.Event()
        outcome: list = []

        def run() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # noqa: BLE001 - raised again in the worker
                outcome.append((False, exc))
            finally:
                done.set()

        threading.Thread(target=run, daemon=True, name="taskwatch-io").start()
        while not done.wait(0.05):
            if self._leaving:
                return None
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    @on(SchedulesRead)
    def _schedules_read(self, message: SchedulesRead) -> None:
        for error in message.errors:
            if error not in self._schedule_errors:
                self.notify(error, severity="warning", markup=False, timeout=8)
        self._schedule_errors = set(message.errors)
        if self.view == "upcoming":
            self._redraw(force=True, select=False)
        if self._next_schedules is not None:
            self._next_schedules.stop()
        self._next_schedules = self.set_timer(self.settings.refresh_interval, self.read_schedules)

    def open_schedule(self, key: str) -> None:
        """Enter on a scheduled job: its detail (and its runs, with a bridge)."""
        if self._monitor is not None and self._on_main_screen():
            self.push_screen(ScheduleDetail(self._monitor, key))

    @on(Pong)
    def _pong(self) -> None:
        if self.view == "workers" and self._on_main_screen():
            self.query_one(WorkersTable).show(self.state, self.needle)
            self.query_one("#empty", Static).display = False

    @on(Polled)
    def _polled(self, message: Polled) -> None:
        workers = message.report.workers
        # Problems other than the broker's (which the status line shows):
        # say each new one once, as a notification.
        others = [e for e in message.report.errors if workers is None or e != workers.broker_error]
        for error in others:
            if error not in self._reported:
                self.notify(error, severity="warning", markup=False, timeout=8)
        self._reported = set(others)
        self._asked = True
        self._broker_error = workers.broker_error if workers is not None else None
        self._redraw(force=True)
        self._arm_next_poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            # A bug, not a broker problem (those are reported as data): say so.
            error = event.worker.error
            self.notify(f"internal error in {event.worker.name}: {type(error).__name__}: "
                        f"{clean(mask_secrets(str(error)), 200, single_line=True)}",
                        severity="error", markup=False, timeout=10)
        if event.worker.group == "inspect" and event.state == WorkerState.ERROR:
            self._arm_next_poll()  # a bug in a poll must not stop polling
        if event.worker.group == "schedules" and event.state == WorkerState.ERROR:
            self._next_schedules = self.set_timer(self.settings.refresh_interval, self.read_schedules)
        if event.worker.group == "select" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._selecting = False

    def _arm_next_poll(self) -> None:
        if self._next_poll is not None:
            self._next_poll.stop()
        self._next_poll = self.set_timer(self.settings.refresh_interval, self.poll_workers)

    # -- drawing ------------------------------------------------------------
    def _redraw(self, force: bool = False, select: bool = True) -> None:
        """Draw the visible view from the engine's state, a few times a second."""
        if not self._on_main_screen():
            return  # a detail or modal covers the views; polling goes on, drawing waits
        bar = self._status_bar  # not a query: a DOM walk on every redraw and keystroke
        if bar is None or not bar.is_attached:
            return  # shutting down: the timer can fire while the widgets are being removed
        state = self.state
        monitor = self._monitor
        bar.show(state, broker_error=self._broker_error,
                 events_connected=monitor is not None and monitor.events_connected,
                 events_error=monitor.events_error if monitor is not None else None,
                 asked=self._asked,
                 schedule_alert=schedule_alert(monitor.schedules) if monitor is not None else None,
                 health=list(monitor.health.values()) if monitor is not None else ())
        changed = state.version != self._drawn_version
        self._drawn_version = state.version
        view = self._current_view()
        # The tasks list selects while it shows; and once before it is first
        # shown, so that its first visit draws rows at once (under a burst the
        # first selection over 100k tasks took 80 ms to come).
        if select and (view.selects_tasks or (self._selected_key is None and state.tasks)):
            self._maybe_select()
        if view.every_tick or changed or force:
            view.draw(self, self.query_one(view.widget))

    def _maybe_select(self, force: bool = False) -> None:
        key = (self.task_tab, self.needle)
        state = self.state
        fresh = key == self._selected_key and state.version == self._selected_version
        throttled = time.monotonic() - self._selected_at < self.SELECT_INTERVAL
        if not force and time.monotonic() < self._typing_until:
            return  # the filter is being typed: the settle timer selects
        if self._selecting or (fresh and not force) or (throttled and key == self._selected_key and not force):
            return
        self._selecting = True
        self._selected_at = time.monotonic()
        self._select_tasks(self.task_tab, self.needle, state.version)

    @work(thread=True, exclusive=True, group="select", exit_on_error=False)
    def _select_tasks(self, tab: str, needle: str, version: int) -> None:
        """One pass over every retained task, on a thread. It gives way to keys
        (waits while one is being answered) and stops early once the tab or the
        filter it was asked for has changed: a superseded pass is wasted GIL."""
        state = self.state
        monitor = self._monitor

        def checkpoint() -> bool:
            if monitor is not None:
                monitor.give_way()
            return (self.task_tab, self.needle) != (tab, needle)

        try:
            ids, counts, filtered = select_with_counts(state, tab, needle, checkpoint)
        except Superseded:
            self.post_message(TasksSelected(tab, needle, version, None, {}, None))
            return
        self.post_message(TasksSelected(tab, needle, version, ids, counts, filtered))

    @on(TasksSelected)
    def _tasks_selected(self, message: TasksSelected) -> None:
        self._selecting = False
        if message.ids is None:  # superseded: select again for what is asked now
            self._schedule_select()
            return
        self._selected_key = (message.tab, message.needle)
        self._selected_version = message.version
        if (message.tab, message.needle) != (self.task_tab, self.needle):
            self._maybe_select(force=True)  # the user moved on meanwhile
            return
        # The views' screen, whatever is on top of it (a detail opened while
        # the selection ran); none while the app starts or closes.
        lists = self.screen_stack[0].query(TaskList) if self.screen_stack else ()
        if not lists:
            return
        task_list = lists.first()
        task_list.set_ids(message.ids)
        show_tasks_hint(self, task_list)
        self._update_task_header()
        if message.counts is not None:
            self.query_one("#task-tabs", TabBar).set_counts(message.counts, message.filtered)

    def _update_task_header(self) -> None:
        """The column titles, from the same widths the rows use (they follow the terminal's size)."""
        views = self.screen_stack[0]  # a detail may be on top
        header = views.query_one(TaskList).header()
        if header.plain != self._task_header:
            self._task_header = header.plain
            views.query_one("#task-header", Static).update(header)

    @on(TaskList.Resized)
    def _task_list_resized(self) -> None:
        self._update_task_header()

    # -- views --------------------------------------------------------------
    def action_view(self, view: str) -> None:
        self.view = view
        self.query_one("#switcher", ContentSwitcher).current = view
        self.query_one("#views", TabBar).select(view)
        self.refresh_bindings()  # the footer greys what does not apply here (check_action reads the view)
        self._redraw(force=True, select=False)
        if VIEW_NAMED[view].selects_tasks:
            # The list shows what it last selected at once; the fresh selection
            # (a pass over every retained task, on a thread) starts once that
            # frame is out, so it does not compete with drawing it.
            self.call_after_refresh(self._maybe_select, True)

    def show_task_tab(self, tab: str) -> None:
        if self.view != "tasks":
            self.action_view("tasks")
        self.task_tab = tab
        self.query_one("#task-tabs", TabBar).select(tab)
        self.call_after_refresh(self._maybe_select, True)  # the highlight moves first

    def action_task_tab(self, step: int) -> None:
        if self.view != "tasks":
            self.action_view("tasks")
            return
        index = (TABS.index(self.task_tab) + step) % len(TABS)
        self.show_task_tab(TABS[index])

    def _current_view(self) -> View:
        return VIEW_NAMED[self.view]

    def action_nav(self, where: str) -> None:
        view = self._current_view()
        view.nav[where](self.query_one(view.widget))

    def action_open(self) -> None:
        """Enter: what the view opens (a task's detail, a queue's next messages, a task name's tasks)."""
        view = self._current_view()
        if view.open is not None:
            view.open(self, self.query_one(view.widget))

    # The open requests are messages: a second quick Enter is already queued
    # when the first one's screen goes up. Open from the views only.
    @on(QueuesTable.PeekRequested)
    def _peek(self, message: QueuesTable.PeekRequested) -> None:
        if self._monitor is not None and self._on_main_screen():
            depth = self.state.queues.get(message.queue)
            self.push_screen(QueuePeek(self._monitor, message.queue,
                                       source=depth.source if depth is not None else None))

    @on(TaskList.Opened)
    def _open_task(self, message: TaskList.Opened) -> None:
        if self._on_main_screen():
            self.push_screen(TaskDetail(self.state, message.task_id))

    # -- filter -------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self._redraw(force=True, select=False)
        if self._current_view().selects_tasks:
            self._schedule_select()

    FILTER_SETTLE = 0.3  # seconds without a keystroke before the tasks are selected again

    def _schedule_select(self) -> None:
        """Select the tasks once typing settles: a pass over 100k tasks per
        character would compete with drawing the characters themselves."""
        self._typing_until = time.monotonic() + self.FILTER_SETTLE
        if self._select_timer is not None:
            self._select_timer.stop()
        self._select_timer = self.set_timer(self.FILTER_SETTLE, lambda: self._maybe_select(force=True))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        self._keep_filter(box, bool(self.needle))
        self._focus_view()

    def _focus_view(self) -> None:
        self.set_focus(None)  # keys go to the app, which drives the visible view

    # -- keys that apply or not ---------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        rule = VIEW_ACTIONS.get(action)
        if rule is None:
            return True  # help, quit: everywhere
        if not self._on_main_screen():
            return False  # a detail or modal screen is on top: these are about the views
        if rule.reserved:
            return None  # shown, greyed: wired by a later version
        if not rule.applies_to(self.view):
            return None  # shown, greyed: not in this view
        if rule.changes_state and self.settings.read_only:
            return None  # shown, greyed: --read-only
        if action == "clear_filter":
            return bool(self.needle) or self.query_one("#filter", Input).visible
        return True

    def action_help(self) -> None:
        groups: list[tuple[str, list[tuple[str, str, bool]]]] = []
        sources = [("Everywhere", self.BINDINGS, self),
                   ("Task detail", TaskDetail.BINDINGS, None)]
        for title, bindings, owner in sources:
            rows = []
            for binding in bindings:
                if not isinstance(binding, Binding) or binding.id == "quit-ctrl-c":
                    continue
                keys = binding.key_display or binding.key
                enabled = True
                note = ""
                if owner is not None:
                    action = binding.action.split("(", 1)[0]
                    rule = VIEW_ACTIONS.get(action)
                    if action in RESERVED_ACTIONS:
                        enabled, note = False, "  (coming)"
                    elif rule is not None and rule.changes_state and self.settings.read_only:
                        enabled, note = False, "  (read-only)"
                    elif rule is not None and rule.views is not None:
                        note = f"  ({', '.join(sorted(rule.views))})"
                description = binding.description + note
                rows.append((keys.replace(",", " "), description, enabled))
            groups.append((title, rows))
        groups[0][1].append((":", "Command palette", True))
        groups[0][1].append(("ctrl+c", "Quit", True))
        self.push_screen(HelpScreen(groups))

    def action_refresh(self) -> None:
        if self._next_poll is not None:
            self._next_poll.stop()
        self.poll_workers()
        if self._monitor is not None and self._monitor.has_schedules:
            if self._next_schedules is not None:
                self._next_schedules.stop()
            self.read_schedules()

    # -- what the action keys act on (see ui/actions.py) -----------------------
    def _task_list(self) -> TaskList:
        """The tasks list, whatever screen is on top (the views are the bottom one)."""
        return self.screen_stack[0].query_one(TaskList)

    @property
    def marked(self) -> set[str]:
        return self._task_list().marked

    def selected_in(self, view: str) -> str | None:
        widget = self.screen_stack[0].query_one(VIEW_NAMED[view].widget)
        return widget.selected if isinstance(widget, TaskList) else widget.selected_key

    def filtered_ids(self) -> list[str]:
        """The tasks the tasks view lists now (its tab and filter)."""
        return list(self._task_list().ids)

    def action_mark(self) -> None:
        self._task_list().toggle_mark()

    def action_failed_tab(self) -> None:
        self.show_task_tab("failed")

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self._task_list().clear_marks()
        self.show_outcomes(message.outcomes)
        if isinstance(self.screen, QueuePeek):
            self.screen.action_reload()  # a message was removed: show the queue as it is now
        self.action_refresh()  # ask the workers now: the change shows at once

    async def action_quit(self) -> None:
        self._leaving = True
        self.exit(0)

    def on_unmount(self) -> None:
        self._leaving = True
        self._collector.release()
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if self._monitor is not None:
            self._monitor.stop()
