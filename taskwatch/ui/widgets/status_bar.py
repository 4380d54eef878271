"""The one-line header: cluster, masked broker, connection state, badges."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from rich.text import Text
from textual.widget import Widget

from taskwatch.engine.reconcile import lost_ids
from taskwatch.engine.schedule_book import ScheduleBook
from taskwatch.engine.state import ClusterState
from taskwatch.records import BROKER, MANAGEMENT_API, RESULT_BACKEND, SourceHealth
from taskwatch.text import AUTH_FAILED, NOT_ANSWERING, TIMED_OUT, clean, mask_url
from taskwatch.ui.format import round_rate


class StatusBar(Widget):
    """Shows where taskwatch is connected and whether that connection is healthy."""

    DEFAULT_CSS = """
    StatusBar { height: 1; }
    """

    def __init__(self, broker_url: str, profile: str | None, read_only: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self._broker = clean(mask_url(broker_url), 80, single_line=True)
        self._profile = clean(profile, 30, single_line=True) if profile else None
        self._read_only = read_only
        self._state: ClusterState | None = None
        self._broker_error: str | None = None
        self._events_connected = False
        self._rate = 0.0
        self._rate_sample: tuple[float, int] | None = None
        self._text = Text()
        self._signature: tuple = ()
        self._asked = False
        self._events_error: str | None = None
        self._schedule_alert: str | None = None
        self._health: dict[str, SourceHealth] = {}

    def show(self, state: ClusterState, *, broker_error: str | None, events_connected: bool,
             asked: bool = True, events_error: str | None = None, schedule_alert: str | None = None,
             health: Iterable[SourceHealth] = ()) -> None:
        """``asked``: a round of asking the broker has completed at least once.
        ``events_error``: why there will be no events at all (shown instead of waiting for them).
        ``schedule_alert``: a scheduler that is down or stuck (``⚠ beat late``).
        ``health``: each source's state (the monitor's); the broker's outranks ``broker_error``."""
        self._asked = asked
        self._health = {h.source: h for h in health}
        self._schedule_alert = schedule_alert
        self._events_error = events_error
        now = time.monotonic()
        received = state.counters.events_received
        if self._rate_sample is not None and now - self._rate_sample[0] >= 1.0:
            self._rate = (received - self._rate_sample[1]) / (now - self._rate_sample[0])
            self._rate_sample = (now, received)
        elif self._rate_sample is None:
            self._rate_sample = (now, received)
        self._state = state
        self._broker_error = broker_error
        self._events_connected = events_connected
        text = self._build()
        signature = (text.plain, tuple(text.spans))
        if signature != self._signature:  # an unchanged line costs no bytes on the wire
            self._signature = signature
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text if self._signature else self._build()

    def _build(self) -> Text:
        # Most important first: a narrow terminal cuts from the right.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" taskwatch ", style="bold reverse")
        if self._read_only:
            text.append(" READ-ONLY ", style="bold black on yellow")
        if self._profile:
            text.append(f" {self._profile}", style="bold")
        text.append(" ")
        state = self._state
        broker = self._health.get(BROKER)
        now = time.time()
        if broker is not None and broker.down:
            self._broker_down(text, broker, now)
        elif state is None or not self._asked:
            text.append(f"◌ connecting to {self._broker}", style="italic")
        elif self._broker_error:
            # It answered and refused the password (rotated?): not an outage.
            refused = AUTH_FAILED in self._broker_error.lower()
            text.append("✖ broker authentication failed" if refused else "✖ broker unreachable", style="bold red")
        else:
            now = time.time()
            with state.lock:
                online = sum(1 for w in state.workers.values() if w.online(now))
                total = len(state.workers)
                losing = bool(state.open_gaps())
                backlog, limit = state.counters.backlog, state.counters.backlog_limit
                spooled, spool_limit = state.counters.spooled, state.counters.spool_limit
                lag = state.counters.lag
                lost = len(lost_ids(state))
            text.append("● connected", style="bold green")
            text.append(f"  {online}/{total} workers")
            if lost:  # no worker holds them, no outcome came: the Failed tab lists them
                text.append(f"  ⚠ {lost} lost", style="bold yellow")
            if losing:
                text.append("  ⚠ events lost", style="bold yellow")
            elif self._events_error:
                text.append(f"  no events: {self._events_error}", style="italic")
            elif not self._events_connected:
                text.append("  ◌ events…", style="italic")
            else:
                if self._rate >= 1:
                    text.append(f"  {round_rate(self._rate)} ev/s", style="")
                # Falling behind: by how long (clock differences taken out),
                # how much the receiver has read and not yet applied (its
                # spool: past its limit events are dropped, a gap), and how
                # much the broker holds for us (Redis cuts the connection,
                # losing it all, at the limit).
                behind = [f"{lag:.0f} s"] if lag >= BEHIND_SECONDS else []
                if spooled is not None and spooled >= BEHIND:
                    behind.append(f"{spooled / MB:.0f}/{spool_limit / MB:.0f} MB spooled" if spool_limit
                                  else f"{spooled / MB:.0f} MB spooled")
                if backlog is not None and backlog >= BEHIND:
                    behind.append(f"{backlog / MB:.0f}/{limit / MB:.0f} MB" if limit else f"{backlog / MB:.0f} MB")
                if behind:
                    text.append(f"  ⚠ behind {', '.join(behind)}", style="bold yellow")
        for health in sorted(self._health.values(), key=lambda h: h.source):
            if health.down and health.source != BROKER:  # lasting, while it is down
                text.append(f"  ✖ {_short(health.source)} {_REASON.get(health.reason or '', health.reason)}",
                            style="bold red")
        if self._schedule_alert:  # whatever the broker's state: beat may be down with it
            text.append(f"  {self._schedule_alert}", style="bold red")
        if self._asked or (broker is not None and broker.down):  # (else "connecting to" said it)
            text.append("  ")
            text.append(self._broker, style="dim")
        return text


    @staticmethod
    def _broker_down(text: Text, broker: SourceHealth, now: float) -> None:
        """``✖ broker not answering 12s (last reply 14:03:07)``: what, for how
        long, and when it last really answered (the most important part first)."""
        reason = broker.reason or "error"
        said = reason if reason in _SAID_AS_IS else f"unreachable: {reason}"
        text.append(f"✖ broker {said}", style="bold red")
        if broker.since is not None:
            text.append(f" {_seconds(now - broker.since)}", style="red")
        if broker.last_ok is not None:
            text.append(f" (last reply {datetime.fromtimestamp(broker.last_ok):%H:%M:%S})", style="red")


def _seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


#: Short names for the header, so several fit 80 columns.
_SHORT = {RESULT_BACKEND: "results", MANAGEMENT_API: "mgmt API"}
_REASON = {AUTH_FAILED: "auth failed"}
#: Reasons that say it all after "broker" (the others follow "unreachable: ").
_SAID_AS_IS = (AUTH_FAILED, NOT_ANSWERING, TIMED_OUT)


def _short(source: str) -> str:
    if source in _SHORT:
        return _SHORT[source]
    return "job store" if source.startswith("job store") else source.split(" ", 1)[0]


MB = 1024 * 1024
BEHIND = MB  # bytes waiting at the broker before the header says so
BEHIND_SECONDS = 2.0  # seconds behind the events before the header says so


def schedule_alert(book: ScheduleBook) -> str | None:
    """``⚠ beat late`` when an entry of beat's own state is late (beat is down
    or stuck); ``⚠ N jobs overdue`` for APScheduler jobs left behind."""
    late, overdue = book.late_beat(), book.overdue_jobs()
    parts = []
    if late:
        parts.append("⚠ beat late")
    if overdue:
        parts.append(f"⚠ {len(overdue)} job{'s' if len(overdue) != 1 else ''} overdue")
    return "  ".join(parts) or None
