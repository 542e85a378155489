"""The engine groups a batch into forwards of similar lengths (bounded padding) without changing any reward."""

from __future__ import annotations

import numpy as np

from rewardkit.scoring import RewardModelScorer
from rewardkit.serve.engine import ScoringEngine, length_groups
from tiny_models import PAIRS


def test_length_groups_bound_the_padding() -> None:
    lengths = [10, 10, 9, 5, 5, 1]
    # 4 x 10 = 40 padded slots for 34 real tokens (<= 1.25 x 34); a fifth item would make 50 > 1.25 x 39
    assert length_groups(lengths, 0.25) == [[0, 1, 2, 3], [4], [5]]
    assert length_groups(lengths, 0.0) == [[0, 1], [2], [3, 4], [5]]
    assert length_groups(lengths, 100.0) == [[0, 1, 2, 3, 4, 5]]
    assert length_groups([], 0.25) == []


def test_grouped_forwards_give_the_same_rewards_as_one_forward(bert_scorer: RewardModelScorer) -> None:
    units = [([{"role": "user", "content": p}], [{"role": "assistant", "content": c * (1 + i % 4)}], False)
             for i, (p, c, _) in enumerate(PAIRS)]
    tight = ScoringEngine(bert_scorer, max_padding=0.0)
    loose = ScoringEngine(bert_scorer, max_padding=1e9)
    items = tight.prepare(units)
    assert len(length_groups([it.tokens for it in items], 0.0)) > 3  # really several forwards
    got_tight = [r.reward for r in tight.score(items)]
    got_loose = [r.reward for r in loose.score(items)]
    offline = bert_scorer.score([u[0] for u in units], [u[1] for u in units], False).rewards
    np.testing.assert_allclose(got_tight, offline, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_loose, offline, atol=1e-5, rtol=0)
    assert [r.tokens for r in tight.score(items)] == [it.tokens for it in items]
