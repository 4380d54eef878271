"""Tab labels with counts stay within 80 columns."""

from __future__ import annotations

from taskwatch.engine.query import TAB_LABELS, TABS
from taskwatch.ui.format import count_label
from taskwatch.ui.widgets.tab_bar import TabBar


def test_count_labels():
    assert [count_label(n) for n in (0, 7, 4017, 9999, 10_000, 95_064, 999_499, 999_500, 1_234_567)] == [
        "0", "7", "4017", "9999", "10k", "95k", "999k", "1.0M", "1.2M"]


def test_six_tabs_with_large_counts_fit_80_columns():
    bar = TabBar([(t, TAB_LABELS[t]) for t in TABS], "all")
    counts = {"active": 8, "reserved": 9_999, "scheduled": 9_999, "failed": 9_999, "succeeded": 95_064,
              "all": 100_000}
    bar.set_counts(counts)
    text = bar.render().plain.rstrip()
    assert len(text) <= 80, text
    assert text.endswith("All 100k")
    bar.set_counts({"failed": 4017, "all": 95_064})  # room enough: exact
    assert bar.render().plain.rstrip().endswith("Failed 4,017  Succeeded  All 95,064")
