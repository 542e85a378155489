"""The scoring pass: each distinct input once, resumable from the cache, judges round-robin, prompts tokenized once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eval_helpers import FIXTURES, TableScorer

from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import Item
from rewardkit.eval.cache import ScoreCache
from rewardkit.eval.score_items import score_items
from rewardkit.scorers import TokenizeOnceRM
from rewardkit.scorers.judge import round_robin_scores
from rewardkit.scoring import RewardModelScorer, ScoreOutput
from tiny_models import tiny_bert

TABLE = str(FIXTURES / "rmbench" / "scores.json")


def _msg(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "assistant", "content": text},)


def _items() -> list[Item]:
    return get_benchmark("rmbench").read(str(FIXTURES / "rmbench" / "total_dataset.json"), skip_invalid=True).items


def test_each_distinct_input_scored_once_longest_first() -> None:
    items = _items()
    twice = items + items  # the same items again: nothing new to score
    TableScorer.calls.clear()
    out = score_items(TableScorer(TABLE), twice, chunk=8)
    assert out.units == 36 and sum(TableScorer.calls) == 36 and TableScorer.calls == [8, 8, 8, 8, 4]
    assert [s.tolist() for s in out.scores[:6]] == [s.tolist() for s in out.scores[6:]]
    assert out.scores[0].tolist() == [3.0, 2.0, 1.0, 2.5, 1.5, 0.5]


class _Flaky(TableScorer):
    """Scores one chunk, then dies (a killed run)."""

    def score(self, prompts: Sequence[Any], responses: Sequence[Any], conversational: Any = True) -> ScoreOutput:
        if TableScorer.calls:
            raise KeyboardInterrupt
        return super().score(prompts, responses, conversational)


def test_an_interrupted_run_resumes_without_rescoring(tmp_path: Path) -> None:
    items = _items()
    identity = {"kind": "table", "path": TABLE}
    TableScorer.calls.clear()
    with ScoreCache(tmp_path, identity) as cache, pytest.raises(KeyboardInterrupt):
        score_items(_Flaky(TABLE), items, cache=cache, chunk=10)
    assert TableScorer.calls == [10]
    TableScorer.calls.clear()
    with ScoreCache(tmp_path, identity) as cache:
        out = score_items(TableScorer(TABLE), items, cache=cache, chunk=10)
    assert TableScorer.calls == [10, 10, 6] and (out.cached, out.units) == (10, 36)
    assert [s.tolist() for s in out.scores] == [s.tolist() for s in score_items(TableScorer(TABLE), items).scores]


class _FakeJudge:
    """Log-odds that ``first`` beats ``second`` = strength(first) − strength(second) + a position bias of 0
    (the real judge cancels its bias by asking both orders); counts comparisons."""

    name = "fake-judge"

    def __init__(self, strength: dict[str, float]) -> None:
        self.strength, self.asked = strength, 0

    def compare(self, prompts: Any, first: Any, second: Any) -> ScoreOutput:
        self.asked += len(first)
        lo = [self.strength[a[0]["content"]] - self.strength[b[0]["content"]] for a, b in zip(first, second, strict=True)]
        return ScoreOutput(np.asarray(lo, dtype=np.float32), np.array([a[0]["content"] == "long" for a in first]))


def test_judges_run_round_robin_and_recover_strengths() -> None:
    strength = {"a": 2.0, "b": 0.5, "c": -1.0, "long": 0.0}
    item = Item("i", (), tuple(_msg(t) for t in ("a", "b", "c")), (True, False, False), "s")
    pair = Item("j", (), (_msg("b"), _msg("a")), (True, False), "s")
    judge = _FakeJudge(strength)
    out = score_items(judge, [item, pair, item])
    assert judge.asked == 3  # a-b, a-c, b-c; the pair (b, a) under the same prompt is a-b again
    s = out.scores[0]
    assert s - s.mean() == pytest.approx(np.array([2.0, 0.5, -1.0]) - 0.5)
    assert out.scores[1][0] - out.scores[1][1] == pytest.approx(-1.5)  # n = 2: the margin is the log-odds itself


def test_round_robin_is_least_squares_bradley_terry() -> None:
    lo = np.array([[0.0, 1.0, 3.0], [-1.0, 0.0, 1.0], [-3.0, -1.0, 0.0]])
    s = round_robin_scores(lo)
    assert s.tolist() == pytest.approx([4 / 3, 0.0, -4 / 3])
    design = np.array([[1, -1, 0], [1, 0, -1], [0, 1, -1]], dtype=float)
    lstsq = np.linalg.lstsq(design, np.array([1.0, 3.0, 1.0]), rcond=None)[0]
    assert s == pytest.approx(lstsq - lstsq.mean())


def test_reward_models_tokenize_each_prompt_once(tmp_path: Path) -> None:
    scorer = RewardModelScorer(str(tiny_bert(tmp_path / "bert")), max_length=64)
    items = _items()
    fast = TokenizeOnceRM(scorer)
    prompts = [it.prompt for it in items for _ in it.responses]
    responses = [r for it in items for r in it.responses]
    got = fast.score(prompts, responses, [True] * len(prompts))
    want = scorer.score(prompts, responses)
    assert np.array_equal(got.rewards, want.rewards)
    assert fast.tokenizer.hits >= len(prompts) - len(items)  # each item's 5 other responses reuse its prompt
