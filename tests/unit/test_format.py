"""Display helpers: one way to show a duration, a time, an age."""

from __future__ import annotations

from taskwatch.engine.state import KNOWN_STATES
from taskwatch.ui.format import (
    STATE_STYLES,
    clock_time,
    coarse_age,
    duration,
    precise_time,
    runtime_cell,
)


def test_durations_keep_three_significant_shapes():
    assert [duration(s) for s in (None, 0.0421, 3.25, 125, 7200)] == ["-", "42ms", "3.2s", "2m", "2.0h"]


def test_a_running_task_shows_whole_seconds_so_it_repaints_once_a_second():
    assert runtime_cell(3.7, running=True) == "3s"
    assert runtime_cell(3.7, running=False) == "3.7s"
    assert runtime_cell(None, running=True) == "-"


def test_times_out_of_range_show_a_question_mark_not_an_error():
    for show in (clock_time, precise_time):
        assert show(None) == "-"
        assert show(1e20) == "?"


def test_a_worker_seen_recently_is_seen_now():
    assert [coarse_age(s) for s in (None, 9.9, 35, 125, 7300)] == ["-", "now", "30s", "2m", "2h"]


def test_every_engine_state_has_a_style():
    from taskwatch.engine.entities import LOST  # not Celery's: no worker holds it, no outcome came

    assert set(STATE_STYLES) == {*KNOWN_STATES, LOST}


def test_a_long_task_name_loses_its_module_prefix_before_its_end():
    from taskwatch.ui.format import fit_name

    name = "myapp.tasks.process_report"
    assert fit_name(name, 40) == name
    assert fit_name(name, len(name)) == name
    assert fit_name(name, 21) == "…tasks.process_report"  # one module dropped is enough
    assert fit_name(name, 18) == "…process_report"  # 100 columns
    assert fit_name(name, 10) == "…process_…"  # the last part alone is cut only when it must be
    assert fit_name("undotted_but_long_name", 10) == "undotted_…"
    assert fit_name(name, 1) == "…" and fit_name(name, 0) == ""


def test_priorities_that_do_not_fit_end_in_an_ellipsis_never_half_a_pair():
    from taskwatch.ui.views.queues import fit_priorities

    assert fit_priorities({"0": 47, "3": 1, "6": 3}) == "0:47 3:1 6:3"
    assert fit_priorities({"0": 47, "3": 1, "6": 3, "9": 2}) == "0:47 3:1 6:3 …"
    assert fit_priorities({"0": 47, "3": 0}) == "0:47"  # empty lists are not shown
    assert fit_priorities({"0": 123456789012345}) == "…"


def test_a_run_shows_its_day_when_it_is_not_today_and_how_far_away_it_is():
    from datetime import datetime

    from taskwatch.ui.format import relative, run_day

    now = datetime(2026, 11, 30, 14, 0, 0).timestamp()  # a Monday, local time
    assert run_day(datetime(2026, 11, 30, 16, 5, 30).timestamp(), now) == "16:05:30"
    assert run_day(datetime(2026, 12, 1, 9, 0).timestamp(), now) == "Tue 09:00"
    assert run_day(datetime(2026, 12, 7, 9, 0).timestamp(), now) == "Dec 07 09:00"
    assert run_day(datetime(2026, 11, 29, 9, 0).timestamp(), now) == "Nov 29 09:00"
    assert relative(now + 3 * 3600 + 12 * 60 + 5, now) == "in 3h12m"
    assert relative(now + 45, now) == "in 45s"
    assert relative(now + 2 * 86400 + 4 * 3600, now) == "in 2d4h"
    assert relative(now - 200, now) == "3m20s ago"
