"""preference_probabilities: sigma(r_a - r_b) for pointwise scorers, sigma(log-odds) for judges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.scorers.preference import preference_probabilities
from rewardkit.scoring import LengthScorer
from rewardkit.types import ScoreOutput


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_pointwise_is_bradley_terry_of_the_reward_gap() -> None:
    prompts = [[{"role": "user", "content": "q"}]] * 3
    first = [_msg("abcd"), _msg("a"), _msg("xy")]
    second = [_msg("ab"), _msg("abc"), _msg("zw")]
    prefs = preference_probabilities(LengthScorer(), prompts, first, second, [True] * 3)
    expected = [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2)), 0.5]
    np.testing.assert_allclose(prefs.p_first, expected, rtol=1e-12)
    np.testing.assert_allclose(prefs.confidence, [expected[0], 1 - expected[1], 0.5], rtol=1e-12)
    np.testing.assert_array_equal(prefs.first_scores, [4, 1, 2])
    np.testing.assert_array_equal(prefs.second_scores, [2, 3, 2])
    assert not prefs.truncated.any()


class _Judge:
    """A pairwise scorer whose log-odds are fixed per call."""

    def __init__(self, logodds: list[float], cut: list[bool]) -> None:
        self.logodds, self.cut = logodds, cut

    def compare(self, prompts, first, second, *, progress=None) -> ScoreOutput:
        return ScoreOutput(np.array(self.logodds, np.float32), np.array(self.cut))


def test_pairwise_judge_is_sigma_of_its_log_odds() -> None:
    judge = _Judge([0.0, math.log(3.0)], [False, True])
    prefs = preference_probabilities(judge, [[]] * 2, [_msg("a")] * 2, [_msg("b")] * 2, [True, True])
    np.testing.assert_allclose(prefs.p_first, [0.5, 0.75], rtol=1e-6)
    np.testing.assert_array_equal(prefs.truncated, [False, True])
    assert prefs.first_scores is None


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 prompts but 1 first"):
        preference_probabilities(LengthScorer(), [[]] * 2, [_msg("a")], [_msg("b")] * 2, [True] * 2)
