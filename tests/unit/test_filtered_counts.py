"""With a filter on, the tabs count what it matches beside the total: Failed 3/11 (issue 15 item 5)."""

from __future__ import annotations

from taskwatch.engine.query import (
    TAB_LABELS,
    TABS,
    in_tab,
    matches,
    select_tasks,
    select_with_counts,
    tab_counts,
)
from taskwatch.ui.widgets.tab_bar import TabBar
from tests.unit.test_query import random_state


def test_filtered_counts_count_the_matching_tasks_of_each_tab():
    state = random_state()
    for needle in ("PROCESS_REPORT", "name=shop.add", "id-0004"):
        for tab in ("failed", "all", "scheduled"):
            ids, totals, filtered = select_with_counts(state, tab, needle)
            assert ids == select_tasks(state, tab, needle)
            assert totals == tab_counts(state)
            wanted = [t for t in state.tasks.values()
                      if (t.name == needle[5:] if needle.startswith("name=") else matches(t, needle.lower()))]
            assert filtered == {tab: sum(in_tab(t, tab) for t in wanted) for tab in TABS}
            assert filtered["all"] < totals["all"]


def test_without_a_filter_there_are_no_filtered_counts():
    state = random_state()
    ids, totals, filtered = select_with_counts(state, "failed")
    assert ids == select_tasks(state, "failed") and totals == tab_counts(state) and filtered is None


def test_the_tab_bar_shows_filtered_of_total_only_with_a_filter():
    bar = TabBar([(t, TAB_LABELS[t]) for t in TABS], "failed")
    counts = dict.fromkeys(TABS, 0) | {"failed": 11, "succeeded": 40, "all": 51}
    bar.set_counts(counts)
    assert " Failed 11 " in bar.render().plain
    bar.set_counts(counts, dict.fromkeys(TABS, 0) | {"failed": 3, "all": 3})
    line = bar.render().plain
    assert " Failed 3/11 " in line and " Succeeded 0/40 " in line and len(line.rstrip()) <= 80
    bar.set_counts(counts)
    assert " Failed 11 " in bar.render().plain
