"""Every Redis URL form taskwatch accepts, parsed once; redis-py clients built once.

The event receiver, the queue probe and the result backend reader all
connect through here, so a URL means the same thing to each of them.

Forms (kombu's and Celery's, ``kombu/utils/url.py``, ``kombu/transport/redis.py``,
``celery/backends/redis.py``):

* ``redis://[user:password@]host[:port][/db]`` and ``rediss://...`` (TLS) with
  the ``ssl_*`` query options (``ssl_cert_reqs``, ``ssl_ca_certs``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``, ...) or the same
  options given apart (``broker_use_ssl``); an ``ssl_*`` option on a
  ``redis://`` URL turns TLS on, as kombu's ``parse_url`` does;
* ``unix:///path``, ``redis+socket:///path`` and ``socket:///path`` (a Unix socket);
* ``sentinel://host:26379[/db];sentinel://...`` (several sentinels, one master
  named by the ``master_name`` transport option);
* ``redis://a;redis://b`` (kombu's failover list: the next is tried when one refuses).

One rule for each question the three old parsers answered differently:

* the db is the path (``/3``), else the ``db=`` then ``virtual_host=`` query
  option (the only place a socket URL can put it), else 0; anything but a
  non-negative integer is a :class:`RedisURLError`, never silently 0;
* ``ssl_check_hostname`` is a boolean word (``true/false``, ``yes/no``,
  ``on/off``, ``1/0``, any case); any other word is an error;
* ``ssl_cert_reqs`` is ``required/optional/none`` or ``CERT_REQUIRED/...``
  (any case), or an ``ssl.CERT_*`` constant; anything else is an error.

Errors are one line with every password masked.

The clients fail fast (:func:`fail_fast`):

* redis-py 8 retries a failed command 3 times with backoff by default, about
  4 s for a refused connection: taskwatch asks again next round anyway, so it
  fails at once instead, and the screen says so.
* redis-py 8 speaks RESP3 (HELLO 3) by default, which Redis before 6 refuses;
  RESP2 reads every server kombu and Celery can use.
* No background health checks: a connection that went stale fails its next
  command, which the callers handle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from taskwatch.sources.broker import BadURL
from taskwatch.sources.errors import describe
from taskwatch.text import clean, mask_url, url_problem

if TYPE_CHECKING:
    import redis

__all__ = [
    "REDIS_SCHEMES",
    "RedisTarget",
    "RedisURL",
    "RedisURLError",
    "connect",
    "fail_fast",
    "glob_escape",
    "parse_bool",
    "parse_redis_url",
]

#: Every scheme :func:`parse_redis_url` takes.
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+socket", "socket", "sentinel")
_SOCKET_SCHEMES = ("unix", "redis+socket", "socket")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

#: ``ssl_cert_reqs`` names (kombu's ``parse_ssl_cert_reqs`` and Celery's), as redis-py's strings.
_CERT_REQS = {
    "cert_required": "required",
    "cert_optional": "optional",
    "cert_none": "none",
    "required": "required",
    "optional": "optional",
    "none": "none",
}
#: ``ssl.CERT_NONE``, ``CERT_OPTIONAL``, ``CERT_REQUIRED``
_CERT_REQS_CONSTANTS = {0: "none", 1: "optional", 2: "required"}
#: The ``ssl_*`` options passed on to redis-py; others are ignored, as kombu's transport does.
_SSL_KEYS = frozenset(
    {
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_password",
        "ssl_min_version",
        "ssl_ciphers",
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class RedisURLError(BadURL, ValueError):
    """A Redis URL taskwatch cannot use; ``str()`` is one masked line."""


@dataclass(frozen=True)
class RedisTarget:
    """One server to connect to (or, for ``sentinel://``, the sentinels that know it)."""

    host: str | None
    port: int | None
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: redis-py's ``ssl`` / ``ssl_*`` keyword arguments; None: no TLS
    ssl: Mapping[str, Any] | None = field(default=None, repr=False)
    unix_socket: str | None = None
    #: ``(host, port)`` of every sentinel, for a ``sentinel://`` URL
    sentinels: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class RedisURL:
    """A whole Redis URL: its failover targets and kombu's transport options for it."""

    url: str = field(repr=False)
    #: kombu's ``a;b`` failover list, in order; one target for ``sentinel://``
    targets: tuple[RedisTarget, ...]
    #: the ``global_keyprefix`` transport option
    key_prefix: str = ""
    #: the ``master_name`` transport option (``sentinel://`` only)
    master_name: str | None = None
    sentinel_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def db(self) -> int:
        return self.targets[0].db

    @property
    def masked(self) -> str:
        return mask_url(self.url)


def parse_bool(value: Any, name: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case), or a bool; else ValueError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def parse_redis_url(
    url: str,
    transport_options: Mapping[str, Any] | None = None,
    *,
    ssl_options: Mapping[str, Any] | None = None,
    what: str = "Redis URL",
) -> RedisURL:
    """Parse ``url`` (any form in the module docstring) with kombu's transport options.

    ``ssl_options``: TLS options given apart from the URL (``broker_use_ssl``),
    over the URL's own. ``what`` names the URL in errors ("broker URL", ...).
    Raises :class:`RedisURLError`.
    """
    options = dict(transport_options or {})

    def bad(reason: str) -> RedisURLError:
        return RedisURLError(
            clean(f"bad {what} {mask_url(url)!r}: {reason}", 400, single_line=True)
        )

    parts = [u.strip() for u in (url or "").split(";") if u.strip()]
    if not parts or "://" not in parts[0]:
        raise bad("expected redis://host:port/db")
    problem = url_problem(url)
    if problem:
        raise bad(problem)
    try:
        if _scheme(parts[0]) == "sentinel":
            targets = (_sentinel_target(parts, ssl_options),)
            master = options.get("master_name")
            if not master:
                raise ValueError("a sentinel:// URL needs the master_name transport option")
        else:
            targets = tuple(_target(part, ssl_options) for part in parts)
            master = None
    except ValueError as exc:
        raise bad(describe(exc)) from None
    return RedisURL(
        url=url,
        targets=targets,
        key_prefix=str(options.get("global_keyprefix") or ""),
        master_name=str(master) if master else None,
        sentinel_kwargs=dict(options.get("sentinel_kwargs") or {}),
    )


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].strip().lower()


