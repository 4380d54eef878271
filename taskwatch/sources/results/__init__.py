"""Reading Celery result backends, read-only: what finished, failed or is retrying.

Two backends are read directly (never through Celery, which would decode
with the user's serializers and unpickle what it finds):

* Redis (``redis://``, ``rediss://``): keys ``celery-task-meta-<id>`` (see
  ``celery/backends/base.py`` ``BaseKeyValueStoreBackend``), each a serialized
  dict ``status, result, traceback, children, date_done, task_id`` plus
  ``name, args, kwargs, worker, retries, queue`` with ``result_extended``.
* SQL databases (``db+postgresql://``, ``db+sqlite://``): table
  ``celery_taskmeta`` (``celery/backends/database/models.py``) whose
  ``result``, ``children``, ``args`` and ``kwargs`` columns hold bytes in the
  result serializer (or a raw pickle in rows from before celery#3025).

Stored values are untrusted. They are decoded by content, whatever the
backend was configured with: JSON (Celery's default, with kombu's
``{"__type__", "__value__"}`` markers for datetimes, decimals, UUIDs and
bytes); pickle (recognised by its protocol 2-5 header) through
:mod:`taskwatch.sources.safe_pickle` with :data:`~taskwatch.sources.pickle_policies.CELERY_RESULTS`
only, so other objects (exceptions too) come back as inert placeholders that
are shown by name and arguments; msgpack, YAML and anything else are not
decoded and show as ``<msgpack value, N bytes, not decoded>`` with status
``UNKNOWN``. Nothing is ever ``eval``-ed, ``literal_eval``-ed or unpickled
by anything else.

Everything that reaches a :class:`StoredResult` is text made safe by
:func:`taskwatch.text.clean`: control sequences stripped, bounded, one line
except the traceback. Values (result, arguments) are rendered like Python
reprs, as Celery's own events show them, by a renderer that stops at the
length limit however large or self-referencing the value is.

Layout: :mod:`.redis` and :mod:`.sql` read the two backends, :mod:`.decode`
turns stored bytes into :class:`StoredResult`, :mod:`.common` holds the
errors and limits.
"""

from __future__ import annotations

from typing import Any

from taskwatch.records import StoredResult
from taskwatch.sources.protocols import ResultBackend
from taskwatch.sources.results.common import (
    EXCEPTION_STATES,
    SUPPORTED,
    UNKNOWN,
    ResultBackendError,
    UnsupportedBackend,
)
from taskwatch.sources.results.redis import RedisResultBackend
from taskwatch.sources.results.sql import DatabaseResultBackend
from taskwatch.text import mask_url

__all__ = [
    "EXCEPTION_STATES",
    "UNKNOWN",
    "StoredResult",
    "DatabaseResultBackend",
    "RedisResultBackend",
    "ResultBackend",
    "ResultBackendError",
    "UnsupportedBackend",
    "result_backend",
]



def result_backend(url: str, **kwargs: Any) -> ResultBackend:
    """A reader for Celery's ``result_backend`` URL, chosen by its scheme.

    Raises :class:`UnsupportedBackend` for schemes taskwatch cannot read.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return RedisResultBackend(url, **kwargs)
    if scheme.startswith("db+"):
        return DatabaseResultBackend(url, **kwargs)
    if scheme == "rpc":
        reason = "rpc:// results travel in the caller's reply queue and cannot be read from outside"
    elif not scheme:
        reason = "it has no scheme"
    else:
        reason = f"{scheme}:// is not supported"
    raise UnsupportedBackend(
        f"cannot read result backend {mask_url(url)!r}: {reason} (supported: {SUPPORTED})"
    )

