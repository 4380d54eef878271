"""The tasks list: the Line API over any number of tasks (toolong's model).

The widget holds only a list of task ids (newest first, already filtered in
a background worker) and renders the visible rows on demand from the
engine's state. 100,000 tasks cost the same to draw as 100.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive, reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from taskwatch.engine.entities import LOST
from taskwatch.engine.query import elapsed, parse_eta, shown_args
from taskwatch.engine.state import FAILURE, STARTED, SUCCESS, ClusterState, Task
from taskwatch.ui.format import FLAT, STATE_STYLES, clock_time, fit_name, runtime_cell

# (key, title, width or 0 for flexible, minimum terminal width to show it)
COLUMNS = (
    ("state", "State", 8, 0),
    ("name", "Task", 0, 0),
    ("worker", "Worker", 16, 100),
    ("when", "When", 9, 0),  # received, or @due for a task waiting for its ETA
    ("time", "Runtime", 7, 72),
    ("retries", "Try", 3, 90),
    ("args", "Args", 0, 60),
)


class TaskList(ScrollView, can_focus=False):
    """Rows of tasks by id; cursor kept on the same task across updates."""

    DEFAULT_CSS = """
    /* The scrollbar always there: rows and the header above keep one width. */
    TaskList { height: 1fr; overflow-x: hidden; overflow-y: scroll; }
    """

    cursor: reactive[int] = reactive(0)
    # The list's length is its virtual size. In Textual a virtual size is a
    # layout reactive: every new selection (every 2 s while tasks arrive)
    # re-arranged and repainted the whole screen. The list's own size never
    # depends on it (height 1fr): set_ids moves the scrollbar and repaints
    # the rows that changed, nothing else.
    virtual_size = Reactive(Size(0, 0), layout=False, repaint=False)

    class Opened(Message):
        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    class Resized(Message):
        """The list has its new size: column titles drawn elsewhere must follow now."""

    def on_resize(self) -> None:
        # The app's own Resize comes before the list's layout, so titles made
        # then used the old widths until the next selection, about a second later.
        self._painted.clear()
        self.post_message(self.Resized())

    def __init__(self, state: ClusterState, *, clock: Callable[[], float] = time.time, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.clock = clock
        self.ids: list[str] = []
        self._selected: str | None = None
        self._painted: dict[int, tuple] = {}  # screen row -> what it showed
        self._strips: dict[tuple, Strip] = {}  # row key (see _row_key) -> the row drawn
        #: tasks marked with space: the action keys act on all of them
        self.marked: set[str] = set()

    def refresh_changed(self) -> None:
        """Repaint only the visible rows whose content changed: on a slow
        link an unchanged row must cost no bytes."""
        top = int(self.scroll_y)
        height = self.scrollable_content_region.height
        width = self.size.width
        now = self.clock()
        for y in range(height):
            index = top + y
            signature = self._signature(index, now)
            if self._painted.get(y) != signature:
                self.refresh(Region(0, y, width, 1))

    def _signature(self, index: int, now: float) -> tuple:
        if index >= len(self.ids):
            return ()
        task = self.state.tasks.get(self.ids[index])
        if task is None:
            return (index,)
        running = task.state == STARTED
        tick = int(now - task.started) if running and task.started else 0
        return (task.uuid, task.state, task.state_ts, task.retries, tick, task.exception is None,
                index == self.cursor, task.uuid in self.marked)

    # -- data -----------------------------------------------------------------
    def set_ids(self, ids: list[str]) -> None:
        """New rows; the cursor follows the task it was on when it still shows."""
        selected = self._selected
        old_window = self._window()
        self.ids = ids
        width = self.scrollable_content_region.width  # not size.width: no horizontal scrollbar
        if self.virtual_size.height != len(ids) or self.virtual_size.width != width:
            self.virtual_size = Size(width, len(ids))
            bar = self.vertical_scrollbar
            bar.window_virtual_size = len(ids)
            bar.window_size = self.scrollable_content_region.height
            if self.scroll_y > self.max_scroll_y:
                self.scroll_to(y=self.max_scroll_y, animate=False)
        if selected is not None:
            try:
                index = ids.index(selected) if len(ids) < 200_000 else -1
            except ValueError:
                index = -1
            if index >= 0:
                self.cursor = index
            else:
                self.cursor = min(self.cursor, max(len(ids) - 1, 0))
        else:
            self.cursor = 0
        if self._window() != old_window:
            self.refresh_changed()  # only rows that now show something else

    def _window(self) -> list[str]:
        top = int(self.scroll_y)
        return self.ids[top: top + max(self.scrollable_content_region.height, 1)]

    @property
    def selected(self) -> str | None:
        return self.ids[self.cursor] if 0 <= self.cursor < len(self.ids) else None

    def watch_cursor(self, value: int) -> None:
        self._selected = self.ids[value] if 0 <= value < len(self.ids) else None
        height = max(self.scrollable_content_region.height, 1)
        if value < self.scroll_y:
            self.scroll_to(y=value, animate=False)
        elif value >= self.scroll_y + height:
            self.scroll_to(y=value - height + 1, animate=False)
        self.refresh_changed()

    # -- marks ----------------------------------------------------------------
    def toggle_mark(self) -> None:
        """Mark or unmark the selected task, and move down (as in a file manager)."""
        selected = self.selected
        if selected is None:
            return
        self.marked.symmetric_difference_update({selected})
        self.action_cursor(1)
        self.refresh_changed()

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self.refresh_changed()

    # -- actions --------------------------------------------------------------
    def action_cursor(self, delta: int) -> None:
        if self.ids:
            self.cursor = max(0, min(len(self.ids) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(self.scrollable_content_region.height - 1, 1))

    def action_jump(self, where: int) -> None:
        if self.ids:
            self.cursor = 0 if where == 0 else len(self.ids) - 1

    def action_sideways(self, direction: int) -> None:
        """h/l: nothing to do, its columns always fit the width."""

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))

    # -- rendering ------------------------------------------------------------
    def visible_columns(self) -> list[tuple[str, str, int]]:
        width = self.size.width or 80
        return [(key, title, w) for key, title, w, minimum in COLUMNS if width >= minimum]

    def widths(self) -> dict[str, int]:
        columns = self.visible_columns()
        width = max((self.scrollable_content_region.width or self.size.width) - 1, 20)
        fixed = sum(w + 1 for _, _, w in columns if w)
        flexible = [key for key, _, w in columns if not w]
        spare = max(width - fixed - len(flexible), 10)
        out = {key: w for key, _, w in columns if w}
        if len(flexible) == 2:  # name gets 40%, args the rest
            out["name"] = max(spare * 2 // 5, 12)
            out["args"] = max(spare - out["name"], 8)
        elif flexible:
            out[flexible[0]] = spare
        return out

    def header(self) -> Text:
        widths = self.widths()
        text = Text(no_wrap=True, style="bold")
        for key, title, _ in self.visible_columns():
            text.append(title.ljust(widths[key] + 1)[: widths[key] + 1])
        return text

    def render_row(self, task: Task, now: float, widths: dict[str, int]) -> Text:
        cells = {
            "state": Text(("+" if task.uuid in self.marked else "") + task.state,
                          style=STATE_STYLES.get(task.state, "")),
            "name": Text(fit_name(task.name or "?", widths.get("name", 0))),
            "worker": Text(task.worker or "-", style="dim"),
            "when": Text(clock_time(task.received or task.sent or task.state_ts or None), style="dim"),
            "time": Text(runtime_cell(elapsed(task, now), task.state == STARTED)),
            "retries": Text(str(task.retries) if task.retries else ""),
            # One line per row: a newline or tab in a value would be written raw.
            "args": Text((task.exception if task.state == FAILURE and task.exception
                          else task.lost.reason() if task.state == LOST and task.lost is not None
                          else shown_args(task.args, task.exact_args))
                         .translate(FLAT), style="red" if task.state in (FAILURE, LOST) else "dim"),
        }
        if task.eta and task.state not in (SUCCESS, FAILURE, STARTED, LOST):
            # Waiting for its ETA (a countdown or a retry): when it is due, marked with @.
            due = parse_eta(task.eta)
            cells["when"] = Text("@" + (clock_time(due) if due is not None else task.eta), style="yellow")
        line = Text(no_wrap=True)
        for key, _, _ in self.visible_columns():
            cell = cells[key]
            cell.truncate(widths[key], overflow="ellipsis", pad=True)
            line.append_text(cell)
            line.append(" ")
        return line

    def _row_key(self, task: Task, index: int, now: float, width: int) -> tuple:
        """Everything a row's drawing reads (see render_row): rows drawn before
        are taken from the cache, so a list shifted by new tasks, or shown
        again, costs only its new rows."""
        tick = int(now - task.started) if task.state == STARTED and task.started else 0
        return (task.uuid, task.state, task.state_ts, task.retries, tick, task.name, task.worker, task.args,
                task.call is not None, task.exception, task.eta, task.received, task.sent, task.started,
                task.finished, task.runtime, task.recovered, task.uuid in self.marked, index == self.cursor,
                width, self.size.width, self.rich_style)

    ROWS_CACHED = 1000

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        now = self.clock()
        self._painted[y] = self._signature(index, now)
        if index >= len(self.ids):
            return Strip.blank(width, self.rich_style)
        task = self.state.tasks.get(self.ids[index])
        if task is None:
            return self._render_strip(None, index, now, width)
        key = self._row_key(task, index, now, width)
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) >= self.ROWS_CACHED:
                self._strips.clear()
            strip = self._strips[key] = self._render_strip(task, index, now, width)
        return strip

    def _render_strip(self, task: Task | None, index: int, now: float, width: int) -> Strip:
        if task is None:  # evicted since the list was made
            text = Text("(evicted)", style="dim")
        else:
            text = self.render_row(task, now, self.widths())
        if task is not None and task.recovered:
            text.stylize("italic")
        if index == self.cursor:
            # One block in the cursor's colours, like the other tables' cursor:
            # state colours and dim cells on top of it were unreadable in 16
            # colours (black on bright red, dark-yellow columns).
            text = Text(text.plain, no_wrap=True)
            text.stylize(self.get_component_rich_style("task-list--cursor"))
        segments = list(text.render(self.app.console))
        strip = Strip(segments).adjust_cell_length(width, self.rich_style)
        return strip.apply_style(self.rich_style) if segments else strip

    COMPONENT_CLASSES = {"task-list--cursor"}
    DEFAULT_CSS += """
    TaskList > .task-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """

