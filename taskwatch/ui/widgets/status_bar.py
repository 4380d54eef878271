"""The one-line header: cluster, masked broker, connection state, badges."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from taskwatch.engine.workers import WorkerTable
from taskwatch.text import clean, mask_url


class StatusBar(Widget):
    """Shows where taskwatch is connected and whether that connection is healthy."""

    DEFAULT_CSS = """
    StatusBar { height: 1; }
    """

    tick: reactive[int] = reactive(0, layout=False)

    def __init__(self, broker_url: str, profile: str | None, read_only: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self._broker = clean(mask_url(broker_url), 80, single_line=True)
        self._profile = clean(profile, 30, single_line=True) if profile else None
        self._read_only = read_only
        self._workers: WorkerTable | None = None
        self._polls = 0

    def show(self, workers: WorkerTable) -> None:
        self._workers = workers
        self._polls += 1
        self.refresh()

    def render(self) -> Text:
        # Most important first: a narrow terminal cuts from the right.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" taskwatch ", style="bold reverse")
        if self._read_only:
            text.append(" READ-ONLY ", style="bold black on yellow")
        if self._profile:
            text.append(f" {self._profile}", style="bold")
        text.append(" ")
        workers = self._workers
        if workers is None:
            text.append("◌ connecting…", style="italic")
        elif workers.broker_error:
            text.append("✖ broker unreachable", style="bold red")
            if workers.last_poll:
                text.append(f" (last ok {int(time.time() - workers.last_poll)}s ago)", style="red")
        else:
            online = sum(1 for w in workers.workers.values() if w.online)
            text.append("● connected", style="bold green")
            text.append(f"  {online}/{len(workers.workers)} workers")
        text.append("  ")
        text.append(self._broker, style="dim")
        return text
