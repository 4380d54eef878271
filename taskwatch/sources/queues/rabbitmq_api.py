"""RabbitMQ queues from the management HTTP API: depths, unacknowledged, consumers, rates."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from taskwatch.records import SOURCE_MANAGEMENT, PeekedMessage, QueueDepth
from taskwatch.sources.broker import BadURL
from taskwatch.sources.errors import describe
from taskwatch.sources.queues.common import (
    NO_PEEK,
    NO_SUCH_QUEUE,
    QueueProbeError,
    is_internal_queue,
)
from taskwatch.text import AUTH_FAILED, clean, mask_secrets, mask_url, url_problem

if TYPE_CHECKING:
    import httpx


_COLUMNS = ",".join(
    [
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "message_stats.publish_details.rate",
        "message_stats.deliver_get_details.rate",
        "message_stats.ack_details.rate",
        "message_stats.redeliver_details.rate",
    ]
)
_RATES = ("publish", "deliver_get", "ack", "redeliver")
_PAGE_SIZE = 500
_MAX_PAGES = 200


class ManagementQueueProbe:
    """RabbitMQ queues from the management HTTP API (``GET /api/queues/<vhost>``).

    ``api_url`` is the API's base, credentials included:
    ``http://guest:guest@127.0.0.1:15672``. Pages of 500 queues, only the
    columns used. Its figures are the management plugin's statistics,
    refreshed every 5 s by default (``collect_statistics_interval``).
    """

    source = SOURCE_MANAGEMENT
    can_discover = True
    can_peek = False

    def __init__(self, api_url: str, timeout: float = 2.0, *, vhost: str = "/") -> None:
        import httpx

        self.api_url = api_url
        self.timeout = timeout
        self.vhost = vhost or "/"
        problem = url_problem(api_url)
        if problem:
            raise BadURL(f"bad RabbitMQ API URL {mask_url(api_url)!r}: {problem}")
        try:
            url = httpx.URL(api_url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise BadURL(f"bad RabbitMQ API URL {mask_url(api_url)!r}: {describe(exc)}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise BadURL(
                f"bad RabbitMQ API URL {mask_url(api_url)!r}: expected http://user:password@host:15672"
            )
        self._auth = (url.username, url.password or "") if url.username else None
        self._base = str(url.copy_with(username=None, password=None)).rstrip("/")
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def discover(self) -> set[str]:
        with self._lock:
            queues = self._fetch()
        return {name for name in queues if not is_internal_queue(name)}

    def depths(self, names: Iterable[str]) -> list[QueueDepth]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return []
        try:
            with self._lock:
                queues = self._fetch()
        except QueueProbeError as exc:
            return [QueueDepth(name=n, source=self.source, error=str(exc)) for n in wanted]
        rows = []
        for name in wanted:
            item = queues.get(name)
            if item is None:
                rows.append(QueueDepth(name=name, source=self.source, error=NO_SUCH_QUEUE))
                continue
            rows.append(
                QueueDepth(
                    name=name,
                    source=self.source,
                    messages=_count(item.get("messages_ready")),
                    unacked=_count(item.get("messages_unacknowledged")),
                    consumers=_count(item.get("consumers")),
                    rates=_rates(item.get("message_stats")),
                )
            )
        return rows

    def queue_counts(self, name: str, vhost: str | None = None) -> tuple[int, int, int] | None:
        """``(published, delivered, messages)`` of one queue, as the statistics
        last sampled them: messages routed into it, delivered or got from it
        (``deliver_get``), and held in it now; None before its first sample.
        A queue nobody published to yet has no ``message_stats``: zeros."""
        path = f"/api/queues/{quote(vhost or self.vhost, safe='')}/{quote(name, safe='')}"
        params = {"columns": "messages,message_stats.publish,message_stats.deliver_get"}
        with self._lock:
            doc = self._get(path, params, NO_SUCH_QUEUE)
        if not isinstance(doc, dict) or _count(doc.get("messages")) is None:
            return None  # not sampled yet: the answer is [] or has no count
        stats = doc.get("message_stats")
        stats = stats if isinstance(stats, dict) else {}
        messages = doc["messages"]
        return (_count(stats.get("publish")) or 0, _count(stats.get("deliver_get")) or 0, messages)

    def peek(self, queue: str, n: int = 10) -> list[PeekedMessage]:
        raise QueueProbeError(NO_PEEK)

    def close(self) -> None:
        """Drop the HTTP connection; the probe reconnects if used again."""
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    def _http(self) -> httpx.Client:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                base_url=self._base,
                auth=self._auth,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                headers={"Accept": "application/json"},
            )
        return self._client

    def _get(self, path: str, params: dict[str, Any], not_found: str) -> Any:
        """The JSON answer to ``GET path``; a one-line error for anything else
        (``not_found`` for a 404)."""
        import httpx

        try:
            response = self._http().get(path, params=params)
        except httpx.HTTPError as exc:
            raise self._error(describe(exc)) from None
        if response.status_code == 401:
            raise self._error(f"{AUTH_FAILED}: the management API refused the credentials (401)")
        if response.status_code == 404:
            raise self._error(not_found)
        if response.status_code != 200:
            raise self._error(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise self._error("the answer is not JSON") from None

    def _fetch(self) -> dict[str, dict[str, Any]]:
        path = f"/api/queues/{quote(self.vhost, safe='')}"
        queues: dict[str, dict[str, Any]] = {}
        page = 1
        while page <= _MAX_PAGES:
            params = {"page": page, "page_size": _PAGE_SIZE, "columns": _COLUMNS}
            doc = self._get(path, params, f"no vhost {self.vhost!r} (404)")
            items = doc.get("items") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise self._error("unexpected answer (no items)")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    queues[item["name"]] = item
            page_count = doc.get("page_count")
            if not isinstance(page_count, int) or page >= page_count:
                break
            page += 1
        return queues

    def _error(self, text: str) -> QueueProbeError:
        return QueueProbeError(
            clean(
                mask_secrets(f"RabbitMQ API {mask_url(self.api_url)}: {text}"),
                400,
                single_line=True,
            )
        )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rates(stats: object) -> dict[str, float]:
    rates: dict[str, float] = {}
    if not isinstance(stats, dict):
        return rates
    for name in _RATES:
        details = stats.get(f"{name}_details")
        rate = details.get("rate") if isinstance(details, dict) else None
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            rates[name] = float(rate)
    return rates

