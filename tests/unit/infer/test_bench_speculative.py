"""benchmarks/bon_vs_speculative.py: the α list, the token budget of a batch and the comparison with
Best-of-N at the same N on hand-made points, and a tiny end-to-end run (random policy and reward model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from bon_vs_speculative import main, parse_alphas, reach, spr_config
from rewardkit.infer.speculative import AdaptiveAlpha
from tiny_models import tiny_bert


def test_parse_alphas_keeps_adaptive_bounds_together() -> None:
    assert parse_alphas("0.5, 0.9,adaptive,adaptive:0.5,0.95") == [0.5, 0.9, AdaptiveAlpha(), AdaptiveAlpha(0.5, 0.95)]


def test_budget_is_rows_times_padded_prompt_plus_first_decision() -> None:
    cfg = spr_config(0.5, n=64, prompt_lengths=[41, 50], first_decision=8, chunk=None)
    assert (cfg.chunk, cfg.token_budget) == (None, 2 * 64 * (50 + 8))  # 7424
    assert spr_config(0.5, n=64, prompt_lengths=[41], first_decision=8, chunk=4).chunk == 4


def _bon(n: int, score: float, tokens: float, wall: float) -> dict[str, float]:
    return {"n": n, "mean_rm_score": score, "mean_gold": 0.5, "generated_tokens": tokens, "wall_s": wall}


def test_reach_compares_each_point_with_best_of_n_at_its_n() -> None:
    bon = [_bon(16, 1.0, 1000, 10), _bon(32, 1.2, 2000, 20), _bon(64, 1.4, 4000, 40), _bon(128, 1.5, 8000, 80)]
    spr = [{"n": 64, "alpha": 0.9, "mean_rm_score": 1.4, "mean_gold": 0.6, "generated_tokens": 900, "wall_s": 12},
           {"n": 64, "alpha": 0.5, "mean_rm_score": 1.45, "mean_gold": 0.5, "generated_tokens": 2000, "wall_s": 25},
           {"n": 128, "alpha": 0.9, "mean_rm_score": 1.3, "mean_gold": 0.5, "generated_tokens": 1500, "wall_s": 20}]
    out = reach(bon, spr)
    first, _, third = out["per_point"]
    assert first["reaches_bon_rm_score"] and first["tokens_ratio"] == 900 / 4000 and first["time_ratio"] == 12 / 40
    assert first["speedup_tokens"] == pytest.approx(4000 / 900)  # Best-of-64 is the first to score 1.4
    assert first["gold_gap"] == pytest.approx(0.1)
    # 1.3 lies halfway between Best-of-32 and Best-of-64: log-linear cost sqrt(2000 · 4000)
    assert not third["reaches_bon_rm_score"] and third["rm_score_gap"] == pytest.approx(-0.2)
    assert third["speedup_tokens"] == pytest.approx((2000 * 4000) ** 0.5 / 1500)
    assert out["cheapest_reaching"]["alpha"] == 0.9 and out["meets_target"]  # 0.225 <= 0.25


def test_tiny_end_to_end(lm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rm = tiny_bert(tmp_path / "rm")
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    main(["--rm", str(rm), "--policy", str(lm_path), "--prompts", "2", "--ns", "1,2,4", "--spr-ns", "2,4",
          "--alphas", "0.5,adaptive", "--first-decision", "2", "--max-new-tokens", "6", "--time-prompts", "1",
          "--prompts-per-batch", "2", "--out", str(out), "--plot", str(plot)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result and plot.stat().st_size > 0
    assert [p["n"] for p in result["best_of_n"]] == [1, 2, 4] and all("wall_s" in p for p in result["best_of_n"])
    assert [(p["n"], p["alpha"]) for p in result["speculative"]] == [(2, 0.5), (2, "adaptive:0.3,0.9"),
                                                                     (4, 0.5), (4, "adaptive:0.3,0.9")]
    assert result["nested_samples_identical"] and len(result["reach"]["per_point"]) == 4
    # the first decision comes after 2 tokens (budget = 2 prompts × N × (padded prompt + 2))
    assert all(p["first_decision_tokens"] == 2 for p in result["speculative"])
    n4_half = next(p for p in result["reach"]["per_point"] if (p["n"], p["alpha"]) == (4, 0.5))
    assert n4_half["reference"] == "best-of-4" and n4_half["tokens_ratio"] < 1  # 2 of 4 rows stopped at 2 tokens
