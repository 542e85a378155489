"""The math-champ reader (rewardkit.synth.champ) on a hand-made fixture and on the installed champ-dataset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.errors import InputError
from rewardkit.synth.champ import champ_json_path, first_error_label, paragraph_spans, read_champ, write_champ


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


SOLUTION = "We add the numbers.\n\n2 + 2 = 5, so the sum is 5.\nThen we double it.\n\n  \nAnswer: 10"


def _fixture(tmp_path: Path) -> Path:
    """Two problems in the package's schema: one model solution wrong at paragraph 1, one without mistakes."""
    start = SOLUTION.index("2 + 2")
    problems = {
        "P_Test_1": {"_text": "What is twice 2 + 2?", "_answer": "8", "category": "Test",
                     "solution": {"steps": [{"_text": "2 + 2 = 4."}, {"_text": "Twice 4 is 8."}]},
                     "fws_annotations": {"GPT-4|No C w/o H": {"text": SOLUTION, "start_idx": start,
                                                              "end_idx": start + 9, "author": "GPT-4"},
                                         "GPT-3.5|No C w/o H": {"text": "4 doubled.\n\nAnswer: 8", "start_idx": None,
                                                                "end_idx": None, "author": "GPT-3.5"}}},
        "P_Test_2": {"_text": "What is 3 * 3?", "_answer": "9", "category": "Test",
                     "solution": {"steps": [{"_text": "3 * 3 = 9."}]}, "fws_annotations": {}},
    }
    path = tmp_path / "v0.json"
    path.write_text(json.dumps({"problems": problems, "concepts": {}, "hints": {}}))
    return path


def test_paragraphs_and_labels() -> None:
    assert [SOLUTION[a:b].strip() for a, b in paragraph_spans(SOLUTION)] == [
        "We add the numbers.", "2 + 2 = 5, so the sum is 5.\nThen we double it.", "Answer: 10"]
    assert first_error_label(SOLUTION, SOLUTION.index("2 + 2"))[1] == 1
    assert first_error_label(SOLUTION, SOLUTION.index("Then"))[1] == 1  # inside the same paragraph
    assert first_error_label(SOLUTION, SOLUTION.index("\n\n  \n") + 1)[1] == 2  # between paragraphs: the next one
    assert first_error_label(SOLUTION, 0)[1] == 0
    assert first_error_label(SOLUTION, None)[1] == -1


def test_reader_on_fixture(tmp_path: Path) -> None:
    problems, first_errors = read_champ(_fixture(tmp_path))
    assert [p["id"] for p in problems] == ["P_Test_1", "P_Test_2"]
    assert problems[0]["answer"] == "8" and problems[0]["steps"] == ["2 + 2 = 4.", "Twice 4 is 8."]
    assert problems[0]["prompt"][0]["content"].startswith("What is twice 2 + 2?")
    assert [(r["id"], r["label"]) for r in first_errors] == [("P_Test_1/GPT-4|No C w/o H", 1),
                                                             ("P_Test_1/GPT-3.5|No C w/o H", -1)]
    assert first_errors[0]["problem"] == "What is twice 2 + 2?" and len(first_errors[0]["steps"]) == 3
    assert first_errors[0]["meta"]["model"] == "GPT-4" and first_errors[0]["meta"]["wrong_span"] == "2 + 2 = 5"


def test_writer_on_fixture(tmp_path: Path) -> None:
    result = write_champ(tmp_path / "out", seed=1, path=_fixture(tmp_path))  # seed 1 puts P_Test_2 in test
    train, test = _read(tmp_path / "out" / "train.jsonl"), _read(tmp_path / "out" / "test.jsonl")
    assert [r["id"] for r in train] == ["P_Test_1"] and [r["id"] for r in test] == ["P_Test_2"]
    assert result.counts == {"train": 1, "test": 1, "stepwise": 3, "first_error": 2}
    stepwise = _read(tmp_path / "out" / "stepwise.jsonl")
    assert [s["labels"] for s in stepwise] == [[True, True], [True, False, False], [True, True]]
    assert [r["meta"]["split"] for r in _read(tmp_path / "out" / "first_error.jsonl")] == ["train", "train"]


def test_malformed_file_names_field(tmp_path: Path) -> None:
    path = _fixture(tmp_path)
    data = json.loads(path.read_text())
    del data["problems"]["P_Test_2"]["_answer"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"v0.json: problems.P_Test_2: field '_answer' missing"):
        read_champ(path)
    path.write_text("{oops")
    with pytest.raises(InputError, match="cannot read CHAMP JSON"):
        read_champ(path)


def test_installed_package_counts() -> None:
    # counts of champ-dataset 1.0.0's v0.json: 270 problems in 5 categories; 540 annotated model solutions
    # (4 models x 2 prompt settings x 67-68 problems), 96 of them annotated "no mistake" (start_idx None)
    assert champ_json_path().name == "v0.json"
    problems, first_errors = read_champ()
    assert len(problems) == 270 and len(first_errors) == 540
    assert Counter(p["meta"]["category"] for p in problems) == {"Number-Theory": 80, "Inequality": 50,
                                                               "Polynomial": 50, "Sequence": 50, "Combinatorics": 40}
    assert sum(r["label"] == -1 for r in first_errors) == 96
    assert Counter(r["meta"]["model"] for r in first_errors) == {"GPT-4": 136, "PaLM 2 Medium": 136,
                                                                "GPT-3.5": 134, "GPT-4 Turbo": 134}
    assert all(-1 <= r["label"] < len(r["steps"]) and r["steps"] for r in first_errors)
    assert all(p["steps"] and p["answer"] for p in problems)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    assert main(["data", "synth", "--task", "math-champ", "--seed", "3", "--out", str(out)]) == 0
    assert "math-champ: 216 train and 54 test problems" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["first_error"] == 540 and manifest["first_error_labels"] == {"no_mistake": 96,
                                                                                          "with_mistake": 444}
    rows = _read(out / "first_error.jsonl")
    assert set(rows[0]) == {"id", "problem", "steps", "label", "meta"}
    assert Counter(r["meta"]["split"] for r in rows)["test"] > 0


@pytest.mark.parametrize("extra", [["--n", "10"], ["--depth", "2"], ["--distractors", "1"],
                                   ["--max-new-tokens", "8"]])
def test_cli_refuses_inapplicable_options(tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--task", "math-champ", "--out", str(tmp_path / "x"), *extra]) == 2
    assert extra[0] in capsys.readouterr().err
