"""The quickstart end to end on the shipped ifeval-lite data with the real MiniLM (a few steps only):
every reported baseline, shortcut and rerank figure is recomputed here from the shipped and written files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.quickstart import run_quickstart
from rewardkit.synth import audit, load_embedded

pytestmark = pytest.mark.slow


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _accuracy(rows: list[dict]) -> float:
    return float(np.mean([r["chosen_score"] > r["rejected_score"] for r in rows]))


def test_quickstart_reports_what_the_data_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qs"
    run_quickstart(out=str(out), max_steps=3, response_only=True)
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert str(out / "summary.json") in printed and "response-only reward model" in printed
    resources = summary["resources"]  # what the run took, printed for the user and kept for benchmarks
    assert resources["seconds"] > 0 and resources["peak_rss_mb"] > 0
    assert f"peak resident memory {resources['peak_rss_mb']:,.0f} MB" in printed

    test = _rows(load_embedded("test"))
    pw = summary["pairwise"]
    assert pw["pairs"] == len(test) == json.loads(load_embedded("manifest").read_text())["counts"]["pairs"]["test"]
    c_len = np.array([len(r["chosen"][-1]["content"]) for r in test])
    r_len = np.array([len(r["rejected"][-1]["content"]) for r in test])
    assert pw["baselines"]["longer_wins"] == pytest.approx(float((c_len > r_len).mean()))
    assert pw["baselines"]["shorter_wins"] == pytest.approx(float((c_len < r_len).mean()))
    acc = pw["accuracy"]
    assert acc["ci95_low"] <= acc["value"] <= acc["ci95_high"] and acc["n"] == len(test)
    assert acc["value"] == pytest.approx(_accuracy(_rows(out / "test_scored.jsonl")))

    sc = summary["shortcuts"]
    assert sc["rm"]["value"] == acc["value"]
    # the model-free rules, from the source fields and lengths (ties half): twins make them exactly 0.5
    edited = [(r["chosen_source"] != "sample") - (r["rejected_source"] != "sample") for r in test]
    assert sc["edited_wins"]["value"] == pytest.approx(np.mean([0.5 + e / 2 for e in edited])) == 0.5
    assert sc["longer_wins"]["value"] == pytest.approx(np.mean((c_len > r_len) + 0.5 * (c_len == r_len)))
    assert sc["prompt_blind_ceiling"] == audit.prompt_blind_ceiling(test) == 0.5
    # the response-only model saw "Respond." only; the swapped file holds other requests' prompts
    blind = _rows(out / "test_scored_response_only.jsonl")
    assert {r["prompt"][0]["content"] for r in blind} == {"Respond."}
    assert sc["response_only_rm"]["value"] == pytest.approx(_accuracy(blind))
    swapped = _rows(out / "test_scored_prompt_swapped.jsonl")
    group_of = {r["prompt_id"]: r["group"] for r in test}
    assert all(group_of[s["swapped_from"]] != t["group"] and s["prompt"] != t["prompt"] and s["chosen"] == t["chosen"]
               for s, t in zip(swapped, test, strict=True))
    assert sc["prompt_swap_rm"]["value"] == pytest.approx(_accuracy(swapped))
    assert set(sc["rm_by_pair_type"]) == {r["pair_type"] for r in test}

    cands = _rows(load_embedded("candidates"))
    rr = summary["rerank"]
    assert rr["prompts"] == len(cands) and rr["candidates"] == sum(len(c["responses"]) for c in cands)
    assert rr["random_pick_gold"]["value"] == pytest.approx(np.mean([np.mean(c["gold"]) for c in cands]))
    assert rr["best_possible_gold"]["value"] == pytest.approx(np.mean([max(c["gold"]) for c in cands]))
    plain = [[g for g, s in zip(c["gold"], c["sources"], strict=True) if s == "sample"] for c in cands]
    assert rr["samples_only"]["best_possible_gold"]["value"] == pytest.approx(np.mean([max(g) for g in plain]))
    picks = _rows(out / "rerank.jsonl")
    for c, p in zip(cands, picks, strict=True):  # the pick is the argmax of the stored scores
        assert p["pick"] == c["responses"][int(np.argmax(p["scores"]))]
        assert p["pick_gold"] == c["gold"][int(np.argmax(p["scores"]))]
    assert rr["rm_pick_gold"]["value"] <= rr["best_possible_gold"]["value"]
    for folder in ("rm", "rm_response_only"):
        assert (out / folder / "model.safetensors").exists() and (out / folder / "rewardkit.json").exists()
