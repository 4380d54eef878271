"""Loading the user's Celery app (``-A``) the way ``celery -A`` does."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from taskwatch.sources.errors import SourceError, describe

if TYPE_CHECKING:
    from celery import Celery


class AppLoadError(SourceError):
    pass


def load_app(spec: str) -> Celery:
    """Import ``spec`` (``module``, ``module:attr``, ``package`` -> ``package.celery``).

    Like ``celery -A``, the current directory goes on ``sys.path`` first.
    Any error, including one raised by the user's module while it imports,
    becomes an :class:`AppLoadError` with a one-line message.
    """
    from celery import Celery
    from celery.app.utils import find_app

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        app = find_app(spec)
    except ModuleNotFoundError as exc:
        raise AppLoadError(f"cannot load Celery app {spec!r}: {describe(exc)}") from None
    except (ImportError, AttributeError) as exc:
        raise AppLoadError(f"cannot load Celery app {spec!r}: {describe(exc)}") from None
    except Exception as exc:  # the user's module raised while importing
        raise AppLoadError(
            f"cannot load Celery app {spec!r}: {type(exc).__name__}: {describe(exc)}"
        ) from None
    if not isinstance(app, Celery):
        raise AppLoadError(
            f"cannot load Celery app {spec!r}: it is a {type(app).__name__}, not a Celery app"
        )
    return app


def app_urls(app: Celery) -> tuple[str | None, str | None]:
    """The broker and result backend URLs from the app's own configuration.

    Read from the config itself, not ``app.conf.broker_url``: Celery's
    property lets ``CELERY_BROKER_URL`` win, and taskwatch ranks the
    environment itself.
    """
    conf = app.conf
    broker = conf.get("broker_url") or conf.get("BROKER_URL")
    backend = conf.get("result_backend") or conf.get("CELERY_RESULT_BACKEND")
    if isinstance(backend, str) and backend in ("disabled", ""):
        backend = None
    return (broker or None), (backend if isinstance(backend, str) else None)


# Settings copied from the user's app into taskwatch's own: how to reach the
# broker and how the workers' control and event exchanges are named.
_COPIED = (
    "broker_transport_options",
    "broker_use_ssl",
    "broker_login_method",
    "broker_heartbeat",
    "control_exchange",
    "control_queue_ttl",
    "control_queue_expires",
    "control_queue_durable",
    "control_queue_exclusive",
    "event_exchange",
    "event_queue_ttl",
    "event_queue_expires",
    "event_serializer",
    "accept_content",
    "result_backend_transport_options",
    "result_extended",
    "task_default_queue",
    "task_queues",
    "task_routes",
    "beat_schedule",
    "timezone",
    "enable_utc",
)


def control_app(
    broker_url: str,
    result_backend: str | None = None,
    user_app: Celery | None = None,
    timeout: float = 3.0,
) -> Celery:
    """A private Celery app for inspect/control on exactly ``broker_url``.

    Celery's own settings let ``CELERY_BROKER_URL`` override the configured
    broker, and its mailbox publishes through the app's producer pool, not
    the connection it is handed: an app whose URLs disagree with taskwatch's
    would ping the wrong cluster. So taskwatch never uses the user's app
    object for I/O; it copies the settings that matter and pins the URLs.
    """
    from celery import Celery

    app = Celery("taskwatch", set_as_current=False)
    if user_app is not None:
        for key in _COPIED:
            value = user_app.conf.get(key)
            if value is not None:
                app.conf[key] = value
    options = dict(app.conf.get("broker_transport_options") or {})
    # kombu's Redis channel moves messages whose visibility timeout passed
    # from ``unacked`` back to their queue whenever any consumer polls, and
    # the replies to inspect are consumed: taskwatch must never move a
    # worker's messages, so it restores none (workers still do).
    options["unacked_restore_limit"] = 0
    options.setdefault("socket_connect_timeout", timeout)
    options.setdefault("socket_timeout", max(timeout, 5.0))
    app.conf.update(
        broker_url=broker_url,
        broker_read_url=broker_url,
        broker_write_url=broker_url,
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        broker_transport_options=options,
        result_backend=result_backend,
    )
    return app
