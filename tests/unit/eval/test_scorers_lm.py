"""The DPO implicit reward and the generative judge on a tiny random Llama (SmolLM2's tokenizer and chat
template), checked against plain transformers forwards written out here, one sequence at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardkit.scorers import ScorerOptions, build_scorer
from rewardkit.scorers.implicit import ImplicitRewardScorer, reduce_logps
from rewardkit.scorers.judge import TEMPLATE, GenerativeJudge, split_budget
from tiny_models import tiny_llama

PROMPTS = [({"role": "user", "content": "What is 2 + 2?"},), ({"role": "user", "content": "Name a colour."},)]
RESPONSES = [({"role": "assistant", "content": "4."},),
             ({"role": "assistant", "content": "Blue, like the sky on a clear summer day."},)]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama") / "policy", seed=0)


@pytest.fixture(scope="module")
def llama_ref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama") / "ref", seed=1)


def _plain_logps(path: Path, prompt: tuple, response: tuple) -> torch.Tensor:
    """Per-token log-probs of the response under the chat template, computed the textbook way."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    p = tok.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=True)
    full = tok.apply_chat_template([*prompt, *response], tokenize=True)
    p, full = list(p["input_ids"] if hasattr(p, "keys") else p), list(full["input_ids"] if hasattr(full, "keys") else full)
    assert full[: len(p)] == p
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0]
    logp = logits.log_softmax(-1)
    return torch.stack([logp[t - 1, full[t]] for t in range(len(p), len(full))])


def test_reduce_modes_by_hand() -> None:
    x = torch.tensor([-1.0, -2.0, -2.0])
    assert reduce_logps(x, "sum") == -5.0
    assert reduce_logps(x, "avg") == pytest.approx(-5 / 3)
    assert reduce_logps(x, "norm") == pytest.approx(-3.0)  # −sqrt(1 + 4 + 4)


@pytest.mark.parametrize("mode", ["sum", "avg", "norm"])
def test_reference_free_matches_plain_transformers(llama: Path, mode: str) -> None:
    scorer = ImplicitRewardScorer(str(llama), ref_free=mode)
    out = scorer.score(PROMPTS, RESPONSES)
    for i in range(2):
        assert out.rewards[i] == pytest.approx(reduce_logps(_plain_logps(llama, PROMPTS[i], RESPONSES[i]), mode),
                                               abs=1e-4)
    assert not out.truncated.any()


def test_with_a_reference_model_and_batch_invariance(llama: Path, llama_ref: Path) -> None:
    scorer = ImplicitRewardScorer(str(llama), ref_model=str(llama_ref))
    out = scorer.score(PROMPTS, RESPONSES)
    want = [float(_plain_logps(llama, p, r).sum() - _plain_logps(llama_ref, p, r).sum())
            for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    assert out.rewards.tolist() == pytest.approx(want, abs=1e-4)
    one_at_a_time = ImplicitRewardScorer(str(llama), ref_model=str(llama_ref), max_tokens=1)
    assert one_at_a_time.score(PROMPTS, RESPONSES).rewards == pytest.approx(out.rewards, abs=1e-5)
    same = ImplicitRewardScorer(str(llama), ref_model=str(llama))
    assert same.score(PROMPTS, RESPONSES).rewards == pytest.approx([0.0, 0.0], abs=1e-6)


def test_dpo_needs_a_reference_or_a_reference_free_mode(llama: Path) -> None:
    with pytest.raises(ValueError, match=r"--ref-model.*--ref-free"):
        build_scorer(f"dpo:{llama}", ScorerOptions())
    scorer = ImplicitRewardScorer(str(llama), ref_free="avg", max_length=12)
    assert scorer.score(PROMPTS[1:], RESPONSES[1:]).truncated.tolist() == [True]


def _plain_judge_logodds(path: Path, prompt: str, a: str, b: str) -> float:
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    text = TEMPLATE.format(conversation=prompt, a=a, b=b)
    ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    a_id, b_id = tok("A", add_special_tokens=False)["input_ids"][0], tok("B", add_special_tokens=False)["input_ids"][0]
    return float(logits[a_id] - logits[b_id])


def test_judge_averages_both_orders_and_matches_plain_transformers(llama: Path) -> None:
    judge = GenerativeJudge(str(llama))
    first = [RESPONSES[0], RESPONSES[1]]
    second = [RESPONSES[1], RESPONSES[0]]
    prompts = [PROMPTS[0], PROMPTS[0]]
    out = judge.compare(prompts, first, second)
    a, b = "4.", RESPONSES[1][0]["content"]
    l_ab = _plain_judge_logodds(llama, "What is 2 + 2?", a, b)
    l_ba = _plain_judge_logodds(llama, "What is 2 + 2?", b, a)
    assert out.rewards[0] == pytest.approx((l_ab - l_ba) / 2, abs=1e-4)
    assert out.rewards[1] == pytest.approx(-out.rewards[0], abs=1e-5)  # position bias cancels: antisymmetric
    single = GenerativeJudge(str(llama), max_tokens=1).compare(prompts, first, second)  # batch size 1
    assert single.rewards == pytest.approx(out.rewards, abs=1e-5)
    with pytest.raises(TypeError, match="pairwise judge"):
        judge.score(prompts, first)


def test_single_order_judge_is_seeded(llama: Path) -> None:
    prompts, first, second = [PROMPTS[0]] * 2, [RESPONSES[0], RESPONSES[1]], [RESPONSES[1], RESPONSES[0]]
    run = [GenerativeJudge(str(llama), both_orders=False, seed=s).compare(prompts, first, second).rewards for s in (3, 3)]
    assert np.array_equal(run[0], run[1])


def test_judge_truncation_budget(llama: Path) -> None:
    assert split_budget(10, 20, 30, 100) == (10, 20, 30)
    assert split_budget(100, 100, 100, 100) == (25, 37, 38)
    assert split_budget(100, 10, 100, 100) == (25, 10, 65)  # a short response leaves its share to the other
    judge = GenerativeJudge(str(llama), max_length=160)
    long = ({"role": "assistant", "content": "word " * 300},)
    out = judge.compare([PROMPTS[0]], [long], [RESPONSES[0]])
    assert out.truncated.tolist() == [True]
    ids, cut = judge._encode(PROMPTS[0], long, RESPONSES[0])
    assert cut and len(ids) <= 160
