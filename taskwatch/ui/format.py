"""How values are shown: state colours, durations, times, ages, counts.

One place for the small display helpers every view, screen and bar uses,
so a duration reads the same in the tasks list, the task names view, the
detail and the upcoming runs. Plain functions of values: no widgets here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from taskwatch.engine.entities import LOST
from taskwatch.engine.state import (
    FAILURE,
    PENDING,
    RECEIVED,
    REJECTED,
    RETRY,
    REVOKED,
    SENT,
    STARTED,
    SUCCESS,
)
from taskwatch.text import ELLIPSIS

STATE_STYLES = {
    SUCCESS: "green", FAILURE: "bold red", RETRY: "yellow", REVOKED: "magenta",
    REJECTED: "magenta", STARTED: "bold cyan", RECEIVED: "", SENT: "dim", PENDING: "dim",
    LOST: "bold yellow",
}

# One line per cell: a newline or tab in a value would be written raw.
FLAT = str.maketrans("\n\t\r", "   ")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def runtime_cell(seconds: float | None, running: bool) -> str:
    """Whole seconds while running (one repaint a second), precise when done."""
    if seconds is None:
        return "-"
    if running:
        return f"{int(seconds)}s" if seconds < 3600 else duration(seconds)
    return duration(seconds)


def _local(ts: float | None, render: Callable[[float], str]) -> str:
    if ts is None:
        return "-"
    try:
        return render(ts)
    except (OverflowError, OSError, ValueError):  # the engine keeps sane times; be sure anyway
        return "?"


def clock_time(ts: float | None) -> str:
    """Local wall-clock time: unlike an age it does not change every second,
    so an idle list costs nothing to keep on screen."""
    return _local(ts, lambda t: time.strftime("%H:%M:%S", time.localtime(t)))


def precise_time(ts: float | None) -> str:
    """Local date and time to the millisecond (a task's timeline)."""
    return _local(ts, lambda t: datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])


def coarse_age(seconds: float | None) -> str:
    """Coarse on purpose: a worker seen "now" costs no repaint every second."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return "now"
    if seconds < 60:
        return f"{int(seconds // 10) * 10}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"


def ago(seconds: float) -> str:
    return f"{int(seconds)}s ago" if seconds < 60 else f"{int(seconds // 60)}m ago"


def run_day(ts: float | None, now: float) -> str:
    """A run's local time with its day when that is not today: ``14:05:30``,
    ``Mon 09:00`` (within a week), ``Dec 01 00:00`` (later or earlier)."""

    def render(t: float) -> str:
        when, today = datetime.fromtimestamp(t), datetime.fromtimestamp(now)
        if when.date() == today.date():
            return when.strftime("%H:%M:%S")
        if 0 < (when.date() - today.date()).days < 7:
            return when.strftime("%a %H:%M")
        if when.year != today.year and abs((when.date() - today.date()).days) > 300:
            return when.strftime("%Y-%m-%d")
        return when.strftime("%b %d %H:%M")

    return _local(ts, render)


def span(seconds: float) -> str:
    """A time span in its two largest units: ``45s``, ``3m20s``, ``3h12m``, ``2d4h``."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def relative(ts: float, now: float) -> str:
    """``in 3h12m`` ahead, ``3m20s ago`` behind."""
    return f"in {span(ts - now)}" if ts >= now else f"{span(now - ts)} ago"


def round_rate(rate: float) -> str:
    """Two significant digits: the line changes when the rate does, not with every event."""
    if rate < 100:
        return f"{rate:.0f}"
    digits = len(str(int(rate))) - 2
    return f"{round(rate, -digits):,.0f}"


def count_label(n: int) -> str:
    """A count short enough that six tabs with counts fit in 80 columns: 4017, 95k, 1.2M."""
    if n < 10_000:
        return str(n)
    if n < 999_500:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def fit_name(name: str, width: int) -> str:
    """A dotted task name in ``width`` cells: the module prefix goes before the end does.

    ``myapp.tasks.process_report`` in 18 cells is ``…process_report``, not
    ``myapp.tasks.proce…``: leading modules are dropped one at a time (marked
    by a leading ``…``) while the rest does not fit; only the last part
    alone is cut at its end. The full name stays in the detail and the
    filter matches it.
    """
    if width <= 0:
        return ""
    if len(name) <= width:
        return name
    parts = name.split(".")
    for start in range(1, len(parts)):
        shorter = ELLIPSIS + ".".join(parts[start:])
        if len(shorter) <= width:
            return shorter
    last = ELLIPSIS + parts[-1] if len(parts) > 1 else name
    return last[: width - 1] + ELLIPSIS if width > 1 else ELLIPSIS


def theme_for(color_system: str | None) -> str | None:
    """The Textual theme for a terminal's colour system, or None to keep the default.

    In 16 colours (``TERM=xterm``, ``linux``, ``screen``) the default theme's
    RGB colours are matched to the nearest of the 16, which turns yellow
    into bright red and the cursor into black on bright red; the ANSI theme
    uses the terminal's own named colours, so yellow stays yellow.
    """
    return "ansi-dark" if color_system == "standard" else None
