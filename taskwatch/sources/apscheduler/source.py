"""One APScheduler job store as the monitor sees it: its reader, its controller, its bridge.

The reader (:func:`~taskwatch.sources.apscheduler.open_store`) reads the
store; changes go through the bridge when a live one serves this store
(:func:`~taskwatch.sources.apscheduler.bridge_client.find_bridge`: done in the
scheduler's process, at once, with run history), else into the store itself
(:class:`~taskwatch.sources.apscheduler.writes.StoreControl`: seen when the
scheduler next wakes). Where to look for a bridge: the store's own Redis,
the broker's Redis, and ``--bridge``. The lookup is repeated at most every
:data:`BRIDGE_RECHECK` seconds, on the reading thread, so a bridge that
starts or dies is noticed without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from taskwatch.records import JobRun, ScheduledJob
from taskwatch.sources.apscheduler import open_store
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.protocols import ScheduleControl

#: seconds between looks for a bridge serving the store
BRIDGE_RECHECK = 10.0


class JobStoreSource:
    """A :class:`~taskwatch.sources.protocols.ScheduleSource` for one ``--jobstore``."""

    kind = "apscheduler"

    def __init__(self, location: StoreLocation, *, read_only: bool, timeout: float,
                 bridge_urls: Sequence[str] = ()) -> None:
        self.location = location
        self.read_only = read_only
        self.timeout = timeout
        self.reader = open_store(location, timeout=timeout)
        self.label = self.reader.label
        self.bridge_urls = tuple(dict.fromkeys(bridge_urls))
        self._lock = threading.Lock()
        self._bridge = None
        self._bridge_checked = float("-inf")
        self._store_control = None

    @property
    def bridged(self) -> bool:
        return self._bridge is not None

    def jobs(self) -> list[ScheduledJob]:
        jobs = self.reader.jobs()
        if time.monotonic() - self._bridge_checked >= BRIDGE_RECHECK:
            self._find_bridge()
        return jobs

    def _find_bridge(self) -> None:
        from taskwatch.sources.apscheduler.bridge_client import find_bridge

        self._bridge_checked = time.monotonic()
        found = find_bridge(self.location, self.bridge_urls, timeout=min(self.timeout, 2.0),
                            read_only=self.read_only) if self.bridge_urls else None
        with self._lock:
            old, self._bridge = self._bridge, found
        if old is not None and (found is None or found.id != old.id):
            old.close()
        elif old is not None and found is not None:
            found.close()  # the same bridge: keep the client that has a connection
            with self._lock:
                self._bridge = old

    def control(self) -> ScheduleControl:
        with self._lock:
            if self._bridge is not None:
                return self._bridge
            if self._store_control is None:
                from taskwatch.sources.apscheduler.writes import StoreControl

                self._store_control = StoreControl(self.location, read_only=self.read_only,
                                                   timeout=max(self.timeout, 3.0))
            return self._store_control

    def history(self) -> list[JobRun]:
        bridge = self._bridge
        if bridge is None:
            return []
        try:
            return bridge.history()
        except Exception:  # noqa: BLE001 - the bridge went away: look again next read
            self._bridge_checked = float("-inf")
            raise

    def close(self) -> None:
        for thing in (self.reader, self._bridge, self._store_control):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001, S110 - shutting down
                    pass
