"""Reading real result backends: Redis written by the demo workers, PostgreSQL
written by a real worker of the demo app through Celery's database backend."""

from __future__ import annotations

import json
import pickle
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from celery import Celery

from taskwatch.config import Settings
from taskwatch.demo.redis_server import RedisServer, free_port
from taskwatch.monitor import Monitor
from taskwatch.sources.results import (
    DatabaseResultBackend,
    RedisResultBackend,
    ResultBackendError,
    StoredResult,
    UnsupportedBackend,
    result_backend,
)
from tests.cluster import TEST_HOST, DemoWorkers, start_worker, wait_for_ping
from tests.waiting import wait_until

HOSTILE = "[bold]red[/bold]\x1b]0;pwned\x07\x1b[2J"
CONTROL = ("\x1b", "\x07", "\x9b")


def _no_control(text: str) -> bool:
    return not any(c in text for c in CONTROL)


@dataclass(frozen=True)
class Sent:
    ok: str
    report: str
    hostile_result: str
    hostile_failure: str


def _os_system_pickle(canary: Path) -> bytes:
    """A pickle that runs ``touch <canary>`` when given to ``pickle.loads``."""
    touch = f"touch {canary}".encode()
    return b"\x80\x04cos\nsystem\n(X" + len(touch).to_bytes(4, "little") + touch + b"tR."


def _send_demo_tasks(broker_url: str, queue: str | None = None) -> Sent:
    """Tasks of the demo app with known outcomes; returns their ids."""
    app = Celery("taskwatch-test-results", broker=broker_url, set_as_current=False)
    app.conf.task_routes = {"reports.*": {"queue": "reports"}, "emails.*": {"queue": "emails"}}
    options = {"queue": queue} if queue else {}
    try:
        return Sent(
            ok=app.send_task("tasks.add", (2, 3), **options).id,
            # report ids divisible by 17 never have rows: a deterministic failure
            report=app.send_task("reports.process_report", (17,), {"fmt": "pdf"}, **options).id,
            hostile_result=app.send_task("tasks.add", ("[bold]hi", HOSTILE), **options).id,
            # no "@": ValueError(f"invalid recipient address: {to}"), not retried
            hostile_failure=app.send_task("emails.send_email", (HOSTILE, "subject"), **options).id,
        )
    finally:
        app.close()


def _wait_ready(
    backend: RedisResultBackend | DatabaseResultBackend, ids: list[str], timeout: float = 30
) -> dict[str, StoredResult]:
    found: dict[str, StoredResult] = {}

    def ready() -> dict[str, StoredResult] | None:
        found.update(backend.get(ids))
        done = {i: r for i, r in found.items() if r.status in ("SUCCESS", "FAILURE")}
        return done if len(done) == len(ids) else None

    return wait_until(ready, timeout, what=f"{len(ids)} tasks finished in the result backend",
                      detail=lambda: {i: r.status for i, r in found.items()})


# -- Redis --------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_results(demo_workers: DemoWorkers) -> Iterator[tuple[RedisResultBackend, Sent]]:
    backend = RedisResultBackend(demo_workers.result_backend, timeout=2.0)
    sent = _send_demo_tasks(demo_workers.broker_url)
    _wait_ready(backend, [sent.ok, sent.report, sent.hostile_result, sent.hostile_failure])
    yield backend, sent
    backend.close()


def test_recent_finds_the_failure_with_its_exception_and_exact_arguments(redis_results) -> None:
    backend, sent = redis_results
    failures = backend.recent(200, states={"FAILURE"})
    assert failures and all(r.status == "FAILURE" for r in failures)
    report = next(r for r in failures if r.task_id == sent.report)

    assert report.exception == "ValueError('report 17 has no rows')"
    assert report.result == report.exception
    assert report.traceback.startswith("Traceback (most recent call last):")
    assert "\n" in report.traceback
    assert report.traceback.rstrip().endswith("ValueError: report 17 has no rows")
    assert report.name == "reports.process_report"
    assert report.worker == f"beta@{TEST_HOST}"
    assert report.queue == "reports"
    assert report.exact_args
    assert report.args == "(17,)"
    assert report.kwargs == "{'fmt': 'pdf'}"
    assert report.call.args == (17,)
    assert report.call.kwargs == {"fmt": "pdf"}
    assert report.retries == 0
    assert report.date_done is not None and abs(time.time() - report.date_done) < 120
    assert report.encoding == "json" and report.problem is None


