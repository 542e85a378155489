"""The stratified cluster bootstrap, percentile intervals and the paired difference test (eval/stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.eval.stats import bootstrap_mean, cluster_bootstrap, paired_difference, percentile_interval


def test_resamples_keep_each_stratum_size_and_are_seeded() -> None:
    strata = ["a"] * 5 + ["b"] * 3
    clusters = [str(i) for i in range(8)]
    first = list(cluster_bootstrap(strata, clusters, n_boot=50, seed=1))
    again = list(cluster_bootstrap(strata, clusters, n_boot=50, seed=1))
    assert len(first) == 50
    for (rows, ids), (rows2, _) in zip(first, again, strict=True):
        assert np.array_equal(rows, rows2)
        assert (rows[:5] < 5).all() and (rows[5:] >= 5).all()  # rows never cross strata
        assert len(np.unique(ids)) == 8  # every draw is a fresh cluster
    other = list(cluster_bootstrap(strata, clusters, n_boot=50, seed=2))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_clusters_are_drawn_whole() -> None:
    # stratum "t": prompt 0 has two rows (ref and tied), prompt 1 has two rows
    strata = ["t", "t", "t", "t"]
    clusters = ["p0", "p0", "p1", "p1"]
    for rows, ids in cluster_bootstrap(strata, clusters, n_boot=30, seed=0):
        assert len(rows) == 4
        for k in np.unique(ids):
            members = sorted(rows[ids == k].tolist())
            assert members in ([0, 1], [2, 3])


def test_singleton_single_stratum_interval_matches_the_plain_bootstrap() -> None:
    values = (np.arange(40) % 3 == 0).astype(float)
    reps = [values[rows].mean() for rows, _ in cluster_bootstrap(["s"] * 40, [str(i) for i in range(40)],
                                                                 n_boot=2000, seed=0)]
    low, high = percentile_interval(np.array(reps))
    plain = bootstrap_mean(values, n_boot=2000, seed=0)
    assert low == pytest.approx(plain.low, abs=0.03) and high == pytest.approx(plain.high, abs=0.03)


def test_percentile_interval_ignores_nan_and_handles_empty() -> None:
    low, high = percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0, np.nan]), level=0.5)
    assert (low, high) == (1.5, 2.5)
    assert all(math.isnan(x) for x in percentile_interval(np.array([np.nan])))


def test_paired_difference() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.6, 0.02, 1000)
    b = a + 0.05 + rng.normal(0, 0.005, 1000)  # the same resamples: b is always ahead
    d = paired_difference(0.6, 0.65, a, b)
    assert d.diff == pytest.approx(0.05)
    assert 0.03 < d.low < 0.05 < d.high < 0.07
    assert d.p_value == 0.0
    same = paired_difference(0.6, 0.6, a, a)
    assert same.p_value == 1.0 and same.low == same.high == 0.0
    assert set(d.to_dict()) == {"diff", "ci95_low", "ci95_high", "p_value"}
