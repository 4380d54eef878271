"""Queues view: depth per queue, split by priority, unacked, consumers, trend."""

from __future__ import annotations

from rich.text import Text

from taskwatch.engine.state import ClusterState
from taskwatch.ui.views.tables import KeyedTable

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


def _num(value: int | None) -> Text:
    return Text("-" if value is None else f"{value:,}", justify="right")


class QueuesTable(KeyedTable):
    COLUMNS = (
        ("name", "Queue", None),
        ("ready", "Ready", 7),
        ("priority", "By priority", 14),
        ("unacked", "Unacked", 7),
        ("consumers", "Cons", 4),
        ("trend", "Trend (10 min)", 20),
    )

    def show(self, state: ClusterState, needle: str = "") -> None:
        with state.lock:
            queues = sorted(state.queues.values(), key=lambda q: (-(q.messages or 0), q.name))
            history = {name: [n for _, n in samples][-120:] for name, samples in state.queue_history.items()}
        rows = []
        for queue in queues:
            if needle and needle.lower() not in queue.name.lower():
                continue
            by_priority = " ".join(f"{k}:{v}" for k, v in sorted(queue.by_priority.items()) if v)
            samples = history.get(queue.name, [])
            # one bar per ~30 s: downsample to the column width
            step = max(1, len(samples) // 20)
            trend = sparkline(samples[::step], 20)
            ready = _num(queue.messages)
            if queue.messages and samples and len(samples) > 3 and samples[-1] > samples[0]:
                ready.stylize("bold yellow")
            rows.append((queue.name, (
                Text(queue.name),
                ready,
                Text(by_priority or "-", style="dim"),
                _num(queue.unacked),
                Text(queue.error[:40], style="red") if queue.error else _num(queue.consumers),
                Text(trend, style="cyan"),
            )))
        self.apply_rows(rows)
