"""The ``hybrid`` scorer (METHODS §9b): verifier rewards where an item is checkable, the reward model elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardkit.scorers.hybrid import HybridScorer
from rewardkit.scoring import ScorerOptions, build_scorer
from tiny_models import tiny_bert

ITEMS = [{"prompt": "Count to three.", "answer": "3"},
         {"prompt": "Shout.", "constraints": [{"kind": "uppercase", "params": {}}]}]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_routes_by_whether_the_item_is_checkable() -> None:
    scorer = HybridScorer("length", items=ITEMS)
    prompts = [user("Count to three."), user("Say anything."), user("Shout."), user("Say anything.")]
    responses = [reply("1, 2, 3"), reply("hello"), reply("quiet"), reply("hi")]
    out = scorer.score(prompts, responses)
    assert out.rewards.tolist() == [1.0, 5.0, 0.0, 2.0]  # verifier, length, verifier, length
    assert scorer.routes == ["verifier", "rm", "verifier", "rm"]


def test_sigmoid_scale_and_validation() -> None:
    scorer = HybridScorer("length", items=ITEMS, rm_scale="sigmoid")
    out = scorer.score([user("Other.")], [reply("ab")])
    assert out.rewards[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    with pytest.raises(ValueError, match="rm_scale"):
        HybridScorer("length", rm_scale="tanh")


def test_reward_model_part_counts_tokens_and_matches_the_rm(tmp_path: Path) -> None:
    rm_path = tiny_bert(tmp_path / "rm")
    scorer = build_scorer(f"hybrid:{rm_path}", ScorerOptions(items=ITEMS))
    rm = build_scorer(str(rm_path))
    prompts, responses = [user("Other."), user("Count to three.")], [reply("some answer"), reply("3")]
    out = scorer.score(prompts, responses)
    direct = rm.score(prompts[:1], responses[:1]).rewards
    assert out.rewards[0] == pytest.approx(float(direct[0]), rel=1e-6) and out.rewards[1] == 1.0
    assert scorer.tokens_read == len(rm.encode(prompts[:1], responses[:1])[0].input_ids)  # type: ignore[attr-defined]
