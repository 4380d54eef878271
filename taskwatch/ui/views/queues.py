"""Queues view: depth per queue, split by priority, unacked, consumers, trend."""

from __future__ import annotations

import time

from rich.text import Text
from textual.message import Message

from taskwatch.engine.state import ClusterState
from taskwatch.ui.widgets.row_table import RowTable

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int], width: int) -> str:
    """The last ``width`` samples as block characters scaled to their max."""
    values = values[-width:]
    if not values:
        return ""
    top = max(values)
    if top == 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, v * (len(BARS) - 1) // top)] for v in values)


PRIORITY_WIDTH = 14  # the "By priority" column


def fit_priorities(by_priority: dict[str, int], width: int = PRIORITY_WIDTH) -> str:
    """``priority:count`` pairs in ``width`` cells: whole pairs only, then ``…``.

    A pair cut in the middle misleads (``9:2`` shown as ``9`` reads as a count).
    """
    pairs = [f"{k}:{v}" for k, v in sorted(by_priority.items()) if v]
    text = " ".join(pairs)
    if len(text) <= width:
        return text
    shown: list[str] = []
    for pair in pairs:
        if len(" ".join([*shown, pair, "…"])) > width:
            break
        shown.append(pair)
    return " ".join([*shown, "…"])


BUCKET = 30.0  # seconds per bar
BARS_SHOWN = 20  # 20 bars of 30 s: the last 10 minutes


def trend(samples: list[tuple[float, int]], now: float) -> list[int]:
    """The highest depth in each 30-second bucket, aligned to the clock, so
    the bars move every 30 s rather than with every poll."""
    current = int(now // BUCKET)
    first = current - BARS_SHOWN + 1
    buckets: dict[int, int] = {}
    for ts, depth in samples:
        bucket = int(ts // BUCKET)
        if bucket >= first:
            buckets[bucket] = max(buckets.get(bucket, 0), depth)
    if not buckets:
        return []
    start = min(buckets)
    return [buckets.get(b, 0) for b in range(start, current + 1)]


def _num(value: int | None) -> Text:
    return Text("-" if value is None else f"{value:,}", justify="right")


class QueuesTable(RowTable):
    class PeekRequested(Message):
        def __init__(self, queue: str) -> None:
            super().__init__()
            self.queue = queue

    def action_peek(self) -> None:
        if self.selected_key is not None:
            self.post_message(self.PeekRequested(self.selected_key))

    COLUMNS = (
        ("name", "Queue", None),
        ("ready", "Ready", 7),
        ("priority", "By priority", PRIORITY_WIDTH),
        ("unacked", "Unacked", 7),
        ("consumers", "Cons", 4),
        ("trend", "Trend (10 min)", 20),
    )

    def show(self, state: ClusterState, needle: str = "") -> None:
        with state.lock:
            queues = sorted(state.queues.values(), key=lambda q: (-(q.messages or 0), q.name))
            history = {name: list(samples) for name, samples in state.queue_history.items()}
        now = time.time()
        rows = []
        for queue in queues:
            if needle and needle.lower() not in queue.name.lower():
                continue
            by_priority = fit_priorities(queue.by_priority)
            bars = trend(history.get(queue.name, []), now)
            ready = _num(queue.messages)
            if queue.messages and len(bars) > 2 and bars[-1] > bars[0]:
                ready.stylize("bold yellow")  # growing
            rows.append((queue.name, (
                Text(queue.name),
                ready,
                Text(by_priority or "-", style="dim"),
                _num(queue.unacked),
                Text(queue.error[:40], style="red") if queue.error else _num(queue.consumers),
                Text(sparkline(bars, BARS_SHOWN), style="cyan"),
            )))
        self.apply_rows(rows)
