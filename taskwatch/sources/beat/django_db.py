"""django-celery-beat's tables, read with SQLAlchemy Core, without Django, read-only.

``django_celery_beat_periodictask`` holds one row per entry (task, JSON
args/kwargs, queue, enabled, last_run_at, total_run_count) pointing at one
of ``..._intervalschedule`` (every, period), ``..._crontabschedule`` (the
five fields as text and a time zone name), ``..._solarschedule`` (event,
latitude, longitude) or ``..._clockedschedule`` (clocked_time, a one-off).
One LEFT JOIN query reads them all; rows become plain specs computed by
Celery's schedule classes (:mod:`.schedules`), each crontab in its row's zone
as django-celery-beat's ``TzAwareCrontab`` does.

Connections are read-only as for the SQL result backend
(:mod:`taskwatch.sources.results.sql`): PostgreSQL sessions with
``default_transaction_read_only=on`` and a statement timeout, SQLite files
opened with ``mode=ro``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from taskwatch.sources.beat.schedules import (
    BeatEntry,
    BeatSource,
    Clocked,
    Spec,
    SpecError,
    crontab_spec,
    interval,
    solar_spec,
    zone,
)
from taskwatch.sources.errors import SourceError, describe
from taskwatch.text import clean, mask_url, url_problem

if TYPE_CHECKING:
    import sqlalchemy as sa

PREFIX = "django_celery_beat_"
MAX_ROWS = 10_000
_PERIODS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0,
            "microseconds": 1e-6}
_PG_DRIVERS = ("psycopg2", "psycopg")


class DjangoBeatError(SourceError):
    """django-celery-beat's database cannot be read; one masked line."""


def parse_db_url(url: str) -> sa.engine.URL:
    """The SQLAlchemy URL of ``--beat-db`` (PostgreSQL or SQLite); DjangoBeatError otherwise.

    No I/O: only the URL and the installed drivers are looked at.
    """
    try:
        import sqlalchemy as sa
    except ImportError:
        raise DjangoBeatError("reading django-celery-beat's tables needs SQLAlchemy "
                              "(pip install sqlalchemy)") from None
    problem = url_problem(url)
    if problem:
        raise DjangoBeatError(f"bad beat database URL {mask_url(url)!r}: {problem}")
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - ArgumentError, ValueError
        raise DjangoBeatError(f"bad beat database URL {mask_url(url)!r}: {describe(exc)}") from None
    dialect = parsed.get_backend_name()
    if dialect == "postgresql" and "+" not in parsed.drivername:
        import importlib.util

        for driver in (parsed.get_driver_name(), *_PG_DRIVERS):
            if driver in _PG_DRIVERS and importlib.util.find_spec(driver) is not None:
                parsed = parsed.set(drivername=f"postgresql+{driver}")
                break
    if dialect not in ("postgresql", "sqlite") or (
        dialect == "postgresql" and parsed.get_driver_name() not in _PG_DRIVERS
    ):
        raise DjangoBeatError(f"cannot read beat database {mask_url(url)!r}: {parsed.drivername} "
                              "is not supported (postgresql through psycopg2 or psycopg, sqlite)")
    if dialect == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise DjangoBeatError(f"cannot read beat database {mask_url(url)!r}: no database file")
    return parsed


def _engine(parsed: sa.engine.URL, timeout: float) -> sa.engine.Engine:
    """Read-only, every timeout set: the same engines as the result backend reader's."""
    import sqlalchemy as sa

    from taskwatch.sources.sql_engine import postgres_engine, sqlite_engine

    if parsed.get_backend_name() == "sqlite":
        return sqlite_engine(sa, parsed.database or "", timeout)
    return postgres_engine(sa, parsed, timeout)


