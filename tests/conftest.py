"""Shared fixtures: private Redis servers, real demo workers, optional external services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from taskwatch.demo.redis_server import RedisServer
from tests.cluster import TEST_HOST, DemoWorkers, service_reachable, start_worker, wait_for_ping

#: name -> (host, port, URL) of the external services the machine may provide.
EXTERNAL_SERVICES = {
    "rabbitmq": ("127.0.0.1", 5672, "amqp://guest:guest@127.0.0.1:5672//"),
    "postgres": ("127.0.0.1", 5432, "postgresql://postgres@127.0.0.1:5432/test"),
}


#: Fixtures that mean "the machine's RabbitMQ", on one vhost for the session.
RABBITMQ_FIXTURES = frozenset({"rabbitmq_url", "rabbitmq_api"})
RABBITMQ_API = "http://127.0.0.1:15672"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the machine's RabbitMQ share the session's vhost: the
    ``celeryev`` exchange (events one test publishes reach every other test's
    receiver, and test_event_loss counts exactly what its receiver read) and
    the pidbox broadcasts. Under pytest-xdist (``--dist loadgroup``) they all
    run on one worker, one after another; the rest of the suite uses private
    servers."""
    for item in items:
        if RABBITMQ_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("rabbitmq"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole session (never the machine's 6379)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A private redis-server of the test's own, free to kill -9 and restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def demo_workers(redis_server: RedisServer) -> Iterator[DemoWorkers]:
    """``alpha@taskwatch-test`` (celery, emails, monitoring; 2 processes) and
    ``beta@taskwatch-test`` (reports, celery; 1 process) on `redis_server` db 0/1,
    both answering ping."""
    broker_url, backend_url = redis_server.url(0), redis_server.url(1)
    workers = (
        start_worker(
            broker_url, backend_url, f"alpha@{TEST_HOST}", ["celery", "emails", "monitoring"], 2
        ),
        start_worker(broker_url, backend_url, f"beta@{TEST_HOST}", ["reports", "celery"], 1),
    )
    try:
        try:
            wait_for_ping(broker_url, [w.hostname for w in workers], timeout=60)
        except TimeoutError as exc:
            logs = "\n".join(f"--- {w.hostname}\n{w.log_tail()}" for w in workers)
            pytest.fail(f"{exc}\n{logs}")
        yield DemoWorkers(broker_url, backend_url, workers)
    finally:
        for worker in workers:
            worker.stop()


def _required_services() -> set[str]:
    raw = os.environ.get("TASKWATCH_TEST_REQUIRE", "")
    return {name.strip().lower() for name in raw.split(",") if name.strip()}


def _external_service(name: str) -> str:
    host, port, url = EXTERNAL_SERVICES[name]
    if service_reachable(host, port):
        return url
    message = f"{name} is not reachable at {host}:{port}"
    if name in _required_services():
        pytest.fail(f"{message}, and TASKWATCH_TEST_REQUIRE names it")
    pytest.skip(message)


def _management_api_answers() -> bool:
    import httpx

    if not service_reachable("127.0.0.1", 15672):
        return False
    try:
        return httpx.get(f"{RABBITMQ_API}/api/overview", auth=("guest", "guest"),
                         timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The machine's RabbitMQ (guest/guest), or skip (fail if required).

    On a vhost of the session's own when the management API can make one:
    other suites and benchmarks on this machine use the same RabbitMQ, and on
    a shared vhost their events on the ``celeryev`` exchange reach this
    session's receivers (test_event_loss once read 11,000 events it never
    sent). Without the API, the default vhost ``/``."""
    url = _external_service("rabbitmq")
    if not _management_api_answers():
        yield url
        return
    import httpx

    vhost = f"taskwatch-test-{uuid.uuid4().hex[:10]}"
    auth = ("guest", "guest")
    httpx.put(f"{RABBITMQ_API}/api/vhosts/{vhost}", auth=auth, timeout=10).raise_for_status()
    try:
        httpx.put(f"{RABBITMQ_API}/api/permissions/{vhost}/guest", auth=auth, timeout=10,
                  json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        yield f"{url.rstrip('/')}/{vhost}"
    finally:
        httpx.delete(f"{RABBITMQ_API}/api/vhosts/{vhost}", auth=auth, timeout=30)


@pytest.fixture(scope="session")
def rabbitmq_api(rabbitmq_url: str) -> str:
    """The management API (guest/guest on 15672), or skip; fail if
    ``TASKWATCH_TEST_REQUIRE`` names ``rabbitmq-api``."""
    if _management_api_answers():
        return "http://guest:guest@127.0.0.1:15672"
    message = "the RabbitMQ management API is not reachable at 127.0.0.1:15672"
    if "rabbitmq-api" in _required_services():
        pytest.fail(f"{message}, and TASKWATCH_TEST_REQUIRE names it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The machine's PostgreSQL database ``test``, or skip (fail if required)."""
    return _external_service("postgres")
