"""Best-of-N with every scorer kind, from Python and from the command line, and its compute accounting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.infer.accounting import Compute, MeteredScorer, total
from rewardkit.infer.best_of_n import Candidate, best_candidate, best_of_n
from rewardkit.infer.sampler import Policy, SamplingConfig
from rewardkit.scorers.hybrid import HybridScorer
from rewardkit.scorers.verifier import VerifierScorer
from rewardkit.scoring import build_scorer
from tiny_models import tiny_bert

PROMPTS = ["Say something nice.", [{"role": "user", "content": "What is 2 + 2?"}]]
CFG = SamplingConfig(max_new_tokens=8, temperature=1.0, seed=1)





@pytest.fixture(scope="module")
def rm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("bon") / "rm")


def test_best_is_the_highest_scoring_candidate(policy: Policy) -> None:
    results = best_of_n(policy, build_scorer("length"), PROMPTS, n=4, sampling=CFG)
    assert [r.prompt_index for r in results] == [0, 1]
    for r in results:
        assert len(r.candidates) == 4
        assert all(c.score == len(c.text) for c in r.candidates)  # the length scorer
        assert r.best.score == max(c.score for c in r.candidates)
        assert r.compute.generated_tokens == sum(c.n_tokens for c in r.candidates)
        assert (r.compute.scorer_calls, r.compute.scorer_items) == (1, 4)
        assert r.compute.wall_s >= r.compute.policy_s > 0


def test_samples_are_nested_across_n_and_batching(policy: Policy) -> None:
    """Per-sample seeding: Best-of-2's samples are the first two of Best-of-4's, with one prompt per batch
    or both prompts in one left-padded batch."""
    scorer = build_scorer("length")
    four = best_of_n(policy, scorer, PROMPTS, n=4, sampling=CFG)
    two = best_of_n(policy, scorer, PROMPTS, n=2, sampling=CFG, prompts_per_batch=2)
    for a, b in zip(four, two, strict=True):
        assert [c.text for c in b.candidates] == [c.text for c in a.candidates[:2]]


def test_ties_go_to_the_lower_index_and_nan_loses() -> None:
    cands = [Candidate(0, "a", float("nan"), 1, "eos"), Candidate(1, "b", 2.0, 1, "eos"), Candidate(2, "c", 2.0, 1, "eos")]
    assert best_candidate(cands).index == 1


def test_reward_model_scorer_counts_its_tokens(policy: Policy, rm_path: Path) -> None:
    scorer = build_scorer(str(rm_path))
    results = best_of_n(policy, scorer, PROMPTS[:1], n=3, sampling=CFG)
    r = results[0]
    encoded = scorer.encode([[{"role": "user", "content": PROMPTS[0]}]] * 3,  # type: ignore[attr-defined]
                            [[{"role": "assistant", "content": c.text}] for c in r.candidates], False)
    assert r.compute.scorer_tokens == sum(len(e.input_ids) for e in encoded)
    direct = scorer.score([[{"role": "user", "content": PROMPTS[0]}]] * 3,
                          [[{"role": "assistant", "content": c.text}] for c in r.candidates], False).rewards
    np.testing.assert_allclose([c.score for c in r.candidates], direct, rtol=1e-6)


def test_verifier_and_hybrid_scorers(policy: Policy) -> None:
    items = [{"prompt": PROMPTS[0], "constraints": [{"kind": "max_words", "params": {"n": 100}}]}]
    verifier = VerifierScorer(items=items)
    r = best_of_n(policy, verifier, PROMPTS[:1], n=2, sampling=CFG)[0]
    assert all(c.score == 1.0 for c in r.candidates)  # 8 tokens are fewer than 100 words
    hybrid = HybridScorer("length", items=items)
    both = best_of_n(policy, hybrid, PROMPTS, n=2, sampling=CFG)
    assert all(c.score == 1.0 for c in both[0].candidates)  # checkable: the verifier
    assert all(c.score == len(c.text) for c in both[1].candidates)  # not checkable: the "RM" (length)


def test_accounting_totals() -> None:
    a = Compute(generated_tokens=3, scorer_calls=1, wall_s=0.5)
    b = Compute(generated_tokens=4, scorer_tokens=10, wall_s=0.25)
    assert total([a, b]) == Compute(generated_tokens=7, scorer_calls=1, scorer_tokens=10, wall_s=0.75)
    meter = MeteredScorer(build_scorer("length"))
    assert meter.score([{"role": "user", "content": "x"}], ["ab", "abc"]).tolist() == [2.0, 3.0]
    assert (meter.calls, meter.items, meter.tokens) == (1, 2, 0)


def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"prompt_id": "p0", "prompt": PROMPTS[0], "constraints": [{"kind": "max_words", "params": {"n": 3}}]},
            {"prompt_id": "p1", "prompt": PROMPTS[1], "answer": "4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("reward", ["length", "verifier", "hybrid:length", "rm"])
def test_cli_generate_bon(lm_path: Path, rm_path: Path, tmp_path: Path, reward: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    prompts, out = _prompts_file(tmp_path), tmp_path / "out.jsonl"
    spec = str(rm_path) if reward == "rm" else reward
    code = main(["generate", "--policy", str(lm_path), "--reward", spec, "--prompts", str(prompts), "--out", str(out),
                 "--n", "3", "--max-new-tokens", "6", "--keep-all", "--no-progress", "--threads", "1"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt_id"] for r in rows] == ["p0", "p1"]
    for row in rows:
        assert len(row["candidates"]) == 3 and row["score"] == max(c["score"] for c in row["candidates"])
        assert row["compute"]["generated_tokens"] == sum(c["n_tokens"] for c in row["candidates"])
    assert "constraints" in rows[0] and rows[1]["answer"] == "4"  # input fields are kept
    summary = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert summary["prompts"] == 2 and summary["compute"]["generated_tokens"] == sum(
        r["compute"]["generated_tokens"] for r in rows)


def test_cli_errors_are_one_line(lm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n', encoding="utf-8")
    args = ["generate", "--policy", str(lm_path), "--reward", "length", "--out", str(tmp_path / "o.jsonl")]
    assert main([*args, "--prompts", str(bad)]) == 2
    assert "bad.jsonl:1: field 'prompt'" in capsys.readouterr().err
    good = _prompts_file(tmp_path)
    assert main([*args, "--prompts", str(good), "--method", "speculative", "--alpha", "1.5"]) == 2
    assert "alpha" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_library_and_command_line_defaults_agree() -> None:
    """One default per setting: what the command line samples equals what Python samples."""
    from rewardkit.cli import build_parser
    from rewardkit.infer.generate import GenerateConfig
    from rewardkit.infer.sampler import SamplingConfig

    args = build_parser().parse_args(["generate", "--policy", "p", "--reward", "r", "--prompts", "x", "--out", "o"])
    lib, sampling = GenerateConfig(policy="p", reward="r", prompts="x", out="o"), SamplingConfig()
    for name in ("n", "alpha", "chunk", "prompts_per_batch", "dtype", "device", "method"):
        assert getattr(args, name) == getattr(lib, name), name
    for name in ("max_new_tokens", "temperature", "top_p", "top_k", "seed"):
        assert getattr(args, name) == getattr(sampling, name), name
    assert (lib.alpha, sampling.top_k) == (0.5, 50)  # the Speculative Rejection code's defaults
