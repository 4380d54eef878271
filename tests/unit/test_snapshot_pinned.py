"""The engine's ``snapshot`` document for the recorded stream, pinned.

``tests/data/demo-snapshot.json`` was written by the engine before the
records/sources refactor; a change to how events are applied or how the
document is built shows up here as a diff. After a deliberate change,
regenerate it with ``python tests/unit/test_snapshot_pinned.py > tests/data/demo-snapshot.json``
and read the diff before committing.
"""

from __future__ import annotations

import json
from pathlib import Path

from taskwatch.engine import snapshot
from taskwatch.engine.state import ClusterState

DATA = Path(__file__).resolve().parent.parent / "data"


def recorded_document() -> dict:
    events = [json.loads(line) for line in (DATA / "demo-events.jsonl").read_text().splitlines()]
    end = max(e["timestamp"] for e in events) + 1.0
    state = ClusterState()
    state.apply_events(events, received_at=end)
    return snapshot.build(state, now=end, broker_url="redis://:secret@recorded.invalid:6379/0")


def test_the_recorded_stream_gives_the_pinned_document():
    pinned = json.loads((DATA / "demo-snapshot.json").read_text())
    document = json.loads(json.dumps(recorded_document()))  # tuples as lists, as on the wire
    assert document["tasks"] and document["task_stats"]
    for key in pinned:
        assert document[key] == pinned[key], key
    assert set(document) == set(pinned)


def test_every_task_that_started_and_finished_has_a_runtime():
    """Celery's task-failed carries no runtime; the TUI showed one, the JSON said null."""
    tasks = recorded_document()["tasks"]
    finished = [t for t in tasks if t["started"] and t["finished"]]
    assert any(t["state"] == "FAILURE" for t in finished)
    assert all(t["runtime"] is not None and t["runtime"] >= 0 for t in finished)


if __name__ == "__main__":
    print(json.dumps(recorded_document(), indent=1, sort_keys=True, ensure_ascii=False))
