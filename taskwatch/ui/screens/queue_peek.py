"""Enter on a queue: its next messages, read without consuming them."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from taskwatch.monitor import Monitor
from taskwatch.records import SOURCE_AMQP, SOURCE_MANAGEMENT, SOURCE_REDIS, PeekedMessage
from taskwatch.ui.prompt_frames import PromptFrames
from taskwatch.ui.screens.scrolling import ScrollKeys, scroll_bindings

_NOT_ON_RABBITMQ = "not read: RabbitMQ cannot show a message without taking it"

#: What peeking really does, by the queue probe that listed the queue (``QueueDepth.source``).
HOW_READ: dict[str | None, str] = {
    SOURCE_REDIS: "read with LRANGE: nothing is consumed",
    SOURCE_AMQP: _NOT_ON_RABBITMQ,
    SOURCE_MANAGEMENT: _NOT_ON_RABBITMQ,
}
HOW_READ_UNKNOWN = "nothing is consumed"


def render_messages(queue: str, messages: list[PeekedMessage], error: str | None,
                    source: str | None = None, selected: int | None = None) -> Text:
    text = Text()
    text.append(f"Next messages in {queue}", style="bold")
    text.append(f"  ({HOW_READ.get(source, HOW_READ_UNKNOWN)})\n\n", style="dim")
    if error:
        text.append(error, style="yellow")
        return text
    if not messages:
        text.append("The queue is empty.", style="dim")
        return text
    for i, message in enumerate(messages, 1):
        mark = "reverse" if selected == i - 1 else ""
        text.append(f"{i:>2}. ", style=f"bold {mark}")
        text.append(message.task or "?", style=f"bold {mark}")
        text.append(f"  {message.id or '-'}", style=f"dim {mark}")
        text.append("\n")
        details = []
        if message.priority is not None:
            details.append(f"priority {message.priority}")
        if message.eta:
            details.append(f"eta {message.eta}")
        if message.retries:
            details.append(f"retries {message.retries}")
        if message.content_type and message.content_type != "application/json":
            details.append(f"{message.content_type}: headers only, body not decoded")
        if details:
            text.append("    " + ", ".join(details) + "\n", style="yellow")
        text.append("    args   ", style="dim")
        text.append((message.args or "-") + "\n")
        if message.kwargs and message.kwargs != "{}":
            text.append("    kwargs ", style="dim")
            text.append(message.kwargs + "\n")
        if message.error:
            text.append(f"    {message.error}\n", style="red")
    return text


class QueuePeek(PromptFrames, ScrollKeys, ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "close", "Close", id="peek.close"),
                Binding("r", "reload", "Reload", id="peek.reload"),
                Binding("n", "select(1)", "Next message", id="peek.next"),
                Binding("N", "select(-1)", "Previous", show=False, id="peek.previous"),
                Binding("x", "remove", "Remove it", id="peek.remove",
                        tooltip="Take the selected message out of the queue (Redis), asked first"),
                *scroll_bindings("peek")]

    DEFAULT_CSS = """
    QueuePeek { align: center middle; }
    QueuePeek > VerticalScroll { width: 96; max-width: 100%; height: 90%; border: round $accent;
                                 background: $surface; padding: 0 1; }
    """

    def __init__(self, monitor: Monitor, queue: str, count: int = 10, source: str | None = None) -> None:
        super().__init__()
        self.monitor = monitor
        self.queue = queue
        self.count = count
        self.source = source  # the probe that listed the queue: says how it is read
        self.messages: list[PeekedMessage] = []
        self.error: str | None = None
        self.selected = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(f"Reading {self.queue}…", style="dim"), id="peek-body")
        yield Footer(compact=True)  # this window's keys, not the views'

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        try:
            messages, error = self.monitor.peek(self.queue, self.count), None
        except Exception as exc:  # noqa: BLE001 - shown in the window, one line
            messages, error = [], str(exc)
        self.app.call_from_thread(self._show, messages, error)

    def _show(self, messages: list[PeekedMessage], error: str | None) -> None:
        self.messages, self.error = messages, error
        self.selected = min(self.selected, max(len(messages) - 1, 0))
        self._draw()
        self.refresh_bindings()

    def _draw(self) -> None:
        self.query_one("#peek-body", Static).update(
            render_messages(self.queue, self.messages, self.error, self.source,
                            self.selected if self.messages else None))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select":
            return bool(self.messages) or None
        if action == "remove":
            read_only = getattr(self.app, "settings", None) is not None and self.app.settings.read_only
            return (bool(self.messages) and self.source == SOURCE_REDIS and not read_only
                    and hasattr(self.app, "remove_message")) or None
        return True

    def action_select(self, step: int) -> None:
        if self.messages:
            self.selected = (self.selected + step) % len(self.messages)
            self._draw()

    def action_remove(self) -> None:
        if not self.messages:
            return
        message = self.messages[self.selected]
        if message.id:
            self.app.remove_message(self.queue, message.id, message.task or "?")  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.dismiss(None)
