import pytest

from taskwatch.text import clean, mask_secrets, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:****@h:6379/0"),
        ("amqp://guest:guest@localhost:5672//", "amqp://guest:****@localhost:5672//"),
        ("rediss://user:p@ss@h/1", "rediss://user:****@h/1"),
        (
            "sentinel://:pw@a:26379;sentinel://:pw@b:26379",
            "sentinel://:****@a:26379;sentinel://:****@b:26379",
        ),
        ("redis://h/0?password=abc&db=1", "redis://h/0?password=****&db=1"),
        ("db+postgresql://scott:tiger@db/celery", "db+postgresql://scott:****@db/celery"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://user@h/0", "redis://user@h/0"),
        (None, ""),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_secrets_in_free_text():
    message = "Error connecting to amqp://svc:hunter2@rabbit:5672// (and redis://:x@r/0)"
    masked = mask_secrets(message)
    assert "hunter2" not in masked and ":x@" not in masked
    assert "amqp://svc:****@rabbit:5672//" in masked


def test_clean_strips_terminal_control_sequences():
    hostile = "a\x1b]0;owned\x07b\x1b[31mred\x1b[0m\x00c\x9b2Jd\x1bPdcs\x1b\\e\x1b]8;;http://x\x1b\\f\x07g"
    assert clean(hostile) == "abredcdefg"


def test_clean_keeps_markup_characters_as_data():
    assert clean("[bold red]X[/]") == "[bold red]X[/]"


def test_clean_single_line_and_limit():
    assert clean("a\nb\tc", single_line=True) == "a b c"
    assert clean("x" * 10, limit=5) == "xxxx…"
    assert clean(b"\xff ok") == "\ufffd ok"
    assert clean(None) == ""


def test_mask_url_with_quotes_and_commas_in_the_password():
    from taskwatch.text import mask_url

    assert mask_url("redis://:Xk9,p'Q2@cache.internal:6379/0") == "redis://:****@cache.internal:6379/0"
    assert mask_url('amqp://guest:gu"e,st@h//') == "amqp://guest:****@h//"
    assert mask_url("redis://:a@b;redis://:c,d@e") == "redis://:****@b;redis://:****@e"
    assert mask_url("redis://u@h/0") == "redis://u@h/0"  # a user alone is not a secret
    assert mask_url("amqp://u:p@host/vh@x") == "amqp://u:****@x"  # ambiguous: more masked, never less


def test_shorten_words_cuts_long_words_in_the_middle_and_keeps_the_rest():
    from taskwatch.text import shorten_words

    text = "bad URL 'redis://" + "a" * 100_000 + "/0': label too long"
    short = shorten_words(text)
    assert short.startswith("bad URL 'redis://aaa") and short.endswith("/0': label too long")
    assert len(short) < 120
    assert shorten_words("short words stay") == "short words stay"
