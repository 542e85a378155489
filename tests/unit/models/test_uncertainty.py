"""Last-layer uncertainty (AdvPO): M⁻¹ and U on a 2-d toy worked by hand; the fit on plain HF folders (a
decoder and BERT) equals M built from features computed here with plain transformers; a fitted folder
reloads and scores identically, whatever the batch; the backbone runs once per scoring forward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardkit.cli import main
from rewardkit.models.reward_model import load_reward_model
from rewardkit.models.uncertainty import (
    UNCERTAINTY_FILE,
    add_pairs,
    output_layer,
    precision_matrix,
    uncertainty,
    whitener,
)
from rewardkit.scoring import RewardModelScorer
from tiny_models import PAIRS, tiny_bert, tiny_llama, write_pairs

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


# ----------------------------------------------------------------------------- the 2-d toy, by hand


def test_precision_inverse_and_u_on_a_2d_toy() -> None:
    # pairs with differences d1 = (1, 0) and d2 = (1, 1), λ = 1:
    # M = I + d1 d1ᵀ + d2 d2ᵀ = [[1+1+1, 0+0+1], [0+0+1, 1+0+1]] = [[3, 1], [1, 2]]; det M = 6 − 1 = 5
    # M⁻¹ = (1/5) [[2, −1], [−1, 3]] = [[0.4, −0.2], [−0.2, 0.6]]
    # U(e1) = sqrt(0.4); U(e2) = sqrt(0.6); U((1, 1)) = sqrt(0.4 − 0.2 − 0.2 + 0.6) = sqrt(0.6); U(0) = 0
    chosen = torch.tensor([[2.0, 5.0], [1.5, 0.5]])
    rejected = torch.tensor([[1.0, 5.0], [0.5, -0.5]])  # differences (1, 0) and (1, 1)
    m = add_pairs(precision_matrix(2, 1.0), chosen, rejected)
    torch.testing.assert_close(m, torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64))
    w = whitener(m)
    torch.testing.assert_close(w.T @ w, torch.tensor([[0.4, -0.2], [-0.2, 0.6]], dtype=torch.float64))
    phi = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([0.4, 0.6, 0.6, 0.0], dtype=torch.float64).sqrt()
    torch.testing.assert_close(uncertainty(phi, w), expected)
    # λ = 2 with no pairs: U = ‖φ‖ / sqrt(2)
    torch.testing.assert_close(uncertainty(phi, whitener(precision_matrix(2, 2.0))), phi.norm(dim=-1) / 2**0.5)


def test_bad_lambda_and_a_matrix_that_is_not_positive_definite_are_refused() -> None:
    from rewardkit.errors import OptionError

    with pytest.raises(OptionError, match="lambda must be > 0"):
        precision_matrix(3, 0.0)
    with pytest.raises(ValueError, match="not positive definite"):
        whitener(torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64))


# ----------------------------------------------------------------------------- plain HF folders


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Plain HF sequence-classification folders (no rewardkit.json): a tiny Llama and a tiny BERT."""
    root = tmp_path_factory.mktemp("uncertainty")
    llama = root / "llama-rm"
    AutoModelForSequenceClassification.from_pretrained(tiny_llama(root / "llama-lm"), num_labels=1).save_pretrained(llama)
    AutoTokenizer.from_pretrained(root / "llama-lm").save_pretrained(llama)
    return {"llama": llama, "bert": tiny_bert(root / "bert-rm"), "pairs": write_pairs(root / "pairs.jsonl"),
            "root": root}


def _fit(folder: Path, pairs: Path, *extra: str) -> None:
    assert main(["uncertainty", "fit", "--model", str(folder), "--data", str(pairs), "--device", "cpu", *extra]) == 0


