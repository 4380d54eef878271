"""Decoding APScheduler 3.x job store rows: every field, triggers in words, hostile rows.

Rows are built as ``Job.__getstate__`` builds them (a dict holding real
trigger objects, pickled), and hostile ones by hand; the hostile payloads
are first shown to run a command (or import a module) under the real
``pickle.loads`` in a child process, so the tests that they do nothing
here can fail.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import types
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from taskwatch.records import ExactCall
from taskwatch.sources.apscheduler.decode import JobDecoder, decode_job, describe_trigger

NOW = datetime(2026, 11, 27, 14, 4, 36, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def job_state(job_id: str = "job-1", trigger: object = None, **changes: object) -> dict:
    """A job state as ``apscheduler.job.Job.__getstate__`` returns it."""
    trigger = trigger or IntervalTrigger(minutes=15, start_date=NOW - timedelta(minutes=3), timezone=UTC)
    state = {
        "version": 1,
        "id": job_id,
        "func": "reports.jobs:nightly",
        "trigger": trigger,
        "executor": "default",
        "args": ("eu", 3),
        "kwargs": {"dry_run": False},
        "name": "Nightly report",
        "misfire_grace_time": 300,
        "coalesce": True,
        "max_instances": 2,
        "next_run_time": NOW + timedelta(minutes=12),
    }
    state.update(changes)
    return state


def row(state: object) -> bytes:
    return pickle.dumps(state, pickle.HIGHEST_PROTOCOL)


# -- hostile payloads (also used by tests/integration/test_apscheduler_stores.py) --------


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"t" + b"R"


def _p(*body: bytes) -> bytes:
    return b"\x80\x04" + b"".join(body) + b"."


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def reduce_payload(canary: Path) -> bytes:
    """A job row that *is* ``os.system("touch canary")`` through ``__reduce__``."""
    return pickle.dumps(_System(f"touch {canary}"), 4)


def getattr_walk_payload(canary: Path) -> bytes:
    """A job state whose trigger walks from an allowed class to ``os.system`` with
    ``builtins.getattr``: ``IntervalTrigger.__init__.__globals__["__builtins__"]
    ["__import__"]("os").system("touch canary")``."""
    getattr_ = _global("builtins", "getattr")
    init = _call(getattr_, _global("apscheduler.triggers.interval", "IntervalTrigger"), _str("__init__"))
    globals_ = _call(getattr_, init, _str("__globals__"))
    builtins_ = _call(_call(getattr_, globals_, _str("get")), _str("__builtins__"))
    import_ = _call(_call(getattr_, builtins_, _str("get")), _str("__import__"))
    system = _call(getattr_, _call(import_, _str("os")), _str("system"))
    command = _call(system, _str(f"touch {canary}"))
    return _p(b"}(", _str("version"), b"K\x01", _str("id"), _str("evil-getattr"),
              _str("func"), _str("x:y"), _str("trigger"), command, b"u")


def and_trigger_payload(reference: str = "os:system") -> bytes:
    """A job state whose AndTrigger names ``reference`` as a sub-trigger class:
    APScheduler's own ``__setstate__`` imports whatever that names."""
    trigger_state = b"}(" + _str("version") + b"K\x01" + _str("jitter") + b"N" + _str("triggers") + (
        b"](" + b"(" + _str(reference) + b"}" + b"t" + b"e") + b"u"
    trigger = _global("apscheduler.triggers.combining", "AndTrigger") + b")\x81" + trigger_state + b"b"
    return _p(b"}(", _str("version"), b"K\x01", _str("id"), _str("evil-and"), _str("func"), _str("x:y"),
              _str("trigger"), trigger, b"u")


