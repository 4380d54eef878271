from datetime import UTC, datetime, timedelta

import pytest

from taskwatch.cli_actions import Refused, parse_since

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "ago"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
                                           ("1.5h", 5400), (" 2H ", 7200)])
def test_since_takes_a_duration(text, ago):
    assert parse_since(text, NOW) == NOW - timedelta(seconds=ago)


def test_since_takes_an_iso_time_utc_unless_it_says():
    assert parse_since("2026-11-30T10:00:00", NOW) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert parse_since("2026-11-30T10:00:00+01:00", NOW) == datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "-2h", "2x", "\x1b[31m"])
def test_since_refuses_anything_else_in_one_line(text):
    with pytest.raises(Refused) as info:
        parse_since(text, NOW)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
