"""Waiting on a condition: the one helper every test uses instead of a fixed sleep.

``wait_until`` polls from plain code (integration tests, fixtures);
``pilot_wait_until`` from a Textual Pilot scenario, yielding to the app
between checks so it keeps running. Both return the predicate's first truthy
value and, on timeout, fail with what they waited for.

Importable as ``from tests.waiting import wait_until, pilot_wait_until``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Generous on purpose: a timeout only costs time when the test fails anyway,
#: and a busy machine (two cores shared with other suites) is slow.
DEFAULT_TIMEOUT = 30.0
INTERVAL = 0.05


def _timed_out(what: str, timeout: float, last: object, detail: Callable[[], object] | None) -> str:
    message = f"timed out after {timeout:g} s waiting for {what} (last check gave {last!r})"
    if detail is not None:
        message += f"\n{detail()}"
    return message


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str,
    interval: float = INTERVAL,
    detail: Callable[[], object] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` (plus ``detail()``, e.g. a worker's
    log) when ``timeout`` seconds pass first. The predicate is always checked
    once more after the deadline, so a slow machine never fails a condition
    that did come true.
    """
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if expired:
            raise AssertionError(_timed_out(what, timeout, value, detail))
        time.sleep(interval)


async def pilot_wait_until(
    pilot: Any,
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str,
    interval: float = INTERVAL,
    detail: Callable[[], object] | None = None,
) -> T:
    """``wait_until`` inside a Pilot scenario: the app runs between checks."""
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if expired:
            raise AssertionError(_timed_out(what, timeout, value, detail))
        await pilot.pause(interval)
