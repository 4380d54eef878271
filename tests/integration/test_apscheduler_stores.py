"""Reading real APScheduler 3.x job stores from outside the scheduler's process.

A real ``AsyncIOScheduler`` (``tests/scripts/aps_app.py``) writes its
``classic`` jobs into a private Redis, an SQLite file, a private PostgreSQL
table and a private MariaDB table; taskwatch's reader must see every job
with the store's own next run and its trigger in words, and a job paused
by APScheduler itself as paused. Then hostile rows are written straight
into the store: nothing runs, each shows with a problem, and the store is
byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskwatch.sources.apscheduler import JobStoreError, MissingJobTable, open_store
from taskwatch.sources.apscheduler.location import parse_store_url
from tests.cluster import service_reachable
from tests.unit.test_apscheduler_decode import (
    and_trigger_payload,
    getattr_walk_payload,
    reduce_payload,
)
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "scripts" / "aps_app.py"
CLASSIC = {"every-15-min", "digest-0800", "once", "monthly", "weekend-hourly", "twice-daily"}
FAR = datetime(2099, 1, 1, tzinfo=UTC).timestamp()  # never due: the scheduler never loads these rows
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


# -- the stores ------------------------------------------------------------------------


@dataclass
class Store:
    """One real job store, and the test's own direct access to it."""

    url: str
    #: job id -> the store's own next run (zset score / next_run_time column; None: paused)
    index: Callable[[], dict[str, float | None]]
    #: job id -> the stored state's bytes
    states: Callable[[], dict[str, bytes]]
    write: Callable[[str, bytes, float | None], None]
    #: everything the store holds, byte for byte
    fingerprint: Callable[[], Any]
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _redis_store(server: Any) -> Store:
    import redis

    client = redis.Redis(port=server.port, protocol=2)
    jobs, times = "apscheduler.jobs", "apscheduler.run_times"

    def index() -> dict[str, float | None]:
        scores = {k.decode(): s for k, s in client.zrange(times, 0, -1, withscores=True)}
        return {k.decode(): scores.get(k.decode()) for k in client.hkeys(jobs)}

    def write(job_id: str, blob: bytes, next_run: float | None) -> None:
        client.hset(jobs, job_id, blob)
        if next_run is not None:
            client.zadd(times, {job_id: next_run})

    return Store(
        url=server.url(0),
        index=index,
        states=lambda: {k.decode(): v for k, v in client.hgetall(jobs).items()},
        write=write,
        fingerprint=lambda: (client.dump(jobs), client.dump(times), client.dbsize()),
        cleanup=[client.close],
    )


def _sql_store(url: str, table: str, fingerprint: Callable[[], Any] | None = None,
               drop: bool = False) -> Store:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    quoted = engine.dialect.identifier_preparer.quote(table)

    def rows() -> list[tuple[str, float | None, bytes]]:
        with engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT id, next_run_time, job_state FROM {quoted} ORDER BY id"))
            return [(i, n, bytes(b)) for i, n, b in found]

    def write(job_id: str, blob: bytes, next_run: float | None) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {quoted} (id, next_run_time, job_state) VALUES (:i, :n, :b)"),
                         {"i": job_id, "n": next_run, "b": blob})

    def cleanup() -> None:
        if drop:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quoted}"))
        engine.dispose()

    return Store(
        url=f"{url}?tablename={table}",
        index=lambda: {i: n for i, n, _ in rows()},
        states=lambda: {i: b for i, _, b in rows()},
        write=write,
        fingerprint=fingerprint or rows,
        cleanup=[cleanup],
    )


def _file_state(path: Path) -> tuple[str, ...]:
    """The SQLite file's hash and which side files exist: an open for writing
    would leave a journal, a replayed journal a new hash."""
    side = tuple(sorted(p.name for p in path.parent.glob(path.name + "-*")))
    return (hashlib.sha256(path.read_bytes()).hexdigest(), *side)


