"""A task's detail: everything known about it, traceback scrollable."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from taskwatch.engine.entities import LOST, is_scheduler_run
from taskwatch.engine.query import elapsed, shown_args, timeline
from taskwatch.engine.state import ClusterState, Task
from taskwatch.text import strip_control
from taskwatch.ui.format import STATE_STYLES, duration, precise_time
from taskwatch.ui.screens.scrolling import TextDetail, scroll_bindings


def render_task(task: Task, state: ClusterState) -> Text:
    """The detail as one Text: every untrusted value appended as data."""
    text = Text()

    def field(label: str, value: str | None, style: str = "") -> None:
        text.append(f"{label:<11}", style="bold")
        # Ids (the task's own, parent, root, children) reach here as sent;
        # everything else was cleaned when stored. Strip controls from all.
        text.append(strip_control(value) if value not in (None, "") else "-", style=style)
        text.append("\n")

    field("Task", task.name or "?", "bold")
    field("ID", task.uuid)
    field("State", task.state + ("  (recovered after a gap in events)" if task.recovered else ""),
          STATE_STYLES.get(task.state, ""))
    field("Worker", task.worker)
    field("Queue", task.queue)
    field("Retries", str(task.retries))
    if task.eta:
        field("ETA", task.eta, "yellow")
    if task.expires:
        field("Expires", task.expires)
    field("Runtime", duration(elapsed(task)))
    text.append("\n")
    exactness = ("the job's, as its APScheduler store keeps them" if is_scheduler_run(task.uuid)
                 else "exact values, from the worker or the result backend" if task.exact_args
                 else "a repr from the task's events: long values are cut")
    text.append("Arguments ", style="bold")
    text.append(f"({exactness})\n", style="dim")
    field("  args", shown_args(task.args, task.exact_args))
    field("  kwargs", shown_args(task.kwargs, task.exact_args))
    if task.result is not None:
        field("Result", task.result)
    if task.exception:
        field("Exception", task.exception, "bold red")
    if task.state == LOST and task.lost is not None:
        field("Lost", task.lost.reason(), STATE_STYLES[LOST])
    attempts = state.attempts.get(task.uuid, ())
    text.append("\nTimeline\n", style="bold")
    for ts, what in timeline(task, attempts):
        text.append(f"  {precise_time(ts)}  {what}\n")
    text.append("\nFamily\n", style="bold")
    field("  parent", task.parent_id)
    field("  root", task.root_id)
    children = task.children or []
    field("  children", ", ".join(children[:20]) + (f" … (+{len(children) - 20})" if len(children) > 20 else ""))
    if task.uuid in state.retry_of:
        field("  retry of", state.retry_of[task.uuid])
    if task.uuid in state.retried_as:
        field("  retried as", ", ".join(state.retried_as[task.uuid][-5:]))
    if task.traceback:
        text.append("\nTraceback\n", style="bold")
        text.append(task.traceback, style="red")
        text.append("\n")
    for number, attempt in enumerate(attempts, 1):
        if attempt.traceback:
            text.append(f"\nTraceback of attempt {number} (retried)\n", style="bold")
            text.append(attempt.traceback, style="dim red")
            text.append("\n")
    return text


class TaskDetail(TextDetail):
    """Esc goes back to the list, where the cursor still is on this task."""

    BINDINGS = [
        Binding("escape,q", "back", "Back", id="detail.back"),
        *scroll_bindings("detail"),
        Binding("w", "wrap", "Wrap", id="detail.wrap"),
        Binding("h,left", "pan(-8)", "Left", show=False, id="detail.left"),
        Binding("l,right", "pan(8)", "Right", show=False, id="detail.right"),
        Binding("P", "parent", "Parent", id="detail.parent"),
        Binding("C", "child", "First child", id="detail.child"),
    ]

    def __init__(self, state: ClusterState, task_id: str) -> None:
        super().__init__()
        self.state = state
        self.task_id = task_id
        # Long lines (a traceback's paths) wrap by default; `w` shows them
        # whole, one per row, and h/l pan sideways.
        self.wrap = True

    @property
    def task(self) -> Task | None:
        return self.state.tasks.get(self.task_id)



    def refresh_body(self) -> None:
        task = self.task
        body = self.query_one("#detail-body", Static)
        if task is None:
            body.update(Text(f"Task {strip_control(self.task_id)} is no longer in memory (evicted).",
                             style="dim"))
            return
        with self.state.lock:
            text = render_task(task, self.state)
        text.no_wrap = not self.wrap
        body.update(text)

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        self.query_one("#detail-body", Static).set_class(not self.wrap, "nowrap")
        self._scroller().scroll_to(x=0, animate=False)
        self.refresh_body()

    def action_pan(self, columns: int) -> None:
        self._scroller().scroll_relative(x=columns, animate=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        task = self.task
        if action == "parent":
            return bool(task and self._other(task.parent_id)) or None
        if action == "child":
            return bool(task and task.children and self._other(task.children[0])) or None
        return True

    def _other(self, task_id: str | None) -> bool:
        """A task in memory other than this one: P/C never stack the same task again."""
        return task_id is not None and task_id != self.task_id and task_id in self.state.tasks



    def action_parent(self) -> None:
        task = self.task
        if task and self._other(task.parent_id):
            self.app.push_screen(TaskDetail(self.state, task.parent_id))

    def action_child(self) -> None:
        task = self.task
        if task and task.children and self._other(task.children[0]):
            self.app.push_screen(TaskDetail(self.state, task.children[0]))
