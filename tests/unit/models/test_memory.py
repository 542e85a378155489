"""rewardkit.models.memory: recomputed attention changes no number; the peak-RSS unit conversion."""

from __future__ import annotations

import platform
import resource
from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from rewardkit.models import memory
from rewardkit.models.memory import recompute_in_backward, recomputed_attention

B, T, HEADS = 4, 12, 2


def _bert(dropout: float = 0.1) -> BertForSequenceClassification:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=HEADS,
                     intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout, num_labels=1, attn_implementation="sdpa")
    return BertForSequenceClassification(cfg).train()


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (B, T), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padded rows: the padding mask must still reach the attention
    mask[3, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _step(model: BertForSequenceClassification) -> tuple[torch.Tensor, list[torch.Tensor], int, float]:
    """Logits (B, 1), parameter gradients, bytes saved for backward outside any checkpoint, next RNG draw."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(2)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(**_batch()).logits
    logits.pow(2).sum().backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()], saved[0], torch.rand(1).item()


def test_recomputed_attention_changes_no_number_and_keeps_no_attention_probabilities() -> None:
    model = _bert()
    plain = _step(model)
    with recomputed_attention(model) as switched:
        assert switched == 1  # the classifier and its BertModel share one config
        assert model.config._attn_implementation == memory.RECOMPUTED
        recomputed = _step(model)
    assert model.config._attn_implementation == "sdpa"
    assert torch.equal(plain[0], recomputed[0])
    assert all(torch.equal(a, b) for a, b in zip(plain[1], recomputed[1], strict=True))
    assert plain[3] == recomputed[3]  # the RNG stream after the step is the same: later steps are unchanged
    # per layer the math kernel keeps at least the (B, H, T, T) float32 probabilities; recomputed, none
    assert plain[2] - recomputed[2] >= 2 * B * HEADS * T * T * 4


def test_without_dropout_nothing_is_recomputed() -> None:
    model = _bert(dropout=0.0)
    plain = _step(model)
    with recomputed_attention(model):
        same = _step(model)
    assert plain[2] == same[2]
    assert torch.equal(plain[0], same[0])


def test_eager_models_are_left_alone() -> None:
    model = _bert()
    model.config._attn_implementation = "eager"
    with recomputed_attention(model) as switched:
        assert switched == 0
        assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize(("grad", "device", "dropout", "expected"), [
    (True, "cpu", 0.1, True), (False, "cpu", 0.1, False), (True, "cpu", 0.0, False), (True, "meta", 0.1, False)])
def test_recompute_in_backward(grad: bool, device: str, dropout: float, expected: bool) -> None:
    with torch.set_grad_enabled(grad):
        assert recompute_in_backward(torch.zeros(1, device=device), dropout) is expected


def test_peak_rss_mb_converts_ru_maxrss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrusage", lambda _who: SimpleNamespace(ru_maxrss=3 * 1024 * 1024))
    monkeypatch.setattr(memory.sys, "platform", "linux")
    assert memory.peak_rss_mb() == 3 * 1024  # KiB on Linux
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.peak_rss_mb() == 3.0  # bytes on macOS


def test_release_free_memory_applies_on_glibc_only() -> None:
    assert memory.release_free_memory() is (platform.libc_ver()[0] == "glibc")


def test_checkpoint_layers_changes_no_number_and_keeps_less() -> None:
    plain = _step(_bert())
    model = _bert()
    assert memory.checkpoint_layers(model) == 1  # the classifier; its BertModel follows it
    assert memory.checkpoint_layers(model) == 0  # already on
    layered = _step(model)
    assert torch.equal(plain[0], layered[0]) and plain[3] == layered[3]
    assert all(torch.equal(a, b) for a, b in zip(plain[1], layered[1], strict=True))
    assert layered[2] < plain[2] / 2
