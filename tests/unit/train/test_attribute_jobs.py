"""ArmoRM and URM/URME trained on tiny random backbones from attribute data: the saved folder loads in plain
transformers with the K objective outputs, and in rewardkit to the gated, debiased scalar training computed
(1e-5); an ensemble reports its members' mean and std."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rewardkit.data.formats import reply
from rewardkit.errors import OptionError
from rewardkit.models.features import FeatureNet, classifier_layer, extract_features
from rewardkit.models.reward_model import load_reward_model
from rewardkit.scoring import score_encoded_output
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model
from tiny_models import PAIRS, tiny_bert, tiny_llama, write_pairs

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")
NAMES = ["helpfulness", "correctness", "verbosity"]


def write_attributes(path: Path) -> Path:
    """HelpSteer2-shaped rows from the toy pairs: chosen answers rated high, rejected low, verbosity = length,
    one missing helpfulness label."""
    rows = []
    for i, (prompt, chosen, rejected) in enumerate(PAIRS):
        for text, good in ((chosen, 1), (rejected, 0)):
            rows.append({"prompt": prompt, "response": text, "helpfulness": None if i == 0 and good else 3 * good + 1,
                         "correctness": 4 * good, "verbosity": min(len(text) / 20, 4.0)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("attr")
    return {"llama": tiny_llama(root / "llama"), "bert": tiny_bert(root / "bert"),
            "attributes": write_attributes(root / "hs2.jsonl"), "pairs": write_pairs(root / "pairs.jsonl")}


def _cfg(files: dict[str, Path], out: Path, backbone: str = "llama", **kw: object) -> RewardTrainConfig:
    base = {"data": str(files["attributes"]), "model": str(files[backbone]), "out": str(out), "batch_size": 4,
            "max_length": 64, "lr": 1e-2, "warmup_ratio": 0.0, "logging_steps": 1, "device": "cpu",
            "precision": "fp32", "max_steps": 3}
    return RewardTrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def _plain_logits(folder: Path, encoded: list) -> np.ndarray:
    plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return np.stack([plain(input_ids=torch.tensor([e.input_ids]),
                               **({"token_type_ids": torch.tensor([e.token_type_ids])} if e.token_type_ids else {})
                               ).logits[0].numpy() for e in encoded])


def _encoded(rm: object) -> list:
    return [rm.encoder.encode([{"role": "user", "content": p}], reply(c), True)  # type: ignore[attr-defined]
            for p, c, _ in PAIRS[:6]]


@pytest.mark.parametrize("backbone", ["llama", "bert"])
def test_armo_loads_in_plain_transformers_and_rewardkit(files: dict[str, Path], tmp_path: Path, backbone: str) -> None:
    out = tmp_path / "armo"
    result = train_reward_model(_cfg(files, out, backbone, pairs=str(files["pairs"]), head={"kind": "multi"}))
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["objectives"] == NAMES and meta["head"]["gating"] is True
    assert meta["reload_check"]["max_abs_diff"] < 1e-5 and meta["reload_check"]["items"] > 0
    assert set(meta["armo"]["ridge"]) == set(NAMES)
    penalties = meta["armo"]["verbosity_penalties"]
    assert penalties["verbosity"] == 1.0
    transform = np.array(meta["head"]["transform"])
    np.testing.assert_allclose(transform[2], [-penalties["helpfulness"], -penalties["correctness"], 0.0])
    assert result.metadata["training"]["steps"] == 3

    rm = load_reward_model(out)
    assert rm.head.cfg.prompt_offset == (4 if backbone == "llama" else 0)
    encoded = _encoded(rm)
    scored = score_encoded_output(rm, encoded)
    # plain transformers: the K ridge objectives, as the classifier layer
    np.testing.assert_allclose(_plain_logits(out, encoded), scored.objectives, atol=1e-5)
    # rewardkit: reward = Σ_k o_k c_k with c = gate(prompt) Tᵀ, recomputed from the features by hand
    feats = extract_features(rm.model, rm.head, rm.pad_token_id, encoded)
    layer = classifier_layer(rm.model)
    objectives = feats.pooled @ layer.weight.T.detach()
    with torch.no_grad():
        gate = rm.head.gate(feats.prompt)
        coeff = gate @ rm.head.transform.T
    np.testing.assert_allclose((objectives * coeff).sum(-1).numpy(), scored.rewards, atol=1e-5)
    np.testing.assert_allclose(scored.weights, gate.numpy(), atol=1e-6)  # the gate's weights, reported per item


def test_eval_reports_the_gating_weights_spread(files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit.cli import main

    out = tmp_path / "armo"
    train_reward_model(_cfg(files, out, pairs=str(files["pairs"]), head={"kind": "multi"}))
    assert main(["eval", "--model", str(out), "--data", str(files["pairs"]), "--out", str(tmp_path / "ev"),
                 "--device", "cpu"]) == 0
    assert "gating weights (mean ± std over responses): helpfulness" in capsys.readouterr().out
    gating = json.loads((tmp_path / "ev" / "results.json").read_text())["models"][0]["gating"]
    rm = load_reward_model(out)
    responses = [(p, side) for p, c, r in PAIRS for side in (c, r)]
    w = score_encoded_output(rm, [rm.encoder.encode([{"role": "user", "content": p}], reply(s), True)
                                  for p, s in responses]).weights  # (2·pairs, K)
    assert gating["responses"] == len(responses)
    for j, name in enumerate(NAMES):
        assert gating["objectives"][name]["mean"] == pytest.approx(float(w[:, j].mean()), abs=1e-5)
        assert gating["objectives"][name]["std"] == pytest.approx(float(w[:, j].std()), abs=1e-5)
    p = w / w.sum(-1, keepdims=True)
    assert gating["top_weight_mean"] == pytest.approx(float(p.max(-1).mean()), abs=1e-5)
    assert gating["entropy_uniform"] == pytest.approx(np.log(3))


def test_armo_ridge_weights_are_the_closed_form_without_pairs(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "armo-ridge"
    train_reward_model(_cfg(files, out, head={"kind": "multi"}, armo={"ridge_alphas": [1.0], "val_fraction": 0.0,
                                                                     "verbosity": ""}))
    rm = load_reward_model(out)
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["head"]["gating"] is False and meta["head"]["transform"] is None
    from rewardkit.data.attributes import load_attributes

    data = load_attributes(files["attributes"])
    enc = [rm.encoder.encode(e.prompt, e.response, e.conversational) for e in data.examples]
    x = extract_features(rm.model, rm.head, rm.pad_token_id, enc).pooled.double().numpy()
    y = data.labels()
    for k in range(3):  # (XᵀX + I)⁻¹ Xᵀ y on the labelled rows
        rows = ~np.isnan(y[:, k])
        xs = x[rows]
        w = np.linalg.solve(xs.T @ xs + np.eye(x.shape[1]), xs.T @ y[rows, k])
        np.testing.assert_allclose(classifier_layer(rm.model).weight[k].detach().double().numpy(), w,
                                   rtol=1e-4, atol=1e-5)
    # without a gate: fixed weights 1/K
    scored = score_encoded_output(rm, enc[:4])
    np.testing.assert_allclose(scored.rewards, scored.objectives.mean(1), atol=1e-6)


def test_urm_gaussian_head_loads_in_plain_transformers_and_rewardkit(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "urm"
    train_reward_model(_cfg(files, out, head={"kind": "gaussian"}, pairs=str(files["pairs"])))
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["head"]["kind"] == "gaussian" and meta["reload_check"]["max_abs_diff"] < 1e-5
    rm = load_reward_model(out)
    encoded = _encoded(rm)
    scored = score_encoded_output(rm, encoded)
    assert scored.uncertainty is not None and (scored.uncertainty > 0).all()
    np.testing.assert_allclose(_plain_logits(out, encoded), scored.objectives, atol=1e-5)  # the K means


def test_urme_ensemble_reports_members_mean_and_std(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "urme"
    train_reward_model(_cfg(files, out, head={"kind": "gaussian"}, ensemble=3))
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["ensemble"]["members"] == ["members/0", "members/1", "members/2"]
    assert meta["reload_check"]["max_abs_diff"] < 1e-5
    ens = load_reward_model(out)
    encoded = _encoded(ens)
    got = score_encoded_output(ens, encoded)
    members = np.stack([score_encoded_output(load_reward_model(out / "members" / str(i)), encoded).rewards
                        for i in range(3)])
    np.testing.assert_allclose(got.rewards, members.mean(0), atol=1e-5)
    np.testing.assert_allclose(got.uncertainty, members.std(0), atol=1e-5)
    assert (got.uncertainty > 0).all()  # members differ (seeds 42, 43, 44)
    # every scorer reads it: pessimism r − k·U uses the members' std
    from rewardkit.scoring import ScorerOptions, build_scorer

    prompts = [[{"role": "user", "content": p}] for p, _, _ in PAIRS[:6]]
    responses = [reply(c) for _, c, _ in PAIRS[:6]]
    pessimistic = build_scorer(str(out), ScorerOptions(device="cpu", pessimism=2.0)).score(prompts, responses, True)
    np.testing.assert_allclose(pessimistic.rewards, members.mean(0) - 2 * members.std(0), atol=1e-5)
    # each member is a plain transformers folder
    assert _plain_logits(out / "members" / "1", encoded[:1]).shape == (1, 3)


def test_attribute_data_needs_a_multi_objective_head(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--head multi"):
        train_reward_model(_cfg(files, tmp_path / "x"))
    with pytest.raises(OptionError, match="--ensemble needs --head gaussian"):
        train_reward_model(_cfg(files, tmp_path / "x", head={"kind": "multi"}, ensemble=2))


def test_feature_net_equals_the_full_forward(files: dict[str, Path]) -> None:
    from rewardkit.models.heads import HeadConfig
    from rewardkit.models.reward_model import build_reward_model

    rm = build_reward_model(str(files["llama"]), max_length=64,
                            head=HeadConfig(kind="gaussian", objectives=["a", "b"], gating=True, gating_hidden=8))
    rm.model.eval()
    torch.manual_seed(3)
    with torch.no_grad():
        for p in rm.head.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    encoded = _encoded(rm)
    full = score_encoded_output(rm, encoded)
    net = FeatureNet(classifier_layer(rm.model), rm.head)
    with torch.no_grad():
        out = net.run(extract_features(rm.model, rm.head, rm.pad_token_id, encoded))
    np.testing.assert_allclose(out.reward.numpy(), full.rewards, atol=1e-5)
    np.testing.assert_allclose(out.uncertainty.numpy(), full.uncertainty, atol=1e-5)


def test_direction_on_a_trained_multi_head_is_v_dot_objectives(files: dict[str, Path], tmp_path: Path) -> None:
    """DPA (METHODS §3): R_v = vᵀ r(x, y) with v = w / ‖w‖ over the objectives (the gate and transform are the
    model's own scalar; a direction replaces them)."""
    from rewardkit.scoring import ScorerOptions, build_scorer

    out = tmp_path / "armo-dir"
    train_reward_model(_cfg(files, out, head={"kind": "multi"}, pairs=str(files["pairs"]), max_steps=1))
    scorer = build_scorer(f"direction:{out}#helpfulness=3,verbosity=4", ScorerOptions(device="cpu"))
    prompts = [[{"role": "user", "content": p}] for p, _, _ in PAIRS[:5]]
    responses = [reply(c) for _, c, _ in PAIRS[:5]]
    got = scorer.score(prompts, responses, True)
    plain = build_scorer(str(out), ScorerOptions(device="cpu")).score(prompts, responses, True)
    # v = (3, 0, 4) / 5 over (helpfulness, correctness, verbosity)
    np.testing.assert_allclose(got.rewards, plain.objectives @ np.array([0.6, 0.0, 0.8]), atol=1e-5)
    assert not np.allclose(got.rewards, plain.rewards)  # not the gated scalar


def test_benchmark_direction_picks_follow_the_angle() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    from directions import is_monotone, picks_by_angle

    # one prompt, 3 candidates (helpfulness, verbosity): short & helpful, medium, long & verbose
    objectives = np.array([[[1.0, 0.0], [0.9, 0.5], [0.5, 1.0]]])
    lengths = np.array([[[10, 2], [50, 10], [200, 40]]], dtype=float)
    rows = picks_by_angle(objectives, lengths, ["helpfulness", "verbosity"], [-30, 30, 80],
                          helpful="helpfulness", verbose="verbosity")
    # θ = −30°: v = (.866, −.5): scores .866, .529, −.067 -> 0; θ = 30°: (.866, .5): .866, 1.029, .933 -> 1;
    # θ = 80°: (.174, .985): .174, .649, 1.072 -> 2
    assert [r["picks"] for r in rows] == [[0], [1], [2]]
    assert is_monotone([r["mean_chars"] for r in rows]) and not is_monotone([3.0, 2.0])


def test_command_line_head_flag_trains_armo_and_evaluates_held_out_pairs(files: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit.cli import main

    out = tmp_path / "cli-armo"
    code = main(["train", "rm", "--data", str(files["attributes"]), "--head", "multi", "--model", str(files["llama"]),
                 "--out", str(out), "--eval-data", str(files["pairs"]), "--max-length", "64", "--device", "cpu",
                 "--set", "armo.ridge_alphas=0.1,10"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "stage 1 ridge per objective: helpfulness α=" in printed and "held-out accuracy" in printed
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["head"]["kind"] == "multi" and meta["metrics"]["eval"]["pairs"] == len(PAIRS)
    assert {v["alpha"] for v in meta["armo"]["ridge"].values()} <= {0.1, 10.0}
