"""``c`` on a worker: which control command, with which values.

A list of Celery's worker controls; the ones that take values ask for them
on one line (``2`` for grow, ``8 2`` for autoscale, ``tasks.add 10/m`` for a
rate limit). The answer is ``(command, arguments)``; the caller then asks
the usual confirmation before anything is sent.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from taskwatch.ui.prompt_frames import PromptFrames

#: (command, what it does, the values it takes) in the order offered.
COMMANDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("pool_grow", "add N pool processes", ("n",)),
    ("pool_shrink", "remove N pool processes", ("n",)),
    ("autoscale", "set autoscale MAX MIN", ("max", "min")),
    ("rate_limit", "rate limit for a task name: TASK RATE (10/m, 1/s; 0 lifts it)", ("task_name", "rate_limit")),
    ("time_limit", "time limits for a task name: TASK SOFT HARD (seconds)", ("task_name", "soft", "hard")),
    ("add_consumer", "consume from one more QUEUE", ("queue",)),
    ("cancel_consumer", "stop consuming from QUEUE", ("queue",)),
    ("enable_events", "send task events (until it restarts)", ()),
    ("disable_events", "stop sending task events", ()),
    ("pool_restart", "restart the pool processes (needs worker_pool_restarts)", ()),
    ("shutdown", "stop the worker (warm shutdown); asks for its name", ()),
)
_INTS = {"n", "max", "min"}
_FLOATS = {"soft", "hard"}


def parse_values(names: tuple[str, ...], text: str) -> dict[str, Any]:
    """The values typed for ``names``; ValueError with one line if they do not fit."""
    parts = text.split()
    if len(parts) != len(names):
        raise ValueError(f"expected {' '.join(n.upper() for n in names)}")
    values: dict[str, Any] = {}
    for name, part in zip(names, parts, strict=True):
        if name in _INTS or name in _FLOATS:
            try:
                number = int(part) if name in _INTS else float(part)
            except ValueError:
                raise ValueError(f"{name.upper()} must be a number, not {part[:20]!r}") from None
            if not 0 <= number < 1e9:
                raise ValueError(f"{name.upper()} must be between 0 and 1e9")
            values[name] = number
        else:
            values[name] = part
    return values


class WorkerControl(PromptFrames, ModalScreen[tuple[str, dict[str, Any]] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="control.cancel")]

    DEFAULT_CSS = """
    WorkerControl { align: center middle; }
    WorkerControl > Vertical { width: 80; max-width: 100%; height: auto; max-height: 90%;
                               border: round $accent; background: $surface; padding: 0 1; }
    WorkerControl OptionList { height: auto; max-height: 14; }
    WorkerControl #control-error { color: $error; height: auto; }
    """

    def __init__(self, host: str, *, events_off: bool = False) -> None:
        super().__init__()
        self.host = host
        self.events_off = events_off
        self.command: str | None = None

    def compose(self) -> ComposeResult:
        head = Text()
        head.append("Control ", style="bold")
        head.append(self.host, style="bold")
        if self.events_off:
            head.append("\nIts task events do not reach taskwatch: enable_events turns them on "
                        "until it restarts (start it with -E to keep them).", style="yellow")
        order = sorted(COMMANDS, key=lambda c: c[0] != "enable_events") if self.events_off else COMMANDS
        with Vertical():
            yield Static(head)
            yield OptionList(*(Option(Text.assemble((name, "bold"), "  ", (what, "dim")), id=name)
                               for name, what, _ in order), id="control-commands")
            yield Input(placeholder="values", id="control-values", disabled=True)
            yield Static("", id="control-error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        name = event.option.id or ""
        takes = next(values for command, _, values in COMMANDS if command == name)
        if not takes:
            self.dismiss((name, {}))
            return
        self.command = name
        box = self.query_one(Input)
        box.disabled = False
        box.placeholder = " ".join(v.upper() for v in takes)
        box.value = ""
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.command is None:
            return
        takes = next(values for command, _, values in COMMANDS if command == self.command)
        try:
            values = parse_values(takes, event.value)
        except ValueError as exc:
            self.query_one("#control-error", Static).update(Text(str(exc)))
            return
        self.dismiss((self.command, values))

    def action_cancel(self) -> None:
        self.dismiss(None)
