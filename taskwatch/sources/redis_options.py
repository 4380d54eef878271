"""How every redis-py client of taskwatch connects: fail fast, speak RESP2.

One place for the connection options the event receiver, the queue probe,
the result backend reader and the backlog probe share:

* redis-py 8 retries a failed command 3 times with backoff by default, about
  4 s for a refused connection: taskwatch asks again next round anyway, so it
  fails at once instead, and the screen says so.
* redis-py 8 speaks RESP3 (HELLO 3) by default, which Redis before 6 refuses;
  RESP2 reads every server kombu and Celery can use.
* No background health checks: a connection that went stale fails its next
  command, which the callers handle.
"""

from __future__ import annotations

from typing import Any


def fail_fast(timeout: float, read_timeout: float | None = None) -> dict[str, Any]:
    """Connection keyword arguments for ``redis.Redis`` (and ``Sentinel``).

    ``timeout`` bounds connecting; ``read_timeout`` (default: the same)
    bounds a reply that stops half-way.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout if read_timeout is None else read_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "protocol": 2,
    }
