"""Retry when only a truncated repr of the arguments is known: never guess.

The editor is prefilled with what is known, the task's events' repr, as a
JSON object ``{"args": ..., "kwargs": ...}`` that is usually *not* valid
JSON yet (Python reprs use quotes and tuples, cut values end in ``…``). The
user writes the real values; only strict JSON of that shape is accepted, and
the caller asks once more with the exact JSON before anything is sent.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

from taskwatch.records import ExactCall
from taskwatch.ui.prompt_frames import PromptFrames

MAX_JSON = 1 << 20


def parse_call(text: str) -> ExactCall:
    """``{"args": [...], "kwargs": {...}}`` in strict JSON; ValueError with one line otherwise."""
    if len(text) > MAX_JSON:
        raise ValueError("more than 1 MB of arguments")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(value, dict) or set(value) - {"args", "kwargs"}:
        raise ValueError('expected an object with "args" (a list) and "kwargs" (an object)')
    args, kwargs = value.get("args", []), value.get("kwargs", {})
    if not isinstance(args, list):
        raise ValueError('"args" must be a list')
    if not isinstance(kwargs, dict):
        raise ValueError('"kwargs" must be an object')
    return ExactCall(tuple(args), kwargs)


class ArgsEditor(PromptFrames, ModalScreen[ExactCall | None]):
    BINDINGS = [
        Binding("ctrl+s", "send", "Use these", id="editor.send"),
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
    ]

    DEFAULT_CSS = """
    ArgsEditor { align: center middle; }
    ArgsEditor > Vertical { width: 96; max-width: 100%; height: 90%; border: round $warning;
                            background: $surface; padding: 0 1; }
    ArgsEditor TextArea { height: 1fr; }
    ArgsEditor #editor-error { color: $error; height: auto; }
    """

    def __init__(self, name: str, task_id: str, args_repr: str | None, kwargs_repr: str | None) -> None:
        super().__init__()
        self.task_name = name
        self.task_id = task_id
        self.prefill = f'{{"args": {args_repr or "[]"},\n "kwargs": {kwargs_repr or "{}"}}}'

    def compose(self) -> ComposeResult:
        head = Text()
        head.append("Retry ", style="bold")
        head.append(self.task_name, style="bold")
        head.append(f"  {self.task_id}\n", style="dim")
        head.append("Only a repr from the task's events is known, and long values in it are cut. "
                    "Write the real arguments as JSON; nothing is guessed. Ctrl-S uses them, Esc cancels.",
                    style="yellow")
        with Vertical():
            yield Static(head)
            yield TextArea(self.prefill, id="editor-text", soft_wrap=True, show_line_numbers=False)
            yield Static("", id="editor-error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        try:
            call = parse_call(self.query_one(TextArea).text)
        except ValueError as exc:
            self.query_one("#editor-error", Static).update(Text(str(exc)))
            return
        self.dismiss(call)

    def action_cancel(self) -> None:
        self.dismiss(None)
