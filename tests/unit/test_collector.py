"""The garbage-collection policy around keys (pure logic, with a fake clock)."""

from __future__ import annotations

import gc

import pytest

from taskwatch.ui.collector import QuietCollector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collector():
    clock = Clock()
    was = gc.isenabled()
    gc.enable()
    yield QuietCollector(quiet=0.25, longest=1.0, clock=clock), clock
    gc.enable() if was else gc.disable()


def test_a_key_holds_collection_until_keys_pause(collector):
    quiet, clock = collector
    quiet.key()
    assert not gc.isenabled() and quiet.holding
    clock.now += 0.2
    quiet.tick()
    assert not gc.isenabled()  # the key's answer may still be drawing
    clock.now += 0.1
    quiet.tick()
    assert gc.isenabled() and not quiet.holding


def test_keys_held_down_still_let_collection_run_from_the_timer(collector):
    quiet, clock = collector
    for _ in range(12):  # a key every 0.1 s for 1.2 s: never quiet
        quiet.key()
        clock.now += 0.1
        quiet.tick()
        if gc.isenabled():
            break
    assert gc.isenabled(), "collection must come back on after `longest` seconds"
    assert 1.0 <= clock.now - 100.0 <= 1.2
    quiet.key()  # the next key holds again
    assert not gc.isenabled()


def test_a_collector_switched_off_by_someone_else_stays_off(collector):
    quiet, clock = collector
    gc.disable()
    quiet.key()
    clock.now += 1
    quiet.tick()
    quiet.release()
    assert not gc.isenabled()


def test_release_is_idempotent(collector):
    quiet, _ = collector
    quiet.release()
    quiet.key()
    quiet.release()
    quiet.release()
    assert gc.isenabled()
