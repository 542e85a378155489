"""The causal-LM layer: chunked ``sequence_logps`` equals a naive full log-softmax gather (1e-5) on tiny
Llama and GPT-2 models with left and right padding, keeps gradients, and the pad rule keeps the vocabulary."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from rewardkit.models.causal_lm import (
    ensure_distinct_pad,
    gathered_logps,
    left_pad,
    naive_sequence_logps,
    response_mask_from_starts,
    right_pad,
    sequence_logps,
)

VOCAB = 97
SEQS = [[5, 9, 11, 3, 7, 8, 2], [4, 4, 6], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15]]
STARTS = [3, 1, 6, 2]  # first response token of each sequence


def tiny(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "llama":
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
        return LlamaForCausalLM(cfg).eval()
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg).eval()


def batch(padding: str) -> dict[str, torch.Tensor]:
    if padding == "left":
        return left_pad(SEQS, pad_id=0)
    ids, mask = right_pad(SEQS, pad_id=0)
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_sequence_logps_equals_the_naive_gather(kind: str, padding: str, chunk: int) -> None:
    model, b = tiny(kind), batch(padding)
    response = response_mask_from_starts(b["attention_mask"], STARTS)
    with torch.no_grad():
        ours = sequence_logps(model, b["input_ids"], b["attention_mask"], response, chunk_tokens=chunk)
        ref = naive_sequence_logps(model, b["input_ids"], b["attention_mask"], response)
    torch.testing.assert_close(ours.sums, ref.sums, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.tokens, ref.tokens, atol=1e-5, rtol=0)
    assert ours.counts.tolist() == [len(s) - st for s, st in zip(SEQS, STARTS, strict=True)] == ref.counts.tolist()
    assert (ours.sums < 0).all()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_padding_side_does_not_change_the_result(kind: str) -> None:
    model = tiny(kind)
    with torch.no_grad():
        out = {}
        for padding in ("left", "right"):
            b = batch(padding)
            out[padding] = sequence_logps(model, b["input_ids"], b["attention_mask"],
                                          response_mask_from_starts(b["attention_mask"], STARTS))
    torch.testing.assert_close(out["left"].sums, out["right"].sums, atol=1e-5, rtol=0)


def test_one_sequence_alone_equals_its_row_in_a_batch() -> None:
    model, b = tiny("llama"), batch("right")
    response = response_mask_from_starts(b["attention_mask"], STARTS)
    with torch.no_grad():
        full = sequence_logps(model, b["input_ids"], b["attention_mask"], response)
        ids, mask = right_pad(SEQS[2:3], pad_id=0)
        alone = sequence_logps(model, ids, mask, response_mask_from_starts(mask, STARTS[2:3]))
    assert alone.sums.item() == pytest.approx(full.sums[2].item(), abs=1e-5)


def test_gradients_match_the_naive_gather() -> None:
    b = batch("right")
    response = response_mask_from_starts(b["attention_mask"], STARTS)
    grads = []
    for fn in (lambda m: sequence_logps(m, b["input_ids"], b["attention_mask"], response, chunk_tokens=3),
               lambda m: naive_sequence_logps(m, b["input_ids"], b["attention_mask"], response)):
        model = tiny("llama").train()
        fn(model).sums.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_gathered_logps_by_hand() -> None:
    # logits (0, ln 3): log softmax = (ln 1/4, ln 3/4); target 1 -> ln 0.75 = -0.2876820...
    logits = torch.tensor([[0.0, float(torch.log(torch.tensor(3.0)))]])
    assert gathered_logps(logits, torch.tensor([1])).item() == pytest.approx(-0.28768207, abs=1e-6)
    # Gemma's softcap c·tanh(z/c) with c = 1: (0, tanh(ln 3) = 0.8) -> ln(e^0.8 / (1 + e^0.8)) = -0.3711007
    assert gathered_logps(logits, torch.tensor([1]), softcap=1.0).item() == pytest.approx(-0.3711007, abs=1e-6)


def test_response_mask_counts_real_tokens_on_either_side() -> None:
    left = left_pad([[7, 8, 9], [7]], pad_id=0)
    mask = response_mask_from_starts(left["attention_mask"], [1, 0])
    assert mask.tolist() == [[False, True, True], [False, False, True]]


class _Tok:
    def __init__(self, pad: int | None, eos: int | None, unk: int | None) -> None:
        self.pad_token_id, self.eos_token_id, self.unk_token_id = pad, eos, unk
        self.pad_token = None
        self.eos_token, self.unk_token = "<eos>", "<unk>"
        self.added: list[str] = []
        self.padding_side = "left"

    def add_special_tokens(self, d: dict[str, str]) -> None:
        self.added.append(d["pad_token"])
        self.pad_token_id = 99

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "pad_token" and value == "<unk>":
            object.__setattr__(self, "pad_token_id", self.unk_token_id)
        if name == "pad_token" and value == "<eos>":
            object.__setattr__(self, "pad_token_id", self.eos_token_id)


def test_pad_rule() -> None:
    # pad == eos with a distinct unk: unk becomes pad, right padding
    tok = _Tok(pad=2, eos=2, unk=0)
    ensure_distinct_pad(tok)
    assert (tok.pad_token_id, tok.padding_side, tok.added) == (0, "right", [])
    # no unk: training adds <|pad|>; inference keeps the vocabulary (EOS only fills masked positions)
    tok = _Tok(pad=None, eos=2, unk=None)
    ensure_distinct_pad(tok)
    assert tok.added == ["<|pad|>"]
    tok = _Tok(pad=None, eos=2, unk=None)
    ensure_distinct_pad(tok, add_token=False)
    assert (tok.added, tok.pad_token_id) == ([], 2)
