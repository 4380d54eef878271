"""The restricted unpickler: real APScheduler 3.11 job states decode, hostile pickles don't run.

Hostile pickles are written opcode by opcode (``_p``), so the tests never need
the dangerous objects themselves; each payload that should run a command
touches a canary file, and the tests assert the file never appears.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import pickle
import random
import sqlite3
import struct
import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import AllExpression
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from taskwatch.sources.pickle_policies import APSCHEDULER_JOBS as APSCHEDULER_JOB
from taskwatch.sources.pickle_policies import DATETIME
from taskwatch.sources.safe_pickle import (
    PRIMITIVES,
    Opaque,
    Refused,
    loads,
)

NOW = dt.datetime(2026, 11, 27, 14, 4, 36, tzinfo=dt.UTC)
ALLOW_LISTS = [PRIMITIVES, DATETIME, APSCHEDULER_JOB]

# -- writing pickles by hand ---------------------------------------------------


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + _tuple(*args) + b"R"


def _dict(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def _list(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def _newobj(cls: bytes) -> bytes:
    return cls + b")\x81"


def _p(*body: bytes) -> bytes:
    """A protocol-4 pickle of ``body`` (opcodes) followed by STOP."""
    return b"\x80\x04" + b"".join(body) + b"."


NONE = b"N"
BUILD = b"b"
POP = b"0"
MEMO0 = b"\x94"  # MEMOIZE: memo[0] = top
GET0 = b"h\x00"  # BINGET 0


def _zoneinfo(key: str) -> bytes:
    unpickle = _call(
        _global("builtins", "getattr"), _global("zoneinfo", "ZoneInfo"), _str("_unpickle")
    )
    return _call(unpickle, _str(key), b"\x88")


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a hostile pickle ran a command"


@pytest.fixture
def evilmod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable module ``evilmod`` that creates a canary file when imported."""
    canary = tmp_path / "evilmod-imported"
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "evilmod.py").write_text(
        f"open({str(canary)!r}, 'w').close()\n"
        "class Thing:\n    pass\n"
        "class IntervalTrigger:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    importlib.invalidate_caches()
    yield canary
    sys.modules.pop("evilmod", None)


class _StandIn:
    """Pickles as ``evilmod.Thing`` without evilmod ever being imported."""

    def __init__(self) -> None:
        self.secret = 1


def _pickle_with_stand_in(value: object) -> bytes:
    fake = type(sys)("evilmod")
    fake.Thing = _StandIn  # type: ignore[attr-defined]
    original = _StandIn.__module__, _StandIn.__qualname__
    _StandIn.__module__, _StandIn.__qualname__ = "evilmod", "Thing"
    sys.modules["evilmod"] = fake
    try:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    finally:
        del sys.modules["evilmod"]
        _StandIn.__module__, _StandIn.__qualname__ = original


def _assert_not_imported(canary: Path) -> None:
    assert "evilmod" not in sys.modules
    assert not canary.exists()


# -- real APScheduler 3.11 job states -----------------------------------------


def _triggers(tz: str) -> dict[str, Any]:
    start = dt.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo(tz))
    return {
        "interval": IntervalTrigger(minutes=15, start_date=start, timezone=tz),
        "cron": CronTrigger(
            month="jan-mar,oct",
            day="last",
            day_of_week="mon-fri",
            hour="2-4",
            minute="*/5",
            week="*",
            timezone=tz,
        ),
        "cron-position": CronTrigger(day="2nd tue,last fri", hour=9, timezone=tz),
        "crontab": CronTrigger.from_crontab("30 2 * * 1-5", timezone=tz),
        "date": DateTrigger(run_date=dt.datetime(2030, 1, 1, 8, 0), timezone=tz),
        "calendar": CalendarIntervalTrigger(months=1, hour=3, timezone=tz),
        "and": AndTrigger(
            [
                IntervalTrigger(hours=1, start_date=start, timezone=tz),
                CronTrigger(day_of_week="sat,sun", timezone=tz),
            ]
        ),
        "or": OrTrigger(
            [
                CronTrigger(hour=6, timezone=tz),
                AndTrigger([CronTrigger(hour=18, timezone=tz), CronTrigger(minute=0, timezone=tz)]),
            ]
        ),
    }


