"""RM-Bench rules on fixtures/eval/rmbench (scores in its scores.json), worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.rmbench import style_matrix

DATA = str(FIXTURES / "rmbench" / "total_dataset.json")

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


def test_folder_of_domain_files_and_random_baseline(tmp_path) -> None:

    rows = json.loads(Path(DATA).read_text())[:6]
    for dom in ("chat", "math"):
        (tmp_path / f"{dom}_filtered.json").write_text(json.dumps([r for r in rows if r["domain"] == dom]))
    bench = get_benchmark("rmbench")
    items = bench.read(str(tmp_path)).items
    assert sorted(it.subset for it in items) == ["chat", "chat", "math"]
    s = bench.summarize(bench.random_outcomes(items))
    assert s["overall"].value == 0.5 and s["overall/hard"].value == 0.5


def test_a_save_to_disk_folder_reads_as_a_dataset(tmp_path) -> None:
    import datasets

    rows = json.loads(Path(DATA).read_text())[:6]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert len(get_benchmark("rmbench").read(str(tmp_path / "saved")).items) == 6
