"""The ``direction`` scorer (DPA, METHODS §3): R_v = vᵀ r(x, y) with v a unit vector over named objectives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.scorers.direction import DirectionScorer, parse_direction, unit_vector
from rewardkit.scoring import build_scorer
from tiny_models import tiny_bert

OBJECTIVES = ["helpfulness", "correctness", "verbosity"]


def multi_rm(path: Path) -> Path:
    """A tiny 3-output BERT reward model whose rewardkit.json names its objectives."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tiny_bert(path)
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
    BertForSequenceClassification(cfg).save_pretrained(path)
    (path / "rewardkit.json").write_text(json.dumps({"objectives": OBJECTIVES}), encoding="utf-8")
    return path


def test_parse_and_normalise_by_hand() -> None:
    assert parse_direction("helpfulness=0.9, verbosity=-0.4") == {"helpfulness": 0.9, "verbosity": -0.4}
    v = unit_vector({"helpfulness": 0.9, "verbosity": -0.4}, OBJECTIVES)
    norm = math.sqrt(0.81 + 0.16)
    np.testing.assert_allclose(v, [0.9 / norm, 0.0, -0.4 / norm])
    assert np.linalg.norm(v) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["helpfulness", "helpfulness=abc", "a=1,a=2", "=1"])
def test_bad_directions(text: str) -> None:
    with pytest.raises(ValueError):
        parse_direction(text)


def test_unknown_or_zero_directions() -> None:
    with pytest.raises(ValueError, match="unknown objective"):
        unit_vector({"honesty": 1.0}, OBJECTIVES)
    with pytest.raises(ValueError, match="non-zero"):
        unit_vector({"helpfulness": 0.0}, OBJECTIVES)


def test_rewards_are_the_projection_of_all_outputs(tmp_path: Path) -> None:
    path = multi_rm(tmp_path / "rm")
    scorer = DirectionScorer(str(path), direction="helpfulness=0.9,verbosity=-0.4")
    assert scorer.objectives == OBJECTIVES
    prompts = [[{"role": "user", "content": q}] for q in ("Hi", "What is 2+2?", "Tell me a long story please")]
    responses = [[{"role": "assistant", "content": a}] for a in ("Hello!", "4", "Once upon a time")]
    scores, truncated = scorer.objective_scores(prompts, responses)
    assert scores.shape == (3, 3) and not truncated.any()
    # the same outputs from the model directly, one sequence at a time (batching is exact)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        enc = scorer.rm.encoder.encode(p, r, True)
        ids = torch.tensor([enc.input_ids])
        types = torch.tensor([enc.token_type_ids]) if enc.token_type_ids else None
        with torch.inference_mode():
            logits = scorer.rm.model(input_ids=ids, token_type_ids=types).logits[0].numpy()
        np.testing.assert_allclose(scores[i], logits, rtol=1e-5, atol=1e-6)
    rewards = scorer.score(prompts, responses).rewards
    np.testing.assert_allclose(rewards, scores @ scorer.vector, rtol=1e-5, atol=1e-6)
    assert scorer.tokens_read > 0


def test_spec_with_direction_and_single_output(tmp_path: Path) -> None:
    path = multi_rm(tmp_path / "rm")
    scorer = build_scorer(f"direction:{path}#correctness=2")
    np.testing.assert_allclose(scorer.vector, [0.0, 1.0, 0.0])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs a direction"):
        build_scorer(f"direction:{path}")
    single = DirectionScorer(str(tiny_bert(tmp_path / "one")), direction={"reward": 3.0})
    rm = build_scorer(str(tmp_path / "one"))
    p, r = [[{"role": "user", "content": "x"}]], [[{"role": "assistant", "content": "y"}]]
    assert single.score(p, r).rewards[0] == pytest.approx(float(rm.score(p, r).rewards[0]), rel=1e-5)


def test_generate_command_with_a_direction(tmp_path: Path) -> None:
    from rewardkit.cli import main
    from tiny_models import tiny_llama

    lm = tiny_llama(tmp_path / "lm")
    rm = multi_rm(tmp_path / "rm")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi"}) + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert main(["generate", "--policy", str(lm), "--reward", str(rm), "--direction", "helpfulness=0.9,verbosity=-0.4",
                 "--prompts", str(prompts), "--out", str(out), "--n", "2", "--max-new-tokens", "4", "--keep-all",
                 "--no-progress", "--threads", "1"]) == 0
    row = json.loads(out.read_text())
    scorer = DirectionScorer(str(rm), direction="helpfulness=0.9,verbosity=-0.4")
    expected = scorer.score([[{"role": "user", "content": "Hi"}]] * 2,
                            [[{"role": "assistant", "content": c["text"]}] for c in row["candidates"]], False).rewards
    np.testing.assert_allclose([c["score"] for c in row["candidates"]], expected, rtol=1e-5)
