"""Every view in one table, and which of the views' actions apply where.

The app asks this table, never a view's name, how to build a view, draw it,
move its cursor and what Enter opens in it; its number key, tab and command
palette entry come from here too. Adding a view is one :class:`View` in
``VIEWS``; adding an action of the views is one line in ``VIEW_ACTIONS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from taskwatch.engine.query import NAME_FILTER, TAB_LABELS, TABS
from taskwatch.ui.format import ago
from taskwatch.ui.views.names import NamesTable
from taskwatch.ui.views.queues import QueuesTable
from taskwatch.ui.views.upcoming import UpcomingTable
from taskwatch.ui.widgets.tab_bar import TabBar
from taskwatch.ui.widgets.task_list import TaskList
from taskwatch.ui.widgets.workers_table import WorkersTable

if TYPE_CHECKING:
    from taskwatch.ui.app import TaskwatchApp

Nav = Mapping[str, Callable[[Any], None]]

# The nav keys (j/k, pages, g/G, h/l) move the view's cursor: the tables
# (widgets/row_table.py) and the tasks list (widgets/task_list.py) are both
# Line API widgets with the same cursor actions.
NAV: Nav = {
    "down": lambda widget: widget.action_cursor(1),
    "up": lambda widget: widget.action_cursor(-1),
    "page_down": lambda widget: widget.action_page(1),
    "page_up": lambda widget: widget.action_page(-1),
    "top": lambda widget: widget.action_jump(0),
    "bottom": lambda widget: widget.action_jump(-1),
    # Sideways, to columns past the edge (a row cursor has no column to move).
    "left": lambda widget: widget.action_sideways(-1),
    "right": lambda widget: widget.action_sideways(1),
}


@dataclass(frozen=True)
class View:
    name: str  # its id in the ContentSwitcher; its key's binding id is view.<name>
    label: str  # in the views' tab bar and the command palette
    key: str  # the number key that shows it
    key_description: str  # that key in the help screen
    widget: type[Widget]  # the one widget nav keys move and Enter opens from
    pane: Callable[[TaskwatchApp], Widget]  # builds the ContentSwitcher's child (id: name)
    draw: Callable[[TaskwatchApp, Any], None]  # from the engine's state, given the widget
    nav: Nav
    open: Callable[[TaskwatchApp, Any], None] | None = None  # Enter, given the widget
    every_tick: bool = False  # drawn on every redraw, not only when the state changed
    selects_tasks: bool = False  # rows are the task selection (tab + filter), made on a worker thread

    def binding(self) -> Binding:
        return Binding(self.key, f"view('{self.name}')", self.key_description, show=False,
                       id=f"view.{self.name}")


def _draw_table(app: TaskwatchApp, table: QueuesTable) -> None:
    """The views that are one keyed table of the state (queues)."""
    table.show(app.state, app.needle)


def _draw_names(app: TaskwatchApp, table: NamesTable) -> None:
    monitor = app.started_monitor
    table.show(app.state, app.needle, give_way=monitor.give_way if monitor is not None else None)


# -- workers ------------------------------------------------------------------
ASKING_WORKERS = "Asking the workers… (ping)"


def _workers_pane(app: TaskwatchApp) -> Widget:
    return Vertical(WorkersTable(id="workers-table"), Static(ASKING_WORKERS, id="empty"), id="workers")


def _draw_workers(app: TaskwatchApp, table: WorkersTable) -> None:
    state = app.state
    table.show(state, app.needle)
    empty = app.query_one("#empty", Static)
    empty.display = not state.workers
    if state.workers:
        return
    # Until a round has ended, no answer is no news (the header says
    # "connecting…" meanwhile): only then is silence worth a question.
    if not app.asked:
        empty.update(ASKING_WORKERS)
    elif app.broker_error:
        empty.update("The broker does not answer; retrying.")
    else:
        empty.update("No worker answered yet. Are workers running against this broker?")


# -- tasks --------------------------------------------------------------------
NO_RESULT_BACKEND = ("No result backend: tasks that finished before taskwatch started are not shown. "
                     "Pass --result-backend URL, or -A APP to take it from the app.")


def _tasks_pane(app: TaskwatchApp) -> Widget:
    return Vertical(TabBar([(t, TAB_LABELS[t]) for t in TABS], app.task_tab, id="task-tabs"),
                    Static(id="task-header"),
                    Static(NO_RESULT_BACKEND, id="tasks-hint", classes="hint"),
                    TaskList(app.state, id="task-list"),
                    id="tasks")


def _draw_tasks(app: TaskwatchApp, tasks: TaskList) -> None:
    tasks.refresh_changed()  # runtimes of running tasks move on
    show_tasks_hint(app, tasks)


def show_tasks_hint(app: TaskwatchApp, tasks: TaskList) -> None:
    """An empty list says what would fill it; once tasks show (a new selection), the hint goes."""
    _show_hint(tasks.screen.query_one("#tasks-hint", Static),  # the views' screen, a detail on top or not
               not app.settings.result_backend and not tasks.ids and not app.needle)


def _show_hint(hint: Static, shown: bool, text: str | None = None) -> None:
    """Show or hide a view's hint, touching it only when something changes (drawn every tick).
    The text is data (a store's name and error can hold brackets): never markup."""
    if text is not None and str(hint.content) != text:
        hint.update(Text(text))
    if hint.display != shown:
        hint.display = shown


# -- task names ---------------------------------------------------------------
def _open_name(app: TaskwatchApp, table: NamesTable) -> None:
    """A task name's tasks: exactly this name, not every name containing it."""
    name = table.selected_key
    if name:
        app.show_task_tab("all")
        app.set_filter(NAME_FILTER + name)


# -- upcoming runs ------------------------------------------------------------
NO_SCHEDULES = ("Nothing scheduled is read. Add -A APP (its beat_schedule), --beat-schedule FILE "
                "(beat's celerybeat-schedule), --beat redbeat, --beat-db URL (django-celery-beat) "
                "or --jobstore URL (an APScheduler job store).")


def _upcoming_pane(app: TaskwatchApp) -> Widget:
    return Vertical(Static(id="upcoming-hint", classes="hint"), UpcomingTable(id="upcoming-table"),
                    id="upcoming")


def _draw_upcoming(app: TaskwatchApp, table: UpcomingTable) -> None:
    monitor = app.started_monitor
    if monitor is None:
        return
    rows = monitor.schedules.rows()
    table.show(rows, app.needle)
    hint = app.query_one("#upcoming-hint", Static)
    if not monitor.has_schedules:
        _show_hint(hint, True, NO_SCHEDULES)
        return
    problems = [f"✖ {s.label}: {s.error}" + (f" (as read {ago(time.time() - s.read_at)})" if s.read_at else "")
                for s in monitor.schedules.stores() if s.error]
    if problems:
        _show_hint(hint, True, "\n".join(problems))
    elif not rows and monitor.schedules.stores():
        _show_hint(hint, True, "No scheduled job or beat entry in " +
                   ", ".join(s.label for s in monitor.schedules.stores()) + ".")
    else:
        _show_hint(hint, False)


def _open_schedule(app: TaskwatchApp, table: UpcomingTable) -> None:
    key = table.selected_key
    if key:
        app.open_schedule(key)


VIEWS: tuple[View, ...] = (
    View(name="workers", label="Workers", key="1", key_description="Workers",
         widget=WorkersTable, pane=_workers_pane, draw=_draw_workers, nav=NAV),
    View(name="queues", label="Queues", key="2", key_description="Queues",
         widget=QueuesTable, pane=lambda app: QueuesTable(id="queues"), draw=_draw_table, nav=NAV,
         open=lambda app, table: table.action_peek()),  # its next messages, not consumed
    View(name="tasks", label="Tasks", key="3", key_description="Tasks",
         widget=TaskList, pane=_tasks_pane, draw=_draw_tasks, nav=NAV,
         open=lambda app, tasks: tasks.action_open(),  # the task's detail
         every_tick=True, selects_tasks=True),
    View(name="names", label="Task names", key="4", key_description="Names",
         widget=NamesTable, pane=lambda app: NamesTable(id="names"), draw=_draw_names, nav=NAV,
         open=_open_name),
    View(name="upcoming", label="Upcoming", key="5", key_description="Upcoming",
         widget=UpcomingTable, pane=_upcoming_pane, draw=_draw_upcoming,
         nav=NAV, open=_open_schedule, every_tick=True),
)
VIEW_NAMED = {view.name: view for view in VIEWS}


@dataclass(frozen=True)
class Action:
    """One of the actions the views' keys run: where it applies."""

    views: frozenset[str] | None = None  # the views it applies to; None: every view
    reserved: bool = False  # shown greyed everywhere: a later version wires it
    changes_state: bool = False  # sends something that changes the cluster: greyed when read-only

    def applies_to(self, view: str) -> bool:
        return self.views is None or view in self.views


# Only while the views show (no detail, peek, help or palette on top);
# in a view the action does not apply to, its key is shown greyed.
VIEW_ACTIONS: dict[str, Action] = {
    "view": Action(),
    "task_tab": Action(),  # from any view: goes to the tasks
    "filter": Action(),
    "clear_filter": Action(),
    "refresh": Action(),
    "nav": Action(),
    "open": Action(),
    "failed_tab": Action(),  # from any view: the tasks' Failed tab
    "mark": Action(views=frozenset({"tasks"})),
    "revoke": Action(views=frozenset({"tasks"}), changes_state=True),
    "terminate": Action(views=frozenset({"tasks"}), changes_state=True),
    "revoke_filtered": Action(views=frozenset({"tasks"}), changes_state=True),
    "retry": Action(views=frozenset({"tasks", "names"}), changes_state=True),
    "trigger": Action(views=frozenset({"upcoming"}), changes_state=True),
    "pause": Action(views=frozenset({"upcoming"}), changes_state=True),  # and resume: APScheduler jobs
    "remove_job": Action(views=frozenset({"upcoming"}), changes_state=True),
    "purge": Action(views=frozenset({"queues"}), changes_state=True),
    "worker_control": Action(views=frozenset({"workers"}), changes_state=True),
}
RESERVED_ACTIONS = frozenset(name for name, action in VIEW_ACTIONS.items() if action.reserved)
