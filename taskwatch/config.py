"""Settings: command line > environment > TOML file (profile) > defaults.

Pure resolution: callers hand in the CLI values, the environment and the
config file path; nothing here imports Celery, Textual or Rich. A Celery app
named with ``-A`` supplies broker and result backend just below the layer
that named it, and below the environment (see
:meth:`Settings.with_app_defaults`): ``taskwatch -A proj`` uses proj's broker
even when the config file has a default one, while ``-b`` and
``CELERY_BROKER_URL`` still beat it, as they do for ``celery -A``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from taskwatch.text import mask_url, remember_secrets, url_problem

APP_NAME = "taskwatch"
CONFIG_FILENAME = "config.toml"

# Layers, lowest first. The rank decides who wins.
DEFAULT, FILE, ENV, CLI = "default", "file", "env", "cli"
_RANK = {DEFAULT: 0, "app": 0, FILE: 1, ENV: 2, CLI: 3}


class ConfigError(Exception):
    """Bad configuration: the message is one line meant for the user."""


#: The settings that hold URLs (their passwords are secrets), as errors name them.
URL_SETTINGS = {
    "broker_url": "broker URL",
    "result_backend": "result backend URL",
    "jobstores": "job store URL",
    "beat_db": "beat database URL",
    "bridge": "bridge URL",
    "rabbitmq_api": "RabbitMQ API URL",
}


@dataclass(frozen=True, repr=False)
class Settings:
    app: str | None = None
    broker_url: str | None = None
    result_backend: str | None = None
    jobstores: tuple[str, ...] = ()
    #: Celery beat's state: the default scheduler's schedule file, the
    #: scheduler kind ("redbeat"), django-celery-beat's database
    beat_schedule: str | None = None
    beat: str | None = None
    beat_db: str | None = None
    #: a Redis where taskwatch.bridge announces itself (besides the Redis job stores and the broker)
    bridge: str | None = None
    read_only: bool = False
    inspect_timeout: float = 1.0
    refresh_interval: float = 2.0
    max_tasks: int = 100_000
    backfill: int = 500
    #: MB of events the receiver may hold read and not yet applied (Redis);
    #: past it they are dropped and the stretch is a gap
    event_spool_mb: int = 256
    rabbitmq_api: str | None = None
    profile: str | None = None
    config_file: Path | None = None
    # field name -> where its value came from ("cli", "env:CELERY_BROKER_URL", ...)
    origins: Mapping[str, str] = field(default_factory=dict)

    def with_app_defaults(self, broker_url: str | None, result_backend: str | None) -> Settings:
        """Fill broker/backend from the ``-A`` app's config.

        The app's values rank just below the layer that named the app, and
        never above the environment (Celery itself lets ``CELERY_BROKER_URL``
        override an app's config, and its workers do the same): ``-A proj``
        beats the config file's broker, ``CELERY_BROKER_URL`` beats ``-A``'s,
        and an app named in the config file fills only what nothing set.
        """
        app_layer = _layer_of(self.origins.get("app", DEFAULT))
        ceiling = min(_RANK[app_layer], _RANK[ENV])
        changes: dict[str, Any] = {}
        origins = dict(self.origins)
        for name, value in (("broker_url", broker_url), ("result_backend", result_backend)):
            if not value:
                continue
            current = _layer_of(origins.get(name, DEFAULT))
            if getattr(self, name) is None or _RANK[current] < ceiling:
                changes[name] = value
                origins[name] = f"app:{self.app}"
        return replace(self, origins=origins, **changes) if changes else self

    def urls(self) -> list[tuple[str, str]]:
        """``(what, url)`` for every URL set, ``what`` as errors name it ("job store URL")."""
        found = []
        for name, what in URL_SETTINGS.items():
            value = getattr(self, name)
            for url in value if isinstance(value, tuple) else (value,):
                if url:
                    found.append((what, url))
        return found

    def check_urls(self) -> None:
        """Refuse a URL whose password cannot be read unambiguously (one line, nothing of it echoed),
        and have every password of these URLs masked wherever it might appear later."""
        remember_secrets(*(url for _what, url in self.urls()))
        for what, url in self.urls():
            problem = url_problem(url)
            if problem:
                raise ConfigError(f"bad {what} {mask_url(url)!r}: {problem}")

    def __repr__(self) -> str:
        # A crash report (Textual's shows every frame's locals) must not carry a password.
        shown = ", ".join(
            f"{f.name}={_masked(getattr(self, f.name)) if f.name in URL_SETTINGS else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, origin) rows with secrets masked."""
        rows = []
        for name in _KEYS:
            value = getattr(self, name)
            if name in URL_SETTINGS and name != "jobstores":
                shown = mask_url(value) or "-"
            elif name == "jobstores":
                shown = ", ".join(mask_url(v) for v in value) or "-"
            else:
                shown = "-" if value is None else str(value)
            rows.append((name, shown, self.origins.get(name, DEFAULT)))
        return rows


def _masked(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(tuple(mask_url(v) for v in value))
    return repr(mask_url(value) if value else value)


def _layer_of(origin: str) -> str:
    return origin.split(":", 1)[0]


# Setting name -> (type check, conversion from a string)
def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


@dataclass(frozen=True)
class Bounds:
    """What a number option accepts: one rule, one message, wherever the value came from."""

    low: float
    high: float
    whole: bool  # a count (int) rather than seconds (float)
    low_open: bool = False  # ``low`` itself refused (a timeout of 0 s)

    def describe(self) -> str:
        low, high = _plain(self.low), _plain(self.high)
        kind = "a whole number" if self.whole else "seconds"
        if self.low_open:
            return f"expected {kind}, more than {low} and at most {high}"
        return f"expected {kind} from {low} to {high}"

    def convert(self, raw: object) -> float | int:
        """``raw`` (a string, or a TOML number) as a checked number; ValueError otherwise."""
        shown = _shown(raw)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError(f"{self.describe()}, got {shown}")
        try:
            value: float | int = int(str(raw).strip()) if self.whole else float(str(raw).strip())
        except ValueError:
            raise ValueError(f"{self.describe()}, got {shown}") from None
        # NaN compares false both ways, so it fails here; so does inf.
        inside = (self.low < value if self.low_open else self.low <= value) and value <= self.high
        if not inside:
            raise ValueError(f"{self.describe()}, got {shown}")
        return value


def _plain(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _shown(raw: object, limit: int = 40) -> str:
    """A user's value in a message: quoted, cut, one line."""
    text = repr(raw) if isinstance(raw, str) else str(raw)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Every number option: the TUI's and snapshot's settings, and snapshot's --listen.
#: Upper bounds keep every timeout a platform's clocks and sockets accept.
NUMBERS: dict[str, Bounds] = {
    "inspect_timeout": Bounds(0, 300, whole=False, low_open=True),
    "refresh_interval": Bounds(0, 3600, whole=False, low_open=True),
    "max_tasks": Bounds(1, 10_000_000, whole=True),
    "backfill": Bounds(0, 1_000_000, whole=True),
    "event_spool_mb": Bounds(1, 65_536, whole=True),
    "listen": Bounds(0, 86_400, whole=False),
}


def number(name: str, raw: object, where: str) -> float | int:
    """Check one number option (``NUMBERS``); ConfigError names where it came from."""
    try:
        return NUMBERS[name].convert(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid {name}: {exc}") from None


def _to_list(text: str) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,]+", text) if part)


_KEYS: dict[str, Any] = {
    "app": str,
    "broker_url": str,
    "result_backend": str,
    "jobstores": _to_list,
    "beat_schedule": str,
    "beat": str,
    "beat_db": str,
    "bridge": str,
    "read_only": _to_bool,
    "inspect_timeout": NUMBERS["inspect_timeout"],
    "refresh_interval": NUMBERS["refresh_interval"],
    "max_tasks": NUMBERS["max_tasks"],
    "backfill": NUMBERS["backfill"],
    "event_spool_mb": NUMBERS["event_spool_mb"],
    "rabbitmq_api": str,
}

# Environment variables, highest priority first within the env layer.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "app": ("TASKWATCH_APP",),
    "broker_url": ("TASKWATCH_BROKER_URL", "CELERY_BROKER_URL"),
    "result_backend": ("TASKWATCH_RESULT_BACKEND", "CELERY_RESULT_BACKEND"),
    "jobstores": ("TASKWATCH_JOBSTORE",),
    "beat_schedule": ("TASKWATCH_BEAT_SCHEDULE",),
    "beat": ("TASKWATCH_BEAT",),
    "beat_db": ("TASKWATCH_BEAT_DB",),
    "bridge": ("TASKWATCH_BRIDGE",),
    "read_only": ("TASKWATCH_READ_ONLY",),
    "inspect_timeout": ("TASKWATCH_INSPECT_TIMEOUT",),
    "refresh_interval": ("TASKWATCH_REFRESH_INTERVAL",),
    "max_tasks": ("TASKWATCH_MAX_TASKS",),
    "backfill": ("TASKWATCH_BACKFILL",),
    "event_spool_mb": ("TASKWATCH_EVENT_SPOOL_MB",),
    "rabbitmq_api": ("TASKWATCH_RABBITMQ_API",),
}


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / CONFIG_FILENAME


def _convert(name: str, raw: Any, where: str) -> Any:
    """Check and convert one value from the file (typed) or env/CLI (strings)."""
    try:
        if name == "jobstores":
            if isinstance(raw, str):
                return _to_list(raw)
            if isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw):
                return tuple(raw)
            raise ValueError("expected a list of URLs")
        if name == "read_only":
            return raw if isinstance(raw, bool) else _to_bool(str(raw))
        if name in NUMBERS:
            return NUMBERS[name].convert(raw)
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("expected a non-empty string")
        return raw.strip()
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid {name}: {exc}") from None


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file not found: {path}") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (TOML files are UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _file_layer(data: dict[str, Any], path: Path, profile: str | None) -> dict[str, tuple[Any, str]]:
    """Top-level settings overlaid with the chosen profile's: name -> (value, origin).

    The origin names the part of the file the value really came from: a
    top-level key is the file's, not the chosen profile's.
    """
    values: dict[str, tuple[Any, str]] = {}
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table of tables")
    for key, raw in data.items():
        if key in ("profiles", "default_profile"):
            continue
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(_KEYS)})")
        values[key] = (_convert(key, raw, str(path)), f"{FILE}:{path}")
    if profile is None:
        return values
    if profile not in profiles:
        if not data:
            raise ConfigError(f"unknown profile {profile!r}: no config file at {path}")
        known = ", ".join(sorted(profiles)) or "none defined"
        raise ConfigError(f"unknown profile {profile!r} in {path} (profiles: {known})")
    section = profiles[profile]
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [profiles.{profile}] must be a table")
    for key, raw in section.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: [profiles.{profile}]: unknown setting {key!r}")
        where = f"{path} [profiles.{profile}]"
        values[key] = (_convert(key, raw, where), f"{FILE}:{where}")
    return values


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
) -> Settings:
    """Merge CLI values, the environment and the TOML file into ``Settings``.

    ``cli`` holds only the options the user actually gave (``None`` values
    are ignored). ``env`` defaults to ``os.environ``. ``config_file`` and
    ``profile`` are the CLI's ``--config``/``--profile``; the environment's
    ``TASKWATCH_CONFIG``/``TASKWATCH_PROFILE`` and the file's
    ``default_profile`` come next.
    """
    env = os.environ if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None and v != ()}

    explicit = config_file or env.get("TASKWATCH_CONFIG")
    try:
        path = Path(explicit).expanduser() if explicit else default_config_path()
    except RuntimeError as exc:  # ~nosuchuser/...
        raise ConfigError(f"config file {explicit}: {exc}") from None
    data = _read_file(path, explicit=bool(explicit))

    chosen = profile or env.get("TASKWATCH_PROFILE") or data.get("default_profile")
    if chosen is not None and not isinstance(chosen, str):
        raise ConfigError(f"{path}: default_profile must be a string")

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, (value, origin) in _file_layer(data, path, chosen).items():
        values[key] = value
        origins[key] = origin
    for key, names in ENV_VARS.items():
        for name in names:
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[key] = _convert(key, raw, f"${name}")
                origins[key] = f"{ENV}:{name}"
                break
    for key, raw in cli.items():
        if key not in _KEYS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _convert(key, raw, "command line")
        origins[key] = CLI

    return Settings(
        **values,
        profile=chosen,
        config_file=path if path.exists() else None,
        origins=origins,
    )