@pytest.fixture(params=["redis", "sqlite", "postgres", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    table = f"aps_{uuid.uuid4().hex[:12]}"
    if kind == "redis":
        made = _redis_store(request.getfixturevalue("fresh_redis"))
    elif kind == "sqlite":
        db = tmp_path / "jobs.sqlite"
        made = _sql_store(f"sqlite:///{db}", "apscheduler_jobs", fingerprint=lambda: _file_state(db))
    elif kind == "postgres":
        base = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
        made = _sql_store(base, table, drop=True)
    else:
        pytest.importorskip("pymysql")
        if not service_reachable("127.0.0.1", 3306):
            pytest.skip("MariaDB is not reachable at 127.0.0.1:3306")
        made = _sql_store(MARIADB_URL, table, drop=True)
    try:
        yield made
    finally:
        for step in made.cleanup:
            step()


# -- the scheduler -----------------------------------------------------------------------


@dataclass
class App:
    process: subprocess.Popen
    runs: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def start_app(store: Store, tmp_path: Path) -> App:
    runs = tmp_path / "runs.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(APP), "--store", store.url, "--runs", str(runs), "--jobs", "classic"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    app = App(process, runs)
    line = process.stdout.readline() if process.stdout else ""
    if line.strip() != "READY":
        app.stop()
        pytest.fail(f"aps_app.py did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    return app


@pytest.fixture
def running(store: Store, tmp_path: Path) -> Iterator[App]:
    app = start_app(store, tmp_path)
    try:
        yield app
    finally:
        app.stop()


def pause_with_apscheduler(store: Store, job_id: str) -> None:
    """Pause a job the way a user would: APScheduler's own ``pause_job``, through
    its own store class, from another process than the running scheduler."""
    from apscheduler.schedulers.background import BackgroundScheduler

    sys.path.insert(0, str(APP.parent))
    try:
        from aps_app import job_store
    finally:
        sys.path.remove(str(APP.parent))
    scheduler = BackgroundScheduler(jobstores={"default": job_store(store.url)}, timezone=UTC)
    scheduler.start(paused=True)
    try:
        scheduler.pause_job(job_id)
    finally:
        scheduler.shutdown(wait=False)


def read_steady(reader: Any, store: Store) -> tuple[list[Any], dict[str, float | None], dict[str, bytes]]:
    """Read while the scheduler may be writing: accept a read the store did not
    change around (its index and states the same before and after)."""
    result: list[Any] = []

    def steady() -> bool:
        before = (store.index(), store.states())
        jobs = reader.jobs()
        after = (store.index(), store.states())
        if before == after and set(before[0]) >= CLASSIC:
            result[:] = [jobs, *before]
            return True
        return False

    wait_until(steady, what="a read of the job store that no scheduler write crossed")
    return result[0], result[1], result[2]


# -- what a running scheduler keeps --------------------------------------------------------


def test_every_job_reads_with_the_stores_next_run_and_its_trigger_in_words(
    store: Store, running: App
) -> None:
    pause_with_apscheduler(store, "once")
    reader = open_store(parse_store_url(store.url), timeout=5.0)
    try:
        jobs, index, states = read_steady(reader, store)
        by_id = {job.id: job for job in jobs}
        assert set(by_id) == CLASSIC
        for job_id, job in by_id.items():
            assert job.next_run == index[job_id], job_id
            assert job.problem is None, (job_id, job.problem)
            assert job.source == "apscheduler" and job.store == reader.label
            assert job.target == "tests.scripts.aps_jobs:tick"
            assert job.args == f"({job_id!r},)"

        once = by_id["once"]
        assert once.paused and once.next_run is None and index["once"] is None
        assert [j.id for j in jobs][-1] == "once", "paused jobs come last"
        # The test's own bytes: the real unpickler is a fair oracle here (func is only a string).
        run_date = pickle.loads(states["once"])["trigger"].run_date
        shape = "%Y-%m-%d %H:%M:%S" if run_date.second or run_date.microsecond else "%Y-%m-%d %H:%M"
        assert once.trigger == f"once at {run_date.strftime(shape)} UTC"
        start = pickle.loads(states["monthly"])["trigger"].start_date

        assert {job_id: job.trigger for job_id, job in by_id.items() if job_id != "once"} == {
            "every-15-min": "every 15 min",
            "digest-0800": "cron 08:00 UTC mon-fri",
            "monthly": f"every month on day {start.day} at 00:00 UTC",
            "weekend-hourly": "all of (every 1 h; cron *:00 UTC sat,sun)",
            "twice-daily": "any of (cron 06:30 UTC; cron 18:30 UTC)",
        }
        digest = by_id["digest-0800"]
        assert (digest.name, digest.grace, digest.coalesce, digest.max_instances, digest.executor) == (
            "08:00 digest", 300.0, True, 2, "default")
        assert digest.kwargs == "{'to': ['ops@example.com']}"
        assert digest.call is not None and digest.call.kwargs == {"to": ["ops@example.com"]}
        assert by_id["every-15-min"].grace == 1.0 and by_id["every-15-min"].coalesce is True

        # A poll of an unchanged store decodes nothing again.
        def unchanged_poll() -> bool:
            before, decoded = store.states(), reader.decoded
            again = reader.jobs()
            return store.states() == before and reader.decoded == decoded and again == jobs

        wait_until(unchanged_poll, what="a second poll of an unchanged store that decodes nothing")
    finally:
        reader.close()
    assert running.process.poll() is None, "the scheduler kept running"


# -- hostile rows --------------------------------------------------------------------------


def test_hostile_rows_run_nothing_show_a_problem_and_leave_the_store_unchanged(
    store: Store, tmp_path: Path
) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    start_app(store, tmp_path).stop()  # a store and its table as a real scheduler left them
    canary = tmp_path / "canary"
    hostile = {
        "evil-reduce": reduce_payload(canary),
        "evil-getattr": getattr_walk_payload(canary),
        "evil-and": and_trigger_payload("os:system"),
    }
    ghost_state = {
        "version": 1, "id": "ghost", "func": "no_such_module:job",
        "trigger": IntervalTrigger(minutes=5, start_date=datetime.now(UTC) - timedelta(minutes=1), timezone=UTC),
        "executor": "default", "args": (), "kwargs": {}, "name": "Ghost", "misfire_grace_time": 1,
        "coalesce": True, "max_instances": 1, "next_run_time": datetime.fromtimestamp(FAR, UTC),
    }
    for job_id, blob in hostile.items():
        store.write(job_id, blob, FAR)
    store.write("ghost", pickle.dumps(ghost_state, pickle.HIGHEST_PROTOCOL), FAR)

    before = store.fingerprint()
    reader = open_store(parse_store_url(store.url), timeout=5.0)
    try:
        jobs = {job.id: job for job in reader.jobs()}
    finally:
        reader.close()
    after = store.fingerprint()

    assert not canary.exists(), "a hostile row ran a command"
    assert before == after, "reading changed the store"
    assert set(jobs) == CLASSIC | set(hostile) | {"ghost"}
    assert jobs["evil-reduce"].problem == "job state is a posix.system, not a dict"
    assert jobs["evil-getattr"].problem == (
        "refused: getattr(class apscheduler.triggers.interval.IntervalTrigger, '__init__') is not allowed")
    assert jobs["evil-and"].problem == "refused: trigger reference 'os:system' is not an allowed trigger class"
    for job_id in hostile:
        assert jobs[job_id].next_run == FAR and not jobs[job_id].paused
    ghost = jobs["ghost"]
    assert (ghost.target, ghost.trigger, ghost.problem, ghost.name) == (
        "no_such_module:job", "every 5 min", None, "Ghost")
    assert "no_such_module" not in sys.modules
    assert set(store.states()) >= set(hostile) | {"ghost"}, "no row was deleted"


# -- what is not a store ---------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fails_fast(url: str, error: type[Exception] = JobStoreError, timeout: float = 1.0) -> str:
    reader = open_store(parse_store_url(url), timeout=timeout)
    started = time.monotonic()
    try:
        with pytest.raises(error) as caught:
            reader.jobs()
    finally:
        reader.close()
    assert time.monotonic() - started < timeout + 10, "the read was not bounded by its timeout"
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message
    return message


def test_an_unreachable_redis_store_is_one_masked_line() -> None:
    message = _fails_fast(f"redis://:s3cret@127.0.0.1:{_closed_port()}/0")
    assert message.startswith("cannot read job store redis://:****@127.0.0.1:")


def test_an_unreachable_postgres_store_is_one_masked_line() -> None:
    message = _fails_fast(f"postgresql+psycopg2://postgres:s3cret@127.0.0.1:{_closed_port()}/test")
    assert message.startswith("cannot read job store postgresql+psycopg2://postgres:****@127.0.0.1:")


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.sqlite"
    message = _fails_fast(f"sqlite:///{path}")
    assert "unable to open database file" in message and not path.exists()


def test_a_missing_table_is_said_and_an_empty_table_is_no_jobs(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE something_else (x INTEGER)")
        conn.execute("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, "
                     "next_run_time FLOAT, job_state BLOB NOT NULL)")
    conn.close()
    message = _fails_fast(f"sqlite:///{path}?tablename=aps_missing", MissingJobTable)
    assert message == (f"job store sqlite:///{path}?tablename=aps_missing has no table aps_missing "
                       "(wrong tablename=, or no scheduler has started with this store)")
    reader = open_store(parse_store_url(f"sqlite:///{path}"))
    try:
        assert reader.jobs() == []
    finally:
        reader.close()


def test_an_empty_redis_store_is_no_jobs_and_a_foreign_key_is_said(fresh_redis: Any) -> None:
    import redis

    reader = open_store(parse_store_url(fresh_redis.url(0)))
    try:
        assert reader.jobs() == []
        client = redis.Redis(port=fresh_redis.port, protocol=2)
        client.set("apscheduler.jobs", "not a hash")
        client.close()
        with pytest.raises(JobStoreError, match="key 'apscheduler.jobs' is not a hash"):
            reader.jobs()
    finally:
        reader.close()


def test_a_mariadb_session_cannot_write(tmp_path: Path) -> None:
    """The read-only session is real: a write through the reader's own engine is refused."""
    pytest.importorskip("pymysql")
    if not service_reachable("127.0.0.1", 3306):
        pytest.skip("MariaDB is not reachable at 127.0.0.1:3306")
    import sqlalchemy as sa

    reader = open_store(parse_store_url(MARIADB_URL))
    try:
        with reader._engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="READ ONLY"):
            conn.execute(sa.text("CREATE TABLE taskwatch_must_not_exist (x INT)"))
    finally:
        reader.close()


def test_an_unreachable_mongo_store_is_one_masked_line() -> None:
    pytest.importorskip("pymongo")
    message = _fails_fast(f"mongodb://admin:s3cret@127.0.0.1:{_closed_port()}/")
    assert message.startswith("cannot read job store mongodb://admin:****@127.0.0.1:")


def test_a_mongo_store_without_pymongo_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['pymongo'] = None\n"
        "from taskwatch.sources.apscheduler import JobStoreError, open_store\n"
        "from taskwatch.sources.apscheduler.location import parse_store_url\n"
        "try:\n    open_store(parse_store_url('mongodb://u:s3cret@db.example:27017/'))\n"
        "except JobStoreError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == (
        "reading the MongoDB job store mongodb://u:****@db.example:27017/ needs pymongo "
        "(pip install 'taskwatch[mongo]')"
    ), out.stderr


def test_a_real_mongo_store_reads_like_the_others(tmp_path: Path) -> None:
    pytest.importorskip("pymongo")
    if not service_reachable("127.0.0.1", 27017):
        pytest.skip("MongoDB is not reachable at 127.0.0.1:27017")
    import pymongo
    from apscheduler.jobstores.mongodb import MongoDBJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    database = f"taskwatch_{uuid.uuid4().hex[:12]}"
    client: pymongo.MongoClient = pymongo.MongoClient("mongodb://127.0.0.1:27017/", serverSelectionTimeoutMS=5000)
    try:
        scheduler = BackgroundScheduler(jobstores={"default": MongoDBJobStore(database=database, client=client)},
                                        timezone=UTC)
        scheduler.start(paused=True)
        scheduler.add_job("tests.scripts.aps_jobs:tick", "interval", minutes=15, id="m", args=["m"])
        scheduler.add_job("tests.scripts.aps_jobs:tick", "interval", minutes=5, id="p", args=["p"])
        scheduler.pause_job("p")
        scheduler.shutdown(wait=False)
        stored = {d["_id"]: d.get("next_run_time") for d in client[database]["jobs"].find()}
        client[database]["jobs"].insert_one({"_id": "evil", "next_run_time": FAR,
                                             "job_state": reduce_payload(tmp_path / "canary")})
        reader = open_store(parse_store_url(f"mongodb://127.0.0.1:27017/?database={database}"))
        try:
            jobs = {job.id: job for job in reader.jobs()}
        finally:
            reader.close()
        assert jobs["m"].next_run == stored["m"] and jobs["m"].trigger == "every 15 min"
        assert jobs["p"].paused and jobs["p"].next_run is None
        assert jobs["evil"].problem == "job state is a posix.system, not a dict"
        assert not (tmp_path / "canary").exists()
    finally:
        client.drop_database(database)
        client.close()
