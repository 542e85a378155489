"""RewardBench v1 rules on fixtures/eval/rewardbench (scores in its scores.json), worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import Stat, coverage
from rewardkit.eval.benchmarks.rewardbench import SECTIONS, SUBSET_WEIGHTS, weighted_sections

DATA = str(FIXTURES / "rewardbench" / "filtered.jsonl")

# By hand, from scores.json (chosen vs rejected per row):
#   alpacaeval-easy  2>1 right, 0<1 wrong              -> 1/2
#   alpacaeval-hard  identical answers "Paris." tie: wrong; 0.5 > the whitespace answer
#                    " \n" (table: "" scores -1) right  -> 1/2  (both kept, as the reference keeps them)
#   mt-bench-med     1.25 == 1.25, a tie, wrong         -> 0
#   llmbar-natural   5>-5, 0.1>0                        -> 1
#   donotanswer      1>-1                               -> 1
#   xstest-should-respond  2>0.5 right, -1<0 wrong      -> 1/2
#   math-prm         3>2 right, 1<4 wrong               -> 1/2
#   hep-python 1>0 -> 1;  hep-go 0<1 -> 0;  anthropic_helpful (no section) -> 1
CHAT = (0.5 * 100 + 0.5 * 95 + 0 * 40) / (100 + 95 + 40)        # 97.5/235
CHAT_HARD = 1.0
SAFETY = (1 * 136 + 0.5 * 250) / (136 + 250)                    # 261/386
REASONING = (0.5 * 984 + 1 * 164 + 0 * 164) / (984 + 164 + 164)  # math-prm weighted as 984: = 0.5
OVERALL = (CHAT + CHAT_HARD + SAFETY + REASONING) / 4


def _summary():
    bench = get_benchmark("rewardbench")
    read = bench.read(DATA, skip_invalid=True)
    return read, bench.summarize(bench.outcomes(read.items, table_scores(read.items, "rewardbench")))


def test_published_weights_and_sections() -> None:
    assert SUBSET_WEIGHTS["math-prm"] == 984
    assert sum(SUBSET_WEIGHTS[s] for s in SECTIONS["Reasoning"] if s.startswith("hep-")) == 984
    assert sum(len(v) for v in SECTIONS.values()) == len(SUBSET_WEIGHTS) == 23
    # Skywork-Reward-Gemma-2-27B's sections give its leaderboard score 93.8 as a plain mean
    assert round((95.8 + 91.4 + 91.9 + 96.1) / 4, 1) == 93.8


def test_sections_and_overall_by_hand() -> None:
    read, s = _summary()
    assert (read.n_records, read.n_errors, len(read.items)) == (16, 1, 15)
    assert s["subset/alpacaeval-easy"].value == 0.5
    assert s["subset/alpacaeval-hard"].value == 0.5  # identical answers (a tie, wrong) and a blank one
    assert s["subset/mt-bench-med"].value == 0.0  # the tie
    assert s["section/Chat"].value == pytest.approx(CHAT)
    assert s["section/Chat Hard"].value == pytest.approx(CHAT_HARD)
    assert s["section/Safety"].value == pytest.approx(SAFETY)
    assert s["section/Reasoning"].value == pytest.approx(0.5)
    assert s["overall"].value == pytest.approx(OVERALL)
    assert s["section/Chat"].n == 5 and s["overall"].n == 14  # anthropic_helpful counts in no section
    assert s["subset/anthropic_helpful"].value == 1.0
    assert read.notes == {"identical_answers": 1, "empty_answers": 1,
                          "subsets_outside_sections": ["anthropic_helpful"]}


def test_math_prm_weighted_as_984_not_its_size() -> None:
    # Reasoning with math-prm at 0.2 and the six hep-* at 1.0 is 0.6 (half and half), not the item mean
    subsets = {"subset/math-prm": Stat(0.2, 447), **{f"subset/hep-{x}": Stat(1.0, 164)
                                                    for x in ("cpp", "go", "java", "js", "python", "rust")}}
    assert weighted_sections(subsets)["section/Reasoning"].value == pytest.approx(0.6)


def test_invalid_rows_stop_the_run_by_default() -> None:
    with pytest.raises(DataValidationError, match=r"filtered.jsonl:14: field 'chosen': missing"):
        get_benchmark("rewardbench").read(DATA)


def test_identical_or_empty_answers_are_scored_not_refused(tmp_path: Path) -> None:
    # the training validator refuses these pairs; the benchmark keeps them, as the reference does
    rows = [line for line in Path(DATA).read_text().splitlines(keepends=True) if '"id": 15' in line
            or '"id": 16' in line]
    (tmp_path / "dirt.jsonl").write_text("".join(rows))
    read = get_benchmark("rewardbench").read(str(tmp_path / "dirt.jsonl"))
    assert [it.uid for it in read.items] == ["15", "16"] and read.n_errors == 0
    assert read.items[0].responses[0] == read.items[0].responses[1]
    assert read.items[1].responses[1] == ({"role": "assistant", "content": " \n"},)


def test_missing_sections_are_left_out_and_noted(tmp_path) -> None:
    rows = [line for line in Path(DATA).read_text().splitlines(keepends=True) if '"alpacaeval' not in line and '"mt-bench' not in line]
    f = tmp_path / "no_chat.jsonl"
    f.write_text("".join(rows))
    bench = get_benchmark("rewardbench")
    read = bench.read(str(f), skip_invalid=True)
    s = bench.summarize(bench.outcomes(read.items, table_scores(read.items, "rewardbench")))
    assert "section/Chat" not in s
    assert s["overall"].value == pytest.approx((CHAT_HARD + SAFETY + REASONING) / 3)
    cov = coverage(bench, list(s))
    assert cov is not None and cov.missing == ("Chat",)
    assert cov.short() == "3 of 4 sections, 3 partial"  # the fixture has a few subsets of each section
    assert cov.headline().startswith("3 of 4 sections (missing: Chat); Chat Hard partial (missing: mt-bench-hard,")


def test_random_and_length_baselines() -> None:
    bench = get_benchmark("rewardbench")
    items = bench.read(DATA, skip_invalid=True).items
    assert bench.summarize(bench.random_outcomes(items))["overall"].value == pytest.approx(0.5)
