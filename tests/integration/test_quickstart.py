"""The quickstart end to end on the shipped ifeval-lite data with the real MiniLM (a few steps only):
every reported baseline and rerank figure is recomputed here from the shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.synth import load_embedded

pytestmark = pytest.mark.slow


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_quickstart_reports_what_the_data_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--max-steps", "6"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert str(out / "summary.json") in printed and "reward model" in printed

    test = _rows(load_embedded("test"))
    pw = summary["pairwise"]
    assert pw["pairs"] == len(test) == 381
    c_len = np.array([len(r["chosen"][-1]["content"]) for r in test])
    r_len = np.array([len(r["rejected"][-1]["content"]) for r in test])
    assert pw["baselines"]["longer_wins"] == pytest.approx(float((c_len > r_len).mean()))
    assert pw["baselines"]["shorter_wins"] == pytest.approx(float((c_len < r_len).mean()))
    acc = pw["accuracy"]
    assert acc["ci95_low"] <= acc["value"] <= acc["ci95_high"] and acc["n"] == 381
    scored = _rows(out / "test_scored.jsonl")
    assert acc["value"] == pytest.approx(np.mean([r["chosen_score"] > r["rejected_score"] for r in scored]))

    cands = _rows(load_embedded("candidates"))
    rr = summary["rerank"]
    assert rr["prompts"] == len(cands) and rr["candidates"] == sum(len(c["responses"]) for c in cands)
    assert rr["random_pick_gold"]["value"] == pytest.approx(np.mean([np.mean(c["gold"]) for c in cands]))
    assert rr["best_possible_gold"]["value"] == pytest.approx(np.mean([max(c["gold"]) for c in cands]))
    picks = _rows(out / "rerank.jsonl")
    for c, p in zip(cands, picks, strict=True):  # the pick is the argmax of the stored scores
        assert p["pick"] == c["responses"][int(np.argmax(p["scores"]))]
        assert p["pick_gold"] == c["gold"][int(np.argmax(p["scores"]))]
    assert rr["rm_pick_gold"]["value"] <= rr["best_possible_gold"]["value"]
    assert (out / "rm" / "model.safetensors").exists() and (out / "rm" / "rewardkit.json").exists()
