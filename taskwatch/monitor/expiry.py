"""Being about RabbitMQ's ``event_queue_ttl`` behind: RabbitMQ drops older
events from the receiver's queue without a word. With the management API,
whether it really dropped any is asked once caught up, on a thread of its
own, and a gap recorded only for the drops it confirms; without it, the
stretch is a gap (unconfirmed), closed once caught up. The next rounds
repair either from inspect and the result backend."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskwatch.engine.state import ClusterState, Gap
from taskwatch.sources.errors import describe
from taskwatch.text import mask_secrets

log = logging.getLogger("taskwatch.monitor")


@dataclass
class _Suspicion:
    """Being about ``event_queue_ttl`` behind on RabbitMQ, while the management
    API is asked whether events were really dropped meanwhile."""

    start: float
    ttl: float
    queue: str
    vhost: str
    caught_up: threading.Event = field(default_factory=threading.Event)
    end: float = 0.0  # epoch seconds when caught up
    end_mono: float = 0.0
    read: int = 0  # messages read from the queue by then


class ExpiryWatch:
    """Fed each applied batch's lag (:meth:`watch`); :meth:`forget` on a reconnect
    (the disconnect is a gap of its own)."""

    def __init__(self, state: ClusterState, receiver: Callable[[], Any], event_loss: Callable[[], Any] | None,
                 stopping: threading.Event) -> None:
        self.state = state
        self._receiver = receiver  # the event receiver now (it is replaced on reconnects)
        self._event_loss = event_loss  # builds the management API's check, if given (an EventLossCheck)
        self._stopping = stopping
        self._expiry_gap: Gap | None = None  # the gap opened while behind, unconfirmed
        self._suspicion: _Suspicion | None = None  # behind the TTL, being confirmed
        self._drops_seen: dict[str, int] = {}  # queue -> drops already recorded as gaps
        self._confirm_lock = threading.Lock()
        #: times being behind the TTL was checked and the management API showed nothing dropped
        self.false_alarms = 0

    def forget(self) -> None:
        self._expiry_gap = self._suspicion = None

    def watch(self, expiry: float, now: float, held: float = 0.0) -> None:
        """RabbitMQ drops events older than the event queue's TTL without a
        word: a receiver that far behind may have lost some. With the
        management API, that is asked once caught up (on a thread of its
        own) and a gap recorded only for drops it confirms; without it, the
        stretch is a gap (which the next rounds repair), closed once caught up.

        ``held``: seconds the newest event applied waited in the receiver
        after it was read off the broker (its spool): only the lag before
        that was spent in RabbitMQ's queue, where the TTL applies."""
        # Survivors of an expiring backlog are at most about ``expiry`` old
        # when read: being close to it is the sign, not exceeding it.
        age = self.state.counters.lag  # of the newest event applied, over the caught-up baseline
        lag = max(0.0, age - held)
        behind = self._expiry_gap is not None or self._suspicion is not None
        if not behind and lag > 0.8 * expiry:
            queue = getattr(self._receiver(), "queue_name", None)
            if self._event_loss is not None and queue:
                self._suspicion = _Suspicion(now - age, expiry, queue, getattr(self._receiver(), "vhost", "/"))
                threading.Thread(target=self._confirm, args=(self._suspicion,),
                                 name="taskwatch-event-loss", daemon=True).start()
            else:
                self._expiry_gap = self.state.open_gap(
                    now - age, f"events more than {expiry:g} s behind: RabbitMQ expires them "
                               "(event_queue_ttl; unconfirmed: no management API)")
        elif behind and lag < expiry / 2:
            if self._expiry_gap is not None:
                self.state.close_gap(self._expiry_gap, now)
                self._expiry_gap = None
            suspicion, self._suspicion = self._suspicion, None
            if suspicion is not None:
                suspicion.end, suspicion.end_mono = now, time.monotonic()
                suspicion.read = getattr(self._receiver(), "messages_read", 0)
                suspicion.caught_up.set()

    def _confirm(self, suspicion: _Suspicion) -> None:
        """Ask the management API what RabbitMQ dropped from our event queue
        while we were behind; record a gap for what it confirms (or, when it
        cannot say, for the stretch, marked unconfirmed)."""
        while not suspicion.caught_up.wait(0.5):
            if self._stopping.is_set() or getattr(self._receiver(), "queue_name", None) != suspicion.queue:
                return  # stopped, or the connection (and its queue) is gone: that is a gap already
        with self._confirm_lock:
            check = None
            try:
                check = self._event_loss()
                verdict = check.dropped(suspicion.queue, suspicion.vhost, suspicion.read,
                                        suspicion.end_mono, self._stopping)
                dropped, why = verdict.dropped, verdict.why
            except Exception as exc:  # noqa: BLE001 - a bad API URL, anything: unconfirmed
                dropped, why = None, describe(exc)
            finally:
                if check is not None:
                    check.close()
            if self._stopping.is_set():
                return
            ttl = f"event_queue_ttl {suspicion.ttl:g} s"
            if dropped is None:
                reason = (f"events more than {suspicion.ttl:g} s behind: RabbitMQ expires them "
                          f"({ttl}; unconfirmed: {mask_secrets(why)})")
            else:
                new = dropped - self._drops_seen.get(suspicion.queue, 0)
                self._drops_seen[suspicion.queue] = dropped
                if new <= 0:
                    self.false_alarms += 1
                    log.info("events were more than %g s behind, but RabbitMQ's management API shows "
                             "none dropped from %s: no gap", suspicion.ttl, suspicion.queue)
                    return
                reason = f"{new} event messages dropped by RabbitMQ ({ttl}, confirmed by the management API)"
            gap = self.state.open_gap(suspicion.start, reason)
            self.state.close_gap(gap, suspicion.end)