def _split(url: str) -> tuple[Any, dict[str, str]]:
    parts = urlsplit(url)  # ValueError for an unclosed [ of an IPv6 address
    return parts, dict(parse_qsl(parts.query))


def _target(url: str, ssl_options: Mapping[str, Any] | None) -> RedisTarget:
    scheme = _scheme(url)
    if scheme == "sentinel":
        raise ValueError("sentinel:// after a server URL (a sentinel list must be all sentinels)")
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"{scheme}:// is not a Redis URL")
    parts, query = _split(url)
    username, password = _credentials(parts, query)
    if scheme in _SOCKET_SCHEMES:
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"expected {scheme}:///path/to/socket")
        return RedisTarget(None, None, _db("", query), username, password,
                           _ssl(scheme, query, ssl_options), unix_socket=path)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("bad port") from None
    return RedisTarget(
        host=unquote(parts.hostname) if parts.hostname else "localhost",
        port=port or DEFAULT_PORT,
        db=_db(parts.path, query),
        username=username,
        password=password,
        ssl=_ssl(scheme, query, ssl_options),
    )


def _sentinel_target(urls: list[str], ssl_options: Mapping[str, Any] | None) -> RedisTarget:
    """The sentinels of ``sentinel://a;sentinel://b``; db and credentials from the first."""
    first, query = _split(urls[0])
    sentinels: list[tuple[str, int]] = []
    for item in urls:
        if _scheme(item) != "sentinel":
            raise ValueError(f"{_scheme(item)}:// in a list of sentinel:// URLs")
        parts = urlsplit(item)
        try:
            port = parts.port
        except ValueError:
            raise ValueError("bad port") from None
        sentinels.append((unquote(parts.hostname or "") or "localhost", port or DEFAULT_SENTINEL_PORT))
    username, password = _credentials(first, query)
    return RedisTarget(
        host=None,
        port=None,
        db=_db(first.path, query),
        username=username,
        password=password,
        ssl=_ssl("sentinel", query, ssl_options),
        sentinels=tuple(sentinels),
    )


def _credentials(parts: Any, query: Mapping[str, str]) -> tuple[str | None, str | None]:
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else query.get("password") or None
    return username, password


def _db(path: str, query: Mapping[str, str]) -> int:
    """The path (``/3``), else ``?db=``, else ``?virtual_host=``, else 0; an integer >= 0."""
    text = path.strip("/")
    if not text:
        text = (query.get("db") or query.get("virtual_host") or "").strip("/")
    if not text:
        return 0
    try:
        db = int(text)
    except ValueError:
        raise ValueError(f"the database must be a number, not {text!r}") from None
    if db < 0:
        raise ValueError(f"the database must not be negative: {db}")
    return db


