"""Speculative Rejection: the rejection rule and decision points by hand, α = 0 equals Best-of-N, survivors
are Best-of-N's own samples, pools are per prompt, and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.infer.best_of_n import best_of_n
from rewardkit.infer.sampler import Policy, SamplingConfig
from rewardkit.infer.speculative import SpeculativeConfig, next_segment, speculative_rejection, survivors
from rewardkit.scoring import build_scorer

PROMPTS = ["Tell me a story.", [{"role": "user", "content": "Name three colours."}]]
CFG = SamplingConfig(max_new_tokens=16, temperature=1.0, seed=5)





# ------------------------------------------------------------------------------------ pure rules


def test_survivors_keep_ceil_of_one_minus_alpha() -> None:
    pool = {0: 0.1, 1: 0.9, 2: 0.5, 3: 0.5, 4: float("nan")}
    assert survivors(pool, 0.5) == [1, 2, 3]  # ceil(2.5) = 3; the tie 2/3 by id
    assert survivors(pool, 0.7) == [1, 2]  # ceil(1.5) = 2
    assert survivors(pool, 0.0) == [1, 2, 3, 0, 4]  # everything, NaN last
    assert survivors({7: 1.0}, 0.9) == [7]  # ceil never drops the last one
    assert len(survivors(dict.fromkeys(range(10), 0.0), 0.7)) == 3  # (1 - 0.7) * 10 is 3.0000000000000004


def test_next_segment_from_chunk_or_budget() -> None:
    chunk = SpeculativeConfig(alpha=0.5, chunk=8)
    assert next_segment(chunk, running=32, context_length=100, remaining=64) == 8
    assert next_segment(chunk, running=32, context_length=100, remaining=3) == 3
    budget = SpeculativeConfig(alpha=0.5, chunk=None, token_budget=4096)
    assert next_segment(budget, running=32, context_length=100, remaining=64) == 28  # 4096 // 32 - 100
    assert next_segment(budget, running=8, context_length=128, remaining=64) == 64  # 512 - 128, capped
    assert next_segment(budget, running=64, context_length=100, remaining=64) == 1  # at least one step


@pytest.mark.parametrize("bad", [{"alpha": 1.0}, {"alpha": -0.1}, {"alpha": 0.5, "chunk": 0},
                                 {"alpha": 0.5, "chunk": None}, {"alpha": 0.5, "chunk": 4, "token_budget": 10}])
def test_config_checks(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SpeculativeConfig(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ with a model


def test_alpha_zero_is_best_of_n(policy: Policy) -> None:
    scorer = build_scorer("length")
    bon = best_of_n(policy, scorer, PROMPTS, n=6, sampling=CFG)
    spr = speculative_rejection(policy, scorer, PROMPTS, n=6, config=SpeculativeConfig(0.0, chunk=4), sampling=CFG)
    for a, b in zip(bon, spr, strict=True):
        assert a.best == b.best
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert a.compute.generated_tokens == b.compute.generated_tokens
        assert b.compute.scorer_calls == len(b.rounds) + 1 > a.compute.scorer_calls == 1


def test_pruning_saves_tokens_and_survivors_are_bon_samples(policy: Policy) -> None:
    """Survivors continue with their own KV rows and generators, so every finished response equals the
    same sample of Best-of-N; the pool shrinks by the ⌈(1 − α)·pool⌉ rule."""
    scorer = build_scorer("length")
    n, alpha = 8, 0.5
    bon = best_of_n(policy, scorer, PROMPTS, n=n, sampling=CFG)
    spr = speculative_rejection(policy, scorer, PROMPTS, n=n, config=SpeculativeConfig(alpha, chunk=4), sampling=CFG)
    for a, b in zip(bon, spr, strict=True):
        finished = [c for c in b.candidates if c.finish != "pruned"]
        assert finished and all(c.text == a.candidates[c.index].text for c in finished)
        assert b.best.finish != "pruned" and b.best.score == max(c.score for c in finished)
        assert b.compute.generated_tokens < a.compute.generated_tokens
        assert b.rounds[0].pool == n and b.rounds[0].kept == math.ceil((1 - alpha) * n)
        for r in b.rounds:
            assert r.kept == math.ceil((1 - alpha) * r.pool - 1e-9)


def test_pools_are_per_prompt_when_prompts_share_a_batch(policy: Policy) -> None:
    scorer = build_scorer("length")
    cfg = SpeculativeConfig(0.5, chunk=4)
    alone = speculative_rejection(policy, scorer, PROMPTS, n=4, config=cfg, sampling=CFG)
    shared = speculative_rejection(policy, scorer, PROMPTS, n=4, config=cfg, sampling=CFG, prompts_per_batch=2)
    for a, b in zip(alone, shared, strict=True):
        assert a.best == b.best and a.rounds == b.rounds
        assert a.compute.generated_tokens == b.compute.generated_tokens


def test_token_budget_mode(policy: Policy) -> None:
    prompt_len = len(policy.encode_prompt(PROMPTS[0]))
    cfg = SpeculativeConfig(0.5, chunk=None, token_budget=4 * (prompt_len + 3))
    r = speculative_rejection(policy, build_scorer("length"), PROMPTS[:1], n=4, config=cfg, sampling=CFG)[0]
    assert r.rounds[0].generated == 3  # the first decision comes when 4 rows × context fill the budget


def test_cli_speculative(lm_path: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hello", "prompt_id": "x"}) + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert main(["generate", "--policy", str(lm_path), "--reward", "length", "--prompts", str(prompts), "--out",
                 str(out), "--method", "speculative", "--alpha", "0.5", "--chunk", "4", "--n", "4",
                 "--max-new-tokens", "12", "--no-progress", "--threads", "1"]) == 0
    row = json.loads(out.read_text())
    assert row["method"] == "speculative" and row["alpha"] == 0.5 and row["rounds"][0]["pool"] == 4
