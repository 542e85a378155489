"""Reward heads: each builds on a tiny model, saves as a standard HF folder that plain transformers loads
with K outputs, and reloads in rewardkit to the same scalar, objectives and uncertainty (1e-5); the
multi head's scalar follows its documented formula."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardkit.data.formats import reply
from rewardkit.errors import OptionError
from rewardkit.models.heads import HEADS, GaussianHead, HeadConfig, MultiObjectiveHead
from rewardkit.models.reward_model import HEAD_FILE, build_reward_model, load_reward_model, save_reward_model
from rewardkit.scoring import RewardModelScorer, ScorerOptions, build_scorer, score_encoded_output
from tiny_models import PAIRS, tiny_bert, tiny_llama

NAMES = ["helpful", "correct", "verbose"]
HEADS_TO_TEST = {
    "scalar": HeadConfig(),
    "multi": HeadConfig(kind="multi", objectives=NAMES, weights=[0.5, 0.3, 0.2]),
    "multi_gated": HeadConfig(kind="multi", objectives=NAMES, gating=True, gating_hidden=8,
                              transform=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.5, -0.25, 1.0]]),
    "gaussian": HeadConfig(kind="gaussian", objectives=NAMES[:2]),
    "gaussian_gated": HeadConfig(kind="gaussian", objectives=NAMES[:2], gating=True, gating_hidden=8, prompt_offset=1),
}


def _randomise(head: torch.nn.Module, seed: int) -> None:
    """Non-trivial extras (a fresh gaussian head starts at log-std 0; gating at uniform weights)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def _inputs(rm):
    prompts = [[{"role": "user", "content": p}] for p, _, _ in PAIRS[:4]]
    responses = [reply(c) for _, c, _ in PAIRS[:4]]
    return [rm.encoder.encode(p, r, True) for p, r in zip(prompts, responses, strict=True)]


@pytest.mark.parametrize("backbone", ["bert", "llama"])
@pytest.mark.parametrize("name", list(HEADS_TO_TEST))
def test_saved_head_reloads_in_plain_transformers_and_rewardkit(name: str, backbone: str, tmp_path: Path) -> None:
    base = (tiny_bert if backbone == "bert" else tiny_llama)(tmp_path / "backbone")
    cfg = HeadConfig.from_dict(HEADS_TO_TEST[name].to_dict())
    rm = build_reward_model(str(base), max_length=64, head=cfg)
    _randomise(rm.head, seed=1)
    rm.model.eval()
    encoded = _inputs(rm)
    before = score_encoded_output(rm, encoded)
    out = save_reward_model(rm, tmp_path / "rm", {})
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["head"]["kind"] == cfg.kind and meta["objectives"] == cfg.objectives
    assert meta["head"]["reward_formula"] == rm.head.formula()
    assert (out / HEAD_FILE).exists() == bool(list(rm.head.state_dict()))

    # plain transformers: K outputs, named by id2label, equal to rewardkit's objectives
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert plain.config.num_labels == len(cfg.objectives)
    assert [plain.config.id2label[i] for i in range(len(cfg.objectives))] == cfg.objectives
    with torch.no_grad():
        logits = np.stack([plain(input_ids=torch.tensor([e.input_ids]),
                                 **({"token_type_ids": torch.tensor([e.token_type_ids])} if e.token_type_ids else {})
                                 ).logits[0].numpy() for e in encoded])
    if cfg.kind == "scalar":
        np.testing.assert_allclose(before.rewards, logits[:, 0], atol=1e-5)
        assert before.objectives is None
    else:
        np.testing.assert_allclose(before.objectives, logits, atol=1e-5)
        assert before.objective_names == tuple(cfg.objectives)

    # rewardkit: the same scalar, objectives and uncertainty after reloading
    after = score_encoded_output(load_reward_model(out), encoded)
    np.testing.assert_allclose(after.rewards, before.rewards, atol=1e-5)
    if cfg.kind != "scalar":
        np.testing.assert_allclose(after.objectives, before.objectives, atol=1e-5)
    if cfg.kind == "gaussian":
        assert after.uncertainty is not None and (after.uncertainty > 0).all()
        np.testing.assert_allclose(after.uncertainty, before.uncertainty, atol=1e-5)
    else:
        assert after.uncertainty is None


def test_multi_head_scalar_is_the_documented_formula() -> None:
    # reward = Σ_k o_k · c_k with c = w Tᵀ. o = (1, 2, 4); fixed w = (0.5, 0.3, 0.2);
    # T = I with T[2, :] -= (0.5, 0.25, 0) (verbosity debiasing of objectives 0 and 1):
    #   Tᵀ columns... c = w Tᵀ = (0.5·1 + 0.3·0 + 0.2·0, 0.5·0 + 0.3·1 + 0.2·0, 0.5·(−0.5) + 0.3·(−0.25) + 0.2·1)
    #     = (0.5, 0.3, −0.125);  reward = 1·0.5 + 2·0.3 + 4·(−0.125) = 0.5 + 0.6 − 0.5 = 0.6
    cfg = HeadConfig(kind="multi", objectives=NAMES, weights=[0.5, 0.3, 0.2],
                     transform=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.5, -0.25, 1.0]])
    head = MultiObjectiveHead(cfg, hidden_size=4)
    out = head(torch.tensor([[1.0, 2.0, 4.0]]))
    assert out.reward.tolist() == pytest.approx([0.6], abs=1e-6)
    assert out.objectives.tolist() == [[1.0, 2.0, 4.0]]


