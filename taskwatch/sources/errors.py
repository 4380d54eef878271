"""Errors the sources raise, with messages fit for one line on a terminal."""

from __future__ import annotations

from taskwatch.text import (
    AUTH_FAILED,
    CLOSED,
    ERROR,
    NOT_ANSWERING,
    REFUSED,
    TIMED_OUT,
    clean,
    mask_secrets,
)


class SourceError(Exception):
    """A source could not do its job; ``str()`` is a one-line, masked message."""


#: What the servers and clients say when a password (or user) is refused: Redis
#: (``WRONGPASS``, ``NOAUTH``, ``invalid password``), RabbitMQ (``ACCESS_REFUSED``),
#: PostgreSQL, MySQL (``Access denied for user``) and MongoDB (``Authentication failed``).
_AUTH_WORDS = (
    "wrongpass",
    "noauth",
    "invalid username-password",
    "invalid password",
    "access_refused",
    "password authentication failed",
    "authentication failed",
    "access denied for user",
    "401 unauthorized",
)
#: Exception class names that mean the same, whatever their message.
_AUTH_TYPES = ("AuthenticationError", "AccessRefused", "AuthenticationFailed")


def is_auth_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says a password or user was refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _AUTH_TYPES for cls in type(current).__mro__):
            return True
        text = str(current).lower()
        if any(word in text for word in _AUTH_WORDS):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def describe(exc: BaseException) -> str:
    """One masked line naming what went wrong, for errors from client libraries.

    A refused password reads "authentication failed: …" whatever the client
    library calls it (a rotated password is not an unreachable server).
    """
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if AUTH_FAILED not in text.lower() and is_auth_failure(exc):
        text = f"{AUTH_FAILED}: {text}"
    return clean(mask_secrets(text), 300, single_line=True)


def reason_of(error: BaseException | str) -> str:
    """The few words that say why a source failed: "authentication failed",
    "refused", "timed out", "connection closed", else "error"."""
    if isinstance(error, BaseException):
        if is_auth_failure(error):
            return AUTH_FAILED
        if isinstance(error, ConnectionRefusedError):
            return REFUSED
        if isinstance(error, TimeoutError):
            return TIMED_OUT
        text = describe(error).lower()
    else:
        text = error.lower()
    if AUTH_FAILED in text or any(word in text for word in _AUTH_WORDS):
        return AUTH_FAILED
    if NOT_ANSWERING in text or "no answer" in text:
        return NOT_ANSWERING
    if "refused" in text or "errno 111" in text:
        return REFUSED
    if "timed out" in text or "timeout" in text:
        return TIMED_OUT
    if "closed" in text or "reset by peer" in text or "broken pipe" in text or "eof" in text:
        return CLOSED
    return ERROR
