"""APScheduler 3.x job stores, read from outside the scheduler's process.

taskwatch reads a store the way the scheduler keeps it, with read commands
only, and never through APScheduler's own store classes: they import the
user's modules to load a job and *delete* any job they fail to load.

* :mod:`.location` parses a ``--jobstore`` URL once (:class:`StoreLocation`);
* :mod:`.decode` turns one stored row into a
  :class:`~taskwatch.records.ScheduledJob` with the restricted unpickler
  (no user code imported, nothing called; a row it cannot read is a job
  with ``problem`` set), and describes triggers in words;
* :mod:`.redis_store`, :mod:`.sql_store`, :mod:`.mongo_store` read
  ``RedisJobStore``'s hash and sorted set, ``SQLAlchemyJobStore``'s table
  (PostgreSQL, MySQL/MariaDB, SQLite) and ``MongoDBJobStore``'s collection,
  each a :class:`~taskwatch.sources.protocols.ScheduleSource`.

:func:`open_store` picks the reader. Every network call has a timeout; an
unreachable store raises :class:`JobStoreError`, one line, password masked.
Changing jobs is not done here (``control()`` returns None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import SourceError

if TYPE_CHECKING:
    from taskwatch.sources.protocols import ScheduleSource

__all__ = ["JobStoreError", "MissingJobTable", "StoreReader", "open_store"]


class JobStoreError(SourceError):
    """A job store could not be read; ``str()`` is one line, credentials masked."""


class MissingJobTable(JobStoreError):
    """The SQL database answered but has no job table (wrong URL or ``tablename``,
    or a scheduler that has never started with this store)."""


class StoreReader:
    """What the three readers share: they only read (changes and run history
    are :class:`~taskwatch.sources.apscheduler.source.JobStoreSource`'s)."""

    kind = "apscheduler"

    def control(self) -> None:
        return None

    def history(self) -> list:
        return []


def open_store(location: StoreLocation, *, timeout: float = 2.0) -> ScheduleSource:
    """A read-only reader for the store at ``location``; nothing is sent until ``jobs()``.

    Raises :class:`JobStoreError` when the reader cannot even be built
    (pymongo or SQLAlchemy not installed, an unsupported SQL dialect).
    """
    if location.kind == "redis":
        from taskwatch.sources.apscheduler.redis_store import RedisStoreReader

        return RedisStoreReader(location, timeout=timeout)
    if location.kind == "sql":
        from taskwatch.sources.apscheduler.sql_store import SQLStoreReader

        return SQLStoreReader(location, timeout=timeout)
    if location.kind == "mongo":
        from taskwatch.sources.apscheduler.mongo_store import MongoStoreReader

        return MongoStoreReader(location, timeout=timeout)
    raise JobStoreError(f"job store {location.label}: unknown kind {location.kind!r}")