def _features_by_hand(rm: Any, prompt: str, response: str) -> torch.Tensor:
    """φ (H,) of one unpadded input with plain transformers: a decoder's final hidden state at the last
    token, or BERT's pooler output (what its classifier reads)."""
    enc = rm.encoder.encode([{"role": "user", "content": prompt}], [{"role": "assistant", "content": response}], True)
    ids = torch.tensor([enc.input_ids])
    kwargs = {"token_type_ids": torch.tensor([enc.token_type_ids])} if enc.token_type_ids else {}
    with torch.no_grad():
        out = rm.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True, **kwargs)
        if rm.model.config.model_type == "bert":
            return rm.model.bert.pooler(out.hidden_states[-1])[0].double()
        return out.hidden_states[-1][0, -1].double()


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_fit_on_a_plain_hf_folder_equals_m_from_features_computed_by_hand(folders: dict[str, Path], name: str) -> None:
    folder = folders[name]
    _fit(folder, folders["pairs"], "--lambda", "0.5")
    meta = json.loads((folder / "rewardkit.json").read_text())["uncertainty"]
    assert meta["lambda"] == 0.5 and meta["pairs"] == len(PAIRS) and meta["file"] == UNCERTAINTY_FILE
    assert meta["feature_layer"] == ("score" if name == "llama" else "classifier")
    m = load_file(str(folder / UNCERTAINTY_FILE))["precision"]
    assert m.dtype == torch.float64 and m.shape == (32, 32) and meta["dim"] == 32
    expected = torch.eye(32, dtype=torch.float64) * 0.5
    rm = load_reward_model(str(folder), device="cpu", dtype="float32")
    for prompt, chosen, rejected in PAIRS:
        d = _features_by_hand(rm, prompt, chosen) - _features_by_hand(rm, prompt, rejected)
        expected += torch.outer(d, d)
    torch.testing.assert_close(m, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_scorers_of_a_fitted_folder_return_u_of_each_item(folders: dict[str, Path], name: str) -> None:
    folder = folders[name]
    _fit(folder, folders["pairs"])
    m = load_file(str(folder / UNCERTAINTY_FILE))["precision"]
    prompts = [[{"role": "user", "content": p}] for p, _, _ in PAIRS]
    responses = [[{"role": "assistant", "content": c}] for _, c, _ in PAIRS]
    scorer = RewardModelScorer(str(folder), device="cpu", dtype="float32")
    out = scorer.score(prompts, responses)
    assert scorer.yields_uncertainty and out.uncertainty is not None and out.uncertainty.dtype == np.float32
    for i, (p, c, _) in enumerate(PAIRS[:4]):  # U = sqrt(φᵀ M⁻¹ φ) with φ of the unpadded input, solved here
        phi = _features_by_hand(scorer.rm, p, c)
        assert out.uncertainty[i] == pytest.approx(float(phi @ torch.linalg.solve(m, phi)) ** 0.5, rel=1e-5)
    # a second load, one item per batch: the same rewards and U; the rewards equal the unfitted model's
    again = RewardModelScorer(str(folder), device="cpu", dtype="float32", max_tokens=1)
    one_by_one = again.score(prompts, responses)
    np.testing.assert_allclose(one_by_one.uncertainty, out.uncertainty, rtol=1e-5)
    np.testing.assert_allclose(one_by_one.rewards, out.rewards, atol=1e-6)
    plain = load_reward_model(str(folder), device="cpu", dtype="float32")  # no uncertainty attached
    assert plain.net.uncertainty is None
    enc = scorer.encode(prompts, responses)
    from rewardkit.scoring import score_encoded_output

    base = score_encoded_output(plain, enc)
    assert base.uncertainty is None
    np.testing.assert_allclose(base.rewards, out.rewards, atol=1e-6)


def test_the_backbone_runs_once_per_forward(folders: dict[str, Path]) -> None:
    _fit(folders["llama"], folders["pairs"])
    scorer = RewardModelScorer(str(folders["llama"]), device="cpu", dtype="float32")
    calls = []
    handle = scorer.rm.model.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        scorer.score([[{"role": "user", "content": "hi"}]] * 3, [[{"role": "assistant", "content": "hello"}]] * 3)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_output_layer_names() -> None:
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        LlamaConfig,
        LlamaForSequenceClassification,
    )

    bert = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=8, num_labels=3))
    llama = LlamaForSequenceClassification(LlamaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                       num_attention_heads=2, intermediate_size=8, num_labels=1))
    assert output_layer(bert)[0] == "classifier" and output_layer(bert)[1].in_features == 8
    assert output_layer(llama)[0] == "score"


def test_fit_refuses_a_hub_name_and_bad_lambda(folders: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["uncertainty", "fit", "--model", "org/not-a-folder", "--data", str(folders["pairs"])]) == 2
    assert "not a local model folder" in capsys.readouterr().err
    assert main(["uncertainty", "fit", "--model", str(folders["bert"]), "--data", str(folders["pairs"]),
                 "--lambda", "-1"]) == 2
    assert "--lambda must be a finite number > 0" in capsys.readouterr().err
