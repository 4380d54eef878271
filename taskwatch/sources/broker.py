"""Broker connections: checking a URL, connecting with timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskwatch.sources.errors import SourceError, describe, is_auth_failure
from taskwatch.text import mask_url, url_problem

if TYPE_CHECKING:
    from kombu import Connection


class BrokerError(SourceError):
    pass


class BadURL(BrokerError):
    """The URL itself is wrong: unknown scheme, bad port, ..."""


class Unreachable(BrokerError):
    """The URL is fine but the broker did not answer."""


def connection(url: str, timeout: float = 3.0, read_timeout: float | None = None) -> Connection:
    """A kombu connection for ``url`` whose every network step has a timeout
    (``read_timeout``: a reply's, default the larger of ``timeout`` and 5 s).

    Raises :class:`BadURL` for URLs kombu cannot use at all.
    """
    from kombu import Connection

    if not url or "://" not in url:
        raise BadURL(f"bad broker URL {mask_url(url)!r}: expected transport://host, e.g. redis://localhost:6379/0")
    problem = url_problem(url)
    if problem:
        raise BadURL(f"bad broker URL {mask_url(url)!r}: {problem}")
    options = {
        # redis-py
        "socket_connect_timeout": timeout,
        "socket_timeout": max(timeout, 5.0) if read_timeout is None else read_timeout,
        "max_retries": 0,
    }
    try:
        conn = Connection(url, connect_timeout=timeout, transport_options=options)
        conn.transport_cls  # noqa: B018 - resolves the transport, raises for unknown ones
        _ = conn.transport
    except KeyError as exc:
        raise BadURL(f"bad broker URL {mask_url(url)!r}: {describe(exc)}") from None
    except (ValueError, TypeError, ImportError) as exc:
        raise BadURL(f"bad broker URL {mask_url(url)!r}: {describe(exc)}") from None
    return conn


def probe(url: str, timeout: float = 3.0) -> None:
    """Connect to the broker once and hang up; raise a one-line error if it fails.

    A broker that accepts the connection and never answers fails after
    ``timeout`` too (its reply's wait is bounded by it).
    """
    conn = connection(url, timeout, read_timeout=timeout)
    hosts = len([u for u in url.split(";") if u])
    try:
        # One attempt per host of kombu's ``a;b`` failover form, no pause:
        # a dead first host is not an unreachable broker.
        conn.ensure_connection(max_retries=hosts - 1, interval_start=0, interval_step=0, timeout=timeout)
    except (ValueError, TypeError) as exc:
        raise BadURL(f"bad broker URL {mask_url(url)!r}: {describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - kombu wraps transport errors in many types
        if is_auth_failure(exc):  # it answered: a rotated password is not an outage
            raise Unreachable(f"broker {mask_url(url)}: {describe(exc)}") from None
        raise Unreachable(f"cannot reach broker {mask_url(url)}: {describe(exc)}") from None
    finally:
        conn.release()