def _query() -> Any:
    import sqlalchemy as sa

    def table(name: str, *columns: str) -> Any:
        return sa.table(PREFIX + name, *(sa.column(c) for c in columns))

    task = table("periodictask", "name", "task", "args", "kwargs", "queue", "exchange",
                 "routing_key", "enabled", "last_run_at", "total_run_count", "one_off",
                 "interval_id", "crontab_id", "solar_id", "clocked_id")
    interval_t = table("intervalschedule", "id", "every", "period")
    cron = table("crontabschedule", "id", "minute", "hour", "day_of_week", "day_of_month",
                 "month_of_year", "timezone")
    solar_t = table("solarschedule", "id", "event", "latitude", "longitude")
    clocked = table("clockedschedule", "id", "clocked_time")
    joined = (
        task.outerjoin(interval_t, task.c.interval_id == interval_t.c.id)
        .outerjoin(cron, task.c.crontab_id == cron.c.id)
        .outerjoin(solar_t, task.c.solar_id == solar_t.c.id)
        .outerjoin(clocked, task.c.clocked_id == clocked.c.id)
    )
    return (
        sa.select(
            task.c.name, task.c.task, task.c.args, task.c.kwargs, task.c.queue,
            task.c.exchange, task.c.routing_key, task.c.enabled, task.c.last_run_at,
            task.c.total_run_count, task.c.one_off,
            task.c.interval_id, interval_t.c.every, interval_t.c.period,
            task.c.crontab_id, cron.c.minute, cron.c.hour, cron.c.day_of_week,
            cron.c.day_of_month, cron.c.month_of_year, cron.c.timezone.label("cron_tz"),
            task.c.solar_id, solar_t.c.event, solar_t.c.latitude, solar_t.c.longitude,
            task.c.clocked_id, clocked.c.clocked_time,
        )
        .select_from(joined)
        .order_by(task.c.name)
        .limit(MAX_ROWS)
    )


def _when(value: Any) -> datetime | None:
    """A DateTimeField: aware from PostgreSQL; text or naive (UTC, ``USE_TZ``) from SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise SpecError(f"a time of type {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(text: Any, what: str, kind: type) -> Any:
    if text in (None, ""):
        return kind()
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        raise SpecError(f"{what} is not JSON") from None
    if not isinstance(value, kind):
        raise SpecError(f"{what} is not a JSON {'list' if kind is list else 'object'}")
    return value


def _spec(row: Any) -> Spec:
    if row.interval_id is not None:
        unit = _PERIODS.get(row.period)
        if unit is None or row.every is None:
            raise SpecError(f"interval of {row.every!r} {clean(str(row.period), 20)}")
        return interval(float(row.every) * unit)
    if row.crontab_id is not None:
        return crontab_spec(row.minute, row.hour, row.day_of_week, row.day_of_month,
                            row.month_of_year, tz=zone(row.cron_tz or "UTC"))
    if row.solar_id is not None:
        return solar_spec(row.event, row.latitude, row.longitude)
    if row.clocked_id is not None:
        at = _when(row.clocked_time)
        if at is None:
            raise SpecError("a clocked schedule without a time")
        return Clocked(at)
    raise SpecError("no schedule (interval, crontab, solar or clocked) is set")


def entry_from_row(row: Any) -> BeatEntry:
    problems: list[str] = []
    spec: Spec | None = None
    try:
        spec = _spec(row)
    except SpecError as exc:
        problems.append(str(exc))
    args: Any = ()
    kwargs: Any = {}
    try:
        args = _json(row.args, "args", list)
        kwargs = _json(row.kwargs, "kwargs", dict)
    except SpecError as exc:
        problems.append(str(exc))
    try:
        last = _when(row.last_run_at)
    except (SpecError, ValueError) as exc:
        problems.append(f"last_run_at: {exc}")
        last = None
    options = {k: v for k, v in (("queue", row.queue), ("exchange", row.exchange),
                                 ("routing_key", row.routing_key)) if v}
    if row.one_off:
        options["one_off"] = True
    count = row.total_run_count
    return BeatEntry(
        name=str(row.name),
        task=str(row.task or ""),
        spec=spec,
        args=args,
        kwargs=kwargs,
        options=options,
        last_run=last,
        total_runs=int(count) if count is not None else None,
        enabled=bool(row.enabled),
        schedule_text="?" if spec is None else "",
        problem="; ".join(problems) or None,
    )


class DjangoBeatSource(BeatSource):
    """django-celery-beat's periodic tasks, read from its database."""


    def __init__(self, url: str, conf: Any = None, timeout: float = 2.0) -> None:
        self.url = url
        self.conf = conf
        self.timeout = timeout
        self.label = clean(f"django-celery-beat {mask_url(url)}", 300, single_line=True)
        self._parsed = parse_db_url(url)
        self._engine_: sa.engine.Engine | None = None

    def entries(self) -> list[BeatEntry]:
        import sqlalchemy as sa

        try:
            if self._engine_ is None:
                self._engine_ = _engine(self._parsed, self.timeout)
            with self._engine_.connect() as conn:
                rows = conn.execute(_query()).fetchall()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            orig = getattr(exc, "orig", None) or exc
            raise DjangoBeatError(clean(f"cannot read {self.label}: {describe(orig)}", 400,
                                        single_line=True)) from None
        return [entry_from_row(row) for row in rows]

    def close(self) -> None:
        if self._engine_ is not None:
            self._engine_.dispose()
            self._engine_ = None
