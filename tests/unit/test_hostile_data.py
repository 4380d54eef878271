"""Hostile data through every decoder (issue 14, item 6): property tests with hypothesis.

Whatever bytes or values arrive (event envelopes, queue messages, result
records, job-store pickles, beat schedule files, the engine's events), each
decoder returns its documented result or raises only its documented
exception, never runs anything (every payload that would run code touches a
canary file, which must never appear), and what reaches the screen is text
without control sequences, bounded, shown as characters (never Rich markup).

Examples are few and small (the suite shares two cores); the named cases of
the issue (1 MB strings, JSON nested 10,000 deep, ...) are tested once each.
"""

from __future__ import annotations

import base64
import dbm.dumb
import json
import os
import pickle
import shelve
import time
from dataclasses import fields
from datetime import UTC
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.text import Text

from taskwatch.engine import snapshot as snap
from taskwatch.engine.query import select_with_counts
from taskwatch.engine.state import ClusterState
from taskwatch.records import PeekedMessage
from taskwatch.sources import event_decode as event_decoders
from taskwatch.sources.apscheduler.decode import decode_job
from taskwatch.sources.beat.file import BeatFileSource
from taskwatch.sources.beat.schedules import to_job
from taskwatch.sources.beat.stored import entry_from_call
from taskwatch.sources.envelope import decode_message
from taskwatch.sources.pickle_policies import (
    APSCHEDULER_JOBS,
    CELERY_BEAT,
    CELERY_RESULTS,
    DATETIME,
)
from taskwatch.sources.results.decode import decode as decode_result
from taskwatch.sources.results.decode import from_stored
from taskwatch.sources.safe_pickle import PRIMITIVES, loads
from taskwatch.text import clean, strip_control

FEW = settings(max_examples=60, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SOME = settings(FEW, max_examples=150)
ALLOW_LISTS = {"primitives": PRIMITIVES, "datetime": DATETIME, "apscheduler": APSCHEDULER_JOBS,
               "celery-results": CELERY_RESULTS, "celery-beat": CELERY_BEAT}

# -- the named cases -----------------------------------------------------------------------------

MARKUP = "[bold red]pwned[/] [link=file:///etc/passwd]x[/link] [/]"
ANSI = "\x1b[2J\x1b[31mred\x1b[0m"
OSC = "\x1b]0;owned\x07\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
C1 = "\x9b31m\x90dcs\x9c\x9d52;c;AAAA\x9c\x85"
NUL = "a\x00b"
NAMED_TEXTS = [MARKUP, ANSI, OSC, C1, NUL, "\ud800lone surrogate", "\u202eevil-bidi", "a" * 300]
INVALID_UTF8 = [b"\xff\xfe\xfd", b"\xc0\x80", b"\xed\xa0\x80", b"caf\xc3"]
MEGABYTE = "M" * (1024 * 1024)
DEEP_JSON = "[" * 10_000 + "]" * 10_000

hostile_text = st.sampled_from(NAMED_TEXTS) | st.text(max_size=40)
json_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
               | hostile_text)
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(hostile_text, inner, max_size=4), max_leaves=20)
py_leaves = (json_leaves | st.floats() | st.binary(max_size=40) | st.sampled_from(INVALID_UTF8)
             | st.integers(min_value=-(2**200), max_value=2**200))
py_values = st.recursive(py_leaves, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                         | st.dictionaries(hostile_text, inner, max_size=4), max_leaves=20)


def displayed(text: str) -> None:
    """What a string field must be to reach the screen: no control sequences; as characters."""
    assert strip_control(text) == text, repr(text)
    assert "\x1b" not in text and not any("\x80" <= c <= "\x9f" for c in text), repr(text)
    assert Text(clean(text)).plain == clean(text)


# -- the canary: anything executed would create it -----------------------------------------------


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("canary") / "executed"
    yield path
    assert not path.exists(), "a decoder ran code from the data"


