"""Where an APScheduler 3.x job store lives: one ``--jobstore`` URL, parsed once.

Forms (the store classes' own defaults in ``apscheduler/jobstores/*.py``):

* ``redis://[:password@]host[:port]/db`` (and every other form
  :mod:`taskwatch.sources.redis_url` takes): ``RedisJobStore``, the hash
  ``apscheduler.jobs`` and the sorted set ``apscheduler.run_times``; other
  names with ``?jobs_key=…&run_times_key=…``;
* ``postgresql://…``, ``mysql://…``, ``sqlite:///path`` (any SQLAlchemy URL,
  with or without a ``+driver``): ``SQLAlchemyJobStore``, the table
  ``apscheduler_jobs``; another with ``?tablename=…`` (the store's own
  argument name; ``table=`` is taken too), a schema with ``?tableschema=…``;
* ``mongodb://…`` / ``mongodb+srv://…``: ``MongoDBJobStore``, database
  ``apscheduler``, collection ``jobs``; others with ``?database=…&collection=…``.

taskwatch's own options are taken out of the query before the rest goes to
the driver. Errors are one line, password masked (:class:`BadJobStoreURL`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from taskwatch.sources.errors import SourceError
from taskwatch.sources.redis_url import REDIS_SCHEMES, RedisURL, RedisURLError, parse_redis_url
from taskwatch.text import clean, mask_url, url_problem

__all__ = ["BadJobStoreURL", "StoreLocation", "parse_store_url"]

REDIS_JOBS_KEY = "apscheduler.jobs"
REDIS_RUN_TIMES_KEY = "apscheduler.run_times"
SQL_TABLE = "apscheduler_jobs"
MONGO_DATABASE = "apscheduler"
MONGO_COLLECTION = "jobs"

_SQL_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite")
_MONGO_SCHEMES = ("mongodb", "mongodb+srv")


class BadJobStoreURL(SourceError, ValueError):
    """A ``--jobstore`` URL taskwatch cannot read; ``str()`` is one masked line."""


@dataclass(frozen=True)
class StoreLocation:
    """One APScheduler job store: its kind, where it is, and its key or table names."""

    #: "redis", "sql" or "mongo"
    kind: str
    #: the URL as given (may hold a password: never show it, show ``label``)
    url: str = field(repr=False)
    #: the URL as shown: password masked, control characters out
    label: str = ""
    #: Redis: the parsed URL (without taskwatch's options)
    redis: RedisURL | None = field(default=None, repr=False)
    jobs_key: str = REDIS_JOBS_KEY
    run_times_key: str = REDIS_RUN_TIMES_KEY
    #: SQL: the SQLAlchemy URL without taskwatch's options; the table and schema
    sql_url: str | None = field(default=None, repr=False)
    table: str = SQL_TABLE
    schema: str | None = None
    #: MongoDB: the client URL without taskwatch's options; database and collection
    mongo_url: str | None = field(default=None, repr=False)
    database: str = MONGO_DATABASE
    collection: str = MONGO_COLLECTION

    def identity(self) -> tuple[str, ...]:
        """What names this store wherever it is seen from (no credentials): a bridge
        inside the scheduler's process reports the same tuple for the same store."""
        if self.kind == "redis":
            assert self.redis is not None
            target = self.redis.targets[0]
            where = target.unix_socket or f"{_host(target.host)}:{target.port}"
            return ("redis", where, str(target.db), self.jobs_key)
        if self.kind == "sql":
            return sql_identity(self.sql_url or "", self.table, self.schema)
        return ("mongo", _strip_credentials(self.mongo_url or ""), self.database, self.collection)


def _host(host: str | None) -> str:
    return "127.0.0.1" if host in (None, "", "localhost", "::1") else host.lower()


def _strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def sql_identity(sql_url: str, table: str, schema: str | None) -> tuple[str, ...]:
    """A SQL store's identity: dialect, host, port, database (an absolute path for SQLite), table."""
    import os

    parts = urlsplit(sql_url)
    dialect = parts.scheme.split("+", 1)[0].lower()
    dialect = {"postgres": "postgresql", "mariadb": "mysql"}.get(dialect, dialect)
    if dialect == "sqlite":
        path = sql_url.split(":///", 1)[1].split("?", 1)[0] if ":///" in sql_url else ""
        return ("sql", "sqlite", os.path.abspath(path) if path else "", table, schema or "")
    try:
        port = str(parts.port or "")
    except ValueError:
        port = ""
    return ("sql", dialect, _host(parts.hostname), port, parts.path.lstrip("/"), table, schema or "")


def parse_store_url(url: str) -> StoreLocation:
    """Parse a ``--jobstore`` URL; raises :class:`BadJobStoreURL`."""
    label = clean(mask_url(url), 300, single_line=True)

    def bad(reason: str) -> BadJobStoreURL:
        return BadJobStoreURL(clean(f"bad job store URL {label!r}: {reason}", 400, single_line=True))

    if not url or "://" not in url:
        raise bad("expected redis://host:port/db, postgresql://…, mysql://…, sqlite:///file or mongodb://…")
    problem = url_problem(url)
    if problem:
        raise bad(problem)
    scheme = url.split("://", 1)[0].strip().lower()
    base = scheme.split("+", 1)[0]
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise bad(str(exc)) from None
    query = parse_qsl(parts.query, keep_blank_values=True)

    def take(*names: str) -> tuple[str | None, str]:
        """Take taskwatch's options out of the query; return the value and the rest of the URL."""
        nonlocal query
        value = None
        rest = []
        for key, item in query:
            if key in names:
                if not item:
                    raise bad(f"{key}= is empty")
                value = item
            else:
                rest.append((key, item))
        query = rest
        # Not urlunsplit: it turns sqlite:///path into sqlite:/path.
        head = url.split("?", 1)[0].split("#", 1)[0]
        return value, head + (f"?{urlencode(query)}" if query else "")

    if scheme in REDIS_SCHEMES:
        jobs_key, _ = take("jobs_key")
        run_times_key, rest = take("run_times_key")
        if ";" in url:
            raise bad("a job store is one Redis server (no ';' failover list)")
        try:
            parsed = parse_redis_url(rest, what="job store URL")
        except RedisURLError as exc:
            raise BadJobStoreURL(str(exc)) from None
        if parsed.targets[0].sentinels:
            raise bad("sentinel:// job stores are not supported; give the master's redis:// URL")
        return StoreLocation("redis", url, label, redis=parsed,
                             jobs_key=jobs_key or REDIS_JOBS_KEY,
                             run_times_key=run_times_key or REDIS_RUN_TIMES_KEY)
    if base in _SQL_SCHEMES:
        table, _ = take("tablename", "table")
        schema, rest = take("tableschema", "schema")
        if base == "sqlite" and not rest.split("?", 1)[0].split("://", 1)[1].strip("/ "):
            raise bad("expected sqlite:///path/to/jobs.sqlite (a file; an in-memory store cannot be read from outside)")
        return StoreLocation("sql", url, label, sql_url=rest, table=table or SQL_TABLE, schema=schema)
    if scheme in _MONGO_SCHEMES:
        database, _ = take("database")
        collection, rest = take("collection")
        return StoreLocation("mongo", url, label, mongo_url=rest,
                             database=database or MONGO_DATABASE, collection=collection or MONGO_COLLECTION)
    raise bad(f"{scheme}:// is not a job store taskwatch reads (redis://, postgresql://, mysql://, sqlite:///, mongodb://)")
