"""Plain-string helpers for untrusted text and secrets.

Everything here is pure: no I/O, no Textual, no Rich. The UI renders the
results with ``rich.text.Text``; the CLI prints them as they are.
"""

from __future__ import annotations

import re

MASK = "****"

# scheme://user:password@host  (the password may be empty or contain '@').
_URL_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s;,'\"]*:)(?P<secret>[^/\s;,'\"]*)@"
)
# ...?password=secret&...  (redis-py and SQLAlchemy accept these)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|sentinel_password)=)(?P<secret>[^&\s;,'\"]*)",
    re.IGNORECASE,
)


def mask_url(url: str | None) -> str:
    """Return ``url`` with every password replaced by ``****``.

    Works on kombu's multi-host form (``redis://a;redis://b``), on URLs with
    only a password (``redis://:pw@host``) and on ``?password=`` queries.
    ``None`` becomes the empty string.
    """
    if not url:
        return ""
    return mask_secrets(";".join(_mask_userinfo(part) for part in url.split(";")))


def _mask_userinfo(url: str) -> str:
    """Mask the password of one URL, whatever characters it holds.

    The free-text pattern of ``mask_secrets`` must stop at quotes and commas
    (error messages quote URLs); a URL alone may have them in its password.
    The userinfo ends at the last ``@`` before any query: when in doubt, more
    is masked, never less.
    """
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    end = len(url)
    for mark in ("?", "#"):
        found = url.find(mark, start)
        if found >= 0:
            end = min(end, found)
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    user, colon, password = url[start:at].partition(":")
    if not colon:
        return url
    return f"{url[:start]}{user}:{MASK if password else ''}{url[at:]}"


def mask_secrets(text: str) -> str:
    """Mask credentials of every URL found anywhere in ``text``.

    Use it on error messages and log lines, which often quote a URL.
    """
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK if m['secret'] else ''}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


# CSI: ESC [ params intermediates final; also the 8-bit CSI (0x9b).
# OSC/DCS/SOS/PM/APC strings: ESC ] ... (BEL | ESC \ | ST), and 8-bit forms.
# Any other two-byte ESC sequence. Then the remaining C0 (but \t \n) and C1.
_CONTROL = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?          # CSI
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])     # OSC, DCS, SOS, PM, APC ...
    .*?(?:\x07|\x1b\\|\x9c|$)                   # ... up to their terminator
  | \x1b[ -/]*[0-~]?                            # other ESC sequences
  | [\x00-\x08\x0b-\x1f\x7f-\x9f]               # leftover C0 / DEL / C1
    """,
    re.VERBOSE | re.DOTALL,
)

ELLIPSIS = "…"
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def strip_control(text: str) -> str:
    """Remove terminal control sequences (CSI, OSC, DCS, C0 but tab/newline, C1, NUL)."""
    return _CONTROL.sub("", text)


def shorten_words(text: str, limit: int = 80) -> str:
    """Cut every word (a run without spaces: a URL, a path) longer than ``limit`` in its middle.

    For one-line messages: a 100,000-character URL keeps its start and end,
    and the reason after it stays on the line.
    """
    pattern = re.compile(rf"\S{{{limit + 1},}}")
    head = limit * 3 // 4

    def cut(match: re.Match[str]) -> str:
        word = match.group()
        return word[:head] + ELLIPSIS + word[-(limit - head - 1):]

    return pattern.sub(cut, text)


def clean(value: object, limit: int | None = 4096, *, single_line: bool = False) -> str:
    """Make untrusted ``value`` safe to show: text, no control sequences, bounded.

    Bytes are decoded as UTF-8 with replacement characters. ``single_line``
    turns newlines and tabs into spaces, for table cells. ``limit`` caps the
    length (in characters), ending a cut value with ``…``.
    """
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit * 4:
        # Don't run the regex over megabytes we'll throw away.
        text = text[: limit * 4]
    text = strip_control(text)
    if _SURROGATE.search(text):  # from JSON "\udcff" escapes: unencodable on a terminal
        text = _SURROGATE.sub("\ufffd", text)
    if single_line:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + ELLIPSIS
    return text
