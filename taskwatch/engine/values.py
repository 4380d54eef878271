"""Values from messages and records, made safe to keep: bounded, cleaned text
and plausible numbers and times. Everything here is untrusted input (anyone
who can publish on the broker writes it)."""

from __future__ import annotations

import math
import sys
from typing import Any

from taskwatch.reprs import tuple_style
from taskwatch.text import clean

MAX_SHORT = 2048
MAX_TRACEBACK = 16384

intern = sys.intern


# Values so common that every task holding its own copy would waste memory.
SHARED = {v: v for v in ("{}", "()", "[]", "None", "True", "False", "0", "1", "''")}


def bounded_text(value: Any, limit: int) -> str | None:
    """Untrusted text, stored as data: control sequences out, length bounded."""
    if value is None:
        return None
    if type(value) is not str:
        value = str(value)
    if len(value) > limit or not value.isprintable():
        return clean(value, limit)
    return SHARED.get(value, value)


def args_text(value: Any) -> str | None:
    """Positional arguments in Celery's tuple style, once, as they are stored
    (a producer's ``argsrepr`` of a list reads ``[989, 'csv']``)."""
    text = bounded_text(value, MAX_SHORT)
    return tuple_style(text) if text and text[0] == "[" else text


def number(value: Any) -> float | None:
    """A finite float from a number in a message; None for anything else (or a 400-digit int)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


# Times come from anyone who can publish: 1e300 or inf would crash every
# clock formatter downstream. Epoch seconds between 1970 and 3000 are kept.
LATEST = 32_503_680_000.0


def moment(value: Any) -> float | None:
    """An epoch time from a message, or None when it is not a plausible one."""
    value = number(value)
    return value if value is not None and 0.0 < value < LATEST else None


def duration(value: Any) -> float | None:
    value = number(value)
    return value if value is not None and 0.0 <= value < LATEST else None