@pytest.fixture(scope="module", params=["UTC", "Europe/Berlin"])
def stored_jobs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Raw ``job_state`` bytes as a real SQLAlchemyJobStore wrote them, with the jobs.

    The store is driven directly (as the scheduler does in ``_real_add_job``)
    so no scheduler thread can touch the jobs while the test reads them.
    """
    tz = request.param
    db = tmp_path_factory.mktemp("jobs") / "jobs.sqlite"
    scheduler = BackgroundScheduler(timezone=tz)
    store = SQLAlchemyJobStore(url=f"sqlite:///{db}")
    store.start(scheduler, "default")
    jobs = {}
    try:
        for kind, trigger in _triggers(tz).items():
            jobs[kind] = Job(
                scheduler,
                id=kind,
                func="os.path:join",
                trigger=trigger,
                executor="default",
                args=("a", "b"),
                kwargs={},
                name=f"job {kind}",
                misfire_grace_time=30,
                coalesce=True,
                max_instances=1,
                next_run_time=trigger.get_next_fire_time(None, NOW),
            )
            store.add_job(jobs[kind])
    finally:
        store.shutdown()
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("select id, job_state from apscheduler_jobs"))
    return tz, jobs, rows


def test_every_stored_job_state_decodes_with_working_triggers(stored_jobs) -> None:
    tz, jobs, rows = stored_jobs
    assert set(rows) == set(_triggers(tz))
    for job_id, raw in rows.items():
        state = loads(raw, allow=APSCHEDULER_JOB)
        original = jobs[job_id]
        # Our own bytes, so the real unpickler is the oracle here.
        expected = pickle.loads(raw)

        assert state.keys() == expected.keys()
        assert {k: v for k, v in state.items() if k != "trigger"} == {
            k: v for k, v in expected.items() if k != "trigger"
        }
        assert state["func"] == "os.path:join"
        assert state["next_run_time"] == original.next_run_time
        trigger = state["trigger"]
        assert type(trigger) is type(original.trigger)
        assert repr(trigger) == repr(original.trigger)
        for now in (NOW, NOW + dt.timedelta(days=40), NOW + dt.timedelta(days=200)):
            assert trigger.get_next_fire_time(None, now) == original.trigger.get_next_fire_time(
                None, now
            )
            assert trigger.get_next_fire_time(None, now) is not None


def test_named_zone_comes_back_as_zoneinfo(stored_jobs) -> None:
    tz, _, rows = stored_jobs
    trigger = loads(rows["cron"], allow=APSCHEDULER_JOB)["trigger"]
    expected = dt.UTC if tz == "UTC" else zoneinfo.ZoneInfo(tz)
    assert trigger.timezone == expected


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol(protocol: int) -> None:
    """APScheduler's stores take a ``pickle_protocol`` option: all of them decode."""
    for kind, trigger in _triggers("Europe/Berlin").items():
        state = {"version": 1, "id": kind, "trigger": trigger, "next_run_time": NOW}
        decoded = loads(pickle.dumps(state, protocol), allow=APSCHEDULER_JOB)
        assert repr(decoded["trigger"]) == repr(trigger)
        assert decoded["trigger"].get_next_fire_time(None, NOW) == trigger.get_next_fire_time(
            None, NOW
        )


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_primitives_and_datetimes_round_trip(protocol: int) -> None:
    value = {
        "s": "text ü",
        "i": [0, -1, 2**31, 2**70],
        "f": 1.5,
        "b": (True, False, None),
        "bytes": [b"", b"\x00\xff raw"],
        "sets": [set(), {1, "a"}, frozenset({(1, 2)})],
        "nested": {"t": ((1,), [{}])},
    }
    assert loads(pickle.dumps(value, protocol)) == value

    times = [
        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2),
        dt.date(2026, 1, 2),
        dt.time(3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST")),
        dt.timedelta(days=-1, microseconds=5),
    ]
    assert loads(pickle.dumps(times, protocol), allow=DATETIME) == times
    # Without DATETIME they are placeholders, not errors.
    assert all(isinstance(v, Opaque) for v in loads(pickle.dumps(times, protocol)))