def test_recent_is_newest_first_and_bounded(redis_results) -> None:
    backend, sent = redis_results
    everything = backend.recent(1000)
    assert backend.last_scan["complete"]
    dates = [r.date_done for r in everything if r.date_done is not None]
    assert dates == sorted(dates, reverse=True)
    assert {sent.ok, sent.report, sent.hostile_result, sent.hostile_failure} <= {
        r.task_id for r in everything
    }
    assert [r.task_id for r in backend.recent(2)] == [r.task_id for r in everything[:2]]
    assert backend.recent(0) == []
    assert all(r.status == "SUCCESS" for r in backend.recent(1000, states={"success"}))


def test_get_returns_exactly_the_ids_that_exist(redis_results) -> None:
    backend, sent = redis_results
    missing = str(uuid.uuid4())
    found = backend.get([sent.ok, missing, sent.report, sent.ok])

    assert set(found) == {sent.ok, sent.report}
    ok = found[sent.ok]
    assert ok.status == "SUCCESS"
    assert ok.result == "5"
    assert ok.exception == "" and ok.traceback == ""
    assert ok.name == "tasks.add" and ok.args == "(2, 3)" and ok.kwargs == "{}"
    assert ok.worker in {f"alpha@{TEST_HOST}", f"beta@{TEST_HOST}"}
    assert found[sent.report].status == "FAILURE"
    assert backend.get([]) == {}
    assert backend.get([missing]) == {}


def test_hostile_text_comes_back_literal_without_control_characters(redis_results) -> None:
    backend, sent = redis_results
    found = backend.get([sent.hostile_result, sent.hostile_failure])

    result = found[sent.hostile_result]
    assert "[bold]hi[bold]red[/bold]" in result.result  # markup stays literal text
    assert _no_control(result.result) and _no_control(result.args)
    assert "\n" not in result.result
    assert result.exact_args and result.call.args == ("[bold]hi", HOSTILE)  # exact, for a retry

    failure = found[sent.hostile_failure]
    assert failure.status == "FAILURE"
    assert failure.exception.startswith("ValueError('invalid recipient address: [bold]red[/bold]")
    assert "[bold]red[/bold]" in failure.traceback
    assert _no_control(failure.exception) and _no_control(failure.traceback)
    assert failure.traceback.count("\n") > 3


def test_an_unreachable_redis_fails_fast_with_a_masked_line() -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/1"
    backend = result_backend(url, timeout=2.0)
    for call in (lambda: backend.get(["x"]), lambda: backend.recent(10)):
        started = time.monotonic()
        with pytest.raises(ResultBackendError) as caught:
            call()
        # Refused is answered at once: within the timeout means no retries
        # (redis-py's own would take about 4 s).
        assert time.monotonic() - started < backend.timeout
        message = str(caught.value)
        assert "s3cret-pw" not in message and ":****@" in message
        assert "\n" not in message


def test_unsupported_schemes_say_what_is_supported() -> None:
    with pytest.raises(UnsupportedBackend) as caught:
        result_backend("mongodb://user:hunter2@db:27017/results")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "supported: redis://, rediss://, db+postgresql://, db+sqlite://" in message
    with pytest.raises(UnsupportedBackend, match="reply queue"):
        result_backend("rpc://")
    with pytest.raises(UnsupportedBackend, match="mysql"):
        result_backend("db+mysql://u:p@h/db")


# -- Redis: serializers, scale, hostile values ---------------------------------


def _writer(url: str, serializer: str) -> Celery:
    """A Celery app whose backend writes results exactly as a worker's would."""
    app = Celery("taskwatch-test-writer", backend=url, set_as_current=False)
    app.conf.update(
        result_serializer=serializer,
        accept_content=[serializer, "json"],
        result_accept_content=[serializer, "json"],
        result_extended=True,
    )
    return app


