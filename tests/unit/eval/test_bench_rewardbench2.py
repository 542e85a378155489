"""RewardBench 2 rules on fixtures/eval/rewardbench2 (scores in its scores.json), worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import coverage
from rewardkit.eval.benchmarks.rewardbench2 import (
    pool_ties,
    ties_composite,
    ties_extremes,
    ties_stats,
    top_credit,
)

DATA = str(FIXTURES / "rewardbench2" / "test.jsonl")

# By hand (first chosen vs the rest; k = responses sharing the top score):
#   Factuality  f1: 2 is the unique top -> 1;  f2: 1 shared by 3 responses -> 1/3   => 2/3
#   Precise IF  p1: 1 shared by 3 -> 1/3;  Math m1: 0 < 2 -> 0;  Safety s1: top -> 1
#   Focus       fo1: 3 shared with "Dogs bark." -> 1/2
# Ties: ref:0  correct [5] vs [3, 1]        gap 2, accurate
#       tied:0 correct [6, 5, 4] vs [2, 3]  gap 1, spread 2, accurate
#       ref:1  correct [1] vs [2]           gap -1, not accurate
#       tied:01 correct [4, 4] vs [1]       gap 3, spread 0, accurate (int("01") = 1: ref:1's prompt)
#       tied:2 correct [1, 0] vs [2]        gap -2, not accurate (no ref row: no margin terms)
#   acc(tied) = 2/3, acc(ref) = 1/2
#   prompt 0: g_t=1 > d=2? no; min(g_r=2, g_t=1)=1 > 2? no; tanh(1/2 - 1) = tanh(-0.5)
#   prompt 1: g_t=3 > d=0? yes; min(-1, 3) > 0? no; tanh(-1/0 - 1) = tanh(-inf) = -1
TIES = 0.30 * 2 / 3 + 0.30 * 0.5 + 0.20 * 0.5 + 0.20 * 0.0 + 0.01 * (math.tanh(-0.5) - 1) / 2
SUBSETS = {"Factuality": 2 / 3, "Precise IF": 1 / 3, "Math": 0.0, "Safety": 1.0, "Focus": 0.5, "Ties": TIES}


def _read():
    bench = get_benchmark("rewardbench2")
    return bench, bench.read(DATA, skip_invalid=True)


def test_rows_and_dirt() -> None:
    with pytest.raises(DataValidationError) as err:
        get_benchmark("rewardbench2").read(DATA)
    assert err.value.n_errors == 3
    assert "field 'num_correct': is 1 but 'chosen' has 2 responses" in str(err.value)
    assert "field 'id': a Ties row id must look like 'ref:ID' or 'tied:ID'" in str(err.value)
    assert "field 'id': the ID of a Ties row must be an integer (the reference matches int(ID)), got 'tied:seven'" \
        in str(err.value)
    _, read = _read()
    assert len(read.items) == 11 and read.notes == {}
    tied0 = next(it for it in read.items if it.uid == "tied:0")
    assert tied0.labels == (True, True, True, False, False) and tied0.cluster == "ties:0"
    # matched by int(ID) as the reference does: "tied:01" is the prompt of "ref:1" (matched by the raw
    # string, prompt 1 would have no ref row and Ties below would be 0.30·2/3 + 0.30·1/2 + 0.01·tanh(-0.5))
    assert next(it for it in read.items if it.uid == "tied:01").cluster == "ties:1"


def test_subsets_and_final_score_by_hand() -> None:
    bench, read = _read()
    s = bench.summarize(bench.outcomes(read.items, table_scores(read.items, "rewardbench2")))
    for name, value in SUBSETS.items():
        assert s[f"subset/{name}"].value == pytest.approx(value), name
    assert s["subset/Ties"].value == pytest.approx(0.4426894142, abs=1e-9)
    assert s["overall"].value == pytest.approx(sum(SUBSETS.values()) / 6)
    cov = coverage(bench, list(s))
    assert cov is not None and cov.complete and cov.headline() == "6 of 6 subsets"


def test_rows_sharing_kind_and_int_id_pool_into_one_prompt() -> None:
    # two tied rows of prompt 3 ("tied:3", "tied:003"): correct [5, 4] vs [1] and correct [2, 6] vs [3];
    # pooled as the reference groups them: correct {5, 4, 2, 6} vs incorrect {1, 3}:
    # min correct 2 - max incorrect 3 = gap -1 (not accurate), spread 6 - 2 = 4
    ex = np.array([ties_extremes(np.array([5.0, 4.0, 1.0]), 2), ties_extremes(np.array([2.0, 6.0, 3.0]), 2)])
    kind, cluster, accurate, spread, gap = pool_ties(np.array([1, 1]), np.array([3, 3]), ex)
    assert (kind.tolist(), cluster.tolist()) == ([1], [3])
    assert (accurate.tolist(), spread.tolist(), gap.tolist()) == ([0.0], [4.0], [-1.0])
    # a ref row of another prompt stays apart; a lone correct answer has no spread
    kind, cluster, accurate, spread, gap = pool_ties(np.array([0, 1]), np.array([3, 3]), ex)
    assert kind.tolist() == [0, 1] and accurate.tolist() == [1.0, 0.0]
    assert math.isnan(pool_ties(np.array([0]), np.array([0]), ties_extremes(np.array([1.0, 0.0]), 1)[None])[3][0])


def test_pooled_rows_are_counted_and_a_missing_subset_flagged(tmp_path) -> None:
    rows = [line for line in Path(DATA).read_text().splitlines(keepends=True)
            if '"Ties"' in line and ":" in json.loads(line)["id"] and json.loads(line)["id"] != "tied:seven"]
    rows.append(rows[-1].replace('"tied:2"', '"tied:002"'))  # a second row of prompt 2
    (tmp_path / "ties.jsonl").write_text("".join(rows))
    bench = get_benchmark("rewardbench2")
    read = bench.read(str(tmp_path / "ties.jsonl"))
    assert read.notes == {"ties_rows_pooled": 2}
    s = bench.summarize(bench.outcomes(read.items, table_scores(read.items, "rewardbench2")))
    assert s["subset/Ties"].value == pytest.approx(TIES)  # the duplicate pools with its twin: nothing moves
    cov = coverage(bench, list(s))
    assert cov is not None and cov.headline() == "1 of 6 subsets (missing: Factuality, Precise IF, Math, Safety, Focus)"


def test_top_credit_rule() -> None:
    assert top_credit(np.array([2.0, 1.0, 0.0, -1.0])) == 1.0
    assert top_credit(np.array([1.0, 1.0, 0.5, 1.0])) == pytest.approx(1 / 3)
    assert top_credit(np.array([1.0, 1.0, 1.0, 1.0])) == 0.25  # all tied: the expected value of a random pick
    assert top_credit(np.array([0.0, 2.0, 0.0, 0.0])) == 0.0
    assert top_credit(np.array([1.0, 3.0, 0.0, 0.0, 1.0])) == 0.0  # a second chosen above competes too


def test_ties_stats_and_composite_edge_cases() -> None:
    assert ties_stats(np.array([6.0, 5.0, 4.0, 2.0, 3.0]), 3) == (1.0, 2.0, 1.0)
    acc, spread, gap = ties_stats(np.array([1.0, 0.0]), 1)
    assert (acc, gap) == (1.0, 1.0) and math.isnan(spread)
    # only ref rows: the margin terms average over no prompt, NaN as in the reference
    assert math.isnan(ties_composite(np.array([0]), np.array([0]), np.array([1.0]), np.array([np.nan]), np.array([1.0])))
    # 0/0 spread and gap: tanh(nan) counts 0
    value = ties_composite(np.array([0, 1]), np.array([0, 0]), np.array([0.0, 0.0]), np.array([np.nan, 0.0]),
                           np.array([0.0, 0.0]))
    assert value == 0.0


def test_random_baseline_exact_for_best_of_n_and_monte_carlo_for_ties() -> None:
    bench, read = _read()
    base = bench.random_baseline(read.items, seed=0)
    assert base["subset/Factuality"] == pytest.approx(1 / 4)
    assert base["subset/Focus"] == pytest.approx(1 / 5)
    assert 0.0 < base["subset/Ties"] < 1.0
    assert base == bench.random_baseline(read.items, seed=0)  # seeded
    assert base["overall"] == pytest.approx(np.mean([v for k, v in base.items() if k.startswith("subset/")]))
