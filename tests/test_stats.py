from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from utg_pytest import stats

scores = st.lists(st.floats(min_value=-1, max_value=1), min_size=1, max_size=60)


def test_percentile_interpolates_like_numpy() -> None:
    values = [0.1, 0.4, 0.2, 0.9]
    assert stats.percentile(values, 0) == 0.1
    assert stats.percentile(values, 100) == 0.9
    assert stats.percentile(values, 50) == pytest.approx(0.3)
    assert stats.percentile(values, 90) == pytest.approx(0.75)


def test_empty_inputs_are_refused() -> None:
    for function in (stats.mean, stats.bootstrap_mean_ci):
        with pytest.raises(ValueError, match="no values"):
            function([])


@given(scores)
def test_interval_brackets_the_mean_and_is_deterministic(values: list[float]) -> None:
    low, high = stats.bootstrap_mean_ci(values)
    mean = stats.mean(values)
    assert min(values) - 1e-9 <= low <= mean + 1e-9
    assert mean - 1e-9 <= high <= max(values) + 1e-9 or math.isclose(high, mean)
    assert stats.bootstrap_mean_ci(values) == (low, high)


def test_interval_narrows_with_more_data() -> None:
    small = [0.1, 0.5, 0.3, 0.7] * 3
    large = small * 20
    low_s, high_s = stats.bootstrap_mean_ci(small)
    low_l, high_l = stats.bootstrap_mean_ci(large)
    assert high_l - low_l < (high_s - low_s) / 3


@given(st.integers(min_value=1, max_value=5000), st.data())
def test_wilson_interval_matches_scipy_and_stays_in_bounds(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    low, high = stats.wilson_interval(k, n)
    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low == pytest.approx(reference.low, abs=1e-9)
    assert high == pytest.approx(reference.high, abs=1e-9)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_interval_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="outside"):
        stats.wilson_interval(5, 3)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