def test_other_serializers_decode_safely_or_show_as_undecodable(
    fresh_redis: RedisServer, tmp_path: Path
) -> None:
    url = fresh_redis.url(3)
    pickled = _writer(url, "pickle")
    pickled.backend.store_result("p-ok", {"rows": 3, "raw": b"\x00\x01"}, "SUCCESS")
    pickled.backend.mark_as_failure("p-fail", ValueError("pickled boom"), traceback="Traceback …")
    packed = _writer(url, "msgpack")
    packed.backend.store_result("m-ok", {"rows": 3}, "SUCCESS")
    canary = tmp_path / "canary"
    raw = redis.Redis(host=fresh_redis.host, port=fresh_redis.port, db=3)
    raw.set("celery-task-meta-evil", _os_system_pickle(canary))
    raw.set("celery-task-meta-garbage", b"\xff\xfe not anything")
    raw.hset("celery-task-meta-a-hash", "k", "v")  # not a string: not a result
    raw.close()

    backend = RedisResultBackend(url)
    found = backend.get(["p-ok", "p-fail", "m-ok", "evil", "garbage", "a-hash"])

    assert found["p-ok"].status == "SUCCESS" and found["p-ok"].encoding == "pickle"
    assert found["p-ok"].result == "{'rows': 3, 'raw': b'\\x00\\x01'}"
    assert found["p-fail"].status == "FAILURE"
    assert found["p-fail"].exception == "ValueError('pickled boom')"
    assert found["m-ok"].status == "UNKNOWN" and found["m-ok"].encoding == "msgpack"
    assert "not decoded" in found["m-ok"].result
    assert found["evil"].status == "UNKNOWN"
    assert found["evil"].problem == "stored value is not a result dict"
    assert found["garbage"].status == "UNKNOWN" and found["garbage"].encoding == "unknown"
    assert "a-hash" not in found
    assert not canary.exists()
    backend.close()


def test_values_over_the_read_limit_keep_their_status(fresh_redis: RedisServer) -> None:
    url = fresh_redis.url(4)
    _writer(url, "json").backend.store_result("big", "x" * 50_000, "SUCCESS")
    backend = RedisResultBackend(url, max_value_bytes=4096)
    (big,) = backend.get(["big"]).values()
    assert big.status == "SUCCESS"
    assert "over the read limit" in (big.problem or "")
    assert "50" in big.result  # the real size is reported
    backend.close()


def test_recent_over_many_keys_matches_a_full_sort_and_respects_the_budget(
    fresh_redis: RedisServer,
) -> None:
    """Thousands of result keys (written in Celery's layout) among other keys."""
    url = fresh_redis.url(5)
    client = redis.Redis(host=fresh_redis.host, port=fresh_redis.port, db=5)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    expected = []
    for n in range(3000):
        status = "FAILURE" if n % 7 == 0 else "SUCCESS"
        done = now - (n * 37 % 3000)  # scrambled order, distinct times
        meta = {
            "status": status,
            "result": {
                "exc_type": "KeyError",
                "exc_message": ["unit_price"],
                "exc_module": "builtins",
            }
            if status == "FAILURE"
            else n,
            "traceback": None,
            "children": [],
            "date_done": datetime.fromtimestamp(done, UTC).isoformat(),
            "task_id": f"t{n}",
        }
        pipe.set(f"celery-task-meta-t{n}", json.dumps(meta), ex=3600)
        pipe.set(f"other-key-{n}", "x")
        if status == "FAILURE":
            expected.append((done, f"t{n}"))
    pipe.execute()
    client.close()
    expected.sort(reverse=True)

    backend = RedisResultBackend(url)
    newest = backend.recent(20, states={"FAILURE"})
    assert backend.last_scan["complete"] and backend.last_scan["keys"] == 3000
    assert [r.task_id for r in newest] == [task_id for _, task_id in expected[:20]]
    assert all(r.exception == "KeyError('unit_price')" for r in newest)

    backend.recent(20, scan_budget=1000)
    assert not backend.last_scan["complete"]
    assert backend.last_scan["keys"] < 3000
    backend.close()


# -- failures from before the start, on a busy cluster -------------------------

OLD_FAILURES = 20
NEWER_SUCCESSES = 3000