def test_job_of_a_missing_user_module_decodes_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``func`` is a "module:qualname" string; user objects in args become placeholders."""
    module = "tw_user_jobs_5f1c"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{module}.py").write_text(
        "class Report:\n"
        "    def __init__(self, n):\n        self.n = n\n"
        "    def run(self):\n        return self.n\n"
        "def nightly(report):\n    return report.n\n"
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    user = importlib.import_module(module)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)
    try:
        plain = scheduler.add_job(user.nightly, "interval", hours=1, args=(user.Report(17),))
        bound = scheduler.add_job(user.Report(3).run, "cron", hour=2)
        states = {
            "plain": pickle.dumps(plain.__getstate__(), pickle.HIGHEST_PROTOCOL),
            "bound": pickle.dumps(bound.__getstate__(), pickle.HIGHEST_PROTOCOL),
        }
    finally:
        scheduler.shutdown(wait=False)
    # The module is gone from this process and from disk.
    del sys.modules[module]
    (site / f"{module}.py").unlink()

    plain_state = loads(states["plain"], allow=APSCHEDULER_JOB)
    bound_state = loads(states["bound"], allow=APSCHEDULER_JOB)

    assert module not in sys.modules
    assert plain_state["func"] == f"{module}:nightly"
    (report,) = plain_state["args"]
    assert isinstance(report, Opaque)
    assert report.qualified_name == f"{module}.Report"
    assert repr(report) == f"<opaque {module}.Report>"
    assert report.state == {"n": 17}
    assert plain_state["trigger"].get_next_fire_time(None, NOW) is not None
    # A bound method's "self" is stored as the first argument.
    assert bound_state["func"] == f"{module}:Report.run"
    assert isinstance(bound_state["args"][0], Opaque)
    assert bound_state["args"][0].state == {"n": 3}


def test_pytz_timezones_decode_or_stay_placeholders() -> None:
    """Old stores hold pytz zones (``pytz._p``/``pytz._UTC``); pytz is optional."""
    berlin = _call(_global("pytz", "_p"), _str("Europe/Berlin"), _int(3600), _int(0), _str("CET"))
    utc = _call(_global("pytz", "_UTC"))
    decoded_berlin, decoded_utc = loads(_p(_tuple(berlin, utc)), allow=APSCHEDULER_JOB)
    if importlib.util.find_spec("pytz") is None:
        assert repr(decoded_berlin) == "<opaque pytz._p>"
        assert decoded_berlin.args == ("Europe/Berlin", 3600, 0, "CET")
        assert repr(decoded_utc) == "<opaque pytz._UTC>"
        return
    import pytz

    assert decoded_berlin is pytz.timezone("Europe/Berlin").localize(dt.datetime(2026, 1, 1)).tzinfo
    assert decoded_utc is pytz.utc
    with pytest.raises(Refused):
        loads(_p(_call(_global("pytz", "_p"), _str("x" * 500))), allow=APSCHEDULER_JOB)
    with pytest.raises(Refused):
        loads(_p(_call(_global("pytz", "_p"), _list())), allow=APSCHEDULER_JOB)


def test_placeholders_refuse_to_be_pickled_again() -> None:
    value = loads(_p(_call(_global("decimal", "Decimal"), _str("1.5"))))
    assert isinstance(value, Opaque)
    assert value.args == ("1.5",)
    with pytest.raises(TypeError):
        pickle.dumps(value)
    with pytest.raises(TypeError):
        pickle.dumps({"job": {"args": [value]}})


def test_list_and_dict_subclasses_record_their_items() -> None:
    from collections import OrderedDict, UserList

    decoded = loads(pickle.dumps([OrderedDict(a=1, b=2), UserList([1, 2])], 2))
    ordered, user_list = decoded
    assert ordered.qualified_name == "collections.OrderedDict"
    assert ordered.mapping == {"a": 1, "b": 2}
    assert user_list.qualified_name == "collections.UserList"
    assert user_list.state == {"data": [1, 2]}


def test_unknown_allow_pairs_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no unpickling policy"):
        loads(pickle.dumps(1), allow=frozenset({("os", "system")}))


# -- hostile pickles -----------------------------------------------------------


def _run_with_real_pickle(data: bytes) -> None:
    """What ``pickle.loads`` would do with ``data``: in a child, never here."""
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=data,
        capture_output=True,
        timeout=30,
    )


def _command_payloads(canary: Path) -> dict[str, bytes]:
    touch = f"touch {canary}"
    return {
        "os.system": _p(_call(_global("os", "system"), _str(touch))),
        "posix.system": _p(_call(_global("posix", "system"), _str(touch))),
        "subprocess.Popen": _p(
            _call(_global("subprocess", "Popen"), _list(_str("touch"), _str(str(canary))))
        ),
        "builtins.eval": _p(
            _call(_global("builtins", "eval"), _str(f"__import__('os').system({touch!r})"))
        ),
        "builtins.exec": _p(
            _call(_global("builtins", "exec"), _str(f"import os; os.system({touch!r})"))
        ),
        "__builtin__.eval (protocol 2 name)": b"\x80\x02"
        + _call(_global("__builtin__", "eval"), _str(f"__import__('os').system({touch!r})"))
        + b".",
        "getattr(__import__('os'), 'system')": _p(
            _call(
                _call(
                    _global("builtins", "getattr"),
                    _call(_global("builtins", "__import__"), _str("os")),
                    _str("system"),
                ),
                _str(touch),
            )
        ),
        "copyreg._reconstructor(os.system)": _p(
            _call(
                _global("copyreg", "_reconstructor"),
                _global("os", "system"),
                _global("builtins", "object"),
                _str(touch),
            )
        ),
        "NEWOBJ_EX subprocess.Popen": _p(
            _global("subprocess", "Popen"),
            _tuple(_list(_str("touch"), _str(str(canary)))),
            b"}",
            b"\x92",
        ),
        "INST os.system (protocol 0)": b"(" + _str(touch) + b"ios\nsystem\n.",
    }


def test_the_command_payloads_are_real(tmp_path: Path) -> None:
    """Proof the canary works: real ``pickle.loads`` (in a child) runs them."""
    for name in ("os.system", "subprocess.Popen", "builtins.eval"):
        canary = tmp_path / name
        _run_with_real_pickle(_command_payloads(canary)[name])
        assert canary.exists(), name


@pytest.mark.parametrize("allow", ALLOW_LISTS, ids=["primitives", "datetime", "apscheduler"])
def test_command_payloads_run_nothing(canary: Path, allow: frozenset[tuple[str, str]]) -> None:
    for name, data in _command_payloads(canary).items():
        try:
            value = loads(data, allow=allow)
        except pickle.UnpicklingError:
            continue
        # Not refused: then it decoded to inert placeholders only.
        assert isinstance(value, Opaque), (name, value)
        assert not canary.exists(), name


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "getattr(ZoneInfo, '__class__')",
            _p(
                _call(
                    _global("builtins", "getattr"),
                    _global("zoneinfo", "ZoneInfo"),
                    _str("__class__"),
                )
            ),
        ),
        (
            "getattr(IntervalTrigger, '__subclasses__')",
            _p(
                _call(
                    _global("builtins", "getattr"),
                    _global("apscheduler.triggers.interval", "IntervalTrigger"),
                    _str("__subclasses__"),
                )
            ),
        ),
        (
            "getattr(getattr(ZoneInfo, '_unpickle'), '__globals__')",
            _p(
                _call(
                    _global("builtins", "getattr"),
                    _call(
                        _global("builtins", "getattr"),
                        _global("zoneinfo", "ZoneInfo"),
                        _str("_unpickle"),
                    ),
                    _str("__globals__"),
                )
            ),
        ),
        (
            "getattr(ZoneInfo, '_unpickle', default)",
            _p(
                _call(
                    _global("builtins", "getattr"),
                    _global("zoneinfo", "ZoneInfo"),
                    _str("_unpickle"),
                    NONE,
                )
            ),
        ),
        (
            "getattr(AllExpression, '__init__')",
            _p(
                _call(
                    _global("builtins", "getattr"),
                    _global("apscheduler.triggers.cron.expressions", "AllExpression"),
                    _str("__init__"),
                )
            ),
        ),
        (
            "getattr(getattr, '__self__')",
            _p(
                _call(
                    _global("builtins", "getattr"), _global("builtins", "getattr"), _str("__self__")
                )
            ),
        ),
        ("ZoneInfo path traversal", _p(_zoneinfo("../../../../etc/passwd"))),
        (
            "ZoneInfo key not a str",
            _p(
                _call(
                    _call(
                        _global("builtins", "getattr"),
                        _global("zoneinfo", "ZoneInfo"),
                        _str("_unpickle"),
                    ),
                    _int(5),
                )
            ),
        ),
        ("calling ZoneInfo", _p(_call(_global("zoneinfo", "ZoneInfo"), _str("UTC")))),
        ("calling object", _p(_call(_global("builtins", "object")))),
        (
            "calling a trigger class (runs __init__)",
            _p(_call(_global("apscheduler.triggers.cron", "CronTrigger"), _str("*"))),
        ),
        (
            "NEWOBJ of a trigger with arguments",
            _p(_global("apscheduler.triggers.cron", "CronTrigger"), _tuple(_str("*")), b"\x81"),
        ),
        ("bytes(10**10)", _p(_call(_global("builtins", "bytes"), b"\x8a\x05\x00\xe4\x0bT\x02"))),
        (
            "_codecs.encode through another codec",
            _p(_call(_global("_codecs", "encode"), _str("x"), _str("zlib_codec"))),
        ),
        ("set() of a str", _p(_call(_global("builtins", "set"), _str("abc")))),
    ],
)
def test_getattr_walks_and_misused_globals_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(Refused):
        loads(data, allow=APSCHEDULER_JOB)


def test_zoneinfo_through_the_guard_works() -> None:
    assert loads(_p(_zoneinfo("Europe/Berlin")), allow=APSCHEDULER_JOB) == zoneinfo.ZoneInfo(
        "Europe/Berlin"
    )
    # Without the job allow-list, getattr itself is a placeholder: nothing resolves.
    with pytest.raises(pickle.UnpicklingError):
        loads(_p(_zoneinfo("Europe/Berlin")), allow=DATETIME)


def test_a_user_module_is_never_imported(evilmod: Path) -> None:
    thing = _global("evilmod", "Thing")
    payloads = [
        _p(_call(thing)),
        _p(_newobj(thing), _dict((_str("x"), _int(1))), BUILD),
        _p(_call(_global("builtins", "__import__"), _str("evilmod"))),
        _p(_call(_global("importlib", "import_module"), _str("evilmod"))),
        # An allowed class name in a different module.
        _p(_newobj(_global("evilmod", "IntervalTrigger")), _dict(), BUILD),
        _p(_global("evilmod", "AllExpression")),
    ]
    for allow in ALLOW_LISTS:
        for data in payloads:
            value = loads(data, allow=allow)
            assert isinstance(value, Opaque | type) and repr(value).startswith("<opaque ")
            _assert_not_imported(evilmod)
    # A job state whose args hold an evilmod object, pickled as a store would.
    job = {
        "version": 1,
        "id": "j",
        "func": "evilmod:run",
        "trigger": IntervalTrigger(seconds=5, start_date=NOW),
        "args": (_StandIn(),),
        "kwargs": {},
    }
    state = loads(_pickle_with_stand_in(job), allow=APSCHEDULER_JOB)
    assert state["func"] == "evilmod:run"
    assert repr(state["args"][0]) == "<opaque evilmod.Thing>"
    assert state["args"][0].state == {"secret": 1}
    _assert_not_imported(evilmod)
    # The canary is live: importing the module does create it.
    importlib.import_module("evilmod")
    assert evilmod.exists()


def test_allowed_names_resolve_only_in_their_own_module(evilmod: Path) -> None:
    for module, name in [
        ("evilmod", "IntervalTrigger"),
        ("apscheduler.triggers.interval", "datetime"),  # imported there, defined elsewhere
        ("apscheduler.triggers.interval", "get_localzone"),
        ("os", "timedelta"),
        ("datetime", "sys"),
    ]:
        value = loads(_p(_global(module, name)), allow=APSCHEDULER_JOB)
        assert repr(value) == f"<opaque {module}.{name}>"
        instance = loads(_p(_newobj(_global(module, name)), _dict(), BUILD), allow=APSCHEDULER_JOB)
        assert isinstance(instance, Opaque) and instance.state == {}
    _assert_not_imported(evilmod)


def test_combining_trigger_state_cannot_import_anything(evilmod: Path, canary: Path) -> None:
    """AndTrigger.__setstate__ would ``__import__`` any "module:name" in its state."""
    and_trigger = _global("apscheduler.triggers.combining", "AndTrigger")
    for ref in ("evilmod:Thing", "os:system", "subprocess:Popen", "apscheduler.util:ref_to_obj"):
        state = _dict(
            (_str("version"), _int(1)),
            (_str("jitter"), NONE),
            (_str("triggers"), _list(_tuple(_str(ref), _dict()))),
        )
        with pytest.raises(Refused, match="not an allowed trigger class"):
            loads(_p(_newobj(and_trigger), state, BUILD), allow=APSCHEDULER_JOB)
    _assert_not_imported(evilmod)


def test_a_self_nesting_combining_state_is_refused() -> None:
    and_trigger = _global("apscheduler.triggers.combining", "AndTrigger")
    # state = {"triggers": [("...:AndTrigger", state)]}: refers to itself via the memo.
    data = _p(
        _newobj(and_trigger),
        b"}",
        MEMO0,
        _str("triggers"),
        _list(_tuple(_str("apscheduler.triggers.combining:AndTrigger"), GET0)),
        b"s",
        BUILD,
    )
    with pytest.raises(Refused, match="nested too deep"):
        loads(data, allow=APSCHEDULER_JOB)


def test_classes_in_this_process_cannot_be_patched() -> None:
    expression = _global("apscheduler.triggers.cron.expressions", "AllExpression")
    before = dict(vars(AllExpression))
    hostile = [
        # BUILD on the class itself: would set class attributes.
        _p(expression, _dict((_str("value_re"), NONE)), BUILD),
        _p(expression, _tuple(NONE, _dict((_str("value_re"), NONE))), BUILD),
        # Slot state that changes an instance's class.
        _p(_newobj(expression), _tuple(NONE, _dict((_str("__class__"), expression))), BUILD),
        # Instance state shadowing a method or a class attribute, or private names.
        _p(
            _newobj(expression),
            _dict((_str("get_next_value"), _global("builtins", "getattr"))),
            BUILD,
        ),
        _p(_newobj(expression), _dict((_str("value_re"), NONE)), BUILD),
        _p(_newobj(expression), _dict((_str("__dict__"), _dict())), BUILD),
        # A second BUILD of the same object.
        _p(
            _newobj(expression),
            _dict((_str("step"), NONE)),
            BUILD,
            _dict((_str("step"), _int(2))),
            BUILD,
        ),
        # BUILD on a function or a guard.
        _p(_global("builtins", "getattr"), _dict((_str("__defaults__"), _tuple())), BUILD),
        _p(_global("zoneinfo", "ZoneInfo"), _dict((_str("_unpickle"), NONE)), BUILD),
        # BUILD on a datetime.
        _p(_call(_global("datetime", "timedelta"), _int(1)), _dict((_str("x"), NONE)), BUILD),
        # Appending to / setting items of something that isn't a list or dict.
        _p(expression, _str("x"), b"a"),
        _p(_global("builtins", "getattr"), _str("k"), _str("v"), b"s"),
    ]
    for data in hostile:
        with pytest.raises(Refused):
            loads(data, allow=APSCHEDULER_JOB)
    assert dict(vars(AllExpression)) == before


def test_trigger_states_cannot_call_their_hostile_parts(canary: Path) -> None:
    """Interval/Cron/Date states only assign attributes; odd values fail, nothing runs."""
    interval = _global("apscheduler.triggers.interval", "IntervalTrigger")
    state = _dict(
        (_str("version"), _int(2)),
        (_str("timezone"), _call(_global("os", "system"), _str(f"touch {canary}"))),
        (_str("start_date"), NONE),
        (_str("end_date"), NONE),
        (_str("interval"), _call(_global("os", "system"), _str(f"touch {canary}"))),
    )
    with pytest.raises(pickle.UnpicklingError):
        loads(_p(_newobj(interval), state, BUILD), allow=APSCHEDULER_JOB)
    cron = _global("apscheduler.triggers.cron", "CronTrigger")
    cron_state = _dict(
        (_str("version"), _int(2)),
        (_str("timezone"), _str("../../../../etc/passwd")),
        (_str("start_date"), NONE),
        (_str("end_date"), NONE),
        (_str("fields"), _list()),
    )
    with pytest.raises(pickle.UnpicklingError):
        loads(_p(_newobj(cron), cron_state, BUILD), allow=APSCHEDULER_JOB)


# -- size, cost, broken input --------------------------------------------------


def test_input_size_is_capped() -> None:
    data = pickle.dumps("x" * 2000)
    with pytest.raises(Refused, match="over the 1000-byte limit"):
        loads(data, max_size=1000)
    assert loads(data, max_size=5000) == "x" * 2000


def test_memo_amplification_is_cut_off_quickly() -> None:
    """``set(big_list)`` repeated through memo references: quadratic without a budget."""
    big = _list(*(_int(i) for i in range(20_000)))
    repeat = _call(_global("builtins", "set"), GET0) + POP
    data = _p(big, MEMO0, POP, repeat * 20_000, NONE)
    # The cut-off is a work budget proportional to the input (counted, not
    # timed), so the refusal itself is the check; its speed is bench material.
    with pytest.raises(Refused, match="too expensive"):
        loads(data)


def test_colliding_int_keys_are_refused() -> None:
    modulus = 2**61 - 1  # hash(k * modulus) == 0 for every k
    colliding = {k * modulus: None for k in range(1, 50)}
    with pytest.raises(Refused, match="wider than 64 bits"):
        loads(pickle.dumps(colliding, 4))
    with pytest.raises(Refused, match="wider than 64 bits"):
        loads(pickle.dumps({(1, (k * modulus,)) for k in range(1, 50)}, 2))
    assert loads(pickle.dumps({2**63 - 1: 1, -(2**63): 2})) == {2**63 - 1: 1, -(2**63): 2}


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x05", b"\x80\x04N", b"garbage", b"\x80\x09N.", b"h\x07.", b"(((("],
)
def test_broken_input_is_an_unpickling_error(data: bytes) -> None:
    with pytest.raises(pickle.UnpicklingError):
        loads(data, allow=APSCHEDULER_JOB)


def test_mutated_job_pickles_only_ever_fail_cleanly(stored_jobs, canary: Path) -> None:
    """Random byte flips in real job states: a value or an UnpicklingError, nothing else."""
    _, _, rows = stored_jobs
    rng = random.Random(1127)
    samples = list(rows.values())
    for _ in range(400):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            loads(bytes(data), allow=APSCHEDULER_JOB)
        except pickle.UnpicklingError:
            pass
