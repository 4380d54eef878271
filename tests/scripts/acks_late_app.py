"""The demo app acknowledging tasks late: a task whose worker dies, or that runs
past the visibility timeout, is handed out again by Redis (a real redelivery).

``TEST_VISIBILITY_TIMEOUT`` (seconds) sets the visibility timeout; unacked
messages are looked for every second, so redelivery follows it closely.
"""

from __future__ import annotations

import os

from taskwatch.demo.app import app

app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("TEST_VISIBILITY_TIMEOUT", "10")),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
)
