"""Every source of one cluster, built from :class:`~taskwatch.config.Settings`.

The one place that knows which class talks to which URL. The monitor is
handed a :class:`Sources` and depends only on the Protocols in
:mod:`taskwatch.sources.protocols`; queue probe and result backend are built
on first use (their imports and connections stay off the start-up path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from taskwatch.config import Settings
from taskwatch.sources.protocols import (
    ActionSource,
    EventSink,
    EventSource,
    QueueProbe,
    ResultBackend,
    ScheduleSource,
    WorkerSource,
)
from taskwatch.text import clean, mask_secrets


@dataclass
class Sources:
    broker_url: str
    #: inspect and ping over the broker
    workers: WorkerSource
    #: the app's configuration (``-A``'s, or Celery's defaults): beat schedule, queues
    conf: Any
    #: builds the event receiver for a sink; None when there are no events
    events: Callable[[EventSink], EventSource] | None = None
    #: why there are no events, when it is known for good (a transport
    #: taskwatch cannot listen on); asking workers still works
    events_error: str | None = None
    #: builds the queue probe, on first use
    queues: Callable[[], QueueProbe] | None = None
    #: builds the result backend, on first use; None without one
    results: Callable[[], ResultBackend] | None = None
    #: queue names the app's configuration mentions
    app_queues: tuple[str, ...] = ()
    #: builds the controller for actions, on first use (refuses when read-only)
    actions: Callable[[], ActionSource] | None = None
    #: every action is refused before anything is sent (``--read-only``)
    read_only: bool = False
    #: builders of the schedule sources (APScheduler job stores, beat's state), on first use
    schedules: tuple[Callable[[], ScheduleSource], ...] = ()
    #: builds the check of RabbitMQ's event drops (``--rabbitmq-api`` on AMQP), on first use
    event_loss: Callable[[], Any] | None = None


def build_sources(settings: Settings, user_app: Any = None, *, events: bool = True) -> Sources:
    """The real sources for ``settings`` (``user_app``: the ``-A`` app, for its settings)."""
    from taskwatch.sources.inspect import Inspector

    assert settings.broker_url
    url = settings.broker_url
    inspector = Inspector(url, app=user_app, timeout=settings.inspect_timeout)
    conf = inspector.app.conf
    transport_options = dict(conf.get("broker_transport_options") or {})
    sources = Sources(broker_url=url, workers=inspector, conf=conf, app_queues=tuple(app_queues(conf)),
                      read_only=bool(settings.read_only))

    if events:
        from taskwatch.sources.events import AMQP_SCHEMES, check_event_transport, event_receiver

        try:
            scheme = check_event_transport(url)
        except ValueError as exc:
            sources.events_error = clean(mask_secrets(str(exc)), 200, single_line=True)
        else:
            sources.events = lambda sink: event_receiver(
                url, sink, transport_options=transport_options,
                exchange=conf.get("event_exchange") or "celeryev",
                queue_ttl=_seconds(conf.get("event_queue_ttl")),
                queue_expires=_seconds(conf.get("event_queue_expires")),
                spool_limit=settings.event_spool_mb * 1024 * 1024,
            )
            api = settings.rabbitmq_api
            if api and scheme in AMQP_SCHEMES:
                from taskwatch.sources.event_loss import EventLossCheck

                sources.event_loss = lambda: EventLossCheck(api)

    def queues() -> QueueProbe:
        from taskwatch.sources.queues import queue_probe

        return queue_probe(url, transport_options=transport_options, rabbitmq_api=settings.rabbitmq_api)

    sources.queues = queues

    def actions() -> ActionSource:
        from taskwatch.sources.control import Controller

        return Controller(url, user_app, read_only=bool(settings.read_only),
                          timeout=settings.inspect_timeout)

    sources.actions = actions
    if settings.result_backend:
        backend_url = settings.result_backend

        def results() -> ResultBackend:
            from taskwatch.sources.results import result_backend

            return result_backend(backend_url)

        sources.results = results
    # The user's own configuration (beat_sync_every, redbeat_*, timezone...): the
    # control app above copies only what inspect and events need.
    sources.schedules = tuple(schedule_sources(settings, user_app.conf if user_app is not None else conf, url))
    return sources


def schedule_sources(settings: Settings, conf: Any, broker_url: str) -> list[Callable[[], ScheduleSource]]:
    """Builders of every schedule source the settings name: beat's (the app's
    schedule, its file, RedBeat, django-celery-beat), then each ``--jobstore``.
    Raises a one-line ``SourceError`` for a setting that cannot work."""
    from taskwatch.sources.apscheduler.location import parse_store_url
    from taskwatch.sources.beat import beat_sources

    builders = list(beat_sources(settings, conf, broker_url))
    timeout = max(settings.inspect_timeout, 2.0)
    for url in dict.fromkeys(settings.jobstores):  # the same store named twice is read once
        location = parse_store_url(url)
        # A bridge announces itself on a Redis: the store's own, the broker's, or --bridge.
        candidates = [u for u in (url if location.kind == "redis" else None,
                                  broker_url if _is_redis(broker_url) else None, settings.bridge) if u]

        def build(location: Any = location, candidates: list[str] = candidates) -> ScheduleSource:
            from taskwatch.sources.apscheduler.source import JobStoreSource

            return JobStoreSource(location, read_only=bool(settings.read_only), timeout=timeout,
                                  bridge_urls=candidates)

        builders.append(build)
    return builders


def _is_redis(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0].lower() in ("redis", "rediss", "unix", "redis+socket", "socket")


def app_queues(conf: Any) -> Iterable[str]:
    """Queue names the app's configuration mentions."""
    default = conf.get("task_default_queue") or "celery"
    yield default
    queues = conf.get("task_queues") or ()
    for queue in queues if isinstance(queues, list | tuple | set) else ():
        name = getattr(queue, "name", None) or (queue if isinstance(queue, str) else None)
        if name:
            yield name
    routes = conf.get("task_routes") or {}
    if isinstance(routes, dict):
        routes = [routes]
    for route in routes if isinstance(routes, list | tuple) else ():
        if isinstance(route, dict):
            for target in route.values():
                if isinstance(target, dict) and isinstance(target.get("queue"), str):
                    yield target["queue"]


def _seconds(value: Any) -> float | None:
    """A positive number of seconds from an app setting, or None (use the default)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
