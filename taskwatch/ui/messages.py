"""Messages that carry results from background work to the widgets."""

from __future__ import annotations

from textual.message import Message

from taskwatch.monitor import PollReport


class Polled(Message):
    """A round of asking finished (see ``report.errors`` for what failed)."""

    def __init__(self, report: PollReport) -> None:
        super().__init__()
        self.report = report


class TasksSelected(Message):
    """The task ids for a tab and filter, selected off the UI thread."""

    def __init__(self, tab: str, needle: str, version: int, ids: list[str] | None,
                 counts: dict[str, int] | None, filtered: dict[str, int] | None = None) -> None:
        """``ids`` None: the selection was superseded before it finished."""
        super().__init__()
        self.tab = tab
        self.needle = needle
        self.version = version
        self.ids = ids
        self.counts = counts
        #: per tab, the tasks the filter matches (None: no filter)
        self.filtered = filtered


class Pong(Message):
    """A worker answered ping: worth drawing before the round ends."""


class SchedulesRead(Message):
    """One read of every schedule source ended (``errors``: one line each)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__()
        self.errors = errors
