"""Plain-string helpers for untrusted text and secrets.

Everything here is pure: no I/O, no Textual, no Rich. The UI renders the
results with ``rich.text.Text``; the CLI prints them as they are.
"""

from __future__ import annotations

import re

MASK = "****"
#: How every source words a refused password, whatever its client library calls it.
AUTH_FAILED = "authentication failed"
#: The other reasons a source is down, in the words the header and the
#: snapshot's ``health[]`` use (see ``sources.errors.reason_of``).
REFUSED = "refused"
TIMED_OUT = "timed out"
NOT_ANSWERING = "not answering"
CLOSED = "connection closed"
ERROR = "error"

# scheme://user:password@host in free text: the user name has no ':', '/' or
# '@'; the password runs to the last '@' of the word (it may hold '/', '#',
# '?', '@', ':', '%', ';' or ',' unencoded), never past a space or a quote
# (in free text, two URLs of a ``a;b`` list are masked as one: more, never less).
_URL_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s;,'\"]*:)(?P<secret>[^\s'\"]*)@"
)
# ...?password=secret&...  (redis-py and SQLAlchemy accept these)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|sentinel_password)=)(?P<secret>[^&\s;,'\"]*)",
    re.IGNORECASE,
)
# kombu's failover list ``redis://a;redis://b``: a ';' starts a new URL only
# when one follows it (a password may hold a ';').
_NEXT_URL = re.compile(r";(?=\s*[a-zA-Z][a-zA-Z0-9+.\-]*://)")
#: Schemes SQLAlchemy parses (``make_url``: the password ends at the first '@').
_SQL_SCHEMES = frozenset({"postgresql", "postgres", "mysql", "mariadb", "sqlite", "oracle", "mssql", "db"})

#: Why a URL with an unencoded delimiter in its credentials cannot be used;
#: never echoes any part of the URL.
ENCODE_DELIMITERS = (
    "the password contains '/', '#', '?' or ';' (or the URL an '@' after its host): "
    "percent-encode it (%2F, %23, %3F, %3B, %40)"
)
ENCODE_AT = "the password contains '@': percent-encode it (%40)"

_secrets: set[str] = set()


def split_urls(url: str) -> list[str]:
    """kombu's ``a;b`` failover list as its URLs (a single URL gives itself).

    A ';' followed by ``scheme://`` may still be inside a password
    (``redis://u:x;y://@h``): a URL whose ``user:`` has not met its '@' yet,
    or whose credentials are followed by no host (``redis://:@;y://@h``),
    runs on to the next one when an '@' follows, so the password is masked
    whole (and :func:`url_problem` refuses it).
    """
    parts = _NEXT_URL.split(url)
    urls: list[str] = []
    for i, part in enumerate(parts):
        if urls and (_open_userinfo(urls[-1]) or _no_host(urls[-1])) and any("@" in later for later in parts[i:]):
            urls[-1] += ";" + part
        else:
            urls.append(part)
    return urls


def _no_host(url: str) -> bool:
    """``scheme://user:pw@`` and nothing after: credentials with no host are
    a password cut at a ';' (``redis://:@;x://@h``, whose password is
    ``@;x://``), not a URL of kombu's list."""
    start = url.find("://")
    return start >= 0 and url.endswith("@") and ":" in url[start + 3:]


def _open_userinfo(url: str) -> bool:
    """``scheme://user:...`` with no '@' (a ``host:port`` is not a user name and password)."""
    start = url.find("://")
    if start < 0:
        return False
    rest = url[start + 3:]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    _host, colon, port = authority.rpartition(":")
    return "@" not in rest and bool(colon) and not port.isdigit()


def mask_url(url: str | None) -> str:
    """Return ``url`` with every password replaced by ``****``.

    Works on kombu's multi-host form (``redis://a;redis://b``), on URLs with
    only a password (``redis://:pw@host``), on ``?password=`` queries and on
    passwords holding unencoded ``/ # ? @ : % ;``. ``None`` becomes the
    empty string.
    """
    if not url:
        return ""
    return ";".join(_mask_forms(_mask_userinfo(part)) for part in split_urls(url))


