"""Comparisons view, length bias and score distributions, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.eval.analysis import comparisons, length_bias, rank_average, score_distribution, spearman
from rewardkit.eval.benchmarks.base import Item


def _item(lengths: list[int], labels: list[bool]) -> Item:
    return Item("x", (), tuple(({"role": "assistant", "content": "a" * n},) for n in lengths), tuple(labels), "s")


def test_comparisons_are_all_correct_incorrect_pairs() -> None:
    items = [_item([3, 5], [True, False]), _item([1, 2, 9], [True, False, False]), _item([4, 4, 1], [True, True, False])]
    scores = [np.array([1.0, 0.0]), np.array([0.0, 1.0, -1.0]), np.array([2.0, 3.0, 2.0])]
    c = comparisons(items, scores)
    assert c.item.tolist() == [0, 1, 1, 2, 2]
    assert c.margin.tolist() == [1.0, -1.0, 1.0, 0.0, 1.0]
    assert c.correct_len.tolist() == [3, 1, 1, 4, 4] and c.incorrect_len.tolist() == [5, 2, 9, 1, 1]


def test_length_bias_by_hand() -> None:
    items = [_item([3, 5], [True, False]), _item([1, 2, 9], [True, False, False]), _item([4, 4, 1], [True, True, False])]
    scores = [np.array([1.0, 0.0]), np.array([0.0, 1.0, -1.0]), np.array([2.0, 3.0, 2.0])]
    lb = length_bias(items, scores, comparisons(items, scores))
    # correct shorter: (3 vs 5) right, (1 vs 2) wrong, (1 vs 9) right -> 2/3; correct longer: (4 vs 1) tie wrong,
    # (4 vs 1) right -> 1/2; no equal lengths
    assert lb.accuracy_correct_shorter == pytest.approx(2 / 3) and lb.n_correct_shorter == 3
    assert lb.accuracy_correct_longer == pytest.approx(1 / 2) and lb.n_correct_longer == 2
    assert lb.n_equal_length == 0 and math.isnan(lb.accuracy_equal_length)


def test_length_scorer_is_perfectly_length_biased() -> None:
    items = [_item([3, 5], [True, False]), _item([7, 2], [True, False]), _item([1, 6], [True, False])]
    scores = [it.response_lengths().astype(float) for it in items]
    lb = length_bias(items, scores, comparisons(items, scores))
    assert lb.score_length_spearman == pytest.approx(1.0)
    assert lb.margin_length_spearman == pytest.approx(1.0)
    assert (lb.accuracy_correct_longer, lb.accuracy_correct_shorter) == (1.0, 0.0)


def test_ranks_and_spearman() -> None:
    assert rank_average(np.array([10, 20, 20, 5])).tolist() == [1.0, 2.5, 2.5, 0.0]
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 1000])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert math.isnan(spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))


def test_score_distribution() -> None:
    items = [_item([1, 2], [True, False]), _item([1, 2, 3], [True, False, False])]
    d = score_distribution(items, [np.array([2.0, 0.0]), np.array([4.0, 1.0, 0.0])], bins=4)
    assert d.correct["n"] == 2 and d.correct["mean"] == 3.0
    assert d.incorrect["n"] == 3 and d.incorrect["max"] == 1.0
    assert d.edges == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert d.correct_hist == (0, 0, 1, 1) and d.incorrect_hist == (2, 1, 0, 0)


def test_gating_spread_by_hand() -> None:
    from rewardkit.eval.analysis import gating_spread

    # two items: one response with weights (1, 0), two with (0.5, 0.5)
    out = gating_spread([np.array([[1.0, 0.0]]), np.array([[0.5, 0.5], [0.5, 0.5]])], ["a", "b"])
    assert out["objectives"]["a"]["mean"] == pytest.approx(2 / 3)
    assert out["objectives"]["a"]["std"] == pytest.approx(np.sqrt(((1 - 2 / 3) ** 2 + 2 * (0.5 - 2 / 3) ** 2) / 3))
    assert out["top_weight_mean"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert out["entropy_mean"] == pytest.approx(2 * np.log(2) / 3)  # 0 for (1, 0), log 2 for uniform
    assert out["entropy_uniform"] == pytest.approx(np.log(2)) and out["responses"] == 3
