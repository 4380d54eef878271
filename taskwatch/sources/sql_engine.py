"""Read-only SQLAlchemy engines, for every source that reads someone else's database.

Celery's database result backend (:mod:`taskwatch.sources.results.sql`) and
APScheduler's SQLAlchemy job store (:mod:`taskwatch.sources.apscheduler.sql_store`)
are tables in the user's database: taskwatch only SELECTs, and the session
itself is made read-only so that a mistake can never write:

* PostgreSQL: ``default_transaction_read_only=on`` and a ``statement_timeout``
  in the connection's options, a connect timeout, TCP keepalives and a TCP
  user timeout (a server that vanishes mid-query is noticed in seconds);
* SQLite: the file opened through a ``mode=ro`` URI (never created, never
  written, its journal never replayed);
* MySQL/MariaDB (PyMySQL or mysqlclient): ``SET SESSION TRANSACTION READ
  ONLY`` as the connection's init command, connect/read/write timeouts.

The callers decide which dialects they accept and word their own errors;
these functions raise what SQLAlchemy or the driver raises.
"""

from __future__ import annotations

import importlib.util
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

PG_DRIVERS = ("psycopg2", "psycopg")
#: SQLAlchemy's names of the MySQL drivers taskwatch knows the timeouts of,
#: and the modules they import.
MYSQL_DRIVERS = {"mysqldb": "MySQLdb", "pymysql": "pymysql"}


def available_pg_driver(parsed: sa.engine.URL) -> sa.engine.URL:
    """``postgresql://`` means psycopg (3) to SQLAlchemy 2.1 and psycopg2 to 2.0:
    use whichever of the two is installed, the default one first."""
    default = parsed.get_driver_name()
    for driver in (default, *PG_DRIVERS):
        if driver in PG_DRIVERS and importlib.util.find_spec(driver) is not None:
            return parsed.set(drivername=f"postgresql+{driver}")
    return parsed


def available_mysql_driver(parsed: sa.engine.URL) -> sa.engine.URL:
    """``mysql://`` means mysqlclient to SQLAlchemy: fall back to PyMySQL when
    only that is installed. ``mariadb://`` is the same server family."""
    default = parsed.get_driver_name()
    for driver in (default, *MYSQL_DRIVERS):
        module = MYSQL_DRIVERS.get(driver)
        if module is not None and importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")
    return parsed


def postgres_engine(sa: Any, parsed: sa.engine.URL, timeout: float) -> sa.engine.Engine:
    """A small pool of read-only PostgreSQL sessions with every timeout set."""
    options = " ".join(
        filter(
            None,
            [
                parsed.query.get("options") if isinstance(parsed.query.get("options"), str) else None,
                f"-c statement_timeout={max(1, int(timeout * 1000))}",
                "-c default_transaction_read_only=on",
            ],
        )
    )
    seconds = max(1, math.ceil(timeout))
    connect_args = {
        # libpq rounds anything under 2 s up to 2 s
        "connect_timeout": max(2, seconds),
        "options": options,
        "application_name": "taskwatch",
        # A server that vanishes mid-query is noticed in seconds, not
        # after the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 1000 + 3000,
    }
    return _small_pool(sa, parsed, connect_args, timeout)


def _small_pool(sa: Any, parsed: sa.engine.URL, connect_args: dict[str, Any], timeout: float) -> sa.engine.Engine:
    """One connection (and one more under load), checked before use, renewed every 5 minutes."""
    return sa.create_engine(parsed, connect_args=connect_args, pool_size=1, max_overflow=1,
                            pool_timeout=timeout, pool_pre_ping=True, pool_recycle=300)


def mysql_engine(sa: Any, parsed: sa.engine.URL, timeout: float) -> sa.engine.Engine:
    """Read-only MySQL/MariaDB sessions (PyMySQL or mysqlclient) with timeouts.

    The read timeout bounds a statement too: neither server has a
    statement timeout both understand (``max_execution_time`` vs
    ``max_statement_time``).
    """
    seconds = max(1, math.ceil(timeout))
    connect_args = {
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
        "init_command": "SET SESSION TRANSACTION READ ONLY",
    }
    return _small_pool(sa, parsed, connect_args, timeout)


def sqlite_engine(sa: Any, database: str, timeout: float) -> sa.engine.Engine:
    """An engine that opens the SQLite file ``database`` read-only, once per use."""
    import sqlite3
    from pathlib import Path

    from sqlalchemy.pool import NullPool

    uri = Path(database).absolute().as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

    return sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)
