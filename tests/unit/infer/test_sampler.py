"""The KV-cache sampler: sampling maths by hand, agreement with transformers' greedy ``generate``, endings,
token accounting, and the pruning invariant (a survivor continues exactly as it would unpruned)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from rewardkit.infer.sampler import (
    Policy,
    Rollout,
    SamplingConfig,
    filter_top_k,
    filter_top_p,
    find_stop,
    next_token_probs,
    policy_from_model,
    row_seed,
    sample,
    sample_tokens,
)

INF = float("-inf")
PROMPTS = ["Hi there", "What is the capital of France, please? Answer briefly.", "Count to three."]




# ------------------------------------------------------------------------------------ pure functions


def test_top_k_keeps_the_k_largest_and_ties() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [1.0, 2.0, 2.0, 0.0]])
    out = filter_top_k(logits, 2)
    assert out.tolist() == [[INF, 3.0, 2.0, INF], [INF, 2.0, 2.0, INF]]
    assert torch.equal(filter_top_k(logits, 0), logits)
    assert torch.equal(filter_top_k(logits, 4), logits)


@pytest.mark.parametrize(("p", "kept"), [(0.5, [0]), (0.6, [0, 1]), (0.8, [0, 1]), (0.81, [0, 1, 2]), (1.0, [0, 1, 2])])
def test_top_p_keeps_the_smallest_set_reaching_p(p: float, kept: list[int]) -> None:
    # probabilities 0.5, 0.3, 0.2 (shuffled order in the row): cumulative mass above each is 0, 0.5, 0.8
    probs = torch.tensor([[0.2, 0.5, 0.3]])
    order = [1, 2, 0]  # rank -> column
    out = filter_top_p(probs.log(), p)
    finite = sorted(order.index(c) for c in range(3) if math.isfinite(out[0, c].item()))
    assert finite == kept


def test_next_token_probs_temperature_by_hand() -> None:
    cfg = SamplingConfig(temperature=2.0)
    probs = next_token_probs(torch.tensor([[0.0, 2.0]]), cfg)
    expected = torch.tensor([1.0, math.e]) / (1 + math.e)  # softmax([0, 1])
    assert torch.allclose(probs[0], expected)


def test_greedy_is_argmax_and_sampling_rows_are_independent() -> None:
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    greedy = sample_tokens(logits, SamplingConfig(temperature=0), [])
    assert greedy.tolist() == logits.argmax(-1).tolist()
    cfg = SamplingConfig(temperature=1.0)

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(row_seed(0, "p", i)) for i in range(3)]

    all_rows = sample_tokens(logits, cfg, gens())
    last_alone = sample_tokens(logits[2:], cfg, gens()[2:])
    assert all_rows[2] == last_alone[0]  # row 2's draw does not depend on rows 0 and 1
    assert torch.equal(all_rows, sample_tokens(logits, cfg, gens()))  # seeded


@pytest.mark.parametrize("cfg", [SamplingConfig(), SamplingConfig(top_k=2), SamplingConfig(temperature=0.5, top_p=0.9)])
def test_sampled_frequencies_follow_next_token_probs(cfg: SamplingConfig) -> None:
    logits = torch.tensor([[0.1, 0.2, 0.7, 0.0]]).clamp(min=1e-9).log()
    expected = next_token_probs(logits, cfg)[0]
    if cfg.top_k == 2:
        expected = torch.tensor([0.0, 2 / 9, 7 / 9, 0.0])  # top-2 of (0.1, 0.2, 0.7), renormalised
    gen = [torch.Generator().manual_seed(0)]
    draws = torch.cat([sample_tokens(logits, cfg, gen) for _ in range(4000)])
    freq = torch.bincount(draws, minlength=4).float() / 4000
    assert torch.allclose(freq, expected, atol=0.03)  # 3 standard errors of a 0.5 share is 0.024


def test_find_stop_and_config_checks() -> None:
    assert find_stop("abc\n\nUser: x", ["User:", "\n\n"]) == 3
    assert find_stop("abc", ["x"]) is None
    for bad in ({"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0.0}, {"top_k": -1}, {"stop": ("",)}):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- the rollout


def test_greedy_rollout_matches_transformers_generate(policy: Policy) -> None:
    ids = [policy.encode_prompt(p) for p in PROMPTS]
    assert len({len(i) for i in ids}) > 1  # left padding is exercised
    rollout = Rollout(policy, ids, 2, SamplingConfig(max_new_tokens=10, temperature=0))
    rollout.advance(10)
    for p, prompt in enumerate(ids):
        ref = policy.model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False,
                                    pad_token_id=policy.pad_id)[0, len(prompt):].tolist()
        for g in rollout.rows_of(p):
            assert rollout.samples[g].token_ids[: len(ref)] == ref


def test_endings_eos_stop_and_length(policy: Policy) -> None:
    ids = [policy.encode_prompt(PROMPTS[1])]
    greedy = SamplingConfig(max_new_tokens=8, temperature=0)
    plain = Rollout(policy, ids, 1, greedy)
    plain.advance(8)
    tokens, text = plain.samples[0].token_ids, plain.text(0)
    assert plain.result(0).finish == "length" and len(tokens) == 8
    eos_policy = replace(policy, eos_ids=frozenset({tokens[2]}))
    ended = Rollout(eos_policy, ids, 1, greedy)
    ended.advance(8)
    assert ended.result(0).finish == "eos" and ended.samples[0].token_ids == tokens[:3]
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    cut = Rollout(policy, ids, 1, replace(greedy, stop=(stop,)))
    cut.advance(8)
    assert cut.result(0).finish == "stop"
    assert cut.text(0) == text[: text.find(stop)]


def test_token_accounting(policy: Policy) -> None:
    ids = [policy.encode_prompt(p) for p in PROMPTS[:2]]
    rollout = Rollout(policy, ids, 3, SamplingConfig(max_new_tokens=6, temperature=1.0))
    rollout.advance(6)
    lengths = [len(s.token_ids) for s in rollout.samples]
    assert rollout.generated_tokens == sum(lengths) == 2 * 3 * 6
    # the prompt is read once per prompt (shared prefill); the last token of a finished sample is never fed
    assert rollout.forward_tokens == sum(len(i) for i in ids) + sum(n - 1 for n in lengths)
    assert rollout.done and rollout.cache is None


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_pruned_survivors_continue_exactly_as_unpruned(policy: Policy, temperature: float) -> None:
    """Prune at t = 5 keeping rows {0, 3, 5} of 3 prompts × 2 samples: every survivor's 14 tokens equal its
    tokens in the unpruned run (its KV-cache rows, mask and position were selected, not mixed up)."""
    ids = [policy.encode_prompt(p) for p in PROMPTS]
    cfg = SamplingConfig(max_new_tokens=14, temperature=temperature, seed=7)
    full = Rollout(policy, ids, 2, cfg)
    full.advance(14)
    pruned = Rollout(policy, ids, 2, cfg)
    pruned.advance(5)
    pruned.keep([0, 3, 5])
    assert pruned.running == [0, 3, 5]
    pruned.advance(14)
    for g in (0, 3, 5):
        assert pruned.samples[g].token_ids == full.samples[g].token_ids
    assert [pruned.samples[g].finish for g in (1, 2, 4)] == ["pruned"] * 3
    assert pruned.generated_tokens == 6 * 5 + 3 * 9


def test_keep_rejects_rows_that_are_not_running(policy: Policy) -> None:
    rollout = Rollout(policy, [policy.encode_prompt("hi")], 2, SamplingConfig(max_new_tokens=4))
    with pytest.raises(ValueError, match="not running"):
        rollout.keep([5])


def test_sample_helper_and_seeds(policy: Policy) -> None:
    cfg = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=3)
    a = sample(policy, ["Hello", [{"role": "user", "content": "Hello"}]], 3, cfg)
    b = sample(policy, ["Hello"], 3, cfg)
    assert [s.text for s in a[0]] == [s.text for s in b[0]]  # same prompt key, same seed, same samples
    texts: Any = {s.text for s in a[0]}
    assert len(texts) > 1  # samples of a prompt differ


def test_policy_pad_is_not_eos(policy: Policy) -> None:
    assert policy.pad_id not in policy.eos_ids
    assert policy.tokenizer.eos_token_id in policy.eos_ids


def test_prompt_encoding_uses_the_chat_template(policy: Policy, tmp_path: Path) -> None:
    ids = policy.encode_prompt([{"role": "user", "content": "Hi"}])
    text = policy.tokenizer.decode(ids)
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")


def test_any_causal_lm_gpt2_without_chat_template(tmp_path: Path) -> None:
    """A GPT-2 (learned absolute positions) with a tokenizer that has no chat template: prompts are plain
    text, left padding keeps positions right, and greedy decoding matches transformers' ``generate``."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from rewardkit.models.backbones import resolve_backbone

    tok = AutoTokenizer.from_pretrained(resolve_backbone("smollm2-135m"))
    tok.chat_template = None
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                                       eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)).eval()
    gpt2 = policy_from_model(model, tok, "gpt2")
    ids = [gpt2.encode_prompt(p) for p in PROMPTS[:2]]
    assert ids[0] == tok("Hi there")["input_ids"]
    rollout = Rollout(gpt2, ids, 1, SamplingConfig(max_new_tokens=6, temperature=0))
    rollout.advance(6)
    for p, prompt in enumerate(ids):
        ref = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False, pad_token_id=gpt2.pad_id)
        assert rollout.samples[p].token_ids == ref[0, len(prompt):].tolist()[: len(rollout.samples[p].token_ids)]
