"""``MongoDBJobStore``, read-only: one ``find`` on the jobs collection.

APScheduler keeps a document a job in ``apscheduler.jobs`` (database and
collection configurable): ``_id`` (the job id), ``next_run_time`` (UTC epoch,
None when paused; what the scheduler queries, so the next run that counts)
and ``job_state`` (the pickled state, BSON binary). taskwatch asks for
those three fields only, with a server-side time limit, and decodes each
state with :mod:`.decode`. A missing collection is an empty store (MongoDB
creates collections on first write).

pymongo is optional (``pip install 'taskwatch[mongo]'``): without it,
opening a ``mongodb://`` store is a one-line error saying so.
"""

from __future__ import annotations

import threading
from typing import Any

from taskwatch.records import ScheduledJob
from taskwatch.sources.apscheduler import JobStoreError, StoreReader
from taskwatch.sources.apscheduler.decode import JobDecoder, sort_jobs
from taskwatch.sources.apscheduler.location import StoreLocation
from taskwatch.sources.errors import describe
from taskwatch.text import clean

__all__ = ["MongoStoreReader"]

PROJECTION = {"_id": 1, "next_run_time": 1, "job_state": 1}


class MongoStoreReader(StoreReader):
    """A :class:`~taskwatch.sources.protocols.ScheduleSource` over one ``MongoDBJobStore``."""


    def __init__(self, location: StoreLocation, *, timeout: float = 2.0) -> None:
        if location.kind != "mongo" or not location.mongo_url:
            raise JobStoreError(f"{location.label} is not a MongoDB job store")
        try:
            import pymongo
        except ImportError:
            raise JobStoreError(
                f"reading the MongoDB job store {location.label} needs pymongo "
                "(pip install 'taskwatch[mongo]')"
            ) from None
        self.location = location
        self.label = location.label
        self.timeout = timeout
        self._pymongo = pymongo
        self._lock = threading.Lock()
        self._decoder = JobDecoder(self.label)
        millis = max(1, int(timeout * 1000))
        try:
            # connect=False: nothing is sent until the first find.
            self._client = pymongo.MongoClient(
                location.mongo_url,
                connect=False,
                appname="taskwatch",
                serverSelectionTimeoutMS=millis,
                connectTimeoutMS=millis,
                socketTimeoutMS=millis,
                retryReads=False,
            )
        except Exception as exc:  # noqa: BLE001 - ConfigurationError, InvalidURI, ValueError
            raise JobStoreError(clean(f"cannot use job store {self.label}: {describe(exc)}",
                                      400, single_line=True)) from None

    @property
    def decoded(self) -> int:
        """How many rows were really decoded (not answered from the cache)."""
        return self._decoder.decoded

    def jobs(self) -> list[ScheduledJob]:
        """Every job in the collection, by next run (paused last); only a find."""
        errors = self._pymongo.errors
        collection = self._client[self.location.database][self.location.collection]
        found: list[ScheduledJob] = []
        with self._lock:
            try:
                cursor = collection.find({}, PROJECTION).max_time_ms(max(1, int(self.timeout * 1000)))
                documents = list(cursor)
            except (errors.PyMongoError, OSError) as exc:
                raise JobStoreError(clean(f"cannot read job store {self.label}: {describe(exc)}",
                                          400, single_line=True)) from None
            for document in documents:
                job_id = document.get("_id")
                found.append(self._decoder.decode(
                    job_id if isinstance(job_id, str) else str(job_id),
                    _bytes(document.get("job_state")),
                    next_run=document.get("next_run_time"),
                ))
        return sort_jobs(found)

    def close(self) -> None:
        self._client.close()
        self._decoder.clear()


def _bytes(value: Any) -> Any:
    """BSON binary is a ``bytes`` subclass: plain bytes for the decoder."""
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else value
