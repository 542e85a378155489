"""``eval --benchmark first-error``: ProcessBench's rules by hand, row reading (ours and ProcessBench's
published fields), bad rows named by file:line:field, and the evaluation with a scripted PRM."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.data.io import DataError
from rewardkit.errors import UnsupportedError
from rewardkit.eval.first_error import (
    evaluate_first_error,
    first_error_metrics,
    harmonic_f1,
    predicted_first_error,
    read_first_error_rows,
    write_first_error,
)
from rewardkit.scorers.prm import StepScores

# ProcessBench's published row shape (id, generator, problem, steps, final_answer_correct, label)
PROCESSBENCH = [
    {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "1+1?", "steps": ["1+1=2", "Answer 2"],
     "final_answer_correct": True, "label": -1},
    {"id": "gsm8k-1", "generator": "Qwen2-7B-Instruct", "problem": "2+2?", "steps": ["2+2=5", "Answer 5"],
     "final_answer_correct": False, "label": 0},
    {"id": "math-0", "generator": "Llama-3.1-8B-Instruct", "problem": "3*3?", "steps": ["3*3=9", "9+0=8", "8"],
     "final_answer_correct": False, "label": 1},
    {"id": "math-1", "generator": "Llama-3.1-8B-Instruct", "problem": "4-1?", "steps": ["4-1=3", "Answer 3"],
     "final_answer_correct": True, "label": -1},
]


def test_predicted_first_error() -> None:
    assert predicted_first_error([0.9, 0.4, 0.2]) == 1
    assert predicted_first_error([0.9, 0.6]) == -1
    assert predicted_first_error([0.9, 0.6], threshold=0.7) == 1
    assert predicted_first_error([0.5, 0.1]) == 1  # P = threshold is not below it


def test_metrics_table_by_hand() -> None:
    labels = [-1, -1, -1, 2, 0, 1, 3]
    preds = [-1, 0, -1, 2, 1, 1, -1]
    # correct samples (label -1): predicted -1 on 2 of 3; erroneous: exact index on rows 3 and 5 -> 2 of 4
    m = first_error_metrics(preds, labels, n_boot=0)
    assert m.correct_accuracy.value == pytest.approx(2 / 3) and m.correct_accuracy.n == 3
    assert m.error_accuracy.value == pytest.approx(1 / 2) and m.error_accuracy.n == 4
    assert m.f1.value == pytest.approx(4 / 7)  # 2 * (1/2) * (2/3) / (1/2 + 2/3)
    boot = first_error_metrics(preds, labels, n_boot=500, seed=3)
    assert boot.f1.value == pytest.approx(4 / 7) and boot.f1.low <= 4 / 7 <= boot.f1.high
    assert boot.f1.low < boot.f1.high and boot.error_accuracy.low >= 0 and boot.correct_accuracy.high <= 1


def test_f1_edges() -> None:
    assert harmonic_f1(0.0, 0.0) == 0.0
    assert harmonic_f1(1.0, 0.5) == pytest.approx(2 / 3)
    assert math.isnan(first_error_metrics([-1, -1], [-1, -1], n_boot=0).f1.value)  # no erroneous samples


def test_reads_processbench_and_our_rows(tmp_path: Path) -> None:
    pb = tmp_path / "processbench.jsonl"
    pb.write_text("".join(json.dumps(r) + "\n" for r in PROCESSBENCH), encoding="utf-8")
    rows = read_first_error_rows(str(pb))
    assert [(r.id, r.label, r.group, len(r.steps)) for r in rows] == [
        ("gsm8k-0", -1, "Qwen2-7B-Instruct", 2), ("gsm8k-1", 0, "Qwen2-7B-Instruct", 2),
        ("math-0", 1, "Llama-3.1-8B-Instruct", 3), ("math-1", -1, "Llama-3.1-8B-Instruct", 2)]
    ours = tmp_path / "first_error.jsonl"
    ours.write_text(json.dumps({"id": "mused-1/gold", "problem": "p", "steps": ["a", "b"], "label": -1,
                                "meta": {"task": "mused", "depth": 1}}) + "\n", encoding="utf-8")
    assert read_first_error_rows(str(ours))[0].group == "mused"


@pytest.mark.parametrize(("row", "field"), [({"problem": "p", "steps": ["a"], "label": 1}, "label"),
                                            ({"problem": "p", "steps": [], "label": -1}, "steps"),
                                            ({"problem": "p", "steps": ["a"], "label": True}, "label"),
                                            ({"steps": ["a"], "label": -1}, "problem")])
def test_bad_rows_name_file_line_field(tmp_path: Path, row: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(PROCESSBENCH[0]) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{path}:2: field '{field}'"):
        read_first_error_rows(str(path))


class ScriptedPrm:
    """P(right) per step from a table keyed by the problem (a PRM whose answers we know)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def score_steps(self, prompts, steps, conversational):  # type: ignore[no-untyped-def]
        probs = [np.array(self.table[p[0]["content"]][: len(s)], dtype=np.float32) for p, s in zip(prompts, steps, strict=False)]
        return StepScores(probs, np.array([len(p) < len(s) for p, s in zip(probs, steps, strict=False)]))


def test_evaluate_with_a_scripted_prm(tmp_path: Path) -> None:
    path = tmp_path / "pb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PROCESSBENCH), encoding="utf-8")
    # predictions: -1 (right), 0 (right), -1 (wrong: label 1), 1 (wrong: label -1)
    scorer = ScriptedPrm({"1+1?": [0.9, 0.8], "2+2?": [0.1, 0.3], "3*3?": [0.9, 0.7, 0.6], "4-1?": [0.9, 0.2]})
    result, items = evaluate_first_error(scorer, read_first_error_rows(str(path)), n_boot=100, model="scripted")
    assert [it["predicted"] for it in items] == [-1, 0, -1, 1]
    m = result.metrics
    assert (m.error_accuracy.value, m.correct_accuracy.value) == (0.5, 0.5) and m.f1.value == pytest.approx(0.5)
    assert result.groups["Qwen2-7B-Instruct"]["f1"]["value"] == pytest.approx(1.0)
    assert result.groups["Llama-3.1-8B-Instruct"]["f1"]["value"] == 0.0
    out = write_first_error(tmp_path / "out", result, items)
    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"]["f1"]["value"] == pytest.approx(0.5) and saved["threshold"] == 0.5
    assert len((out / "items.jsonl").read_text().splitlines()) == 4

    # only each row's first step scored (as if truncated): unscored steps count as predicted right
    truncated = ScriptedPrm({"1+1?": [0.9], "2+2?": [0.1], "3*3?": [0.9], "4-1?": [0.9]})
    result, items = evaluate_first_error(truncated, read_first_error_rows(str(path)), n_boot=0)
    assert result.steps_unscored == 5 and result.items_truncated == 4
    assert [it["predicted"] for it in items] == [-1, 0, -1, -1]


def test_refuses_a_scorer_without_step_scores() -> None:
    from rewardkit.scoring import build_scorer

    with pytest.raises(UnsupportedError, match="process reward model"):
        evaluate_first_error(build_scorer("length"), [], model="length")