def _write_old_failures(writer: Celery) -> set[str]:
    """Celery's own backend writes 20 failures; returns their ids."""
    failed = set()
    for n in range(OLD_FAILURES):
        task_id = f"old-failure-{n}"
        writer.backend.mark_as_failure(task_id, KeyError(f"unit_price {n}"),
                                       traceback="Traceback (most recent call last):\n")
        failed.add(task_id)
    return failed


def _write_failures_then_successes(writer: Celery) -> set[str]:
    """Celery's own backend writes 20 failures, then 3,000 newer successes."""
    failed = _write_old_failures(writer)
    for n in range(NEWER_SUCCESSES):
        writer.backend.store_result(f"newer-ok-{n}", n, "SUCCESS")
    return failed


def _monitor_backfill_finds(broker_url: str, backend_url: str, failed: set[str]) -> Monitor:
    """The default backfill on real sources, as the first round runs it; the
    failure scan runs on its own thread and ends within its bounds."""
    monitor = Monitor.from_settings(
        Settings(broker_url=broker_url, result_backend=backend_url), events=False)
    assert monitor.backfill_limit == 500  # the default, fewer than the newer successes
    report = monitor.poll()  # no workers here: the round asks, then backfills
    assert report.backend_error is None
    scan = wait_until(lambda: monitor.failure_scan.finished and monitor.failure_scan,
                      what="the failure scan to end", detail=lambda: monitor.failure_scan)
    tasks = monitor.state.tasks
    found = {task_id for task_id in failed if task_id in tasks}
    assert found == failed, f"{len(found)} of {len(failed)} old failures: {scan}"
    assert all(tasks[t].state == "FAILURE" and tasks[t].exception.startswith("KeyError(")
               for t in failed)
    assert scan.complete and scan.stopped is None and scan.found == OLD_FAILURES
    # ...and the newest results as before: 500 of the successes.
    assert sum(1 for t in tasks.values() if t.state == "SUCCESS") == 500
    assert not monitor.poll().errors  # nothing to say: the scan was complete
    return monitor


def test_every_stored_failure_is_backfilled_however_many_newer_results_redis(
    fresh_redis: RedisServer,
) -> None:
    backend_url = fresh_redis.url(1)
    failed = _write_failures_then_successes(_writer(backend_url, "json"))
    client = redis.Redis(host=fresh_redis.host, port=fresh_redis.port, db=1)
    before = {k: client.get(k) for k in client.scan_iter(count=1000)}

    monitor = _monitor_backfill_finds(fresh_redis.url(0), backend_url, failed)
    try:
        assert monitor.failure_scan.examined >= OLD_FAILURES + NEWER_SUCCESSES
    finally:
        monitor.stop()
    assert {k: client.get(k) for k in client.scan_iter(count=1000)} == before  # read only
    client.close()


def test_a_failure_scan_cut_short_says_so_once(fresh_redis: RedisServer) -> None:
    backend_url = fresh_redis.url(1)
    failed = _write_failures_then_successes(_writer(backend_url, "json"))
    monitor = Monitor.from_settings(
        Settings(broker_url=fresh_redis.url(0), result_backend=backend_url), events=False)
    monitor.scan_keys = 100  # a bound far below the 3,020 keys stored
    try:
        first = monitor.poll()
        scan = wait_until(lambda: monitor.failure_scan.finished and monitor.failure_scan,
                          what="the failure scan to stop")
        assert not scan.complete and scan.stopped == f"stopped after {scan.examined:,} stored results"
        assert scan.examined < OLD_FAILURES + NEWER_SUCCESSES
        said = [e for e in first.errors + monitor.poll().errors if "older failures" in e]
        assert said == [f"result backend: reading older failures {scan.stopped} "
                        f"({scan.found:,} found in {scan.examined:,} results); older ones are not shown"]
        assert not [e for e in monitor.poll().errors if "older failures" in e]  # once
        assert scan.found == sum(1 for t in failed if t in monitor.state.tasks)
    finally:
        monitor.stop()


# -- PostgreSQL: a real worker with Celery's database backend -----------------


@dataclass(frozen=True)
class PgBackend:
    url: str  # db+postgresql+psycopg2://...?options=-csearch_path=<schema>
    schema: str
    sa_url: str
    sent: Sent


