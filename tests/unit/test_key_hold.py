"""Events wait while a key is answered: until its frame is out and at least
``HOLD_MIN`` after it, never longer than ``HOLD_MAX`` (pure logic, real clock)."""

from __future__ import annotations

import time

from taskwatch.config import Settings
from taskwatch.monitor import Monitor


def _monitor() -> Monitor:
    return Monitor.from_settings(Settings(broker_url="redis://nowhere.invalid:6379/0"), events=False, backfill=0)


def test_a_released_hold_still_lasts_hold_min_after_its_key():
    monitor = _monitor()
    held_at = monitor.hold_events()
    monitor.release_events(held_at)  # the key's first frame is out at once
    monitor.give_way()
    assert time.monotonic() >= held_at + Monitor.HOLD_MIN


def test_a_frame_drawn_after_hold_min_releases_at_once():
    monitor = _monitor()
    held_at = monitor.hold_events()
    while time.monotonic() < held_at + Monitor.HOLD_MIN:
        time.sleep(0.005)
    monitor.release_events(held_at)
    start = time.monotonic()
    monitor.give_way()
    assert time.monotonic() - start < Monitor.HOLD_MAX / 2  # not the whole hold


def test_an_earlier_keys_frame_does_not_end_the_hold_of_a_later_key():
    monitor = _monitor()
    first = monitor.hold_events()
    second = monitor.hold_events()
    monitor.release_events(first)
    monitor.give_way()  # no frame came for the second key: its hold runs to HOLD_MAX
    assert time.monotonic() >= second + Monitor.HOLD_MAX
    monitor.release_events()  # and a plain release ends any hold
    start = time.monotonic()
    monitor.hold_events()
    monitor.release_events()
    monitor.give_way()
    assert time.monotonic() - start < Monitor.HOLD_MIN
