"""Every Redis URL form taskwatch accepts, and every way one can be wrong (pure parsing)."""

from __future__ import annotations

import ssl

import pytest

from taskwatch.sources.broker import BadURL
from taskwatch.sources.redis_url import (
    RedisTarget,
    RedisURLError,
    glob_escape,
    parse_bool,
    parse_redis_url,
)

SENTINEL = {"master_name": "mymaster"}

# (url, transport options, ssl options given apart, expected targets, expected key prefix)
FORMS = [
    ("redis://localhost", None, None, [RedisTarget("localhost", 6379, 0)], ""),
    ("redis://", None, None, [RedisTarget("localhost", 6379, 0)], ""),
    ("redis://h:6380/3", None, None, [RedisTarget("h", 6380, 3)], ""),
    ("redis://h/", None, None, [RedisTarget("h", 6379, 0)], ""),
    ("redis://h?db=4", None, None, [RedisTarget("h", 6379, 4)], ""),
    ("redis://h?virtual_host=5", None, None, [RedisTarget("h", 6379, 5)], ""),
    ("redis://h/2?db=4", None, None, [RedisTarget("h", 6379, 2)], ""),  # the path wins
    ("redis://:s%40cret@h/1", None, None, [RedisTarget("h", 6379, 1, None, "s@cret")], ""),
    ("redis://alice:pw@h/1", None, None, [RedisTarget("h", 6379, 1, "alice", "pw")], ""),
    ("redis://h/1?password=pw", None, None, [RedisTarget("h", 6379, 1, None, "pw")], ""),
    ("redis://[::1]:7000/0", None, None, [RedisTarget("::1", 7000, 0)], ""),
    (
        "redis://h/0",
        {"global_keyprefix": "shop:"},
        None,
        [RedisTarget("h", 6379, 0)],
        "shop:",
    ),
    (
        "rediss://:pw@h:6380/0",
        None,
        None,
        [RedisTarget("h", 6380, 0, None, "pw", {"ssl": True})],
        "",
    ),
    (
        "rediss://h/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem"
        "&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_check_hostname=no",
        None,
        None,
        [
            RedisTarget(
                "h",
                6379,
                0,
                ssl={
                    "ssl": True,
                    "ssl_cert_reqs": "required",
                    "ssl_ca_certs": "/ca.pem",
                    "ssl_certfile": "/c.pem",
                    "ssl_keyfile": "/k.pem",
                    "ssl_check_hostname": False,
                },
            )
        ],
        "",
    ),
    (
        "rediss://h/0?ssl_cert_reqs=CERT_NONE",
        None,
        None,
        [RedisTarget("h", 6379, 0, ssl={"ssl": True, "ssl_cert_reqs": "none",
                                         "ssl_check_hostname": False})],
        "",
    ),
    (
        "rediss://h/0?ssl_cert_reqs=none&ssl_check_hostname=TRUE",
        None,
        None,
        [RedisTarget("h", 6379, 0, ssl={"ssl": True, "ssl_cert_reqs": "none",
                                         "ssl_check_hostname": True})],
        "",
    ),
    (  # kombu: an ssl_* option turns TLS on for redis:// too
        "redis://h/0?ssl_cert_reqs=optional",
        None,
        None,
        [RedisTarget("h", 6379, 0, ssl={"ssl": True, "ssl_cert_reqs": "optional"})],
        "",
    ),
    (  # broker_use_ssl, given apart, over the URL's own
        "redis://h/0?ssl_cert_reqs=optional",
        None,
        {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.pem"},
        [RedisTarget("h", 6379, 0, ssl={"ssl": True, "ssl_cert_reqs": "required",
                                         "ssl_ca_certs": "/ca.pem"})],
        "",
    ),
    ("unix:///run/redis.sock", None, None,
     [RedisTarget(None, None, 0, unix_socket="/run/redis.sock")], ""),
    ("redis+socket:///run/redis.sock?virtual_host=3", None, None,
     [RedisTarget(None, None, 3, unix_socket="/run/redis.sock")], ""),
    ("socket:///run/redis.sock?db=2", None, None,
     [RedisTarget(None, None, 2, unix_socket="/run/redis.sock")], ""),
    ("unix://:pw@/run/redis.sock", None, None,
     [RedisTarget(None, None, 0, None, "pw", unix_socket="/run/redis.sock")], ""),
    (
        "sentinel://:pw@s1:26380/2;sentinel://s2;sentinel://s3:26381",
        SENTINEL,
        None,
        [RedisTarget(None, None, 2, None, "pw",
                     sentinels=(("s1", 26380), ("s2", 26379), ("s3", 26381)))],
        "",
    ),
    (
        "redis://a:1/1;redis://:pw@b:2/2;unix:///c.sock",
        None,
        None,
        [
            RedisTarget("a", 1, 1),
            RedisTarget("b", 2, 2, None, "pw"),
            RedisTarget(None, None, 0, unix_socket="/c.sock"),
        ],
        "",
    ),
    ("redis://a; ;redis://b;", None, None,
     [RedisTarget("a", 6379, 0), RedisTarget("b", 6379, 0)], ""),
]


@pytest.mark.parametrize(("url", "options", "ssl_options", "targets", "prefix"), FORMS)
def test_every_form_parses_to_its_targets(url, options, ssl_options, targets, prefix):
    parsed = parse_redis_url(url, options, ssl_options=ssl_options)
    assert list(parsed.targets) == targets
    for got, want in zip(parsed.targets, targets, strict=True):
        assert got.password == want.password and got.ssl == want.ssl  # not in ==/repr
    assert parsed.key_prefix == prefix
    assert parsed.db == targets[0].db
    assert parsed.master_name == (options or {}).get("master_name")


def test_sentinel_kwargs_come_from_the_transport_options():
    parsed = parse_redis_url("sentinel://s1", {**SENTINEL, "sentinel_kwargs": {"password": "x"}})
    assert parsed.sentinel_kwargs == {"password": "x"}


# (url, transport options, ssl options given apart, words the one-line error must hold)
ERRORS = [
    ("", None, None, ["expected redis://"]),
    ("localhost:6379", None, None, ["expected redis://"]),
    ("redis://:hunter2@h/notanumber", None, None, ["must be a number", "'notanumber'"]),
    ("redis://:hunter2@h/-1", None, None, ["must not be negative"]),
    ("redis://:hunter2@h?db=x", None, None, ["must be a number"]),
    ("socket:///s.sock?virtual_host=x", None, None, ["must be a number"]),
    ("redis://:hunter2@h:notaport/0", None, None, ["bad port"]),
    ("redis://:hunter2@[::1/0", None, None, ["bad"]),
    ("amqp://:hunter2@h//", None, None, ["amqp:// is not a Redis URL"]),
    ("redis://:hunter2@a;amqp://b", None, None, ["amqp:// is not a Redis URL"]),
    ("unix://relative.sock", None, None, ["expected unix:///path"]),
    ("sentinel://:hunter2@s1;sentinel://s2", None, None, ["master_name"]),
    ("sentinel://:hunter2@s1;redis://r", SENTINEL, None, ["redis:// in a list of sentinel"]),
    ("redis://:hunter2@r;sentinel://s1", SENTINEL, None, ["sentinel:// after a server URL"]),
    ("rediss://:hunter2@h/0?ssl_check_hostname=maybe", None, None, ["ssl_check_hostname", "true or false"]),
    ("rediss://:hunter2@h/0?ssl_cert_reqs=sometimes", None, None, ["ssl_cert_reqs must be one of"]),
    ("redis://:hunter2@h/0", None, {"ssl_cert_reqs": 7}, ["ssl_cert_reqs must be one of"]),
]


@pytest.mark.parametrize(("url", "options", "ssl_options", "words"), ERRORS)
def test_a_bad_url_is_one_masked_line(url, options, ssl_options, words):
    with pytest.raises(RedisURLError) as caught:
        parse_redis_url(url, options, ssl_options=ssl_options, what="broker URL")
    message = str(caught.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith("bad broker URL ")
    for word in words:
        assert word in message
    # Callers catch it as a bad URL or as a ValueError (the event receiver's constructor).
    assert isinstance(caught.value, BadURL) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("word", "value"),
    [("true", True), ("Yes", True), ("ON", True), ("1", True), (True, True),
     ("false", False), ("no", False), ("Off", False), ("0", False), (False, False)],
)
def test_one_boolean_parser(word, value):
    assert parse_bool(word, "x") is value


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("plain", "plain"), ("a*b?c", "a\\*b\\?c"), ("[x]\\", "\\[x\\]\\\\"),
     (b"celery-task-meta-", b"celery-task-meta-"), (b"p[1]*", b"p\\[1\\]\\*")],
)
def test_one_glob_escape_for_text_and_bytes(text, escaped):
    assert glob_escape(text) == escaped
