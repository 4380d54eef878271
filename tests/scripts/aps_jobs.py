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
