"""bench/tta_oracle.py: the knapsack behind the information bound and the oracle, on rates worked by hand."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import tta_oracle  # noqa: E402  (bench/ is not a package)


def prefix(rates: list[float]) -> list[float]:
    sums = [0.0]
    for rate in rates:
        sums.append(sums[-1] + rate)
    return sums


def test_the_knapsack_covers_the_top_stories_every_q_days_and_the_rest_within_the_period():
    # 4 stories, 2 a day to spend, each at least every 10 days (0.4 a day): 1.6 a day left, at q = 1 day
    # (0.9 more a day each) 1.6 / 0.9 = 1.78 stories: the first whole, 0.78 of the second.
    ranked = [6.0, 2.0, 1.0, 1.0]
    share = tta_oracle.covered(ranked, prefix(ranked), 1.0, 2.0, 10.0)
    top = 6.0 + 2.0 * (1.6 / 0.9 - 1)
    assert share == pytest.approx((top + (10.0 - top) * 1 / 10) / 10.0)
    assert tta_oracle.covered(ranked, prefix(ranked), 10.0, 2.0, 10.0) == 1.0  # q at the period: everything


def test_a_tight_budget_stretches_the_period_rather_than_overspending():
    ranked = [1.0] * 100
    # 5 revisits a day for 100 stories: every 20 days at best, not the period of 10
    assert tta_oracle.covered(ranked, prefix(ranked), 4.0, 5.0, 10.0) == pytest.approx(4.0 / 20.0)


def test_knowing_more_never_raises_the_bound():
    true = {i: rate for i, rate in enumerate([5.0, 3.0, 1.0, 0.5, 0.2, 0.1, 0.1, 0.05] * 50)}
    perfect = tta_oracle.least_p95(sorted(true.values(), reverse=True), 60.0, 30.0, 30.0, 0.7)
    nothing = tta_oracle.least_p95(tta_oracle.ranked_rates(true, dict.fromkeys(true, 0.0)), 60.0, 30.0, 30.0, 0.7)
    half = tta_oracle.least_p95(tta_oracle.ranked_rates(true, {i: float(r > 0.3) for i, r in true.items()}),
                                60.0, 30.0, 30.0, 0.7)
    assert perfect < half < nothing
    # knowing nothing, every story alike: 400 stories at 60 a day, every 6.67 days; the tail share of
    # old edits at q is 1 - q / 6.67, and 0.7 * (1 - q / 30) * (1 - q / 6.67) = 0.05 at q = 6.07 days
    assert nothing == pytest.approx(6.07, abs=0.01)


def test_ties_count_at_their_group_mean():
    assert tta_oracle.ranked_rates({1: 4.0, 2: 0.0, 3: 2.0}, {1: 1.0, 2: 1.0, 3: 5.0}) == [2.0, 2.0, 2.0]


def test_the_oracle_intervals_spend_the_revisits_it_is_given():
    true = {i: 1.0 / (i + 1) for i in range(1000)}
    intervals = tta_oracle.knapsack_intervals(true, 2.0, 200.0, 30.0)
    assert sum(1 / days for days in intervals.values()) == pytest.approx(200.0, rel=0.01)
    assert intervals[0] == 2.0 and intervals[999] == 30.0  # the highest rate most often
