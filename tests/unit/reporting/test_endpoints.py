"""The endpoint statistics against computations of their own: the Welch interval from its textbook formula,
the Hodges-Lehmann shift by brute force in plain Python, the summaries from the standard library."""

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.reports.endpoints import hodges_lehmann, summarize, welch
from tests.by_hand import hodges_lehmann_by_hand, welch_by_formula

FG_HT = [78.4, 81.2, 85.0, 90.1, 76.3, 88.8, 83.5, 79.9, 86.2, 91.4]
HT = [70.2, 74.8, 69.5, 80.1, 72.3, 77.7, 75.0, 68.4, 73.9]


def test_the_welch_interval_equals_its_textbook_formula() -> None:
    result = welch(FG_HT, HT)
    assert result is not None
    expected = welch_by_formula(FG_HT, HT)
    assert (result.estimate, result.ci_low, result.ci_high) == tuple(round(x, 2) for x in expected)


def test_the_hodges_lehmann_shift_equals_the_brute_force_median_of_pairwise_differences() -> None:
    result = hodges_lehmann(FG_HT, HT)
    assert result is not None
    assert (result.estimate, result.ci_low, result.ci_high) == tuple(
        round(x, 2) for x in hodges_lehmann_by_hand(FG_HT, HT)
    )


def test_small_untied_samples_take_the_exact_interval_and_say_so() -> None:
    fg_ht, ht = [62.0, 71.5, 80.0, 84.5, 90.0], [55.0, 60.5, 66.0, 70.0]  # n = 5 and 4, as at an interim look
    shift = hodges_lehmann(fg_ht, ht)
    assert shift is not None and shift.interval == "exact Mann-Whitney distribution"
    assert (shift.estimate, shift.ci_low, shift.ci_high) == tuple(
        round(x, 2) for x in hodges_lehmann_by_hand(fg_ht, ht)
    )
    # The large-sample bound at these sizes cuts one difference fewer from each end than the exact one.
    differences = sorted(x - y for x in fg_ht for y in ht)
    assert (shift.ci_low, shift.ci_high) == (differences[1], differences[-2])
    tied = hodges_lehmann([*fg_ht, 55.0], ht)
    assert tied is not None and tied.interval == "large-sample normal approximation"


def test_arm_summaries_equal_the_standard_librarys() -> None:
    summary = summarize("FG_HT", FG_HT)
    q1, median, q3 = statistics.quantiles(FG_HT, n=4, method="inclusive")
    assert summary.n == 10
    assert summary.mean == round(statistics.fmean(FG_HT), 2)
    assert summary.sd == round(statistics.stdev(FG_HT), 2)
    assert (summary.q1, summary.median, summary.q3) == (round(q1, 2), round(median, 2), round(q3, 2))


@pytest.mark.parametrize("few", [[], [80.0]])
def test_too_few_subjects_give_no_comparison_rather_than_a_wrong_one(few: list[float]) -> None:
    assert welch(few, HT) is None and hodges_lehmann(HT, few) is None
    assert summarize("HT", few).n == len(few)


# Up to 8 a side: the by-hand exact interval enumerates every split of the ranks (C(16, 8) = 12,870).
values = st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_each_interval_contains_its_estimate_and_matches_the_independent_computation(
    a: list[float], b: list[float]
) -> None:
    shift = hodges_lehmann(a, b)
    assert shift is not None and shift.ci_low <= shift.estimate <= shift.ci_high
    # To the printed precision (two decimals; float summation order may differ in the last bit).
    expected = hodges_lehmann_by_hand(a, b)
    assert [shift.estimate, shift.ci_low, shift.ci_high] == pytest.approx(expected, abs=0.0051)
    mean_difference = welch(a, b)
    if statistics.variance(a) + statistics.variance(b) == 0:
        assert mean_difference is None, "no spread: no interval rather than a NaN one"
    else:
        assert mean_difference is not None
        assert mean_difference.ci_low <= mean_difference.estimate <= mean_difference.ci_high
