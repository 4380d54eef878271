"""Errors the sources raise, with messages fit for one line on a terminal."""

from __future__ import annotations

from taskwatch.text import clean, mask_secrets


class SourceError(Exception):
    """A source could not do its job; ``str()`` is a one-line, masked message."""


def describe(exc: BaseException) -> str:
    """One masked line naming what went wrong, for errors from client libraries."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return clean(mask_secrets(text), 300, single_line=True)
