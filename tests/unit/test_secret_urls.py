"""Passwords with unencoded URL delimiters: masked whole, refused with a reason that quotes none of them."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from taskwatch.config import ConfigError, Settings
from taskwatch.sources.errors import describe
from taskwatch.text import forget_secrets, mask_secrets, mask_url, remember_secrets, url_problem

NASTY = "p@ss/w#rd?x:y%z"


@pytest.fixture(autouse=True)
def _no_remembered_secrets():
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:S3cr/TailPW@host", "redis://:****@host"),
        ("redis://:p@ss/w#rd@h", "redis://:****@h"),
        ("redis://:se/cr#et@h/2", "redis://:****@h/2"),
        (f"redis://:{NASTY}@127.0.0.1:6379/0", "redis://:****@127.0.0.1:6379/0"),
        ("redis://:a;b@h/0", "redis://:****@h/0"),
        ("redis://:a@b;redis://:c;d@e", "redis://:****@b;redis://:****@e"),
        ("postgresql://u:se/cr?et@h/db", "postgresql://u:****@h/db"),
        # found by the property below: a ';' then 'scheme://' inside the password
        ("redis://u:;Zq9x://@h:5/db", "redis://u:****@h:5/db"),
        ("redis://h:6379;redis://:pw@h2", "redis://h:6379;redis://:****@h2"),
    ],
)
def test_an_unencoded_password_is_masked_whole(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "redis://:S3cr/TailPW@host",
        "redis://:p@ss/w#rd@h",
        "redis://:se/cr#et@h/2",
        f"redis://:{NASTY}@h/0",
        "redis://:1234/abc@h/0",  # would be port 1234, db 'abc@h/0'
        "redis://:pa;ss@h/0",  # kombu splits at every ';'
        "amqp://u:a?b@h//",
        "http://guest:a#b@rabbit:15672",
        "postgresql://u:pa@ss@h/db",  # SQLAlchemy ends the password at the first '@'
        "mongodb://u:a/b@h/db",
        "redis://u:;Zq9x://@h:5/db",  # kombu: 'redis://u:' then 'Zq9x://@h:5/db'
    ],
)
def test_credentials_that_parsers_would_misread_are_a_problem_that_quotes_nothing(url):
    problem = url_problem(url)
    assert problem is not None and "percent-encode" in problem
    assert not any(piece in problem for piece in ("S3cr", "TailPW", "cr#et", "abc", "pa;ss", "a?b", "a#b"))


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pa@ss@h/0",  # urllib, kombu and redis-py end the userinfo at the last '@'
        "redis://:p%40ss%2Fw%23rd%3Fx%3Ay%25z@h/0",
        "amqp://guest:guest@localhost:5672//",
        "sqlite:////home/me@corp/jobs.sqlite",  # no host part, so no password
        "redis://h:6379/0",
        "redis://a:1/1;redis://:pw@b:2/2",  # kombu's failover list
        "",
    ],
)
def test_urls_every_parser_reads_alike_have_no_problem(url):
    assert url_problem(url) is None


def test_settings_refuse_a_misread_password_naming_the_setting_not_the_password():
    settings = Settings(broker_url="redis://h/0", jobstores=("redis://:se/cr#et@h/2",))
    with pytest.raises(ConfigError) as caught:
        settings.check_urls()
    assert str(caught.value) == (
        "bad job store URL 'redis://:****@h/2': the password contains '/', '#', '?' or ';' "
        "(or the URL an '@' after its host): percent-encode it (%2F, %23, %3F, %3B, %40)"
    )


def test_settings_repr_masks_every_url():
    settings = Settings(broker_url=f"redis://:{NASTY}@h/0", jobstores=("redis://:Secret99@h/2",),
                        rabbitmq_api="http://g:Secret98@r:15672")
    shown = repr(settings)
    assert "Secret99" not in shown and "Secret98" not in shown and "w#rd" not in shown
    assert "redis://:****@h/0" in shown


def test_a_remembered_password_is_masked_in_any_message():
    remember_secrets("redis://:Tail/Pw99#Zz@h/0")
    assert mask_secrets("Port could not be cast to integer value as 'Tail/Pw99#Zz'") == (
        "Port could not be cast to integer value as '****'"
    )
    assert "Pw99" not in mask_secrets("connecting to Tail/Pw99#Zz@h failed")


def test_a_password_equal_to_its_user_name_is_not_remembered():
    remember_secrets("amqp://guest:guest@h//")
    assert mask_secrets("user 'guest' refused") == "user 'guest' refused"


class WrongPass(Exception):
    pass


@pytest.mark.parametrize(
    "exc",
    [
        __import__("redis").AuthenticationError("invalid username-password pair or user is disabled."),
        WrongPass("WRONGPASS invalid username-password pair or user is disabled."),
        WrongPass("(0, 0): (403) ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN."),
        WrongPass('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication '
                  'failed for user "postgres"'),
        WrongPass("(1045, \"Access denied for user 'root'@'localhost' (using password: YES)\")"),
        WrongPass("Authentication failed., full error: {'ok': 0.0, 'code': 18}"),
    ],
)
def test_a_refused_password_reads_authentication_failed(exc):
    text = describe(exc)
    assert "authentication failed" in text.lower()
    assert text.lower().count("authentication failed") == 1 or "password authentication" in text


def test_a_wrapped_refusal_is_found_through_the_cause():
    try:
        try:
            raise __import__("redis").AuthenticationError("invalid password")
        except Exception as inner:
            raise OSError("connection lost") from inner
    except OSError as outer:
        assert describe(outer) == "authentication failed: connection lost"


def test_an_outage_is_not_called_an_authentication_failure():
    assert describe(ConnectionRefusedError(111, "Connection refused")) == "[Errno 111] Connection refused"


# -- properties: any password, every URL kind ------------------------------------------------------

MARK = "ZQXJ"  # in every generated password, nowhere else
passwords = st.builds(lambda a, b: a + MARK + b, *(st.text(alphabet="@/#?:%;,'\" abc", max_size=8),) * 2)
PROPERTY = settings(max_examples=300, deadline=None, database=None)


@PROPERTY
@given(password=passwords, user=st.sampled_from(["", "u", "guest"]),
       scheme=st.sampled_from(["redis", "rediss", "amqp", "http", "postgresql", "db+postgresql", "mongodb"]),
       tail=st.sampled_from(["h", "h:6379/0", "h/0?ssl_cert_reqs=none", "h//", "[::1]:5/db"]))
# found by hypothesis: kombu's ';' split made 'redis://:@' and 'ZQXJ://@h', neither masked
@example(password="@;ZQXJ://", user="", scheme="redis", tail="h")
@example(password="@;ZQXJ://", user="u", scheme="redis", tail="h")
def test_no_password_survives_masking(password, user, scheme, tail):
    url = f"{scheme}://{user}:{password}@{tail}"
    assert MARK not in mask_url(url)
    assert MARK not in mask_url(f"redis://h/0;{url}")
    if not any(c in password for c in " '\""):  # free text ends a URL at a space or a quote
        assert MARK not in mask_secrets(f"Error connecting to {url}: refused, and {url!r}")


@PROPERTY
@given(password=passwords, scheme=st.sampled_from(["redis", "amqp", "http", "postgresql"]))
@example(password="@;ZQXJ://", scheme="redis")  # found by hypothesis: kombu's ';' split left 'redis://u:@'
def test_an_accepted_url_means_the_password_that_was_masked(password, scheme):
    """When taskwatch takes a URL, the library that connects reads the whole password from it."""
    url = f"{scheme}://u:{password}@h:5/db"
    if url_problem(url) is not None:
        return
    if scheme == "postgresql":
        from sqlalchemy.engine import make_url

        assert make_url(url).password == unquote(password)
    else:
        assert urlsplit(url).password == password
