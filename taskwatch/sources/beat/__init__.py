"""Celery beat's real state as schedule sources: the app, the schedule file, RedBeat, django-celery-beat.

Each source reads one place beat's entries live and hands over
:class:`~taskwatch.records.ScheduledJob` records (``source="beat"``); the
monitor merges them by name. :func:`beat_sources` decides from the settings
and the app's configuration which ones apply, checking without I/O what can
be checked (a ``--beat`` value, a ``--beat-db`` URL, a Redis URL), and
returns builders that connect on first use.

* the ``-A`` app's ``beat_schedule`` (:mod:`.app`): what beat is told to run;
* ``--beat-schedule FILE`` (:mod:`.file`): the default scheduler's shelve,
  read from a copy through the restricted unpickler;
* ``--beat redbeat`` or an app whose ``beat_scheduler`` is RedBeat's
  (:mod:`.redbeat`): RedBeat's hashes and zset in Redis;
* ``--beat-db URL`` (:mod:`.django_db`): django-celery-beat's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from taskwatch.sources.errors import SourceError
from taskwatch.sources.protocols import ScheduleSource
from taskwatch.text import clean

#: The values ``--beat`` takes.
BEAT_KINDS = ("redbeat",)


class BeatSettingError(SourceError):
    """A beat setting that cannot work; one line."""


def _conf_get(conf: Any, key: str) -> Any:
    from taskwatch.sources.beat.schedules import _get

    return _get(conf, key)


def uses_redbeat(conf: Any) -> bool:
    """True when the app's ``beat_scheduler`` names RedBeat's scheduler."""
    scheduler = _conf_get(conf, "beat_scheduler")
    if isinstance(scheduler, type):
        scheduler = f"{scheduler.__module__}.{scheduler.__qualname__}"
    return isinstance(scheduler, str) and scheduler.strip().lower().startswith("redbeat")


def beat_sources(settings: Any, conf: Any, broker_url: str | None) -> list[Callable[[], ScheduleSource]]:
    """Builders of every beat source ``settings`` and the app's ``conf`` call for.

    Raises :class:`~taskwatch.sources.errors.SourceError` (one line, masked)
    for a setting that cannot work: an unknown ``beat`` kind, a ``beat_db``
    URL that is not PostgreSQL or SQLite, a RedBeat Redis URL that does not parse.
    """
    builders: list[Callable[[], ScheduleSource]] = []
    schedule = _conf_get(conf, "beat_schedule")
    if isinstance(schedule, Mapping) and schedule:
        from taskwatch.sources.beat.app import AppBeatSource

        builders.append(lambda: AppBeatSource(conf))

    path = getattr(settings, "beat_schedule", None)
    if path:
        from taskwatch.sources.beat.file import BeatFileSource

        builders.append(lambda: BeatFileSource(path, conf))

    kind = getattr(settings, "beat", None)
    if kind is not None:
        kind = str(kind).strip().lower()
        if kind not in BEAT_KINDS:
            raise BeatSettingError(clean(
                f"unknown beat scheduler {getattr(settings, 'beat', '')!r}: "
                f"expected {' or '.join(BEAT_KINDS)}", 200, single_line=True))
    if kind == "redbeat" or (kind is None and uses_redbeat(conf)):
        builders.append(_redbeat(conf, broker_url))

    db = getattr(settings, "beat_db", None)
    if db:
        from taskwatch.sources.beat.django_db import DjangoBeatSource, parse_db_url

        parse_db_url(db)
        builders.append(lambda: DjangoBeatSource(db, conf))
    return builders


def _redbeat(conf: Any, broker_url: str | None) -> Callable[[], ScheduleSource]:
    from taskwatch.sources.beat.redbeat import DEFAULT_PREFIX, RedBeatSource
    from taskwatch.sources.redis_url import RedisURLError, parse_redis_url

    url = _conf_get(conf, "redbeat_redis_url") or broker_url
    if not isinstance(url, str) or not url:
        raise BeatSettingError("RedBeat needs a Redis URL: redbeat_redis_url or the broker URL")
    options = _conf_get(conf, "redbeat_redis_options")
    try:
        parsed = parse_redis_url(url, options if isinstance(options, Mapping) else None,
                                 what="RedBeat Redis URL")
    except RedisURLError as exc:
        raise BeatSettingError(str(exc)) from None
    prefix = _conf_get(conf, "redbeat_key_prefix")
    prefix = prefix if isinstance(prefix, str) and prefix else DEFAULT_PREFIX
    return lambda: RedBeatSource(parsed, prefix, conf)