def _mask_userinfo(url: str) -> str:
    """Mask the password of one URL, whatever characters it holds.

    The free-text pattern of ``mask_secrets`` must stop at quotes and spaces
    (error messages quote URLs); a URL alone may have them in its password.
    The parsers disagree on where an unencoded password ends (urllib, kombu
    and redis-py at the first '/', '?' or '#'; SQLAlchemy at the first '@'),
    so the widest reading is masked: up to the last '@' of the URL. When in
    doubt, more is masked, never less.
    """
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    at = url.rfind("@", start)
    if at < 0:
        return url
    user, colon, password = url[start:at].partition(":")
    if not colon:
        return url
    return f"{url[:start]}{user}:{MASK if password else ''}{url[at:]}"


def url_problem(url: str | None) -> str | None:
    """Why the credentials of ``url`` cannot be read unambiguously, or None.

    A password with an unencoded '/', '#' or '?' ends the host part early
    for urllib, kombu, redis-py and httpx (``redis://:se/cr#et@h`` is host
    '' and port 'se' to them), and one with an '@' ends it early for
    SQLAlchemy; kombu splits a URL at every ';' (its failover list): each
    would connect somewhere else or fail quoting a piece of the password.
    The reason never quotes the URL.
    """
    for part in split_urls(url or ""):
        start = part.find("://")
        if start < 0:
            continue
        rest = part[start + 3:]
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        if end > 0 and "@" in rest[end:]:
            return ENCODE_DELIMITERS
        if end == len(rest) and rest.endswith("@"):  # credentials, then nothing: a ';' in the password split it here
            return ENCODE_DELIMITERS
        scheme = part[:start].strip().lower().split("+", 1)[0]
        if scheme in _SQL_SCHEMES:
            if rest[:end].count("@") > 1:
                return ENCODE_AT
        elif ";" in rest[: max(rest.rfind("@"), 0)]:
            return ENCODE_DELIMITERS
    return None


def remember_secrets(*urls: str | None) -> None:
    """Have :func:`mask_secrets` mask the passwords of ``urls`` wherever they appear.

    For the URLs taskwatch was given: a client library's message may quote
    a password (or a URL it misread) outside any ``user:password@`` form.
    Every reading of each password is kept (as written, percent-decoded,
    the widest span); ones shorter than 4 characters are not, as masking
    them in free text would mangle ordinary words, nor one equal to its
    user name.
    """
    from urllib.parse import unquote

    for url in urls:
        for part in split_urls(url or ""):
            start = part.find("://")
            if start < 0:
                continue
            start += 3
            at = part.rfind("@", start)
            first_at = part.find("@", start)
            spans = {part[start:at], part[start:first_at]} if at >= 0 else set()
            rfc_end = min((i for i in (part.find(c, start) for c in "/?#") if i >= 0), default=len(part))
            if 0 <= first_at < rfc_end:
                spans.add(part[start:part.rfind("@", start, rfc_end)])
            for match in _QUERY_SECRET.finditer(part):
                spans.add(":" + match["secret"])
            for span in spans:
                user, colon, password = span.partition(":")
                if colon and password != user:  # guest:guest: the user name is shown anyway
                    for form in (password, unquote(password)):
                        if len(form) >= 4:
                            _secrets.add(form)


def forget_secrets() -> None:
    """Drop what :func:`remember_secrets` kept (for tests)."""
    _secrets.clear()


def mask_secrets(text: str) -> str:
    """Mask credentials of every URL found anywhere in ``text``.

    Use it on error messages and log lines, which often quote a URL. The
    passwords :func:`remember_secrets` kept are masked wherever they appear.
    """
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _mask_forms(text)


def _mask_forms(text: str) -> str:
    """``user:password@`` and ``?password=`` forms masked (not the remembered passwords:
    a URL is masked by its form alone, and a user named like the password stays readable)."""
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
