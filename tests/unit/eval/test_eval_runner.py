"""``rewardkit eval`` end to end on the fixtures with the ``table`` scorer: results.json, items.jsonl,
report.html, baselines, paired tests, the cache, and clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from eval_helpers import FIXTURES, TableScorer

from rewardkit.cli import main

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")
RB = str(FIXTURES / "rewardbench" / "filtered.jsonl")
RB_TABLE = f"table:{FIXTURES / 'rewardbench' / 'scores.json'}"
PAIRS = str(FIXTURES / "pairs" / "prefs.jsonl")
PAIRS_TABLE = f"table:{FIXTURES / 'pairs' / 'scores.json'}"


def _run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out"
    assert main(["eval", "--out", str(out), "--n-boot", "200", *args]) == 0
    return json.loads((out / "results.json").read_text())


def test_rewardbench_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = _run(tmp_path, "--model", RB_TABLE, "--data", RB, "--benchmark", "rewardbench", "--skip-invalid")
    printed = capsys.readouterr().out
    assert "section/Chat Hard" in printed and "longer-wins" in printed and "results.json" in printed
    assert r["format"] == "rewardkit-eval/1" and r["benchmark"] == "rewardbench"
    metrics = {m["key"]: m for m in r["models"][0]["metrics"]}
    chat, safety = (0.5 * 100) / 140, (136 + 0.5 * 250) / 386  # as in test_bench_rewardbench
    assert metrics["overall"]["value"] == pytest.approx((chat + 1.0 + safety + 0.5) / 4)
    for m in metrics.values():
        assert m["ci95_low"] <= m["value"] <= m["ci95_high"] or math.isclose(m["ci95_low"], m["ci95_high"])
    assert set(r["baselines"]) == {"random", "longer_wins", "shorter_wins"}
    assert r["baselines"]["random"]["overall"] == 0.5
    assert r["data"]["records"] == 14 and r["data"]["skipped_invalid"] == 1 and len(r["data"]["invalid"]) == 1
    assert r["data"]["notes"] == {"subsets_outside_sections": ["anthropic_helpful"]}
    assert len(r["data"]["fingerprint"]) == 64
    s = r["settings"]
    assert s["seed"] == 0 and s["n_boot"] == 200 and {"torch", "transformers", "rewardkit"} <= set(s["versions"])
    model = r["models"][0]
    assert model["scoring"]["distinct_inputs"] == 26 and model["truncated_items"] == 0
    assert {"ece", "bins"} <= set(model["calibration"]) and "margin_length_spearman" in model["length_bias"]
    lines = (tmp_path / "out" / "items.jsonl").read_text().splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["models"][RB_TABLE]["scores"] == [2.0, 1.0]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_length_baselines_by_hand_and_two_models_paired(tmp_path: Path) -> None:
    # every chosen response in prefs.jsonl is the longer one: longer-wins 1, shorter-wins 0
    r = _run(tmp_path, "--model", PAIRS_TABLE, "--model", "length", "--data", PAIRS, "--skip-invalid")
    assert r["baselines"]["longer_wins"] == {"overall": 1.0, "subset/chat": 1.0, "subset/geo": 1.0}
    assert r["baselines"]["shorter_wins"]["overall"] == 0.0
    table, length = ({m["key"]: m["value"] for m in model["metrics"]} for model in r["models"])
    assert table["overall"] == pytest.approx(1 / 3) and length["overall"] == 1.0
    overall = next(c for c in r["comparisons"] if c["key"] == "overall")
    assert (overall["model_a"], overall["model_b"]) == (PAIRS_TABLE, "length")
    assert overall["diff"] == pytest.approx(2 / 3) and 0.0 <= overall["p_value"] <= 1.0
    assert r["models"][1]["length_bias"]["score_length_spearman"] == pytest.approx(1.0)


def test_cache_makes_a_rerun_score_nothing(tmp_path: Path) -> None:
    args = ["--model", PAIRS_TABLE, "--data", PAIRS, "--skip-invalid", "--cache", str(tmp_path / "cache"), "--no-report"]
    TableScorer.calls.clear()
    first = _run(tmp_path, *args)
    assert sum(TableScorer.calls) == 6
    TableScorer.calls.clear()
    second = _run(tmp_path, *args)
    assert TableScorer.calls == [] and second["models"][0]["scoring"]["from_cache"] == 6
    assert first["models"][0]["metrics"] == second["models"][0]["metrics"]
    assert not (tmp_path / "out" / "report.html").exists()


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["eval", "--out", str(tmp_path / "o"), "--model", RB_TABLE]
    assert main([*base, "--data", RB, "--benchmark", "rewardbench"]) == 2
    assert "filtered.jsonl:14: field 'chosen': is empty" in capsys.readouterr().err
    assert main([*base, "--data", RB, "--benchmark", "nope"]) == 2
    assert "unknown benchmark 'nope'; known: pairs, rewardbench, rewardbench2, rmb, rmbench" in capsys.readouterr().err
    assert main([*base, "--model", RB_TABLE, "--data", RB]) == 2
    assert "--model given twice" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.parametrize(("benchmark", "folder", "data", "overall"), [
    ("rewardbench2", "rewardbench2", "test.jsonl", None),
    ("rmb", "rmb", "RMB_dataset", 7 / 12),
    ("rmbench", "rmbench", "total_dataset.json", (1 / 2 + 0 + 2 / 3 + 2 / 3) / 4),
])
def test_every_benchmark_runs_end_to_end(tmp_path: Path, benchmark: str, folder: str, data: str,
                                         overall: float | None) -> None:
    r = _run(tmp_path, "--model", f"table:{FIXTURES / folder / 'scores.json'}", "--benchmark", benchmark,
             "--data", str(FIXTURES / folder / data), "--skip-invalid", "--no-report")
    value = r["models"][0]["metrics"][0]
    assert value["key"] == "overall"
    if overall is not None:
        assert value["value"] == pytest.approx(overall)
    assert r["baselines"]["random"]["overall"] is not None