@contextmanager
def _private_schema(postgres_url: str, prefix: str) -> Iterator[tuple[str, str, str, sa.Engine]]:
    """A schema of the test's own, dropped afterwards: (schema, SQLAlchemy URL,
    Celery's ``db+`` URL writing into it, an engine to set it up with)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    sa_url = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    admin = sa.create_engine(sa_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        # Celery creates its tables in the first schema of the search path.
        yield schema, sa_url, f"db+{sa_url}?options=-csearch_path%3D{schema}", admin
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def pg_results(postgres_url: str, redis_server: RedisServer) -> Iterator[PgBackend]:
    """A private schema, a demo worker writing its results there, four finished tasks."""
    with _private_schema(postgres_url, "tw_results") as (schema, sa_url, url, _):
        yield from _pg_results(schema, sa_url, url, redis_server)


def _pg_results(schema: str, sa_url: str, url: str, redis_server: RedisServer) -> Iterator[PgBackend]:
    broker = redis_server.url(6)
    worker = start_worker(broker, url, f"pg@{TEST_HOST}", ["pg"], 1)
    try:
        wait_for_ping(broker, [worker.hostname], timeout=60)
        sent = _send_demo_tasks(broker, "pg")
        reader = DatabaseResultBackend(url)
        try:

            def table_made() -> bool:
                try:
                    reader.get([sent.ok])
                except ResultBackendError:  # no table until the first result
                    return False
                return True

            wait_until(table_made, what="Celery to create its result table")
            _wait_ready(reader, list(vars(sent).values()))
        finally:
            reader.close()
        yield PgBackend(url, schema, sa_url, sent)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.stop()


def test_database_backend_reads_success_and_failure_rows(pg_results: PgBackend) -> None:
    backend = result_backend(pg_results.url, timeout=2.0)
    sent = pg_results.sent
    try:
        found = backend.get([sent.ok, sent.report, "no-such-task"])
        assert set(found) == {sent.ok, sent.report}

        ok = found[sent.ok]
        assert (ok.status, ok.result, ok.name, ok.args, ok.kwargs) == (
            "SUCCESS",
            "5",
            "tasks.add",
            "(2, 3)",
            "{}",
        )
        assert ok.worker == f"pg@{TEST_HOST}" and ok.queue == "pg"
        assert ok.exact_args and ok.call.args == (2, 3)

        report = found[sent.report]
        assert report.status == "FAILURE"
        assert report.exception == "ValueError('report 17 has no rows')"
        assert report.traceback.rstrip().endswith("ValueError: report 17 has no rows")
        assert report.args == "(17,)" and report.call.kwargs == {"fmt": "pdf"}
        assert report.date_done is not None and abs(time.time() - report.date_done) < 120

        recent = backend.recent(50)
        assert set(vars(sent).values()) <= {r.task_id for r in recent}
        dates = [r.date_done or 0.0 for r in recent]
        assert dates == sorted(dates, reverse=True)
        assert [r.task_id for r in backend.recent(50, states={"FAILURE"})] == [
            r.task_id for r in recent if r.status == "FAILURE"
        ]
        assert len(backend.recent(2)) == 2

        hostile = backend.get([sent.hostile_result, sent.hostile_failure])
        assert "[bold]hi[bold]red[/bold]" in hostile[sent.hostile_result].result
        assert all(
            _no_control(text)
            for r in hostile.values()
            for text in (r.result, r.exception, r.traceback, r.args)
        )
    finally:
        backend.close()


def test_database_backend_decodes_legacy_pickled_rows_safely(
    pg_results: PgBackend, tmp_path: Path
) -> None:
    """Rows from before celery#3025 hold raw pickles: only safe_pickle reads them."""
    canary = tmp_path / "canary"
    hostile = _os_system_pickle(canary)
    rows = {
        "legacy-ok": ("SUCCESS", pickle.dumps({"rows": 3, "tags": {"a"}}, 2)),
        "legacy-fail": ("FAILURE", pickle.dumps(KeyError("unit_price"), 4)),
        "legacy-evil": ("SUCCESS", hostile),
    }
    engine = sa.create_engine(pg_results.sa_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'SET LOCAL search_path TO "{pg_results.schema}"'))
        for task_id, (status, blob) in rows.items():
            conn.execute(
                sa.text(
                    "INSERT INTO celery_taskmeta (id, task_id, status, result, date_done) "
                    "VALUES (nextval('task_id_sequence'), :t, :s, :r, LOCALTIMESTAMP)"
                ),
                {"t": task_id, "s": status, "r": blob},
            )
    engine.dispose()
    # The schema given as Celery's database_table_schemas would be, on a plain URL.
    backend = DatabaseResultBackend(f"db+{pg_results.sa_url}", schema=pg_results.schema)
    try:
        found = backend.get(list(rows))
    finally:
        backend.close()

    assert found["legacy-ok"].encoding == "pickle"
    assert found["legacy-ok"].result == "{'rows': 3, 'tags': {'a'}}"
    assert found["legacy-fail"].exception == "KeyError('unit_price')"
    assert found["legacy-evil"].result == "os.system('touch " + str(canary) + "')"
    assert not canary.exists()


