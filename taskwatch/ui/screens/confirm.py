"""The question before every state-changing action: ``ModalScreen[bool]``, default No.

It names exactly what will happen to what (count, names, queue, workers).
``y`` answers yes, ``n`` / Esc / Enter answer no, so a reflexive Enter never
destroys anything. Two stronger forms:

* ``typed``: the user must type that text (a queue's name before a purge,
  a worker's before a shutdown); ``y`` does nothing, Enter on the matching
  text answers yes.
* ``choices``: one of several ways (a terminate's signal), moved with
  ``←``/``→``; the chosen one is ``screen.choice`` after a yes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from taskwatch.ui.prompt_frames import PromptFrames


class Confirm(PromptFrames, ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
        Binding("enter", "enter", "No", show=False, id="confirm.enter"),
        Binding("left,h", "choose(-1)", "Previous", show=False, id="confirm.previous"),
        Binding("right,l", "choose(1)", "Next", show=False, id="confirm.next"),
    ]

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 76; max-width: 100%; height: auto; max-height: 90%;
                         border: round $warning; background: $surface; padding: 0 1; }
    Confirm Input { margin: 1 0 0 0; }
    """

    def __init__(self, title: str, lines: Sequence[str | Text], *, typed: str | None = None,
                 choices: Sequence[str] = ()) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)
        self.typed = typed
        self.choices = list(choices)
        self.choice: str | None = self.choices[0] if self.choices else None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._body(), id="confirm-body")
            if self.typed is not None:
                yield Input(placeholder=f"type {self.typed} to confirm", id="confirm-typed")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.typed is not None:
            self.query_one(Input).focus()

    def _body(self) -> Text:
        text = Text()
        text.append(self.title_text + "\n", style="bold")
        for line in self.lines:
            text.append("\n")
            text.append(line if isinstance(line, Text) else Text(line))
        if self.choices:
            text.append("\n\n")
            for option in self.choices:
                text.append(f" {option} ", style="reverse bold" if option == self.choice else "dim")
                text.append(" ")
            text.append("   ←/→ to change", style="dim")
        text.append("\n\n")
        if self.typed is not None:
            text.append("Type ", style="dim")
            text.append(self.typed, style="bold")
            text.append(" and Enter to go ahead; Esc to cancel.", style="dim")
        else:
            text.append("y", style="bold")
            text.append(" go ahead   ", style="dim")
            text.append("n / Esc / Enter", style="bold")
            text.append(" cancel (the default)", style="dim")
        return text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.typed is not None:
            # Letters are the typed text's (the Input takes them first) and
            # Enter submits it: only Esc answers, and only no.
            return action == "answer" and parameters == (False,)
        if action == "choose" and not self.choices:
            return False
        return True

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_enter(self) -> None:
        self.dismiss(False)

    def action_choose(self, step: int) -> None:
        index = self.choices.index(self.choice) if self.choice in self.choices else 0
        self.choice = self.choices[(index + step) % len(self.choices)]
        self.query_one("#confirm-body", Static).update(self._body())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value == self.typed)
