"""The real pretrained backbones shipped on PyPI: MiniLM trained on real HH-RLHF pairs, SmolLM2 as a
decoder RM. Plain transformers must reproduce rewardkit's scores. Marked slow; CI runs them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardkit.cli import main
from rewardkit.data.chat import render_plain
from rewardkit.data.formats import Location, parse_record
from rewardkit.models.reward_model import build_reward_model, save_reward_model
from rewardkit.scorers.files import score_file
from rewardkit.scoring import ScorerOptions
from shared_data import HH_RLHF, shared_data

HH = shared_data(HH_RLHF)
pytestmark = pytest.mark.slow


def _hh_rows(start: int, stop: int) -> list[str]:
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        return [line for i, line in enumerate(f) if start <= i < stop]


def test_minilm_on_hh_rlhf_loads_in_plain_transformers_with_identical_scores(tmp_path: Path) -> None:
    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train.write_text("".join(_hh_rows(0, 96)))  # includes line 87
    held.write_text("".join(_hh_rows(1500, 1524)))
    out = tmp_path / "rm"
    assert main(["train", "rm", "--data", str(train), "--eval-data", str(held), "--model", "minilm",
                 "--out", str(out), "--max-steps", "3", "--batch-size", "8", "--max-length", "128",
                 "--skip-invalid"]) == 0
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["data"]["skipped_invalid"] == 1  # line 87 of the file has an empty chosen response
    assert meta["data"]["pairs"] == 95 and meta["data"]["records"] == 96
    assert meta["input_format"] == "text_pair" and meta["max_length"] == 128
    assert 0.0 <= meta["metrics"]["eval"]["accuracy"] <= 1.0

    scored = tmp_path / "scored.jsonl"
    score_file(str(out), str(held), str(scored), options=ScorerOptions(max_length=512, device="cpu"))  # override: compare (almost) all untruncated
    rows = [json.loads(line) for line in scored.read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    for i, row in enumerate(rows):
        ex = parse_record(json.loads(_hh_rows(1500 + i, 1501 + i)[0]), Location("x", 1))
        if row["truncated"]:
            continue  # plain tokenizer(...) truncation differs from the keep-response policy by design
        for key, msgs in (("chosen_score", ex.chosen), ("rejected_score", ex.rejected)):
            enc = tok(render_plain(ex.prompt), msgs[0]["content"], return_tensors="pt")
            with torch.no_grad():
                plain = model(**enc).logits[0, 0].item()
            assert row[key] == pytest.approx(plain, abs=1e-5)
    assert sum(not r["truncated"] for r in rows) >= 20


def test_smollm2_reward_model_pads_with_a_distinct_token_and_matches_plain_transformers(tmp_path: Path) -> None:
    rm = build_reward_model("smollm2-135m", max_length=256)
    assert rm.encoder.input_format == "chat"
    assert rm.tokenizer.pad_token_id != rm.tokenizer.eos_token_id
    save_reward_model(rm, tmp_path / "smol", {})
    data = tmp_path / "pairs.jsonl"
    pairs = [("What is 2+2?", "4.", "5."), ("Name a colour.", "Blue, like the sky on a clear summer day.", "No.")]
    data.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": p}],
                                        "chosen": [{"role": "assistant", "content": c}],
                                        "rejected": [{"role": "assistant", "content": r}]}) + "\n"
                            for p, c, r in pairs))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", str(tmp_path / "smol"), "--data", str(data), "--out", str(out)]) == 0
    ours = [s for line in out.read_text().splitlines() for s in
            (json.loads(line)["chosen_score"], json.loads(line)["rejected_score"])]
    tok = AutoTokenizer.from_pretrained(tmp_path / "smol")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "smol").eval()
    texts = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}] for p, c, rj in pairs
             for r in (c, rj)]
    batch = tok.apply_chat_template(texts, return_tensors="pt", return_dict=True, padding=True)
    with torch.no_grad():
        plain = model(**batch).logits[:, 0].numpy()  # plain batched call, right-padded with the saved pad
    np.testing.assert_allclose(ours, plain, atol=1e-4)
