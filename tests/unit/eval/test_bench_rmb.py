"""RMB rules on the fixtures/eval/rmb folder layout (scores in its scores.json), worked out by hand."""

from __future__ import annotations

import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import coverage
from rewardkit.eval.benchmarks.rmb import section_of

ROOT = FIXTURES / "rmb" / "RMB_dataset"

# By hand:
#   Pairwise-Helpful  2>1 right, 0<1 wrong, 1.5>-0.5 right             -> 2/3
#   Pairwise-Harmless 2>-2 right (its first turn is empty), identical answers tie -> wrong; the record
#                     without 'reject' is invalid; two kept whitespace answers (table: "" scores 0):
#                     0.3 > "\n" right, "  " < 0.4 wrong                           -> 2/4 = 1/2
#   BoN-Helpful       3 > {2, 1, 2.9} right; 1 vs {1, 0}: tie with a loser, wrong -> 1/2
#   BoN-Harmless      2 vs {1, 2.5} wrong; 4 > {3, -4} right; 1 > {0, .5, -1, .9, -.2} right -> 2/3
SECTIONS = {"Pairwise-Helpful": 2 / 3, "Pairwise-Harmless": 1 / 2, "BoN-Helpful": 1 / 2, "BoN-Harmless": 2 / 3}


def test_folder_layout_records_and_dirt() -> None:
    with pytest.raises(DataValidationError, match=r"S1.json: row 2: field 'reject': expected an object"):
        get_benchmark("rmb").read(str(ROOT))
    read = get_benchmark("rmb").read(str(ROOT), skip_invalid=True)
    assert (read.n_records, read.n_errors, len(read.items)) == (13, 1, 12)
    # the whitespace answers are kept (the reference scores them): pairs 6 and 7 of S1.json
    assert read.notes == {"empty_turns": 1, "identical_answers": 1, "empty_answers": 2}
    blank = next(it for it in read.items if it.uid == "Pairwise:6")
    assert blank.responses[1] == ({"role": "assistant", "content": "\n"},)
    bon = next(it for it in read.items if it.uid == "BoN:22")
    assert len(bon.responses) == 6 and bon.labels == (True,) + (False,) * 5
    assert bon.subset == "BoN/Harmlessness/S10" and section_of(bon.subset) == "BoN-Harmless"
    multi = next(it for it in read.items if it.uid == "Pairwise:2")
    assert [m["role"] for m in multi.prompt] == ["user", "assistant", "user"]


def test_sections_and_overall_by_hand() -> None:
    bench = get_benchmark("rmb")
    items = bench.read(str(ROOT), skip_invalid=True).items
    s = bench.summarize(bench.outcomes(items, table_scores(items, "rmb")))
    for name, value in SECTIONS.items():
        assert s[f"section/{name}"].value == pytest.approx(value), name
    assert s["overall"].value == pytest.approx(7 / 12)
    assert s["subset/Pairwise/Helpfulness/Code/Documentation"].value == pytest.approx(0.5)
    assert s["section/BoN-Harmless"].n == 3
    assert s["section/Pairwise-Harmless"].n == 4  # no whitespace answer dropped


def test_a_missing_section_is_flagged() -> None:
    bench = get_benchmark("rmb")
    items = bench.read(str(ROOT / "BoN_set")).items
    s = bench.summarize(bench.outcomes(items, table_scores(items, "rmb")))
    assert s["overall"].value == pytest.approx((1 / 2 + 2 / 3) / 2)  # BoN-Helpful, BoN-Harmless only
    cov = coverage(bench, list(s))
    assert cov is not None and not cov.complete
    assert cov.headline() == "2 of 4 sections (missing: Pairwise-Helpful, Pairwise-Harmless)"


def test_random_baseline_is_one_over_n_for_best_of_n() -> None:
    bench = get_benchmark("rmb")
    items = bench.read(str(ROOT), skip_invalid=True).items
    s = bench.summarize(bench.random_outcomes(items))
    assert s["section/Pairwise-Helpful"].value == 0.5
    assert s["section/Pairwise-Harmless"].value == 0.5
    assert s["section/BoN-Helpful"].value == pytest.approx((1 / 4 + 1 / 3) / 2)
    assert s["section/BoN-Harmless"].value == pytest.approx((1 / 3 + 1 / 3 + 1 / 6) / 3)


def test_a_sub_folder_or_single_file_reads_too() -> None:
    bench = get_benchmark("rmb")
    assert len(bench.read(str(ROOT / "BoN_set")).items) == 5
    assert len(bench.read(str(ROOT / "BoN_set" / "Harmlessness" / "S10.json")).items) == 3
    with pytest.raises(FileNotFoundError):
        bench.read(str(ROOT / "nope"))
