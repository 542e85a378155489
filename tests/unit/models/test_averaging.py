"""Model averaging and HMA maths (rewardkit.models.averaging) and the HMA search (rewardkit.train.averaging),
on two tiny random Llamas (tests/tiny_models.py) with different seeds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from rewardkit.errors import OptionError
from rewardkit.models.averaging import (
    AveragingPlan,
    LMText,
    average_models,
    check_compatible,
    group_of,
    hma_alphas,
    interpolate,
    layer_groups,
    layer_of,
    merged_parameters,
    num_layers,
    response_nll,
    split_layers,
)
from rewardkit.train.averaging import HMASearchConfig, batch_nll, search_alphas
from tiny_models import tiny_llama

torch.set_num_threads(1)
L0 = "model.layers.0.mlp.up_proj.weight"
L1 = "model.layers.1.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[LlamaForCausalLM, LlamaForCausalLM]:
    root = tmp_path_factory.mktemp("avg")
    base = AutoModelForCausalLM.from_pretrained(tiny_llama(root / "base", seed=0)).eval()
    tuned = AutoModelForCausalLM.from_pretrained(tiny_llama(root / "tuned", seed=1)).eval()
    return base, tuned


def _llama(layers: int, seed: int, *, tied: bool = False) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                      num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=tied)
    return LlamaForCausalLM(cfg).eval()


# ---------------------------------------------------------------------------- layers and groups


def test_layer_of_reads_the_stack_from_names() -> None:
    keys = ["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.11.input_layernorm.weight",
            "model.norm.weight", "lm_head.weight"]
    assert layer_of(keys) == {"model.embed_tokens.weight": None, "model.layers.0.mlp.up_proj.weight": 0,
                              "model.layers.11.input_layernorm.weight": 11, "model.norm.weight": None,
                              "lm_head.weight": None}
    gpt2 = ["transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_fc.bias",
            "transformer.ln_f.weight"]
    assert [layer_of(gpt2)[k] for k in gpt2] == [None, 0, 1, None]
    groups = layer_groups(keys, 2)  # 12 layers: 0–5, 6–11
    assert [groups[k] for k in keys] == [-1, 0, 1, -1, -1]
    with pytest.raises(OptionError, match="no decoder layer stack"):
        layer_of(["a.weight", "b.bias"])


def test_split_layers_equal_and_lmflow() -> None:
    assert split_layers(10, 3) == ((0, 3), (4, 6), (7, 9))
    assert split_layers(30, 3) == ((0, 9), (10, 19), (20, 29))
    assert split_layers(2, 2) == ((0, 0), (1, 1))
    assert split_layers(30, 3, "lmflow") == ((0, 8), (9, 16), (17, 29))  # SmolLM2-135M: 30 layers
    assert split_layers(32, 3, "lmflow") == ((0, 11), (12, 21), (22, 31))
    with pytest.raises(OptionError, match="between 1 and"):
        split_layers(2, 3)
    with pytest.raises(OptionError, match="3 groups"):
        split_layers(30, 4, "lmflow")


# ---------------------------------------------------------------------------- interpolation


def test_alpha_0_is_tuned_1_is_base_half_is_the_mean(pair: tuple) -> None:
    base, tuned = pair
    n = num_layers(layer_of(tuned))
    for alpha, expect in ((0.0, tuned), (1.0, base)):
        got = average_models(base, tuned, AveragingPlan.uniform(alpha, n)).state_dict()
        for k, v in expect.state_dict().items():
            assert torch.equal(got[k], v), (alpha, k)
    half = average_models(base, tuned, AveragingPlan.uniform(0.5, n)).state_dict()
    for k in (L0, L1, "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"):
        hand = (base.state_dict()[k] + tuned.state_dict()[k]) / 2
        torch.testing.assert_close(half[k], hand, rtol=0, atol=1e-7)
    assert not torch.equal(base.state_dict()[L0], tuned.state_dict()[L0])  # the models do differ


def test_per_group_alpha_lands_on_its_layers(pair: tuple) -> None:
    base, tuned = pair
    b, t = base.state_dict(), tuned.state_dict()
    plan = AveragingPlan.grouped([0.25, 0.75], 2, rest_alpha=0.1)
    assert plan.ranges == ((0, 0), (1, 1))
    got = average_models(base, tuned, plan).state_dict()
    torch.testing.assert_close(got[L0], 0.25 * b[L0] + 0.75 * t[L0], rtol=0, atol=1e-7)
    torch.testing.assert_close(got[L1], 0.75 * b[L1] + 0.25 * t[L1], rtol=0, atol=1e-7)
    k = "model.layers.1.post_attention_layernorm.weight"  # norms inside a layer follow the layer
    torch.testing.assert_close(got[k], 0.75 * b[k] + 0.25 * t[k], rtol=0, atol=1e-7)
    for k in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):  # outside: rest_alpha
        torch.testing.assert_close(got[k], 0.1 * b[k] + 0.9 * t[k], rtol=0, atol=1e-7)
    assert AveragingPlan.grouped([0.2, 0.4], 2).rest_alpha == pytest.approx(0.3)  # default: the mean


def test_tied_embeddings_stay_tied() -> None:
    base, tuned = _llama(2, 0, tied=True), _llama(2, 1, tied=True)
    assert tuned.lm_head.weight is tuned.model.embed_tokens.weight
    merged = average_models(base, tuned, AveragingPlan.grouped([0.1, 0.9], 2, rest_alpha=0.4))
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    hand = 0.4 * base.model.embed_tokens.weight + 0.6 * tuned.model.embed_tokens.weight
    torch.testing.assert_close(merged.lm_head.weight, hand, rtol=0, atol=1e-7)
    state = tuned.state_dict()
    alphas = {k: 0.5 for k in state}
    alphas["lm_head.weight"] = 0.2
    with pytest.raises(OptionError, match="tied parameters"):
        interpolate(base.state_dict(), state, alphas)


def test_mismatched_architectures_are_named() -> None:
    with pytest.raises(OptionError, match=r"different architectures.*only in"):
        check_compatible(_llama(2, 0).state_dict(), _llama(3, 0).state_dict())
    wide = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        num_key_value_heads=1, intermediate_size=32))
    with pytest.raises(OptionError, match=r"model.embed_tokens.weight is \(64, 16\) in base, \(64, 32\)"):
        check_compatible(_llama(2, 0).state_dict(), wide.state_dict())


# ---------------------------------------------------------------------------- HMA


def test_hma_alphas_hand_case_and_fixed_mean() -> None:
    a = torch.tensor([0.0, math.log(3.0)])  # sigmoid: 0.5, 0.75
    got = hma_alphas(a, 0.2, 0.2)
    # 0.2·2·(0.7, 0.95)/1.65 = (0.169697..., 0.230303...)
    torch.testing.assert_close(got, torch.tensor([0.28 / 1.65, 0.38 / 1.65]), rtol=0, atol=1e-7)
    g = torch.Generator().manual_seed(0)
    for k in (1, 3, 7):
        logits = torch.randn(k, generator=g, dtype=torch.float64) * 3
        assert float(hma_alphas(logits, 0.2, 0.2).mean()) == pytest.approx(0.2, abs=1e-15)
    init = torch.full((3,), float(torch.logit(torch.tensor(0.2))))
    torch.testing.assert_close(hma_alphas(init, 0.2, 0.2), torch.full((3,), 0.2))


def _texts() -> list[LMText]:
    return [LMText((1, 5, 9, 12, 7, 3, 40, 41), 3), LMText((2, 8, 8, 30, 31, 32), 2),
            LMText((4, 4, 10, 11, 50, 51, 52, 53, 54), 4), LMText((6, 7, 60, 61, 62), 2)]


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_search_loss_equals_the_averaged_models_nll_and_gradient_reaches_logits(tied: bool) -> None:
    base, tuned = _llama(3, 0, tied=tied), _llama(3, 1, tied=tied)
    layers = layer_of(dict(tuned.named_parameters()).keys())
    ranges = split_layers(3, 3)
    groups = group_of(layers, ranges)
    logits = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float32, requires_grad=True)
    alphas = hma_alphas(logits, 0.2, 0.2)
    bp = {n: p.detach() for n, p in base.named_parameters()}
    tp = {n: p.detach() for n, p in tuned.named_parameters()}
    loss = batch_nll(tuned, merged_parameters(bp, tp, groups, alphas, 0.2), _texts(), pad_id=0)
    plan = AveragingPlan(ranges, tuple(float(a) for a in alphas.detach()), 0.2)
    ref = response_nll(average_models(base, tuned, plan), _texts(), pad_id=0)  # sequence_logps path
    assert float(loss.detach()) == pytest.approx(ref.per_token, rel=1e-5)
    loss.backward()
    assert logits.grad is not None and float(logits.grad.abs().max()) > 0
    assert all(p.grad is None for p in tuned.parameters())  # the models stay frozen
    # finite differences of the loss in alpha (float64 copies), and gradcheck of hma_alphas itself
    b64, t64 = base.double(), tuned.double()
    bp = {n: p.detach() for n, p in b64.named_parameters()}
    tp = {n: p.detach() for n, p in t64.named_parameters()}

    def f(a: torch.Tensor) -> torch.Tensor:
        return batch_nll(t64, merged_parameters(bp, tp, groups, a, 0.2), _texts(), 0)

    a = torch.tensor([0.2, 0.3, 0.1], dtype=torch.float64, requires_grad=True)
    f(a).backward()
    h = 1e-3  # not smaller: Llama's RMSNorm computes in float32 even in a float64 model
    with torch.no_grad():
        fd = torch.stack([(f(a + h * e) - f(a - h * e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64)])
    assert float(fd.abs().min()) > 1e-3
    torch.testing.assert_close(a.grad, fd, rtol=2e-3, atol=0)
    x = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: hma_alphas(v, 0.2, 0.2), (x,))


def test_search_moves_alphas_keeps_mean_and_lowers_nll() -> None:
    base, tuned = _llama(2, 0), _llama(2, 1)
    before = {n: p.clone() for n, p in tuned.state_dict().items()}
    cfg = HMASearchConfig(groups=2, lr=0.5, steps=6, batch_size=4, reg_alpha=1e-4)
    res = search_alphas(base, tuned, _texts(), 0, cfg)
    assert len(res.history) == 6
    assert res.history[0].alphas != res.history[-1].alphas
    assert max(abs(a - 0.2) for a in res.plan.alphas) > 1e-3
    assert sum(res.plan.alphas) / 2 == pytest.approx(0.2, abs=1e-6)
    assert res.nll_after < res.nll_before
    assert res.plan.rest_alpha == 0.2
    assert all(torch.equal(before[n], p) for n, p in tuned.state_dict().items())  # tuned untouched


def test_search_config_rejects_bad_values() -> None:
    with pytest.raises(OptionError, match="init"):
        HMASearchConfig(init=1.0)
    with pytest.raises(OptionError, match="lr"):
        HMASearchConfig(lr=0)


def test_saved_folder_loads_in_plain_transformers(pair: tuple, tmp_path: Path) -> None:
    base, tuned = pair
    merged = average_models(base, tuned, AveragingPlan.grouped([0.3, 0.6], 2))
    merged.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    for k, v in merged.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    ids = torch.tensor([[1, 5, 9, 12]])
    torch.testing.assert_close(again(ids).logits, merged(ids).logits, rtol=0, atol=0)
