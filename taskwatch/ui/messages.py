"""Messages that carry results from background work to the widgets."""

from __future__ import annotations

from textual.message import Message

from taskwatch.sources.inspect import WorkerPoll


class WorkersPolled(Message):
    """An inspect round finished (or failed: see ``poll.broker_error``)."""

    def __init__(self, poll: WorkerPoll) -> None:
        super().__init__()
        self.poll = poll
