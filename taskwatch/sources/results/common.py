"""What the result backend readers share: their errors and limits, Celery's state names."""

from __future__ import annotations

from taskwatch.sources.errors import SourceError

#: Celery states whose ``result`` is a serialized exception.
EXCEPTION_STATES = frozenset({"FAILURE", "RETRY", "REVOKED"})
#: Status of a stored value taskwatch could not decode.
UNKNOWN = "UNKNOWN"

TRACEBACK_LIMIT = 16 * 1024
EXCEPTION_LIMIT = 2048
FIELD_LIMIT = 255
ID_LIMIT = 155  # celery_taskmeta.task_id is String(155)
MAX_CHILDREN = 1000
#: Default cap on the bytes read of one stored value.
MAX_VALUE_BYTES = 1 << 20

SUPPORTED = "redis://, rediss://, db+postgresql://, db+sqlite://"


class ResultBackendError(SourceError):
    """The result backend could not be read; ``str()`` is one masked line."""


class UnsupportedBackend(ResultBackendError):
    """taskwatch cannot read this kind of result backend."""

