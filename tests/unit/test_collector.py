"""The garbage-collection policy around keys (the real collector, a fake clock)."""

from __future__ import annotations

import gc
import weakref

import pytest

from taskwatch.ui.collector import QuietCollector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector():
    clock = Clock()
    was = gc.isenabled()
    gc.enable()
    yield QuietCollector(sweep_every=60.0, quiet=2.0, longest=300.0, clock=clock), clock
    gc.unfreeze()
    gc.enable() if was else gc.disable()


def test_a_tick_takes_what_is_alive_out_of_every_collection(collector):
    quiet, _ = collector
    gc.unfreeze()
    kept = [Cycle() for _ in range(100)]
    quiet.tick()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled(), "collection stays on: young objects are collected as they come"


def test_a_cycle_frozen_while_alive_is_collected_by_the_next_sweep(collector):
    quiet, clock = collector
    cycle = Cycle()
    dead = weakref.ref(cycle)
    quiet.tick()  # frozen while alive
    del cycle
    gc.collect()
    assert dead() is not None, "a full collection walks nothing frozen"
    clock.now += 60
    quiet.tick()  # due, and no key for long: the sweep
    assert quiet.sweeps == 1
    assert dead() is None


def test_no_sweep_while_keys_come(collector):
    quiet, clock = collector
    clock.now += 60
    quiet.key()
    clock.now += 1.0
    quiet.tick()
    assert quiet.sweeps == 0, "a key 1 s ago: the user is still at it"
    clock.now += 1.0
    quiet.tick()
    assert quiet.sweeps == 1


def test_keys_that_never_pause_still_get_a_sweep_after_longest(collector):
    quiet, clock = collector
    while clock.now - 100.0 < 299.0:
        quiet.key()
        clock.now += 0.5
        quiet.tick()
        assert quiet.sweeps == 0
    for _ in range(4):
        quiet.key()
        clock.now += 0.5
        quiet.tick()
    assert quiet.sweeps == 1


def test_release_gives_everything_back_to_the_collector(collector):
    quiet, _ = collector
    quiet.tick()
    assert gc.get_freeze_count() > 0
    quiet.release()
    assert gc.get_freeze_count() == 0
