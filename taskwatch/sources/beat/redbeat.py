"""celery-redbeat's state in Redis, read only (``redbeat/schedulers.py``, 2.x).

RedBeat keeps one hash ``<prefix><name>`` per entry with two JSON fields,
``definition`` (name, task, args, kwargs, options, schedule, enabled) and
``meta`` (last_run_at, total_run_count), a zset ``<prefix>:schedule`` of
entry keys scored by when each is due (epoch seconds), and a set
``<prefix>:statics`` of the names that came from ``beat_schedule``. The
prefix is ``redbeat_key_prefix`` (default ``redbeat:``).

Its JSON marks schedules and datetimes with ``__type__`` (``redbeat/decoder.py``):
``datetime`` (fields plus ``timezone``, an IANA name or an offset in
seconds), ``interval`` (``every`` seconds, ``relative``), ``crontab`` (the
five fields as given), ``rrule`` and ``weekday`` (RedBeat's own rrule
schedule). RedBeat's decoder builds Celery objects while parsing; here they
become plain specs (:mod:`.schedules`), never objects from user code. An
rrule entry is shown with RedBeat's own next run (the zset score) and a
problem saying it is not computed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from taskwatch.sources.beat.schedules import (
    BeatEntry,
    BeatSource,
    Spec,
    SpecError,
    crontab_spec,
    interval,
    zone,
)
from taskwatch.sources.errors import SourceError, describe
from taskwatch.sources.redis_url import RedisURL, connect
from taskwatch.text import clean

DEFAULT_PREFIX = "redbeat:"
MAX_ENTRIES = 10_000
MAX_FIELD_BYTES = 1 << 20
_CHUNK = 500


class RedBeatError(SourceError):
    """RedBeat's Redis cannot be read; one masked line."""