def _ssl(
    scheme: str, query: Mapping[str, str], ssl_options: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    given = {k: v for k, v in query.items() if k.startswith("ssl_")}
    given.update(ssl_options or {})
    if scheme != "rediss" and not given:
        return None
    ssl: dict[str, Any] = {"ssl": True}
    for key, value in given.items():
        if key not in _SSL_KEYS:
            continue
        if key == "ssl_cert_reqs" and value is not None:
            value = _cert_reqs(value)
        elif key == "ssl_check_hostname":
            value = parse_bool(value, key)
        ssl[key] = value
    if ssl.get("ssl_cert_reqs") == "none":
        # Python refuses CERT_NONE with hostname checks on.
        ssl.setdefault("ssl_check_hostname", False)
    return ssl


def _cert_reqs(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in _CERT_REQS_CONSTANTS:
        return _CERT_REQS_CONSTANTS[int(value)]
    if isinstance(value, str) and value.strip().lower() in _CERT_REQS:
        return _CERT_REQS[value.strip().lower()]
    raise ValueError("ssl_cert_reqs must be one of required, optional, none")


# -- clients ------------------------------------------------------------------


def fail_fast(timeout: float, read_timeout: float | None = None) -> dict[str, Any]:
    """Connection keyword arguments for ``redis.Redis`` (and ``Sentinel``).

    ``timeout`` bounds connecting; ``read_timeout`` (default: the same)
    bounds a reply that stops half-way.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout if read_timeout is None else read_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "protocol": 2,
    }


def connect(
    parsed: RedisURL,
    target: RedisTarget | None = None,
    *,
    timeout: float,
    read_timeout: float | None = None,
    keepalive: bool = False,
    **extra: Any,
) -> redis.Redis:
    """A fail-fast client for ``target`` (default: the first of ``parsed``).

    A sentinel target is resolved to its master first (the sentinels are
    asked with the same timeouts; a master they do not know is a
    ``redis.ConnectionError`` naming it). ``keepalive`` turns TCP keepalive
    on (not for Unix sockets); ``extra`` goes to ``redis.Redis``
    (``client_name``, ``max_connections``, ...). Nothing is sent until the
    first command.
    """
    import redis

    target = target or parsed.targets[0]
    common = {**fail_fast(timeout, read_timeout), **extra}
    auth = {"username": target.username, "password": target.password, "db": target.db}
    if target.unix_socket:
        return redis.Redis(unix_socket_path=target.unix_socket, **auth, **common)
    host, port = target.host, target.port
    if target.sentinels:
        host, port = _resolve_master(parsed, target, timeout)
    if keepalive:
        common["socket_keepalive"] = True
    return redis.Redis(host=host, port=port, **auth, **(target.ssl or {}), **common)


def _resolve_master(parsed: RedisURL, target: RedisTarget, timeout: float) -> tuple[str, int]:
    import redis
    from redis.sentinel import MasterNotFoundError, Sentinel

    sentinel = Sentinel(
        list(target.sentinels), sentinel_kwargs={**fail_fast(timeout), **parsed.sentinel_kwargs}
    )
    try:
        host, port = sentinel.discover_master(parsed.master_name)
    except MasterNotFoundError as exc:
        raise redis.ConnectionError(
            f"sentinels know no master {parsed.master_name!r}: {describe(exc)}"
        ) from None
    finally:
        _close_sentinel(sentinel)
    return str(host), int(port)


def _close_sentinel(sentinel: Any) -> None:
    close = getattr(sentinel, "close", None)  # redis-py >= 8.1
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - closing only
            pass
        return
    for node in getattr(sentinel, "sentinels", ()):
        try:
            node.close()
        except Exception:  # noqa: BLE001 - closing only
            pass


_T = TypeVar("_T", str, bytes)
_GLOB = re.compile(r"([*?\[\]\\])")
_GLOB_BYTES = re.compile(rb"([*?\[\]\\])")


def glob_escape(text: _T) -> _T:
    """``text`` with Redis glob characters (``* ? [ ] \\``) escaped, for MATCH and PSUBSCRIBE."""
    if isinstance(text, bytes):
        return _GLOB_BYTES.sub(rb"\\\1", text)
    return _GLOB.sub(r"\\\1", text)