@pytest.fixture
def canary(tmp_path: Path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a hostile row ran a command"


def _real_loads_in_child(data: bytes, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    code = (
        "import pickle, sys\n"
        + (f"sys.path.insert(0, {str(extra_path)!r})\n" if extra_path else "")
        + "try:\n    pickle.loads(sys.stdin.buffer.read())\nexcept Exception as exc:\n    print(exc)\n"
    )
    return subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)


def test_the_hostile_payloads_are_real(tmp_path: Path) -> None:
    """Under ``pickle.loads`` each payload does what it says: the other tests can fail."""
    for name, build in (("reduce", reduce_payload), ("getattr", getattr_walk_payload)):
        target = tmp_path / f"ran-{name}"
        _real_loads_in_child(build(target))
        assert target.exists(), f"the {name} payload did not run under pickle.loads"
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    imported = tmp_path / "imported"
    (module_dir / "canarymod.py").write_text(f"open({str(imported)!r}, 'w').close()\nclass Thing:\n    pass\n")
    _real_loads_in_child(and_trigger_payload("canarymod:Thing"), module_dir)
    assert imported.exists(), "AndTrigger.__setstate__ did not import what its state names"


HOSTILE_PROBLEMS = {
    # os.system is not allowed: it decodes as an inert placeholder, never called.
    "reduce": "job state is a posix.system, not a dict",
    "getattr": "refused: getattr(class apscheduler.triggers.interval.IntervalTrigger, '__init__') is not allowed",
    "and-os-system": "refused: trigger reference 'os:system' is not an allowed trigger class",
}


@pytest.mark.parametrize("payload", sorted(HOSTILE_PROBLEMS))
def test_hostile_rows_run_nothing_and_show_a_problem(payload: str, canary: Path) -> None:
    data = {
        "reduce": lambda: reduce_payload(canary),
        "getattr": lambda: getattr_walk_payload(canary),
        "and-os-system": lambda: and_trigger_payload("os:system"),
    }[payload]()
    job = decode_job("redis://h:6379/0", "evil", data, next_run=4102444800.0)
    assert job.id == "evil" and job.store == "redis://h:6379/0" and job.source == "apscheduler"
    assert job.problem == HOSTILE_PROBLEMS[payload]
    assert job.next_run == 4102444800.0 and not job.paused
    assert "\n" not in job.problem and len(job.problem) <= 300


def test_an_and_trigger_naming_a_module_never_imports_it(tmp_path: Path, monkeypatch) -> None:
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    imported = tmp_path / "imported"
    (module_dir / "canarymod2.py").write_text(f"open({str(imported)!r}, 'w').close()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(module_dir))
    job = decode_job("s", "evil-and", and_trigger_payload("canarymod2:Thing"))
    assert job.problem and "not an allowed trigger class" in job.problem
    assert not imported.exists() and "canarymod2" not in sys.modules


# -- every field ------------------------------------------------------------------------


def test_a_stored_job_fills_every_field() -> None:
    state = job_state(kwargs={"dry_run": False, "regions": ["eu", "us"]})
    job = decode_job("sqlite:///jobs.sqlite", "job-1", row(state), now=NOW.timestamp())
    assert job.source == "apscheduler" and job.store == "sqlite:///jobs.sqlite"
    assert job.id == "job-1" and job.name == "Nightly report"
    assert job.target == "reports.jobs:nightly"
    assert job.trigger == "every 15 min"
    assert job.next_run == (NOW + timedelta(minutes=12)).timestamp() and not job.paused
    assert job.grace == 300.0 and job.coalesce is True and job.max_instances == 2
    assert job.executor == "default"
    assert job.args == "('eu', 3)" and job.kwargs == "{'dry_run': False, 'regions': ['eu', 'us']}"
    assert job.call == ExactCall(("eu", 3), {"dry_run": False, "regions": ["eu", "us"]})
    assert job.problem is None


def test_no_misfire_limit_and_a_paused_job() -> None:
    job = decode_job("s", "job-1", row(job_state(misfire_grace_time=None, next_run_time=None)))
    assert job.grace is None and job.paused and job.next_run is None and job.problem is None


def test_a_job_of_a_module_that_does_not_exist_shows_its_target() -> None:
    job = decode_job("s", "ghost", row(job_state("ghost", func="no_such_module:job")))
    assert job.target == "no_such_module:job" and job.problem is None and job.trigger == "every 15 min"
    assert "no_such_module" not in sys.modules


def test_user_objects_in_arguments_are_shown_by_name_and_never_built() -> None:
    module = types.ModuleType("tw_user_models")

    class Invoice:
        def __init__(self, number: int) -> None:
            self.number = number

    Invoice.__module__ = "tw_user_models"
    Invoice.__qualname__ = "Invoice"
    module.Invoice = Invoice  # type: ignore[attr-defined]
    sys.modules["tw_user_models"] = module
    try:
        blob = row(job_state(args=(Invoice(17),), kwargs={"when": NOW}))
    finally:
        del sys.modules["tw_user_models"]
    job = decode_job("s", "job-1", blob)
    assert job.problem is None
    assert job.args == "(tw_user_models.Invoice(state={'number': 17}),)"
    assert job.kwargs == "{'when': datetime.datetime(2026, 11, 27, 14, 4, 36, tzinfo=datetime.timezone.utc)}"
    assert job.call is None, "only plain JSON-able arguments are exact"
    assert "tw_user_models" not in sys.modules


def test_tuples_and_non_finite_floats_are_not_exact_arguments() -> None:
    assert decode_job("s", "job-1", row(job_state(args=((1, 2),)))).call is None
    assert decode_job("s", "job-1", row(job_state(args=(float("nan"),)))).call is None
    assert decode_job("s", "job-1", row(job_state(args=[1, [2.5, None, True]]))).call == ExactCall((1, [2.5, None, True]), {"dry_run": False})


def test_text_is_cleaned_to_one_bounded_line() -> None:
    job = decode_job("s\x1b[31m", "id\nx", row(job_state("id\nx", name="evil\x1b]0;title\x07name\n" + "n" * 5000,
                                                        func="mod:\x1b[2Jf")))
    assert job.name.startswith("evilname ") and len(job.name) <= 200 and "\x1b" not in job.name
    assert job.target == "mod:f" and job.id == "id x" and job.store == "s"


# -- rows that cannot be decoded ---------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (row(["not", "a", "dict"]), "job state is a list, not a dict"),
        (row(job_state(version=2)), "job state version 2 (APScheduler 3.x writes version 1)"),
        (row({k: v for k, v in job_state().items() if k not in ("trigger", "args")}), "job state lacks trigger, args"),
        (b"\x80\x04\x95garbage", "cannot decode the job state: "),
        (b"", "cannot decode the job state: "),
        (row(job_state(next_run_time="tomorrow")), "next_run_time is a str"),
        (row(job_state(misfire_grace_time=-5)), "misfire_grace_time is a int"),
    ],
)
def test_rows_that_cannot_be_read_are_jobs_with_a_problem(blob: bytes, reason: str) -> None:
    job = decode_job("s", "job-1", blob)
    assert job.id == "job-1" and job.store == "s"
    assert job.problem is not None and job.problem.startswith(reason), job.problem


