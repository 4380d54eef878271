"""Rewriting an APScheduler job state's next_run_time without re-pickling it.

The rewritten bytes are loaded by the real unpicklers (C and pure Python),
as APScheduler's stores do, and handed to ``Job.__setstate__``: the new
value is what the job gets, and everything else is exactly what was stored
(including the user's own objects, which taskwatch itself cannot rebuild).
"""

from __future__ import annotations

import pickle
import pickletools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from taskwatch.reprs import Opaque
from taskwatch.sources.apscheduler.writes import (
    MARKER,
    StateError,
    decode_state,
    job_timezone,
    rewrite_next_run_time,
)
from tests.scripts.aps_jobs import Payload

BERLIN = ZoneInfo("Europe/Berlin")


def state(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "version": 1, "id": "custom", "func": "tests.scripts.aps_jobs:carry",
        "trigger": CronTrigger(hour=8, timezone=BERLIN), "executor": "default",
        "args": ("custom", Payload("secret", [1, 2, 3])), "kwargs": {"k": ["v"]}, "name": "Custom",
        "misfire_grace_time": 1, "coalesce": False, "max_instances": 1,
        "next_run_time": datetime(2031, 1, 1, 8, tzinfo=BERLIN),
    }
    base.update(changes)
    return base


def job_from(blob: bytes, loads=pickle.loads) -> Job:
    job = Job.__new__(Job)
    job.__setstate__(loads(blob))
    return job


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("value", [None, datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=BERLIN),
                                   datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)])
def test_the_job_gets_the_new_next_run_time_and_keeps_everything_else(protocol, value):
    original = state()
    blob = pickle.dumps(original, protocol)
    new = rewrite_next_run_time(blob, value)
    for loads in (pickle.loads, pickle._loads):  # the C unpickler and the reference one
        job = job_from(new, loads)
        assert job.next_run_time == value
        if value is not None:
            assert job.next_run_time.tzinfo == value.tzinfo
        assert job.args == original["args"] and isinstance(job.args[1], Payload)
        assert (job.kwargs, job.name, job.id, job.func_ref) == ({"k": ["v"]}, "Custom", "custom",
                                                                "tests.scripts.aps_jobs:carry")
        assert str(job.trigger) == str(original["trigger"])
    # taskwatch still reads it, the user's object as a placeholder (protocols 0-1 build a
    # user's object through copyreg._reconstructor, which the restricted unpickler refuses:
    # such a state is refused before any write, see test_undecodable_and_foreign_states_are_refused)
    if protocol >= 2:
        decoded = decode_state(new)
        assert decoded["next_run_time"] == value and isinstance(decoded["args"][1], Opaque)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_only_the_end_changes_and_a_second_rewrite_replaces_the_first(protocol):
    blob = pickle.dumps(state(), protocol)
    first = rewrite_next_run_time(blob, datetime(2030, 1, 1, tzinfo=UTC))
    second = rewrite_next_run_time(first, None)
    third = rewrite_next_run_time(second, datetime(2030, 1, 2, tzinfo=UTC))
    assert len(third) == len(first)  # the state does not grow with every pause and resume
    assert job_from(second).next_run_time is None
    assert job_from(third).next_run_time == datetime(2030, 1, 2, tzinfo=UTC)
    # Every original byte is kept up to the STOP, but for the last frame's length (8 bytes)
    ops = list(pickletools.genops(blob))
    frames = [pos for op, _arg, pos in ops if op.name == "FRAME"]
    differing = [i for i in range(len(blob) - 1) if blob[i] != third[i]]
    if frames:
        assert all(frames[-1] + 1 <= i < frames[-1] + 9 for i in differing)
    else:
        assert differing == []


def test_the_suffix_reads_and_writes_no_memo_and_marks_itself():
    blob = pickle.dumps(state(), 5)
    new = rewrite_next_run_time(blob, datetime(2030, 1, 1, tzinfo=BERLIN))
    ops = list(pickletools.genops(new))
    start = next(i for i, (op, arg, _pos) in enumerate(ops) if arg == MARKER)
    names = [op.name for op, _arg, _pos in ops[start:]]
    assert names[1] == "POP" and names[-2:] == ["SETITEM", "STOP"]
    assert not {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET"} & set(names)


def test_a_state_of_many_frames_is_rewritten_in_its_last_frame():
    big = state(args=("custom", Payload("x" * 10, list(range(60_000)))))
    blob = pickle.dumps(big, 5)
    assert sum(op.name == "FRAME" for op, _a, _p in pickletools.genops(blob)) > 1
    new = rewrite_next_run_time(blob, None)
    assert pickle._loads(new)["next_run_time"] is None
    assert job_from(new).args == big["args"]


@pytest.mark.parametrize("blob", [b"", b"\x80\x05N", pickle.dumps(state(), 5) + b"extra",
                                  pickle.dumps(state(), 5)[:-40]])
def test_a_pickle_that_does_not_end_at_its_stop_is_refused(blob):
    with pytest.raises(StateError):
        rewrite_next_run_time(blob, None)


def test_the_job_time_zone_is_its_next_runs_then_its_triggers_then_utc():
    assert job_timezone(decode_state(pickle.dumps(state(), 5))) == BERLIN
    paused = state(next_run_time=None, trigger=IntervalTrigger(hours=1, timezone=ZoneInfo("Asia/Tokyo"),
                                                               start_date=datetime.now(UTC) + timedelta(1)))
    assert job_timezone(decode_state(pickle.dumps(paused, 5))) == ZoneInfo("Asia/Tokyo")
    assert job_timezone({"next_run_time": None, "trigger": None}) == UTC


def test_undecodable_and_foreign_states_are_refused():
    with pytest.raises(StateError, match="cannot be decoded safely"):
        decode_state(pickle.dumps(state(), 5)[:-30])
    with pytest.raises(StateError, match="not a job's"):
        decode_state(b"cos\nsystem\n(S'true'\ntR.")  # a placeholder, never called for real
    with pytest.raises(StateError, match="not an APScheduler 3 job's"):
        decode_state(pickle.dumps({"version": 2, "id": "x"}))


def test_the_bridge_imports_only_redis_apscheduler_and_the_store_location():
    code = (
        "import sys, taskwatch.bridge\n"
        "ours = sorted(m for m in sys.modules if m.startswith('taskwatch'))\n"
        "allowed = {'taskwatch', 'taskwatch.bridge', 'taskwatch.sources', 'taskwatch.sources.apscheduler',\n"
        "           'taskwatch.sources.apscheduler.location', 'taskwatch.sources.errors',\n"
        "           'taskwatch.sources.redis_url', 'taskwatch.sources.broker', 'taskwatch.text'}\n"
        "assert set(ours) <= allowed, set(ours) - allowed\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('textual', 'rich', 'celery', 'kombu', 'sqlalchemy', 'httpx', 'click'))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
