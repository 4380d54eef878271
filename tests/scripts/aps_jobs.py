"""Job functions of tests/scripts/aps_app.py: each run leaves a line in $TASKWATCH_TEST_RUNS."""

from __future__ import annotations

import json
import os
import time


def tick(job: str, **kwargs: object) -> str:
    with open(os.environ["TASKWATCH_TEST_RUNS"], "a", encoding="utf-8") as runs:
        runs.write(json.dumps({"job": job, "at": time.time()}) + "\n")
    return job


def boom(job: str) -> None:
    tick(job)
    raise RuntimeError(f"{job} failed on purpose")


class Payload:
    """A user's own object in a job's args: taskwatch's restricted unpickler sees only a placeholder."""

    def __init__(self, label: str, items: list[int]) -> None:
        self.label = label
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and (self.label, self.items) == (other.label, other.items)

    def __hash__(self) -> int:
        return hash(self.label)


def carry(job: str, payload: Payload) -> str:
    """A job whose argument is a Payload: runs only if it arrived intact."""
    assert isinstance(payload, Payload), payload
    return tick(job, label=payload.label)