def test_every_stored_failure_is_backfilled_however_many_newer_results_postgres(
    postgres_url: str, redis_server: RedisServer
) -> None:
    with _private_schema(postgres_url, "tw_scan") as (schema, _, url, admin):
        writer = _writer(url, "json")
        writer.conf.database_create_tables_at_setup = True
        failed = _write_old_failures(writer)
        writer.backend.ResultSession().get_bind().dispose()
        # The newer successes in one statement, as Celery would have stored them.
        with admin.begin() as conn:
            conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
            conn.execute(sa.text(
                "INSERT INTO celery_taskmeta (id, task_id, status, result, date_done) "
                "SELECT nextval('task_id_sequence'), 'newer-ok-' || n, 'SUCCESS', "
                "convert_to(n::text, 'UTF8'), LOCALTIMESTAMP + make_interval(secs => n) "
                "FROM generate_series(1, :count) AS n"), {"count": NEWER_SUCCESSES})
        monitor = _monitor_backfill_finds(redis_server.url(7), url, failed)
        monitor.stop()


def test_database_backend_is_read_only(pg_results: PgBackend) -> None:
    backend = DatabaseResultBackend(pg_results.url)
    try:
        with backend._engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.execute(sa.text("CREATE TABLE taskwatch_must_not_exist (x int)"))
    finally:
        backend.close()


def test_an_unreachable_database_fails_fast_with_a_masked_line() -> None:
    url = f"db+postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/test"
    backend = result_backend(url, timeout=5.0)
    started = time.monotonic()
    with pytest.raises(ResultBackendError) as caught:
        backend.recent(5)
    assert time.monotonic() - started < backend.timeout  # refused at once, not retried
    message = str(caught.value)
    assert "s3cret-pw" not in message and ":****@" in message and "\n" not in message


def test_sqlite_database_backend_written_by_celery(tmp_path: Path) -> None:
    """Celery's own database backend creates and fills the table; we read it read-only."""
    path = tmp_path / "results.sqlite"
    url = f"db+sqlite:///{path}"
    writer = _writer(url, "json")
    writer.conf.database_create_tables_at_setup = True
    try:
        writer.backend.store_result("s-ok", {"rows": 3}, "SUCCESS")
        writer.backend.mark_as_failure("s-fail", KeyError("unit_price"), traceback="Traceback …\n")
    finally:
        writer.backend.ResultSession().get_bind().dispose()
    before = path.read_bytes()

    backend = result_backend(url)
    try:
        found = backend.get(["s-ok", "s-fail", "s-missing"])
        newest = backend.recent(5)
    finally:
        backend.close()

    assert set(found) == {"s-ok", "s-fail"}
    assert found["s-ok"].result == "{'rows': 3}"
    assert found["s-fail"].exception == "KeyError('unit_price')"
    assert found["s-fail"].traceback == "Traceback …\n"
    assert [r.task_id for r in newest] == ["s-fail", "s-ok"]
    assert newest[0].date_done is not None and abs(time.time() - newest[0].date_done) < 60
    assert path.read_bytes() == before  # opened read-only