def test_a_trigger_with_attributes_apscheduler_never_writes_is_a_problem_not_a_crash() -> None:
    trigger = CronTrigger(hour=8, timezone=UTC)
    trigger.fields[5].name = "bogus"
    job = decode_job("s", "job-1", row(job_state(trigger=trigger)))
    assert job.trigger == "<a apscheduler.triggers.cron.CronTrigger>"
    assert job.problem == "trigger: cron field named 'bogus'"
    assert job.target == "reports.jobs:nightly", "the rest of the row still shows"


def test_the_stores_index_wins_and_a_disagreement_is_said() -> None:
    blob = row(job_state())
    state_time = (NOW + timedelta(minutes=12)).timestamp()
    agree = decode_job("s", "job-1", blob, next_run=state_time)
    assert agree.next_run == state_time and agree.problem is None
    later = decode_job("s", "job-1", blob, next_run=state_time + 3600)
    assert later.next_run == state_time + 3600
    assert later.problem == (
        "the store's index says 2026-11-27 15:16:36 UTC, the job state says 2026-11-27 14:16:36 UTC"
    )
    paused = decode_job("s", "job-1", blob, next_run=None)
    assert paused.paused and paused.next_run is None
    assert paused.problem == "the store's index says paused, the job state says 2026-11-27 14:16:36 UTC"
    odd = decode_job("s", "job-1", blob, next_run="soon")  # type: ignore[arg-type]
    assert odd.next_run == state_time and odd.problem == "the store's next_run_time is a str"


# -- triggers in words ---------------------------------------------------------------


