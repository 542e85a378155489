"""``rewardkit eval`` end to end on the fixtures with the ``table`` scorer: results.json, items.jsonl,
report.html, baselines, paired tests, coverage of the published sections, truncation, the cache, and
clear errors. The runner is called as a library (:func:`run_eval`); one test goes through the CLI."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eval_helpers import FIXTURES, TableScorer

from rewardkit.eval.runner import EvalConfig, run_eval
from rewardkit.scoring import SCORERS, ScoreOutput

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")
RB = str(FIXTURES / "rewardbench" / "filtered.jsonl")
RB_TABLE = f"table:{FIXTURES / 'rewardbench' / 'scores.json'}"
PAIRS = str(FIXTURES / "pairs" / "prefs.jsonl")
PAIRS_TABLE = f"table:{FIXTURES / 'pairs' / 'scores.json'}"
RMBENCH_TABLE = f"cut-table:{FIXTURES / 'rmbench' / 'scores.json'}"


class CutTable(TableScorer):
    """``cut-table:PATH``: the table's scores, every input flagged truncated except those containing '[1]'
    (RM-Bench fixture item 1), like a model whose max length cuts almost everything."""

    def score(self, prompts: Sequence[Any], responses: Sequence[Any], conversational: Any = True) -> ScoreOutput:
        out = super().score(prompts, responses, conversational)
        cut = np.array(["[1]" not in r[0]["content"] for r in responses], dtype=bool)
        return ScoreOutput(out.rewards, cut)

    @classmethod
    def from_spec(cls, path: str, opts: Any) -> CutTable:
        return cls(path)


if "cut-table" not in SCORERS:
    SCORERS.register("cut-table")(CutTable)


def _run(tmp_path: Path, *models: str, report: bool = True, **options: Any) -> dict:
    out = tmp_path / "out"
    run_eval(EvalConfig(models=models, out=str(out), n_boot=200, report=report, **options))
    return json.loads((out / "results.json").read_text())


def test_rewardbench_results_json(tmp_path: Path) -> None:
    r = _run(tmp_path, RB_TABLE, data=RB, benchmark="rewardbench", skip_invalid=True)
    assert r["format"] == "rewardkit-eval/1" and r["benchmark"] == "rewardbench"
    metrics = {m["key"]: m for m in r["models"][0]["metrics"]}
    chat, safety = (0.5 * 100 + 0.5 * 95) / 235, (136 + 0.5 * 250) / 386  # as in test_bench_rewardbench
    assert metrics["overall"]["value"] == pytest.approx((chat + 1.0 + safety + 0.5) / 4)
    for m in metrics.values():
        assert m["ci95_low"] <= m["value"] <= m["ci95_high"] or math.isclose(m["ci95_low"], m["ci95_high"])
    assert set(r["baselines"]) == {"random", "longer_wins", "shorter_wins"}
    assert r["baselines"]["random"]["overall"] == 0.5
    assert r["data"]["records"] == 16 and r["data"]["skipped_invalid"] == 1 and len(r["data"]["invalid"]) == 1
    notes = r["data"]["notes"]
    assert {k: notes[k] for k in ("identical_answers", "empty_answers", "subsets_outside_sections")} == {
        "identical_answers": 1, "empty_answers": 1, "subsets_outside_sections": ["anthropic_helpful"]}
    assert "1 item(s) with an empty/whitespace answer, kept and scored as the reference does" in r["data"]["remarks"]
    # the fixture has every section but not every subset of each: the overall is flagged incomplete
    assert r["complete"] is False and r["coverage"]["sections_present"] == ["Chat", "Chat Hard", "Safety", "Reasoning"]
    assert r["coverage"]["sections_missing"] == [] and "alpacaeval-length" in r["coverage"]["sections_partial"]["Chat"]
    assert notes["incomplete"].startswith("4 of 4 sections; Chat partial (missing: alpacaeval-length, ")
    assert len(r["data"]["fingerprint"]) == 64
    s = r["settings"]
    assert s["seed"] == 0 and s["n_boot"] == 200 and {"torch", "transformers", "rewardkit"} <= set(s["versions"])
    model = r["models"][0]
    # 15 items x 2 responses, less one: row 15's identical answers are one distinct input
    assert model["scoring"]["distinct_inputs"] == 29 and model["truncated_items"] == 0
    assert model["truncated_share"] == 0.0
    assert {"ece", "bins"} <= set(model["calibration"]) and "margin_length_spearman" in model["length_bias"]
    lines = (tmp_path / "out" / "items.jsonl").read_text().splitlines()
    assert len(lines) == 15 and json.loads(lines[0])["models"][RB_TABLE]["scores"] == [2.0, 1.0]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_rmbench_published_files_without_math_are_flagged_incomplete(tmp_path: Path) -> None:
    data = tmp_path / "rmbench"
    shutil.copytree(FIXTURES / "rmbench" / "published", data)
    (data / "math_filtered.json").unlink()
    r = _run(tmp_path, RMBENCH_TABLE, data=str(data), benchmark="rmbench")
    overall = r["models"][0]["metrics"][0]
    assert overall["key"] == "overall"
    assert overall["value"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)  # chat, code, safety: test_bench_rmbench
    assert r["complete"] is False
    assert r["coverage"] == {"complete": False, "headline": "3 of 4 domains (missing: math)", "unit": "domains",
                             "sections_present": ["chat", "code", "safety"],
                             "sections_expected": ["chat", "math", "code", "safety"],
                             "sections_missing": ["math"], "sections_partial": {}}
    assert r["data"]["notes"]["incomplete"].startswith("3 of 4 domains (missing: math); the overall is the mean")
    # every input but item 1's is cut: 4 of 5 items truncated
    assert r["models"][0]["truncated_items"] == 4 and r["models"][0]["truncated_share"] == pytest.approx(0.8)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "incomplete: 3 of 4 domains (missing: math)" in page
    assert "4 of 5 items (80%)" in page


def test_complete_published_folder(tmp_path: Path) -> None:
    r = _run(tmp_path, RMBENCH_TABLE, data=str(FIXTURES / "rmbench" / "published"), benchmark="rmbench",
             report=False)
    assert r["complete"] is True and r["coverage"]["headline"] == "4 of 4 domains"
    assert "incomplete" not in r["data"]["notes"]
    assert r["models"][0]["metrics"][0]["value"] == pytest.approx((1 / 2 + 0 + 2 / 3 + 2 / 3) / 4)


def test_length_baselines_by_hand_and_two_models_paired(tmp_path: Path) -> None:
    # every chosen response in prefs.jsonl is the longer one: longer-wins 1, shorter-wins 0
    r = _run(tmp_path, PAIRS_TABLE, "length", data=PAIRS, skip_invalid=True)
    assert r["complete"] is True and r["coverage"] is None  # pairs: no published sections
    assert r["baselines"]["longer_wins"] == {"overall": 1.0, "subset/chat": 1.0, "subset/geo": 1.0}
    assert r["baselines"]["shorter_wins"]["overall"] == 0.0
    table, length = ({m["key"]: m["value"] for m in model["metrics"]} for model in r["models"])
    assert table["overall"] == pytest.approx(1 / 3) and length["overall"] == 1.0
    overall = next(c for c in r["comparisons"] if c["key"] == "overall")
    assert (overall["model_a"], overall["model_b"]) == (PAIRS_TABLE, "length")
    assert overall["diff"] == pytest.approx(2 / 3) and 0.0 <= overall["p_value"] <= 1.0
    assert r["models"][1]["length_bias"]["score_length_spearman"] == pytest.approx(1.0)


def test_cache_makes_a_rerun_score_nothing(tmp_path: Path) -> None:
    args = {"data": PAIRS, "skip_invalid": True, "cache": str(tmp_path / "cache"), "report": False}
    TableScorer.calls.clear()
    first = _run(tmp_path, PAIRS_TABLE, **args)
    assert sum(TableScorer.calls) == 6
    TableScorer.calls.clear()
    second = _run(tmp_path, PAIRS_TABLE, **args)
    assert TableScorer.calls == [] and second["models"][0]["scoring"]["from_cache"] == 6
    assert first["models"][0]["metrics"] == second["models"][0]["metrics"]
    assert not (tmp_path / "out" / "report.html").exists()


def test_cli_prints_the_table_notes_and_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit.cli import main

    base = ["eval", "--out", str(tmp_path / "o"), "--model", RB_TABLE, "--n-boot", "200"]
    assert main([*base, "--data", RB, "--benchmark", "rewardbench", "--skip-invalid", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "section/Chat Hard" in printed and "longer-wins" in printed and "results.json" in printed
    assert "incomplete: 4 of 4 sections; Chat partial" in " ".join(printed.split())  # the notes reach the terminal
    assert main([*base, "--data", RB, "--benchmark", "rewardbench"]) == 2
    assert "filtered.jsonl:14: field 'chosen': missing" in capsys.readouterr().err
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
    r = _run(tmp_path, f"table:{FIXTURES / folder / 'scores.json'}", benchmark=benchmark,
             data=str(FIXTURES / folder / data), skip_invalid=True, report=False)
    value = r["models"][0]["metrics"][0]
    assert value["key"] == "overall"
    if overall is not None:
        assert value["value"] == pytest.approx(overall)
    assert r["baselines"]["random"]["overall"] is not None
