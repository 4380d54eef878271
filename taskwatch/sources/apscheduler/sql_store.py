"""``SQLAlchemyJobStore``, read-only: ``SELECT id, next_run_time, job_state``.

The table (``apscheduler_jobs`` unless ``tablename=``) holds one row a job:
``id``, ``next_run_time`` (UTC epoch as a float, NULL when paused; the
scheduler finds due jobs by it, so it is the next run that counts) and
``job_state`` (the pickled state). The columns are read with their raw
types, never through SQLAlchemy's ``PickleType`` (which would
``pickle.loads`` them), and each row is decoded by :mod:`.decode`.

Sessions are read-only (:mod:`taskwatch.sources.sql_engine`): PostgreSQL
with ``default_transaction_read_only`` and a statement timeout, MySQL and
MariaDB with ``SET SESSION TRANSACTION READ ONLY`` and read timeouts,
SQLite files opened ``mode=ro``. A table without rows is an empty store; a
missing table is :class:`~taskwatch.sources.apscheduler.MissingJobTable`:
more often a wrong URL or table name than a scheduler that never started,
so it is said, not shown as "no jobs".
"""

from __future__ import annotations

import threading
from typing import Any

from taskwatch.records import ScheduledJob
from taskwatch.sources.apscheduler import JobStoreError, MissingJobTable, StoreReader
from taskwatch.sources.apscheduler.decode import JobDecoder, sort_jobs
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import describe
from taskwatch.sources.sql_engine import (
    MYSQL_DRIVERS,
    PG_DRIVERS,
    available_mysql_driver,
    available_pg_driver,
    mysql_engine,
    postgres_engine,
    sqlite_engine,
)
from taskwatch.text import clean

__all__ = ["SQLStoreReader"]

SUPPORTED = "PostgreSQL (psycopg2, psycopg), MySQL/MariaDB (mysqlclient, PyMySQL), SQLite"


class SQLStoreReader(StoreReader):
    """A :class:`~taskwatch.sources.protocols.ScheduleSource` over one ``SQLAlchemyJobStore`` table."""


    def __init__(self, location: StoreLocation, *, timeout: float = 2.0) -> None:
        if location.kind != "sql" or not location.sql_url:
            raise JobStoreError(f"{location.label} is not a SQL job store")
        try:
            import sqlalchemy as sa
        except ImportError:
            raise JobStoreError(
                "reading a SQLAlchemyJobStore needs SQLAlchemy (pip install sqlalchemy), "
                "as the store itself does"
            ) from None
        self.location = location
        self.label = location.label
        self.timeout = timeout
        self._sa = sa
        self._lock = threading.Lock()
        self._decoder = JobDecoder(self.label)
        self._engine = self._make_engine(location.sql_url)
        table = sa.table(location.table, sa.column("id"), sa.column("next_run_time"),
                         sa.column("job_state"), schema=location.schema)
        # Untyped columns: the driver's raw values (bytes, float), never PickleType.
        self._select = sa.select(table.c.id, table.c.next_run_time, table.c.job_state)

    @property
    def decoded(self) -> int:
        """How many rows were really decoded (not answered from the cache)."""
        return self._decoder.decoded

    def _make_engine(self, sql_url: str) -> Any:
        sa = self._sa
        try:
            parsed = sa.engine.make_url(sql_url)
        except Exception as exc:  # noqa: BLE001 - ArgumentError, ValueError
            raise JobStoreError(f"bad job store URL {self.label!r}: {describe(exc)}") from None
        dialect = parsed.get_backend_name()
        try:
            if dialect == "sqlite":
                if not parsed.database or parsed.database == ":memory:":
                    raise JobStoreError(f"cannot read job store {self.label!r}: no database file")
                return sqlite_engine(sa, parsed.database, self.timeout)
            if dialect == "postgresql":
                if "+" not in parsed.drivername:
                    parsed = available_pg_driver(parsed)
                if parsed.get_driver_name() in PG_DRIVERS:
                    return postgres_engine(sa, parsed, self.timeout)
            if dialect in ("mysql", "mariadb"):
                if "+" not in parsed.drivername:
                    parsed = available_mysql_driver(parsed)
                if parsed.get_driver_name() in MYSQL_DRIVERS:
                    return mysql_engine(sa, parsed, self.timeout)
        except JobStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a missing DB-API driver, bad options
            raise JobStoreError(f"cannot use job store {self.label}: {describe(exc)}") from None
        raise JobStoreError(
            f"cannot read job store {self.label!r}: {parsed.drivername} is not supported "
            f"(supported: {SUPPORTED}; is the driver installed?)"
        )

    def _where(self) -> str:
        schema = self.location.schema
        return f"{schema}.{self.location.table}" if schema else self.location.table

    def jobs(self) -> list[ScheduledJob]:
        """Every job in the table, by next run (paused last); only SELECTs, read-only session."""
        sa = self._sa
        found: list[ScheduledJob] = []
        with self._lock:
            try:
                with self._engine.connect() as conn:
                    try:
                        rows = conn.execute(self._select).all()
                    except sa.exc.DBAPIError as exc:
                        if getattr(exc, "connection_invalidated", False):
                            raise
                        conn.rollback()
                        if not sa.inspect(conn).has_table(self.location.table,
                                                          schema=self.location.schema):
                            raise MissingJobTable(clean(
                                f"job store {self.label} has no table {self._where()} "
                                "(wrong tablename=, or no scheduler has started with this store)",
                                400, single_line=True)) from None
                        raise
                    conn.rollback()
            except JobStoreError:
                raise
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                orig = getattr(exc, "orig", None)
                raise JobStoreError(clean(
                    f"cannot read job store {self.label}: {describe(orig or exc)}",
                    400, single_line=True)) from None
            for job_id, next_run, blob in rows:
                found.append(self._decoder.decode(_text(job_id), _bytes(blob),
                                                  next_run=_number(next_run)))
        return sort_jobs(found)

    def close(self) -> None:
        self._engine.dispose()
        self._decoder.clear()


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _bytes(value: Any) -> Any:
    """``job_state`` as bytes (memoryview from psycopg2, str from a hand-made SQLite row)."""
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    return value


def _number(value: Any) -> Any:
    """``next_run_time`` as stored: a float, None (paused), or, from a foreign
    writer, anything else, which :func:`.decode.decode_job` reports."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    return value
