"""ArmoRM's closed-form parts against values worked out by hand: ridge on a 3×2 toy, penalty selection on a
1-d toy, Spearman with ties, and the verbosity debiasing rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.models.attribute_fit import (
    debias_transform,
    fit_objectives,
    rankdata,
    ridge,
    select_ridge,
    spearman,
    split_rows,
    verbosity_penalties,
)


def test_ridge_closed_form_on_a_3x2_toy() -> None:
    # X = [[1,0],[0,1],[1,1]], y = [1,2,3], α = 1: XᵀX + I = [[3,1],[1,3]], Xᵀy = [4,5],
    # (XᵀX + I)⁻¹ = [[3,-1],[-1,3]] / 8  ->  w = [12-5, -4+15] / 8 = [7/8, 11/8]
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    w = ridge(x, np.array([1.0, 2.0, 3.0]), 1.0)
    np.testing.assert_allclose(w, [7 / 8, 11 / 8], rtol=1e-12)


def test_ridge_matches_the_normal_equations_when_n_is_below_d() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 7)), rng.normal(size=4)
    expected = np.linalg.solve(x.T @ x + 0.3 * np.eye(7), x.T @ y)
    np.testing.assert_allclose(ridge(x, y, 0.3), expected, rtol=1e-9, atol=1e-12)


def test_penalty_selection_picks_the_lowest_validation_mse() -> None:
    # train x = [1, 2], y = [1, 2]: w(α) = Σxy / (Σx² + α) = 5 / (5 + α)
    # val x = 3, y = 1.5: predictions 15/(5+α) = 2.941, 2.5, 1.0 for α = 0.1, 1, 10
    # squared errors 2.075, 1.0, 0.25 -> α = 10, w = 1/3
    fit = select_ridge(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]), np.array([[3.0]]), np.array([1.5]),
                       alphas=[10.0, 0.1, 1.0])
    assert fit.alpha == 10.0
    np.testing.assert_allclose(fit.weights, [1 / 3])
    assert fit.val_mse[1.0] == pytest.approx(1.0) and fit.val_mse[10.0] == pytest.approx(0.25)
    assert fit.val_mse[0.1] == pytest.approx((1.5 - 15 / 5.1) ** 2)
    # a perfectly linear validation point prefers the smallest penalty
    assert select_ridge(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]), np.array([[3.0]]), np.array([3.0]),
                        alphas=[10.0, 0.1, 1.0]).alpha == 0.1


def test_objectives_skip_their_own_missing_labels() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    labels = np.stack([x @ [1.0, 0.0, 0.0], x @ [0.0, 2.0, 0.0]], axis=1)
    labels[::3, 0] = np.nan  # objective 0 is missing on a third of the rows, objective 1 nowhere
    fits = fit_objectives(x, labels, alphas=[1e-4, 1.0], val_fraction=0.25, seed=0)
    assert fits[0].n_train + fits[0].n_val == 26 and fits[1].n_train + fits[1].n_val == 40
    np.testing.assert_allclose(fits[0].weights, [1, 0, 0], atol=1e-3)
    np.testing.assert_allclose(fits[1].weights, [0, 2, 0], atol=1e-3)


def test_split_is_seeded_and_keeps_a_training_row() -> None:
    train, val = split_rows(10, 0.2, 42)
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    np.testing.assert_array_equal(split_rows(10, 0.2, 42)[1], val)
    assert len(split_rows(1, 0.2, 0)[0]) == 1


def test_spearman_with_ties_uses_average_ranks() -> None:
    np.testing.assert_array_equal(rankdata(np.array([10.0, 20.0, 20.0, 5.0])), [2, 3.5, 3.5, 1])
    assert spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 1.0, 4.0, 3.0])) == pytest.approx(0.6)
    assert math.isnan(spearman(np.ones(3), np.arange(3.0)))


def test_verbosity_debiasing_rule_on_a_toy() -> None:
    # columns (a, b, verbosity). r_v = [1, 2, 3, 4]; r_a = [.12, .19, .33, .385].
    # λ = 0 .. .05: r_a − λ r_v keeps the order of r_v -> ρ = 1.
    # λ = .075: [.045, .04, .105, .085] -> ranks [2, 1, 4, 3], Σd² = 4, ρ = 1 − 6·4/60 = 0.6 > 0.03.
    # λ = .1:   [.02, −.01, .03, −.015] -> ranks [3, 2, 4, 1], Σd² = 14, ρ = 1 − 84/60 = −0.4 ≤ 0.03 -> λ_a = 0.1.
    # r_b = 10 r_v: r_b − λ r_v = (10 − λ) r_v never loses its order -> λ_b stays 1; λ_verb = 1.
    r_v = np.array([1.0, 2.0, 3.0, 4.0])
    r = np.stack([np.array([0.12, 0.19, 0.33, 0.385]), 10 * r_v, r_v], axis=1)
    lam = verbosity_penalties(r, 2, threshold=0.03)
    np.testing.assert_allclose(lam, [0.1, 1.0, 1.0])
    t = debias_transform(lam, 2)
    np.testing.assert_allclose(t, [[1, 0, 0], [0, 1, 0], [-0.1, -1.0, 0.0]])
    debiased = r @ t
    np.testing.assert_allclose(debiased[:, 0], r[:, 0] - 0.1 * r_v)
    np.testing.assert_allclose(debiased[:, 2], 0.0)  # the verbosity column is zeroed
