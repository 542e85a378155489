"""Speculative Rejection at larger N: the adaptive rejection rate (rank correlation and rate by hand, and
the rates a run takes on scripted score sequences), several prompts per batch giving each prompt what it
gets alone, the token budget counting every running row of the batch, and α = 0 equal to Best-of-N."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.infer.best_of_n import best_of_n
from rewardkit.infer.generate import GenerateConfig
from rewardkit.infer.sampler import Policy, SamplingConfig
from rewardkit.infer.speculative import (
    AdaptiveAlpha,
    SpeculativeConfig,
    parse_alpha,
    rank_correlation,
    speculative_rejection,
)
from rewardkit.scoring import build_scorer

PROMPTS = ["Tell me a story.", [{"role": "user", "content": "Name three colours."}], "Count to five, please."]
CFG = SamplingConfig(max_new_tokens=12, temperature=1.0, seed=3)


# ------------------------------------------------------------------------------------ pure rules


def test_rank_correlation_by_hand() -> None:
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair: 1 − 6·Σd²/(n(n² − 1)) = 1 − 6·2/60 = 0.8
    assert rank_correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties take their average rank: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): cov 4.5 / sqrt(4.5 · 5)
    assert rank_correlation([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert rank_correlation([float("nan"), 1.0, 2.0], [0.0, 1.0, 2.0]) == pytest.approx(1.0)  # NaN ranks lowest
    assert rank_correlation([1, 2], [1, 2]) is None  # fewer than 3 pairs
    assert rank_correlation([5, 5, 5], [1, 2, 3]) is None  # all tied: no ranking to compare


def test_adaptive_rate_by_hand() -> None:
    rule = AdaptiveAlpha(0.3, 0.9)
    assert rule.rate(0.8, last=0.3) == pytest.approx(0.3 + 0.6 * 0.8)  # 0.78
    assert rule.rate(1.0, last=0.3) == pytest.approx(0.9)
    assert rule.rate(-0.5, last=0.7) == pytest.approx(0.3)  # anti-correlated: reject the least
    assert rule.rate(None, last=0.66) == 0.66  # unknown: keep the last rate


def test_parse_alpha() -> None:
    assert parse_alpha("0.4") == 0.4 and parse_alpha(0.5) == 0.5
    assert parse_alpha("adaptive") == AdaptiveAlpha(0.3, 0.9)
    assert parse_alpha("adaptive:0.5,0.95") == AdaptiveAlpha(0.5, 0.95)
    for bad in ("often", "adaptive:0.9,0.2", "adaptive:0.5", "adaptive:0.2,1.0"):
        with pytest.raises(OptionError):
            parse_alpha(bad)
    with pytest.raises(OptionError, match="alpha"):
        GenerateConfig(policy="p", reward="r", prompts="x", out="o", alpha="1.5")
    assert GenerateConfig(policy="p", reward="r", prompts="x", out="o", alpha="adaptive").alpha == AdaptiveAlpha()


# ------------------------------------------------------------------------------ scripted scores


class ScriptedScorer:
    """Returns the next hand-made score list at each call (and checks it scores as many responses)."""

    def __init__(self, calls: Sequence[Sequence[float]]) -> None:
        self.calls = [list(c) for c in calls]
        self.sizes: list[int] = []

    def score(self, prompts: list[Any], replies: list[Any], conversational: bool) -> Any:
        scores = self.calls.pop(0)
        self.sizes.append(len(replies))
        assert len(scores) == len(replies), (scores, len(replies))
        return SimpleNamespace(rewards=scores)


def _scripted_run(policy: Policy, calls: list[list[float]]) -> tuple[Any, ScriptedScorer]:
    scorer = ScriptedScorer(calls)
    cfg = SpeculativeConfig(AdaptiveAlpha(0.2, 0.8), chunk=4)
    result = speculative_rejection(policy, scorer, PROMPTS[:1], n=8, config=cfg, sampling=CFG)[0]
    assert not any(c.finish == "eos" for c in result.candidates)  # the script assumes no early EOS
    return result, scorer


def test_adaptive_rates_on_stable_scores(policy: Policy) -> None:
    """Probe at 2 tokens, decisions at 4 and 8, every row ends at 12 (max_new_tokens).
    Decision 1: one swapped pair of 8 → ρ = 1 − 12/504, α = 0.2 + 0.6ρ = 0.785714, keep ⌈0.214286·8⌉ = 2
    (rows 6 and 7); decision 2: 2 rows, ρ unknown → the same α, keep ⌈0.43⌉ = 1 (row 7)."""
    probe, d1 = [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 8, 7]
    r, scorer = _scripted_run(policy, [probe, d1, [3, 9], [10]])
    alpha = 0.2 + 0.6 * (1 - 6 * 2 / (8 * 63))
    assert scorer.sizes == [8, 8, 2, 1] and not scorer.calls
    assert [(x.generated, x.pool, x.kept, x.running_kept) for x in r.rounds] == [(4, 8, 2, 2), (8, 2, 1, 1)]
    assert [x.alpha for x in r.rounds] == pytest.approx([alpha, alpha])
    assert r.best.index == 7 and r.best.score == 10 and r.best.finish == "length"
    assert [c.finish for c in r.candidates] == ["pruned"] * 7 + ["length"]


def test_adaptive_rates_on_reversing_scores(policy: Policy) -> None:
    """Rankings that reverse at every decision give ρ = −1: α = low = 0.2 each time, keep ⌈0.8·8⌉ = 7
    (row 7, the lowest, goes), then ⌈0.8·7⌉ = 6 (row 0 goes); the 6 survivors end at 12 tokens."""
    probe, d1, d2 = [1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6, 7]
    final = [1, 1, 1, 1, 4, 1]
    r, scorer = _scripted_run(policy, [probe, d1, d2, final])
    assert scorer.sizes == [8, 8, 7, 6]
    assert [(x.pool, x.kept, x.running_kept) for x in r.rounds] == [(8, 7, 7), (7, 6, 6)]
    assert [x.alpha for x in r.rounds] == pytest.approx([0.2, 0.2])
    assert [c.finish for c in r.candidates] == ["pruned"] + ["length"] * 6 + ["pruned"]
    assert r.best.index == 5 and r.best.score == 4


# ------------------------------------------------------------------------------ several prompts


@pytest.mark.parametrize("alpha", [0.5, AdaptiveAlpha(0.3, 0.9)])
def test_several_prompts_per_batch_give_each_prompt_its_own_result(policy: Policy, alpha: Any) -> None:
    """Chunked decisions: three prompts decoded in one left-padded batch get exactly what each gets alone
    (own pool, own rate, own samples)."""
    scorer, cfg = build_scorer("length"), SpeculativeConfig(alpha, chunk=4)
    alone = speculative_rejection(policy, scorer, PROMPTS, n=8, config=cfg, sampling=CFG)
    shared = speculative_rejection(policy, scorer, PROMPTS, n=8, config=cfg, sampling=CFG, prompts_per_batch=3)
    for a, b in zip(alone, shared, strict=True):
        assert a.best == b.best and a.rounds == b.rounds and a.candidates == b.candidates
        assert (a.compute.generated_tokens, a.compute.scorer_calls) == (b.compute.generated_tokens, b.compute.scorer_calls)


def test_token_budget_counts_every_running_row_of_the_batch(policy: Policy) -> None:
    """Two prompts × 4 samples share a batch: the budget 8 × (padded prompt + 3) puts the first decision at
    3 tokens for both; alone, prompt 0 has 4 rows for the same budget, which lasts to max_new_tokens."""
    lengths = [len(policy.encode_prompt(p)) for p in PROMPTS[:2]]
    cfg = SpeculativeConfig(0.5, chunk=None, token_budget=8 * (max(lengths) + 3))
    scorer = build_scorer("length")
    shared = speculative_rejection(policy, scorer, PROMPTS[:2], n=4, config=cfg, sampling=CFG, prompts_per_batch=2)
    assert [r.rounds[0].generated for r in shared] == [3, 3]
    alone = speculative_rejection(policy, scorer, PROMPTS[:1], n=4, config=cfg, sampling=CFG)[0]
    assert 2 * (max(lengths) + 3) - lengths[0] >= CFG.max_new_tokens  # budget // 4 rows − context: no decision
    assert alone.rounds == () and alone.compute.generated_tokens == 4 * CFG.max_new_tokens


@pytest.mark.parametrize("alpha", [0.0, AdaptiveAlpha(0.0, 0.0)])
def test_alpha_zero_is_best_of_n_at_n64_with_budget_and_shared_batches(policy: Policy, alpha: Any) -> None:
    scorer, n = build_scorer("length"), 64
    sampling = SamplingConfig(max_new_tokens=10, temperature=1.0, seed=11)
    cfg = SpeculativeConfig(alpha, chunk=None, token_budget=2 * n * 40)
    bon = best_of_n(policy, scorer, PROMPTS[:2], n=n, sampling=sampling, prompts_per_batch=2)
    spr = speculative_rejection(policy, scorer, PROMPTS[:2], n=n, config=cfg, sampling=sampling, prompts_per_batch=2)
    for a, b in zip(bon, spr, strict=True):
        assert a.best == b.best and a.candidates == b.candidates
        assert a.compute.generated_tokens == b.compute.generated_tokens
        assert b.rounds and all(x.kept == x.pool and x.alpha == 0.0 for x in b.rounds)


# ------------------------------------------------------------------------------ command line


def test_cli_adaptive_alpha(lm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p, "prompt_id": f"q{i}"}) + "\n"
                               for i, p in enumerate(PROMPTS[:2])), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    args = ["generate", "--policy", str(lm_path), "--reward", "length", "--prompts", str(prompts), "--out", str(out),
            "--method", "speculative", "--n", "6", "--max-new-tokens", "10", "--no-progress", "--threads", "1"]
    assert main([*args, "--alpha", "adaptive:0.2,0.8", "--chunk", "4", "--prompts-per-batch", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["alpha"] for r in rows] == ["adaptive:0.2,0.8"] * 2
    assert all(0.2 <= rd["alpha"] <= 0.8 for r in rows for rd in r["rounds"])
    summary = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert summary["alpha"] == "adaptive:0.2,0.8"
    assert main([*args, "--alpha", "sometimes"]) == 2
    assert "alpha must be a number" in capsys.readouterr().err