TRIGGERS = [
    (IntervalTrigger(minutes=15, timezone=UTC, start_date=NOW), "every 15 min"),
    (IntervalTrigger(seconds=2, timezone=UTC, start_date=NOW), "every 2 s"),
    (IntervalTrigger(hours=1, minutes=30, timezone=UTC, start_date=NOW), "every 1 h 30 min"),
    (IntervalTrigger(days=2, seconds=1, timezone=UTC, start_date=NOW), "every 2 d 1 s"),
    (IntervalTrigger(seconds=0.5, timezone=UTC, start_date=NOW), "every 0.5 s"),
    (IntervalTrigger(minutes=5, jitter=30, timezone=UTC, start_date=NOW), "every 5 min, jitter up to 30 s"),
    (IntervalTrigger(hours=1, start_date=NOW + timedelta(days=3), timezone=UTC),
     "every 1 h from 2026-11-30 14:04:36 UTC"),
    (IntervalTrigger(hours=1, start_date=NOW - timedelta(days=3), end_date=datetime(2027, 1, 1, tzinfo=UTC),
                     timezone=UTC), "every 1 h until 2027-01-01 00:00 UTC"),
    (CronTrigger(hour=8, minute=0, day_of_week="mon-fri", timezone=UTC), "cron 08:00 UTC mon-fri"),
    (CronTrigger(hour="6,18", minute=30, timezone=BERLIN), "cron 06:30,18:30 Europe/Berlin"),
    (CronTrigger(day_of_week="sat,sun", hour="*", timezone=UTC), "cron *:00 UTC sat,sun"),
    (CronTrigger(minute="*/5", timezone=UTC), "cron min=*/5 hour=* UTC"),
    (CronTrigger.from_crontab("30 2 1 * *", timezone=UTC), "cron min=30 hour=2 day=1 UTC"),
    (CronTrigger(day="last", timezone=UTC), "cron min=0 hour=0 day=last UTC"),
    (CronTrigger(month="jan-mar", day="2nd fri", hour=9, timezone=BERLIN),
     "cron min=0 hour=9 day=2nd fri month=jan-mar Europe/Berlin"),
    (CronTrigger(second="*/10", timezone=UTC), "cron sec=*/10 min=* hour=* UTC"),
    (CronTrigger(hour=3, timezone=UTC, jitter=60), "cron 03:00 UTC, jitter up to 1 min"),
    (DateTrigger(datetime(2026, 12, 2, 14, 0, tzinfo=UTC)), "once at 2026-12-02 14:00 UTC"),
    (DateTrigger(datetime(2026, 12, 2, 14, 0, 5, 250000, tzinfo=BERLIN)), "once at 2026-12-02 14:00:05 Europe/Berlin"),
    (CalendarIntervalTrigger(months=1, start_date=date(2026, 11, 1), timezone=UTC), "every month on day 1 at 00:00 UTC"),
    (CalendarIntervalTrigger(years=1, hour=6, start_date=date(2026, 3, 15), timezone=UTC),
     "every year on Mar 15 at 06:00 UTC"),
    (CalendarIntervalTrigger(weeks=2, hour=9, minute=15, start_date=date(2026, 11, 23), timezone=BERLIN),
     "every 2 weeks on Mondays at 09:15 Europe/Berlin"),
    (CalendarIntervalTrigger(days=3, start_date=date(2026, 12, 24), timezone=UTC),
     "every 3 days at 00:00 UTC from 2026-12-24"),
    (AndTrigger([IntervalTrigger(hours=1, start_date=NOW - timedelta(hours=5), timezone=UTC),
                 CronTrigger(day_of_week="sat,sun", hour="*", timezone=UTC)]),
     "all of (every 1 h; cron *:00 UTC sat,sun)"),
    (OrTrigger([CronTrigger(hour=6, minute=30, timezone=UTC), CronTrigger(hour=18, minute=30, timezone=UTC)]),
     "any of (cron 06:30 UTC; cron 18:30 UTC)"),
    (OrTrigger([CronTrigger(hour=6, timezone=UTC), AndTrigger([CronTrigger(hour=18, timezone=UTC),
                                                               CronTrigger(minute=0, timezone=UTC)])], jitter=5),
     "any of (cron 06:00 UTC; all of (cron 18:00 UTC; cron *:00 UTC)), jitter up to 5 s"),
]


@pytest.mark.parametrize(("trigger", "words"), TRIGGERS, ids=[words for _, words in TRIGGERS])
def test_every_trigger_kind_in_words(trigger: object, words: str) -> None:
    assert describe_trigger(trigger, now=NOW.timestamp()) == words
    # ...and the same after the row went through the store and the restricted unpickler.
    job = decode_job("s", "job-1", row(job_state(trigger=trigger)), now=NOW.timestamp())
    assert job.trigger == words and job.problem is None


def test_a_custom_trigger_class_is_named_not_imported() -> None:
    module = types.ModuleType("tw_user_triggers")

    class EveryFullMoon:
        pass

    EveryFullMoon.__module__ = "tw_user_triggers"
    EveryFullMoon.__qualname__ = "EveryFullMoon"
    module.EveryFullMoon = EveryFullMoon  # type: ignore[attr-defined]
    sys.modules["tw_user_triggers"] = module
    try:
        blob = row(job_state(trigger=EveryFullMoon()))
    finally:
        del sys.modules["tw_user_triggers"]
    job = decode_job("s", "job-1", blob)
    assert job.trigger == "custom trigger tw_user_triggers.EveryFullMoon" and job.problem is None


# -- the cache -----------------------------------------------------------------------


def test_an_unchanged_row_is_decoded_once_and_the_cache_is_bounded() -> None:
    decoder = JobDecoder("s", maxsize=3)
    blob = row(job_state())
    first = decoder.decode("job-1", blob, next_run=1.0)
    assert decoder.decode("job-1", bytes(blob), next_run=1.0) is first
    assert decoder.decoded == 1
    changed = decoder.decode("job-1", row(job_state(name="Renamed")), next_run=1.0)
    assert changed.name == "Renamed" and decoder.decoded == 2
    for n in range(3):
        decoder.decode(f"other-{n}", blob)
    assert decoder.decoded == 5
    again = decoder.decode("job-1", blob, next_run=1.0)  # evicted: decoded anew
    assert again == first and again is not first and decoder.decoded == 6