class _Run:
    """Pickles as a call of ``func(*args)``, as a hostile producer would write it."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args: Any) -> Any:  # only so pickle takes it as a callable
        raise AssertionError("never called here")


def canary_payloads(canary: Path) -> list[Any]:
    import builtins
    import subprocess

    touch = f"touch {canary}"
    return [
        _Run(os.system, touch),
        _Run(subprocess.call, ["touch", str(canary)]),
        _Run(builtins.exec, f"open({str(canary)!r}, 'w').close()"),
        _Run(builtins.eval, f"open({str(canary)!r}, 'w')"),
        _Run(builtins.open, str(canary), "w"),
        _Run(Path.touch, canary),
        _Run(_Run(getattr, _Run(__import__, "os"), "system"), touch),  # getattr walk to os.system
    ]


def canary_pickles(canary: Path) -> list[bytes]:
    found = []
    for payload in canary_payloads(canary):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            found.append(pickle.dumps(payload, protocol=protocol))
            found.append(pickle.dumps({"args": [payload], "kwargs": {"x": payload}}, protocol=protocol))
    return found


def mutated(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    """``data`` with bytes replaced, dropped or doubled at the given places."""
    out = bytearray(data)
    for where, value in edits:
        if not out:
            break
        i = where % len(out)
        kind = value % 3
        if kind == 0:
            out[i] = value % 256
        elif kind == 1:
            del out[i]
        else:
            out.insert(i, out[i])
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=6)


# -- the restricted unpickler ---------------------------------------------------------------------


def _unpickle_only_raises_unpickling_errors(data: bytes, allow) -> Any:
    try:
        return loads(data, allow=allow)
    except pickle.UnpicklingError:
        return None


@SOME
@given(data=st.binary(max_size=300), allow=st.sampled_from(sorted(ALLOW_LISTS)))
def test_arbitrary_bytes_unpickle_or_raise_an_unpickling_error(data, allow, canary):
    _unpickle_only_raises_unpickling_errors(data, ALLOW_LISTS[allow])


@SOME
@given(value=py_values, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL), cuts=edits,
       allow=st.sampled_from(sorted(ALLOW_LISTS)))
def test_damaged_pickles_of_plain_data_decode_or_raise_an_unpickling_error(value, protocol, cuts, allow, canary):
    data = pickle.dumps(value, protocol=protocol)
    assert _unpickle_only_raises_unpickling_errors(data, ALLOW_LISTS[allow]) is not None or value is None
    _unpickle_only_raises_unpickling_errors(mutated(data, cuts), ALLOW_LISTS[allow])


@FEW
@given(index=st.integers(0, 10_000), cuts=st.none() | edits, allow=st.sampled_from(sorted(ALLOW_LISTS)))
def test_pickles_that_would_run_code_never_do_even_damaged(index, cuts, allow, canary):
    payloads = canary_pickles(canary)
    data = payloads[index % len(payloads)]
    _unpickle_only_raises_unpickling_errors(data if cuts is None else mutated(data, cuts), ALLOW_LISTS[allow])
    assert not canary.exists()


# -- result-backend records -----------------------------------------------------------------------


def _check_result(raw: bytes) -> None:
    decoded = decode_result(raw)
    assert decoded.ok in (True, False)
    stored = from_stored("id-1", raw, len(raw))
    for f in fields(stored):
        value = getattr(stored, f.name)
        if isinstance(value, str):
            displayed(value)


@SOME
@given(raw=st.binary(max_size=300) | st.sampled_from(INVALID_UTF8))
def test_arbitrary_bytes_as_a_stored_result_never_raise(raw, canary):
    _check_result(raw)


@SOME
@given(meta=st.dictionaries(st.sampled_from(["status", "result", "traceback", "children", "date_done",
                                             "task_id", "name", "args", "kwargs", "worker", "retries",
                                             "queue"]) | hostile_text, py_values, max_size=8),
       as_pickle=st.booleans(), protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_result_records_with_hostile_values_never_raise(meta, as_pickle, protocol, canary):
    if as_pickle:
        raw = pickle.dumps(meta, protocol=protocol)
    else:
        raw = json.dumps(meta, default=repr).encode("utf-8", errors="surrogatepass")
    _check_result(raw)


def test_result_records_that_would_run_code_never_do(canary):
    for data in canary_pickles(canary):
        _check_result(data)
        _check_result(pickle.dumps({"status": "FAILURE", "result": pickle.loads(pickle.dumps(1)),
                                    "traceback": data}, protocol=2))
    assert not canary.exists()


# -- APScheduler job-store pickles ----------------------------------------------------------------


def _check_job(blob: Any, next_run: Any = ...) -> None:
    job = decode_job("store", "job-1", blob, next_run=next_run, now=1.8e9)
    for f in fields(job):
        value = getattr(job, f.name)
        if isinstance(value, str):
            displayed(value)


@SOME
@given(blob=st.binary(max_size=300), next_run=st.just(...) | st.none() | st.floats() | hostile_text)
def test_arbitrary_bytes_as_a_job_state_never_raise(blob, next_run, canary):
    _check_job(blob, next_run)


@SOME
@given(state=st.dictionaries(st.sampled_from(["version", "id", "name", "func", "trigger", "executor",
                                              "args", "kwargs", "misfire_grace_time", "coalesce",
                                              "max_instances", "next_run_time"]), py_values, max_size=12),
       protocol=st.integers(0, pickle.HIGHEST_PROTOCOL), cuts=st.none() | edits)
def test_job_states_with_hostile_values_never_raise(state, protocol, cuts, canary):
    data = pickle.dumps(state, protocol=protocol)
    _check_job(data if cuts is None else mutated(data, cuts))


def test_job_states_that_would_run_code_never_do(canary):
    for data in canary_pickles(canary):
        _check_job(data)
    for payload in canary_payloads(canary):
        _check_job(pickle.dumps({"version": 1, "id": "j", "func": "m:f", "args": (payload,),
                                 "trigger": payload, "next_run_time": None}))
    assert not canary.exists()


# -- beat schedule files --------------------------------------------------------------------------


def _check_jobs(jobs: list) -> None:
    """Scheduled jobs as the Upcoming view and the snapshot get them."""
    for job in jobs:
        for f in fields(job):
            value = getattr(job, f.name)
            if isinstance(value, str):
                displayed(value)


@SOME
@given(key=hostile_text | py_values, value=py_values)
def test_beat_entries_of_any_value_never_raise(key, value):
    entry = entry_from_call(key, value)
    _check_jobs([to_job(entry, "beat file", 1.75e9, UTC, None)])


@FEW
@given(entries=st.binary(max_size=200) | st.builds(pickle.dumps, st.dictionaries(hostile_text, py_values,
                                                                                  max_size=4)),
       extra=st.dictionaries(st.sampled_from(["tz", "utc_enabled", "__version__"]), st.binary(max_size=30)))
def test_beat_schedule_files_with_hostile_values_never_raise(entries, extra, tmp_path_factory, canary):
    path = tmp_path_factory.mktemp("beat") / "celerybeat-schedule"
    with dbm.dumb.open(str(path), "c") as db:
        db[b"entries"] = entries
        for key, raw in extra.items():
            db[key.encode()] = raw
    _check_jobs(BeatFileSource(path).jobs(now=1.75e9))


def test_beat_files_that_would_run_code_never_do(tmp_path, canary):
    path = tmp_path / "celerybeat-schedule"
    with shelve.Shelf(dbm.dumb.open(str(path), "c")) as shelf:
        shelf["entries"] = {f"e{i}": payload for i, payload in enumerate(canary_payloads(canary))}
        shelf["tz"] = canary_payloads(canary)[0]
    entries = BeatFileSource(path).entries()
    assert entries and all(entry.problem for entry in entries)
    _check_jobs(BeatFileSource(path).jobs(now=1.75e9))
    for data in canary_pickles(canary):
        with dbm.dumb.open(str(path), "c") as db:
            db[b"entries"] = data
        BeatFileSource(path).entries()
    assert not canary.exists()


# -- queue messages (peek) ------------------------------------------------------------------------


def _check_message(raw: bytes | str) -> PeekedMessage:
    message = decode_message(raw, queue="celery")
    for f in fields(message):
        value = getattr(message, f.name)
        if isinstance(value, str):
            displayed(value)
            assert len(value) <= 10_000
    return message


def _envelope(headers: Any, body: bytes, content_type: str, properties: Any = None) -> bytes:
    return json.dumps({"body": base64.b64encode(body).decode(), "content-encoding": "binary",
                       "content-type": content_type, "headers": headers,
                       "properties": properties if properties is not None else {"body_encoding": "base64"}},
                      default=repr).encode("utf-8", errors="surrogatepass")


@SOME
@given(raw=st.binary(max_size=300) | st.text(max_size=100) | st.sampled_from(INVALID_UTF8))
def test_arbitrary_bytes_in_a_queue_never_raise(raw):
    _check_message(raw)


@SOME
@given(headers=st.dictionaries(st.sampled_from(["task", "id", "argsrepr", "kwargsrepr", "eta", "expires",
                                                "retries", "root_id", "parent_id", "origin", "compression",
                                                "redelivered"]) | hostile_text, json_values, max_size=8),
       body=json_values, properties=json_values | st.just(None),
       content_type=st.sampled_from(["application/json", "application/x-python-serialize",
                                     "application/x-msgpack", "application/x-yaml", "text/plain"]) | hostile_text)
def test_queue_messages_with_hostile_headers_and_bodies_never_raise(headers, body, properties, content_type):
    _check_message(_envelope(headers, json.dumps(body).encode(), content_type, properties))


def test_pickle_msgpack_and_yaml_bodies_show_headers_and_are_never_decoded(canary):
    headers = {"task": f"tasks.{MARKUP}", "id": f"id-{ANSI}", "argsrepr": f"({OSC!r},)", "origin": C1}
    yaml_body = f"!!python/object/apply:os.system ['touch {canary}']".encode()
    bodies = {"application/x-python-serialize": canary_pickles(canary)[0],
              "application/x-msgpack": msgpack.packb([["a", MARKUP], {"k": ANSI}, {}]),
              "application/x-yaml": yaml_body}
    for content_type, body in bodies.items():
        message = _check_message(_envelope(headers, body, content_type))
        assert message.task == "tasks." + MARKUP  # markup kept as characters
        assert message.id == "id-red" and message.content_type == content_type
        assert message.call is None and message.args == "('\\x1b]0;owned\\x07\\x1b]8;;http://evil\\x1b\\\\link" \
            "\\x1b]8;;\\x1b\\\\',)"
        assert message.body_size == len(body)
    assert not canary.exists()


def test_the_named_cases_in_a_queue_message():
    for raw in (_envelope({"task": MEGABYTE, "id": NUL}, json.dumps([[MEGABYTE], {}, {}]).encode(),
                          "application/json"),
                DEEP_JSON.encode(),
                _envelope({"task": "t"}, DEEP_JSON.encode(), "application/json"),
                b'{"headers": {"task": "' + INVALID_UTF8[0] + b'"}, "body": ""}'):
        message = _check_message(raw)
        assert message.task is None or len(message.task) <= 300


# -- event envelopes and the engine ----------------------------------------------------------------

EVENT_TYPES = ["task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
               "task-retried", "task-revoked", "task-rejected", "worker-online", "worker-heartbeat",
               "worker-offline"]
EVENT_FIELDS = ["type", "uuid", "hostname", "timestamp", "clock", "utcoffset", "pid", "name", "args",
                "kwargs", "result", "exception", "traceback", "runtime", "retries", "eta", "expires",
                "root_id", "parent_id", "freq", "active", "processed", "loadavg", "sw_ident", "sw_ver",
                "sw_sys", "terminated", "signum", "expired", "requeue", "local_received"]
event_values = (json_values | st.floats() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.sampled_from(EVENT_TYPES) | st.sampled_from(["t1", "t2", "w1@h"]))
events = st.dictionaries(st.sampled_from(EVENT_FIELDS), event_values, max_size=12) | st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES), "uuid": st.sampled_from(["t1", "t2"]),
     "hostname": st.sampled_from(["w1@h", MARKUP]), "timestamp": st.floats(1.7e9, 1.8e9) | event_values},
    optional={k: event_values for k in EVENT_FIELDS[4:]})


def _envelope_of(events_: Any) -> bytes:
    body = base64.b64encode(json.dumps(events_, default=repr).encode("utf-8", "surrogatepass")).decode()
    return json.dumps({"body": body, "content-type": "application/json", "content-encoding": "utf-8",
                       "properties": {"body_encoding": "base64"}, "headers": {}}).encode()


@SOME
@given(raw=st.binary(max_size=300) | st.sampled_from(INVALID_UTF8)
       | st.lists(events, max_size=3).map(_envelope_of) | json_values.map(_envelope_of))
def test_event_envelopes_decode_to_events_or_none(raw):
    found = event_decoders.decode_envelope(raw)
    assert found is None or all(type(e) is dict for e in found)
    body = event_decoders.decode_body(raw, None)
    assert body is None or all(type(e) is dict for e in body)


@SOME
@given(batch=st.lists(events, max_size=12))
def test_the_engine_takes_any_decoded_events_and_its_snapshot_stays_json(batch):
    state = ClusterState(max_tasks=50)
    state.apply_events(batch, received_at=1.75e9)
    state.apply_events(list(reversed(batch)), received_at=1.75e9 + 1)
    for tab in ("all", "active", "failed"):
        select_with_counts(state, tab, "[bold")
    document = snap.build(state, "redis://h/0", now=1.75e9 + 2)
    json.dumps(document, allow_nan=False)


def test_the_named_cases_as_events():
    state = ClusterState(max_tasks=50)
    hostile = [{"type": "task-received", "uuid": "t1", "hostname": text, "name": text, "args": text,
                "kwargs": text, "timestamp": 1.75e9} for text in [*NAMED_TEXTS, MEGABYTE]]
    hostile.append({"type": "task-failed", "uuid": "t1", "exception": MEGABYTE, "traceback": OSC * 1000,
                    "timestamp": 1.75e9 + 1})
    started = time.monotonic()
    state.apply_events(hostile, received_at=1.75e9 + 2)
    document = snap.build(state, "redis://h/0", now=1.75e9 + 3)
    json.dumps(document, allow_nan=False)
    assert time.monotonic() - started < 20
    task = document["tasks"][0]
    for key in ("name", "args", "kwargs", "worker", "exception"):
        value = task.get(key)
        if isinstance(value, str):
            displayed(value)
            assert len(value) < 100_000, key


@pytest.mark.parametrize("where", ["envelope", "body"])
def test_event_json_nested_10000_deep_is_undecodable_not_a_crash(where):
    if where == "envelope":
        assert event_decoders.decode_envelope(DEEP_JSON.encode()) is None
    else:
        assert event_decoders.decode_body(DEEP_JSON.encode(), "application/json") is None


def test_a_result_nested_10000_deep_is_undecodable_not_a_crash():
    assert not decode_result(DEEP_JSON.encode()).ok
    assert not decode_result(b'{"result": ' + DEEP_JSON.encode() + b"}").ok


def test_a_deeply_nested_pickle_is_an_unpickling_error_not_a_crash():
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        data = pickle.dumps(deep, protocol=4)
    finally:
        sys.setrecursionlimit(limit)
    for allow in ALLOW_LISTS.values():
        _unpickle_only_raises_unpickling_errors(data, allow)


def test_the_named_cases_in_results_and_job_states():
    values = [*NAMED_TEXTS, MEGABYTE, *INVALID_UTF8]
    meta = {"status": "FAILURE", "task_id": NUL, "name": MARKUP, "args": values, "kwargs": {OSC: C1},
            "result": {"exc_type": ANSI, "exc_message": [MEGABYTE], "exc_module": OSC},
            "traceback": OSC + MEGABYTE, "worker": C1, "queue": ANSI, "date_done": MARKUP}
    for raw in (pickle.dumps(meta, protocol=2), pickle.dumps(meta, protocol=5),
                json.dumps(meta, default=lambda b: b.decode("latin-1")).encode()):
        started = time.monotonic()
        _check_result(raw)
        assert time.monotonic() - started < 10
    state = {"version": 1, "id": NUL, "name": MEGABYTE, "func": f"{MARKUP}:{ANSI}", "args": tuple(values),
             "kwargs": {OSC: MEGABYTE}, "executor": C1, "trigger": MARKUP, "next_run_time": None}
    _check_job(pickle.dumps(state, protocol=4))
