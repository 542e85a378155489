"""Bootstrap intervals, pairwise correctness (ties are wrong) and trivial length baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.eval.stats import Estimate, bootstrap_mean, length_baselines, pairwise_correct


def test_bootstrap_mean_value_and_interval() -> None:
    values = [1.0] * 70 + [0.0] * 30
    est = bootstrap_mean(values)
    assert est.value == pytest.approx(0.7, abs=1e-12)
    assert est.n == 100
    assert est.low < 0.7 < est.high
    # the normal approximation of the 95% interval is 0.7 ± 1.96·sqrt(0.7·0.3/100) = 0.7 ± 0.0898
    assert est.low == pytest.approx(0.7 - 0.0898, abs=0.02)
    assert est.high == pytest.approx(0.7 + 0.0898, abs=0.02)


def test_bootstrap_interval_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (25, 100, 400, 1600):
        est = bootstrap_mean((rng.random(n) < 0.6).astype(float))
        assert est.low <= est.value <= est.high
        widths.append(est.high - est.low)
    assert widths == sorted(widths, reverse=True)
    # width ∝ 1/sqrt(n): 64× the items, about 8× narrower
    assert widths[0] / widths[-1] == pytest.approx(8, rel=0.3)


def test_bootstrap_is_seeded() -> None:
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=4)
    assert a.value == b.value
    assert (a.low, a.high) != (b.low, b.high)


def test_bootstrap_level_and_constant_values() -> None:
    values = np.linspace(0, 1, 200)
    wide, narrow = bootstrap_mean(values, level=0.99), bootstrap_mean(values, level=0.5)
    assert wide.high - wide.low > narrow.high - narrow.low
    const = bootstrap_mean([2.5, 2.5, 2.5])
    assert (const.value, const.low, const.high, const.n) == (2.5, 2.5, 2.5, 3)


def test_bootstrap_empty_is_nan() -> None:
    est = bootstrap_mean([])
    assert est.n == 0
    assert math.isnan(est.value) and math.isnan(est.low) and math.isnan(est.high)


def test_estimate_formatting() -> None:
    est = Estimate(0.71234, 0.6, 0.8, 10)
    assert str(est) == "0.712 [0.600, 0.800]"
    assert est.to_dict() == {"value": 0.71234, "ci95_low": 0.6, "ci95_high": 0.8, "n": 10}


def test_pairwise_correct_counts_ties_as_wrong() -> None:
    out = pairwise_correct(np.array([1.0, 2.0, 3.0, -1.0]), np.array([0.0, 2.0, 4.0, -1.5]))
    assert out.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out.dtype == np.float64


def test_length_baselines_by_hand() -> None:
    # pairs (chosen, rejected): (10, 5) longer, (5, 5) tie, (7, 9) shorter, (3, 1) longer
    # longer-wins is right on 2 of 4, shorter-wins on 1 of 4; the tie counts as wrong for both
    assert length_baselines([10, 5, 7, 3], [5, 5, 9, 1]) == {"random": 0.5, "longer_wins": 0.5, "shorter_wins": 0.25}


def test_length_baselines_empty() -> None:
    out = length_baselines([], [])
    assert set(out) == {"random", "longer_wins", "shorter_wins"}
    assert all(math.isnan(v) for v in out.values())
