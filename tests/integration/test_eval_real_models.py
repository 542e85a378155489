"""``rewardkit eval`` with the real pretrained models shipped on PyPI: a MiniLM reward model trained on
HH-RLHF (quickstart-style), SmolLM2-135M-Instruct as a DPO implicit reward and as a generative judge.
Marked slow; CI runs them."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.eval.report import CHROMIUM_INSTALL, find_chromium, render_png
from shared_data import HH_RLHF, shared_data
from tiny_models import tiny_llama

HH = shared_data(HH_RLHF)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hf_datasets_cache")]


def _hh(path: Path, start: int, stop: int) -> Path:
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        path.write_text("".join(line for i, line in enumerate(f) if start <= i < stop))
    return path


def test_minilm_reward_model_eval_matches_score_and_renders(tmp_path: Path) -> None:
    rm = tmp_path / "rm"
    assert main(["train", "rm", "--data", str(_hh(tmp_path / "train.jsonl", 0, 64)), "--model", "minilm",
                 "--out", str(rm), "--max-steps", "3", "--batch-size", "8", "--max-length", "128",
                 "--skip-invalid"]) == 0
    held = _hh(tmp_path / "held.jsonl", 1500, 1540)
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(rm), "--data", str(held), "--out", str(out), "--n-boot", "500"]) == 0
    r = json.loads((out / "results.json").read_text())
    model = r["models"][0]
    acc = model["metrics"][0]
    assert acc["key"] == "overall" and acc["n"] == 40 and acc["ci95_low"] <= acc["value"] <= acc["ci95_high"]
    assert model["scorer"]["max_length"] == 128 and model["scorer"]["input_format"] == "text_pair"
    assert len(model["scorer"]["fingerprint"]) == 64 and model["truncated_items"] > 0  # HH dialogues exceed 128
    # the same numbers as `rewardkit score`, which encodes each pair without the prompt cache
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", str(rm), "--data", str(held), "--out", str(scored)]) == 0
    want = [[json.loads(x)["chosen_score"], json.loads(x)["rejected_score"]] for x in scored.read_text().splitlines()]
    got = [json.loads(x)["models"][str(rm)]["scores"] for x in (out / "items.jsonl").read_text().splitlines()]
    assert np.allclose(got, want, atol=1e-5)
    if find_chromium() is None:
        pytest.fail(f"Chromium is needed to render report.html; install it with `{CHROMIUM_INSTALL}`")
    assert render_png(out / "report.html", tmp_path / "report.png") == []


def test_smollm2_as_dpo_implicit_reward_and_as_judge(tmp_path: Path) -> None:
    out = tmp_path / "dpo"
    assert main(["eval", "--model", "dpo:smollm2-135m", "--ref-free", "avg", "--benchmark", "rmbench",
                 "--data", str(FIXTURES / "rmbench" / "total_dataset.json"), "--skip-invalid", "--limit", "2",
                 "--out", str(out), "--n-boot", "200", "--no-report"]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["models"][0]["scorer"]["mode"] == "avg" and r["models"][0]["scoring"]["distinct_inputs"] == 12
    rows = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    scores = [s for row in rows for s in row["models"]["dpo:smollm2-135m"]["scores"]]
    assert all(math.isfinite(s) and s < 0 for s in scores)  # mean log-probabilities

    judge = tmp_path / "judge"
    assert main(["eval", "--model", "judge:smollm2-135m", "--benchmark", "rmb", "--data",
                 str(FIXTURES / "rmb" / "RMB_dataset" / "BoN_set" / "Helpfulness"), "--out", str(judge),
                 "--n-boot", "200", "--no-report"]) == 0
    r = json.loads((judge / "results.json").read_text())
    assert r["models"][0]["scorer"]["both_orders"] is True
    assert r["models"][0]["scoring"]["distinct_inputs"] == 6 + 3  # round-robin: C(4,2) + C(3,2) comparisons
    for row in (json.loads(x) for x in (judge / "items.jsonl").read_text().splitlines()):
        s = row["models"]["judge:smollm2-135m"]["scores"]
        assert abs(sum(s)) < 1e-4  # least-squares strengths of an antisymmetric matrix sum to 0


def test_dpo_against_a_reference_model(tmp_path: Path) -> None:
    ref = tiny_llama(tmp_path / "ref")  # SmolLM2's tokenizer: a valid reference for the policy
    out = tmp_path / "ratio"
    assert main(["eval", "--model", "dpo:smollm2-135m", "--ref-model", str(ref), "--data",
                 str(FIXTURES / "pairs" / "prefs.jsonl"), "--skip-invalid", "--out", str(out), "--n-boot", "200",
                 "--no-report"]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["models"][0]["scorer"]["mode"] == "ratio" and r["models"][0]["scorer"]["ref"] == str(ref)