class Unsupported:
    """A ``__type__`` value taskwatch does not compute (RedBeat's rrule, weekday, unknown)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


def _hook(d: dict[str, Any]) -> Any:
    kind = d.get("__type__")
    if kind is None:
        return d
    if kind == "datetime":
        return _datetime(d)
    if kind == "interval":
        return interval(d.get("every"), d.get("relative", False))
    if kind == "crontab":
        fields = {k: d.get(k, "*") for k in
                  ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")}
        return crontab_spec(**fields)
    return Unsupported(clean(str(kind), 40, single_line=True))


def _datetime(d: Mapping[str, Any]) -> datetime:
    fields = {k: d.get(k, 0) for k in ("year", "month", "day", "hour", "minute", "second",
                                       "microsecond")}
    if not all(type(v) is int for v in fields.values()):
        raise SpecError("a datetime with non-integer fields")
    zone_value = d.get("timezone", "UTC")
    if isinstance(zone_value, int | float) and not isinstance(zone_value, bool):
        if abs(zone_value) >= 86400:
            raise SpecError(f"utc offset of {zone_value} s")
        tz: Any = timezone(timedelta(seconds=zone_value))
    else:
        tz = zone(zone_value)
    try:
        return datetime(tzinfo=tz, **fields)
    except ValueError as exc:
        raise SpecError(f"bad datetime: {exc}") from None


def decode(raw: bytes | None, what: str) -> Any:
    """One JSON field, ``__type__`` markers turned into plain values; SpecError when unreadable."""
    if raw is None:
        return None
    if len(raw) > MAX_FIELD_BYTES:
        raise SpecError(f"{what} is {len(raw)} bytes")
    try:
        return json.loads(raw, object_hook=_hook)
    except SpecError as exc:
        raise SpecError(f"{what}: {exc}") from None
    except (ValueError, RecursionError, TypeError) as exc:
        raise SpecError(f"{what} is not RedBeat's JSON: {clean(str(exc), 120, single_line=True)}") from None


def entry_from_hash(name: str, definition: bytes | None, meta: bytes | None,
                    score: float | None) -> BeatEntry:
    """One RedBeat entry from its hash fields and zset score."""
    try:
        body = decode(definition, "definition")
    except SpecError as exc:
        return BeatEntry(name=name, stored_next=score, problem=str(exc))
    if not isinstance(body, dict):
        return BeatEntry(name=name, stored_next=score,
                         problem="no definition" if body is None else "definition is not an object")
    problems: list[str] = []
    try:
        state = decode(meta, "meta") or {}
    except SpecError as exc:
        problems.append(str(exc))
        state = {}
    if not isinstance(state, dict):
        problems.append("meta is not an object")
        state = {}
    last = state.get("last_run_at")
    if last is not None and not isinstance(last, datetime):
        problems.append("last_run_at is not a datetime")
        last = None
    count = state.get("total_run_count")
    if count is not None and not (type(count) is int and count >= 0):
        problems.append("total_run_count is not a count")
        count = None
    schedule = body.get("schedule")
    spec: Spec | None = None
    text = ""
    if isinstance(schedule, Unsupported):
        text = f"{schedule.kind} (RedBeat)"
        problems.append(f"RedBeat's {schedule.kind} schedules are not computed here; "
                        "next run as RedBeat stored it")
    elif isinstance(schedule, dict | list | str | int | float | type(None)):
        problems.append("schedule is not an interval or crontab")
        text = "?"
    else:
        spec = schedule
    task = body.get("task")
    enabled = body.get("enabled", True)
    return BeatEntry(
        name=body.get("name") if isinstance(body.get("name"), str) else name,
        task=task if isinstance(task, str) else "",
        spec=spec,
        args=body.get("args") or (),
        kwargs=body.get("kwargs") or {},
        options=body.get("options") or {},
        last_run=last,
        total_runs=count,
        enabled=enabled is not False,
        stored_next=score if score is not None and score >= 0 else None,
        schedule_text=text,
        problem="; ".join(problems) or None,
    )


class RedBeatSource(BeatSource):
    """RedBeat's entries, last runs and due times, read from its Redis."""


    def __init__(self, parsed: RedisURL, prefix: str = DEFAULT_PREFIX, conf: Any = None,
                 timeout: float = 2.0) -> None:
        self.parsed = parsed
        self.prefix = prefix
        self.conf = conf
        self.timeout = timeout
        self.label = clean(f"redbeat {parsed.masked}", 300, single_line=True)
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = connect(self.parsed, timeout=self.timeout, client_name="taskwatch-beat")
        return self._client

    def entries(self) -> list[BeatEntry]:
        import redis

        prefix = self.prefix.encode()
        try:
            client = self._redis()
            with client.pipeline(transaction=False) as pipe:
                pipe.zrange(prefix + b":schedule", 0, MAX_ENTRIES - 1, withscores=True)
                pipe.srandmember(prefix + b":statics", MAX_ENTRIES)
                scored, statics = pipe.execute()
            scores: dict[bytes, float] = {bytes(k): float(s) for k, s in scored}
            keys = list(scores)
            for name in statics or ():
                key = prefix + bytes(name)
                if key not in scores:
                    keys.append(key)
            rows: list[tuple[bytes, Any, Any]] = []
            for start in range(0, len(keys), _CHUNK):
                with client.pipeline(transaction=False) as pipe:
                    for key in keys[start:start + _CHUNK]:
                        pipe.hmget(key, "definition", "meta")
                    for key, (definition, meta) in zip(keys[start:start + _CHUNK], pipe.execute(),
                                                       strict=True):
                        rows.append((key, definition, meta))
        except (redis.RedisError, OSError) as exc:
            raise RedBeatError(clean(f"cannot read {self.label}: {describe(exc)}", 400,
                                     single_line=True)) from None
        entries = []
        for key, definition, meta in rows:
            name = key[len(prefix):].decode("utf-8", errors="replace")
            if definition is None and meta is None:
                entries.append(BeatEntry(name=name, stored_next=scores.get(key),
                                         problem="in RedBeat's schedule but its hash is gone"))
                continue
            entries.append(entry_from_hash(name, definition, meta, scores.get(key)))
        return entries

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing only
                pass
            self._client = None
