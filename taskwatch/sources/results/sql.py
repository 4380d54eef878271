"""Celery's database result backend (``db+…``), read-only: the ``celery_taskmeta`` table."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskwatch.records import ResultPage, StoredResult
from taskwatch.reprs import VALUE_LIMIT
from taskwatch.sources.errors import describe
from taskwatch.sources.results.common import (
    EXCEPTION_STATES,
    FIELD_LIMIT,
    MAX_VALUE_BYTES,
    SUPPORTED,
    TRACEBACK_LIMIT,
    ResultBackendError,
    UnsupportedBackend,
)
from taskwatch.sources.results.decode import (
    build,
    decode,
)
from taskwatch.sources.sql_engine import (
    PG_DRIVERS,
    available_pg_driver,
    postgres_engine,
    sqlite_engine,
)
from taskwatch.text import clean, mask_url, url_problem

if TYPE_CHECKING:
    import sqlalchemy as sa

_DIALECTS = ("postgresql", "sqlite")


class DatabaseResultBackend:
    """Reads Celery's ``celery_taskmeta`` table through SQLAlchemy; only SELECTs.

    The URL is Celery's ``db+<sqlalchemy url>``. PostgreSQL sessions are
    opened with ``default_transaction_read_only=on`` and a statement
    timeout; SQLite files are opened read-only. The pickled and serialized
    columns are read as raw bytes (never through SQLAlchemy's PickleType)
    and decoded like Redis values. ``table``/``schema`` follow Celery's
    ``database_table_names``/``database_table_schemas``.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        *,
        table: str = "celery_taskmeta",
        schema: str | None = None,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise ResultBackendError(
                "reading a db+ result backend needs SQLAlchemy (pip install sqlalchemy), "
                "as Celery's database backend does"
            ) from None
        self.url = url
        self.timeout = timeout
        self.table = table
        self.schema = schema
        self.max_value_bytes = max_value_bytes
        self._sa = sa
        self._lock = threading.Lock()
        self._columns: set[str] | None = None
        self._engine = self._make_engine(url[3:] if url.lower().startswith("db+") else url)

    def _make_engine(self, sa_url: str) -> sa.engine.Engine:
        sa = self._sa
        problem = url_problem(sa_url)
        if problem:
            raise UnsupportedBackend(f"bad result backend URL {mask_url(self.url)!r}: {problem}")
        try:
            parsed = sa.engine.make_url(sa_url)
        except Exception as exc:  # noqa: BLE001 - ArgumentError, ValueError
            raise UnsupportedBackend(
                f"bad result backend URL {mask_url(self.url)!r}: {describe(exc)}"
            ) from None
        dialect = parsed.get_backend_name()
        if dialect == "postgresql" and "+" not in parsed.drivername:
            parsed = available_pg_driver(parsed)
        driver = parsed.get_driver_name()
        if dialect not in _DIALECTS or dialect == "postgresql" and driver not in PG_DRIVERS:
            raise UnsupportedBackend(
                f"cannot read result backend {mask_url(self.url)!r}: "
                f"{parsed.drivername} is not supported (supported: {SUPPORTED}; "
                f"PostgreSQL through {' or '.join(PG_DRIVERS)})"
            )
        if dialect == "sqlite":
            return self._sqlite_engine(parsed)
        try:
            return postgres_engine(sa, parsed, self.timeout)
        except Exception as exc:  # noqa: BLE001 - a missing DB-API driver, bad options
            raise ResultBackendError(
                f"cannot use result backend {mask_url(self.url)}: {describe(exc)}"
            ) from None

    def _sqlite_engine(self, parsed: sa.engine.URL) -> sa.engine.Engine:
        database = parsed.database
        if not database or database == ":memory:":
            raise UnsupportedBackend(
                f"cannot read result backend {mask_url(self.url)!r}: no database file"
            )
        return sqlite_engine(self._sa, database, self.timeout)

    def close(self) -> None:
        self._engine.dispose()

    def _error(self, exc: BaseException) -> ResultBackendError:
        orig = getattr(exc, "orig", None)
        return ResultBackendError(
            f"cannot read result backend {mask_url(self.url)}: {describe(orig or exc)}"
        )

    # -- queries -------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, StoredResult]:
        """The stored rows of ``ids``; ids without a row are absent."""
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        found: dict[str, StoredResult] = {}
        if not wanted:
            return found

        def query(table: Any, select: Any) -> Iterator[Any]:
            for start in range(0, len(wanted), 500):
                yield select.where(table.c.task_id.in_(wanted[start : start + 500]))

        asked = set(wanted)
        for result in self._run(query):
            if result.task_id in asked:
                found[result.task_id] = result
        return found

    def recent(self, limit: int, *, states: set[str] | None = None) -> list[StoredResult]:
        """The ``limit`` rows with the newest ``date_done`` (in ``states``), newest first."""
        if limit <= 0:
            return []

        def query(table: Any, select: Any) -> Iterator[Any]:
            if states is not None:
                select = select.where(table.c.status.in_(sorted(s.upper() for s in states)))
            order = [table.c.date_done.desc().nulls_last()]
            if "id" in (self._columns or ()):
                order.append(table.c.id.desc())
            yield select.order_by(*order).limit(limit)

        return self._run(query)

    def scan(self, states: set[str], *, page: int = 1000) -> Iterator[ResultPage]:
        """Every row in ``states``, newest first, ``page`` rows a query.

        ``WHERE status IN (...)`` walked backwards along the primary key
        (``id < last seen``), so each query is one index range however many
        rows there are, and within the statement timeout. A table without
        an ``id`` column is read in one query of at most ``page`` rows.
        """
        wanted = sorted({s.upper() for s in states})
        below: list[int | None] = [None]

        def query(table: Any, select: Any) -> Iterator[Any]:
            select = select.where(table.c.status.in_(wanted))
            if "id" not in (self._columns or ()):
                yield select.order_by(table.c.date_done.desc().nulls_last()).limit(page)
                return
            select = select.add_columns(table.c.id.label("row_id"))
            if below[0] is not None:
                select = select.where(table.c.id < below[0])
            yield select.order_by(table.c.id.desc()).limit(page)

        def remember(row: Mapping[str, Any]) -> None:
            below[0] = row.get("row_id")  # the smallest so far: ids come down

        while True:
            rows = self._run(query, on_row=remember)
            last = len(rows) < page or "id" not in (self._columns or ())
            yield ResultPage(tuple(rows), len(rows), last)
            if last:
                return

    def _run(
        self,
        queries: Callable[[Any, Any], Iterator[Any]],
        on_row: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> list[StoredResult]:
        sa = self._sa
        results: list[StoredResult] = []
        with self._lock:
            try:
                with self._engine.connect() as conn:
                    table, select = self._select(conn)
                    for statement in queries(table, select):
                        for row in conn.execute(statement).mappings():
                            results.append(self._from_row(row))
                            if on_row is not None:
                                on_row(row)
                    conn.rollback()
            except ResultBackendError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc) from None
            except OSError as exc:
                raise self._error(exc) from None
        return results

    def _select(self, conn: Any) -> tuple[Any, Any]:
        """The table and a SELECT of its columns, values cut at the read limit."""
        sa = self._sa
        if self._columns is None:
            inspector = sa.inspect(conn)
            if not inspector.has_table(self.table, schema=self.schema):
                where = f"{self.schema}.{self.table}" if self.schema else self.table
                raise ResultBackendError(
                    f"result backend {mask_url(self.url)} has no table {where} "
                    "(no task has stored a result there yet?)"
                )
            self._columns = {
                c["name"] for c in inspector.get_columns(self.table, schema=self.schema)
            }
        present = self._columns
        table = sa.table(
            self.table, *(sa.column(name) for name in sorted(present)), schema=self.schema
        )
        cap = self.max_value_bytes
        columns: list[Any] = [table.c.task_id, table.c.status]
        for name in ("result", "children", "args", "kwargs"):
            if name in present:
                column = table.c[name]
                columns += [
                    sa.func.substr(column, 1, cap).label(name),
                    sa.func.length(column).label(f"{name}_size"),
                ]
        if "traceback" in present:
            columns.append(
                sa.func.substr(table.c.traceback, 1, TRACEBACK_LIMIT * 4).label("traceback")
            )
        if "date_done" in present:
            if self._engine.dialect.name == "postgresql":
                # A naive timestamp column: Celery wrote UTC through the session
                # time zone, so read it back through the same one.
                epoch = sa.extract("epoch", sa.cast(table.c.date_done, sa.DateTime(timezone=True)))
            else:
                epoch = table.c.date_done
            columns.append(epoch.label("date_done"))
        for name in ("name", "worker", "retries", "queue"):
            if name in present:
                columns.append(table.c[name])
        return table, sa.select(*columns)

    def _from_row(self, row: Mapping[str, Any]) -> StoredResult:
        task_id = str(row["task_id"] or "")
        meta: dict[str, Any] = {
            "status": row["status"],
            "traceback": row.get("traceback"),
            "date_done": row.get("date_done"),
            "name": row.get("name"),
            "worker": row.get("worker"),
            "retries": row.get("retries"),
            "queue": row.get("queue"),
        }
        encoding = "json"
        problems: list[str] = []
        for name in ("result", "children", "args", "kwargs"):
            if name not in row:
                continue
            raw = row[name]
            if raw is None:
                meta[name] = None
                continue
            raw = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8")
            decoded = decode(raw, row.get(f"{name}_size"))
            if name == "result":
                encoding = decoded.encoding
            if decoded.ok:
                meta[name] = decoded.value
            else:
                problems.append(f"{name}: {decoded.problem}")
        result = build(task_id, meta, encoding, None)
        if not problems:
            return result
        changes = {"problem": clean("; ".join(problems), FIELD_LIMIT, single_line=True)}
        if "result" in row and row["result"] is not None and "result" not in meta:
            changes["result"] = clean(f"<{problems[0]}>", VALUE_LIMIT, single_line=True)
            if result.status in EXCEPTION_STATES:
                changes["exception"] = changes["result"]
        return dataclasses.replace(result, **changes)

