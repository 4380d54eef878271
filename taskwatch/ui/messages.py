"""Messages that carry results from background work to the widgets."""

from __future__ import annotations

from textual.message import Message

from taskwatch.monitor import PollReport


class Polled(Message):
    """A round of asking finished (see ``report.errors`` for what failed)."""

    def __init__(self, report: PollReport) -> None:
        super().__init__()
        self.report = report
