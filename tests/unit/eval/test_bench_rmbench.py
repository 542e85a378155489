"""RM-Bench rules on fixtures/eval/rmbench (scores in its scores.json), worked out by hand; the published
per-domain files (fixtures/eval/rmbench/published: no ``domain`` field) read by their file names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import coverage
from rewardkit.eval.benchmarks.rmbench import domain_of_file, style_matrix

DATA = str(FIXTURES / "rmbench" / "total_dataset.json")
PUBLISHED = FIXTURES / "rmbench" / "published"  # the rows of DATA (less its invalid one), one file per domain

# Rows of the 3x3 matrix are chosen styles, columns rejected styles; A[i][j] = chosen_i > rejected_j.
# hard = upper triangle, normal = diagonal, easy = lower triangle.
#   chat 1: chosen [3,2,1] vs rejected [2.5,1.5,.5]: rows 111 / 011 / 001  -> hard 1, normal 1, easy 0
#   chat 2: chosen [1,1,1] vs [1,0,2]: every row 010                       -> 1/3, 1/3, 1/3
#     chat = (hard 2/3 + normal 2/3 + easy 1/6) / 3 = 1/2
#   math: [0,0,0] vs [1,1,1]: all 0 -> 0;  code: [2,2,2] vs [1,3,1]: rows 101 -> 2/3, 2/3, 2/3
#   safety-refuse: all 1; safety-response: [0,1,2] vs [1,1,1]: rows 000/000/111 -> 0, 1/3, 2/3
#     safety (pooled) = hard 1/2, normal 2/3, easy 5/6 -> 2/3
CHAT, MATH, CODE, SAFETY = 1 / 2, 0.0, 2 / 3, 2 / 3


def test_style_matrix() -> None:
    cells = style_matrix(np.array([3, 2, 1, 2.5, 1.5, 0.5]))
    assert cells.reshape(3, 3).tolist() == [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
    assert style_matrix(np.array([1, 1, 1, 1, 1, 1])).sum() == 0  # ties are wrong


def test_domains_levels_and_overall_by_hand() -> None:
    bench = get_benchmark("rmbench")
    with pytest.raises(DataValidationError, match=r"row 6: field 'rejected': expected 3 responses"):
        bench.read(DATA)
    items = bench.read(DATA, skip_invalid=True).items
    s = bench.summarize(bench.outcomes(items, table_scores(items, "rmbench")))
    assert s["section/chat/hard"].value == pytest.approx(2 / 3)
    assert s["section/chat/normal"].value == pytest.approx(2 / 3)
    assert s["section/chat/easy"].value == pytest.approx(1 / 6)
    for name, value in {"chat": CHAT, "math": MATH, "code": CODE, "safety": SAFETY}.items():
        assert s[f"section/{name}"].value == pytest.approx(value), name
    assert s["section/safety/hard"].value == pytest.approx(1 / 2)
    assert s["section/safety/easy"].value == pytest.approx(5 / 6)
    assert s["subset/safety-response"].value == pytest.approx((0 + 1 / 3 + 2 / 3) / 3)
    assert s["overall"].value == pytest.approx((CHAT + MATH + CODE + SAFETY) / 4)
    assert s["overall/hard"].value == pytest.approx((2 / 3 + 0 + 2 / 3 + 1 / 2) / 4)
    assert s["overall/normal"].value == pytest.approx((2 / 3 + 0 + 2 / 3 + 2 / 3) / 4)
    assert s["overall/easy"].value == pytest.approx((1 / 6 + 0 + 2 / 3 + 5 / 6) / 4)
    assert s["section/chat"].n == 2 and s["section/safety"].n == 2


def test_published_domain_files_take_their_domain_from_the_file_name() -> None:
    # the five files hold rows 1-6 of DATA without 'domain': the same numbers as DATA by hand above
    bench = get_benchmark("rmbench")
    read = bench.read(str(PUBLISHED))
    assert (read.n_records, read.n_errors) == (6, 0)
    assert sorted(it.subset for it in read.items) == ["chat", "chat", "code", "math", "safety-refuse",
                                                      "safety-response"]
    assert read.notes == {"domain_from_file_name": {
        "chat_filtered.json": "chat", "code_filtered.json": "code", "math_filtered.json": "math",
        "safety-refuse_filtered.json": "safety-refuse", "safety-response_filtered.json": "safety-response"}}
    s = bench.summarize(bench.outcomes(read.items, table_scores(read.items, "rmbench")))
    for name, value in {"chat": CHAT, "math": MATH, "code": CODE, "safety": SAFETY}.items():
        assert s[f"section/{name}"].value == pytest.approx(value), name
    assert s["overall"].value == pytest.approx((CHAT + MATH + CODE + SAFETY) / 4)
    cov = coverage(bench, list(s))
    assert cov is not None and cov.complete and cov.headline() == "4 of 4 domains"
    # one published file alone reads too
    one = bench.read(str(PUBLISHED / "safety-response_filtered.json")).items
    assert [it.subset for it in one] == ["safety-response"]
    assert domain_of_file("x/Safety-Refuse_filtered.jsonl.gz") == "safety-refuse"
    assert domain_of_file("total_dataset.json") is None


def test_a_folder_without_math_is_3_of_4_domains(tmp_path: Path) -> None:
    for f in PUBLISHED.iterdir():
        if not f.name.startswith("math"):
            (tmp_path / f.name).write_bytes(f.read_bytes())
    bench = get_benchmark("rmbench")
    items = bench.read(str(tmp_path)).items
    s = bench.summarize(bench.outcomes(items, table_scores(items, "rmbench")))
    assert "section/math" not in s
    assert s["overall"].value == pytest.approx((CHAT + CODE + SAFETY) / 3)  # the mean of what is there
    cov = coverage(bench, list(s))
    assert cov is not None and not cov.complete
    assert (cov.present, cov.missing) == (("chat", "code", "safety"), ("math",))
    assert cov.headline() == "3 of 4 domains (missing: math)"
    assert cov.to_dict()["sections_expected"] == ["chat", "math", "code", "safety"]


def test_safety_with_one_of_its_two_files_is_partial(tmp_path: Path) -> None:
    for f in PUBLISHED.iterdir():
        if f.name != "safety-response_filtered.json":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    bench = get_benchmark("rmbench")
    s = bench.summarize(bench.random_outcomes(bench.read(str(tmp_path)).items))
    cov = coverage(bench, list(s))
    assert cov is not None and not cov.complete and cov.missing == ()
    assert cov.headline() == "4 of 4 domains; safety partial (missing: safety-response)"


def test_total_dataset_beside_domain_files_is_read_alone(tmp_path: Path) -> None:
    for f in PUBLISHED.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "total_dataset.json").write_text(Path(DATA).read_text())
    read = get_benchmark("rmbench").read(str(tmp_path), skip_invalid=True)
    assert (read.n_records, len(read.items)) == (7, 6)  # total_dataset.json's 7 rows, one invalid; no repeats
    assert read.notes["ignored_files"] == sorted(f.name for f in PUBLISHED.iterdir())


def test_a_row_without_domain_in_an_unnamed_file_is_refused_clearly(tmp_path: Path) -> None:
    rows = json.loads((PUBLISHED / "chat_filtered.json").read_text())
    (tmp_path / "my_rows.json").write_text(json.dumps(rows))
    with pytest.raises(DataValidationError, match=r"my_rows.json: row 0: field 'domain': missing, and the file "
                       r"name names no domain \(the published files are chat_filtered.json, code_filtered"):
        get_benchmark("rmbench").read(str(tmp_path / "my_rows.json"))


def test_empty_and_identical_answers_are_kept_and_counted(tmp_path: Path) -> None:
    # row 1 with its detailed-plain chosen answer emptied and its concise rejected made equal to the
    # concise chosen: scores chosen [3, "" -> 0, 1] vs rejected [3, 1.5, .5] (table: "" scores 0)
    # rows: 3>{3,1.5,.5} -> 011; 0 -> 000; 1 -> 001 => hard (1+1+0)/3, normal (0+0+1)/3, easy (0+0+0)/3
    rows = json.loads((PUBLISHED / "chat_filtered.json").read_text())[:1]
    rows[0]["chosen"][1] = " "
    rows[0]["rejected"][0] = rows[0]["chosen"][0]
    (tmp_path / "chat_filtered.json").write_text(json.dumps(rows))
    bench = get_benchmark("rmbench")
    read = bench.read(str(tmp_path))
    assert len(read.items) == 1
    assert {k: read.notes[k] for k in ("empty_answers", "identical_answers")} == {"empty_answers": 1,
                                                                                  "identical_answers": 1}
    table = {"": 0.0, rows[0]["chosen"][0]: 3.0, rows[0]["chosen"][2]: 1.0, rows[0]["rejected"][1]: 1.5,
             rows[0]["rejected"][2]: 0.5}
    scores = [np.array([table[r[0]["content"].strip()] for r in read.items[0].responses])]
    s = bench.summarize(bench.outcomes(read.items, scores))
    assert s["section/chat/hard"].value == pytest.approx(2 / 3)
    assert s["section/chat/normal"].value == pytest.approx(1 / 3)
    assert s["section/chat/easy"].value == 0.0


def test_random_baseline_is_one_half() -> None:
    bench = get_benchmark("rmbench")
    s = bench.summarize(bench.random_outcomes(bench.read(str(PUBLISHED)).items))
    assert s["overall"].value == 0.5 and s["overall/hard"].value == 0.5


def test_a_save_to_disk_folder_reads_as_a_dataset(tmp_path) -> None:
    import datasets

    rows = json.loads(Path(DATA).read_text())[:6]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert len(get_benchmark("rmbench").read(str(tmp_path / "saved")).items) == 6