def test_gated_head_weights_come_from_the_prompt_token() -> None:
    # gating: softmax(mlp(h) / T) · logit_scale, read at the prompt's last position (prompt_at)
    cfg = HeadConfig(kind="multi", objectives=["a", "b"], gating=True, gating_layers=1, gating_temperature=2.0)
    head = MultiObjectiveHead(cfg, hidden_size=2)
    assert head.gate is not None
    with torch.no_grad():
        head.gate.mlp[0].weight.copy_(torch.eye(2))
        head.gate.mlp[0].bias.zero_()
        head.gate.logit_scale.fill_(3.0)
    hidden = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]]])  # (1, T=3, H=2); prompt ends at position 1
    out = head(torch.tensor([[1.0, 5.0]]), hidden, torch.tensor([2]), torch.tensor([1]))
    # z = h_1 / T = (1, 0): softmax = (e/(e+1), 1/(e+1)) = (0.7310586, 0.2689414); × 3
    w = torch.tensor([np.e / (np.e + 1), 1 / (np.e + 1)]) * 3
    assert out.reward.item() == pytest.approx(float(1 * w[0] + 5 * w[1]), abs=1e-5)
    assert out.weights is not None and out.weights[0].tolist() == pytest.approx(w.tolist(), abs=1e-6)
    fixed = MultiObjectiveHead(HeadConfig(kind="multi", objectives=["a", "b"]), hidden_size=2)
    assert fixed(torch.tensor([[1.0, 5.0]])).weights is None  # only a gate's weights are reported


def test_gaussian_uncertainty_combines_the_objectives() -> None:
    # weights (0.5, 0.5), log-stds (log 2, log 4): uncertainty = sqrt(0.25·4 + 0.25·16) = sqrt(5)
    head = GaussianHead(HeadConfig(kind="gaussian", objectives=["a", "b"]), hidden_size=1)
    with torch.no_grad():
        head.log_std.weight.zero_()
        head.log_std.bias.copy_(torch.tensor([np.log(2.0), np.log(4.0)]))
    out = head(torch.tensor([[1.0, 3.0]]), torch.zeros(1, 1, 1), torch.tensor([0]))
    assert out.reward.item() == pytest.approx(2.0)
    assert out.uncertainty.item() == pytest.approx(np.sqrt(5.0), abs=1e-5)


def test_heads_are_registered_and_configs_validated() -> None:
    assert HEADS.names() == ["gaussian", "multi", "scalar"]
    with pytest.raises(OptionError, match="unknown head 'linear'"):
        HeadConfig(kind="linear")
    with pytest.raises(OptionError, match="a scalar head has one objective"):
        HeadConfig(objectives=["a", "b"])
    with pytest.raises(OptionError, match="3 × 3"):
        HeadConfig(kind="multi", objectives=NAMES, transform=[[1.0]])
    with pytest.raises(OptionError, match=r"gating needs head\.kind=multi or gaussian"):
        HeadConfig(kind="scalar", gating=True)


def test_a_plain_multi_output_hf_model_loads_as_a_multi_head(tmp_path: Path) -> None:
    base = tiny_bert(tmp_path / "b")
    model = AutoModelForSequenceClassification.from_pretrained(base, id2label={0: "x", 1: "y"}, ignore_mismatched_sizes=True)
    model.save_pretrained(tmp_path / "hf")
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path / "hf")
    scorer = build_scorer(str(tmp_path / "hf"), ScorerOptions(device="cpu"))
    assert isinstance(scorer, RewardModelScorer) and scorer.rm.objectives == ["x", "y"]
    out = scorer.score([[{"role": "user", "content": "hi"}]], [reply("hello")])
    assert out.objective_names == ("x", "y")
    assert out.rewards[0] == pytest.approx(out.objectives[0].mean(), abs=1e-6)  # equal weights 1/K


def test_a_saved_model_folder_is_readable_like_any_output(tmp_path: Path) -> None:
    """safetensors and temporary-file writes create 0600 files; a model folder follows the umask (0644)."""
    import os
    import stat

    base = tiny_bert(tmp_path / "backbone")
    rm = build_reward_model(str(base), max_length=64, head=HeadConfig(kind="gaussian", objectives=["a"]))
    old = os.umask(0o022)
    try:
        out = save_reward_model(rm, tmp_path / "rm", {})
    finally:
        os.umask(old)
    for name in ("model.safetensors", HEAD_FILE, "rewardkit.json", "config.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
