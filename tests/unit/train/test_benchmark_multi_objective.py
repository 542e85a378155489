"""benchmarks/multi_objective.py: the per-objective accuracy arithmetic on hand-made toys, and its
``--quick`` run end to end with a tiny random backbone on the shipped ifeval-lite set."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from multi_objective import gate_spread, kind_labels, order_correct, pearson, per_objective, row_pairs
from tiny_models import tiny_bert


def test_kind_labels_share_of_each_kinds_instructions_met_and_words() -> None:
    constraints = [{"kind": "no_commas", "params": {}},
                   {"kind": "include_keyword", "params": {"keyword": "red"}},
                   {"kind": "include_keyword", "params": {"keyword": "blue"}}]
    # no comma: met; "red" present, "blue" absent: 1 of 2 -> 0.5; four words
    assert kind_labels(constraints, "A red bus stops.") == {"no_commas": 1.0, "include_keyword": 0.5,
                                                             "verbosity": 4.0}
    assert kind_labels(constraints, "Red, blue.") == {"no_commas": 0.0, "include_keyword": 1.0, "verbosity": 2.0}


def test_order_correct_keeps_decided_items_and_counts_a_score_tie_wrong() -> None:
    label_diff = np.array([1.0, -1.0, 0.0, np.nan, 0.5, -0.5])
    score_diff = np.array([2.0, 3.0, 9.0, 9.0, 0.0, -1e-3])
    # item 0 right, 1 wrong, 2 and 3 undecided (dropped), 4 a tie (wrong), 5 right
    np.testing.assert_array_equal(order_correct(label_diff, score_diff), [1.0, 0.0, 0.0, 1.0])


def test_row_pairs_within_a_group_where_both_labels_exist_and_differ() -> None:
    groups = ["a", "a", "a", "b", "b", "a"]
    labels = np.array([1.0, 0.0, np.nan, 1.0, 1.0, 1.0])
    i, j = row_pairs(groups, labels)
    # group a: rows 0, 1, 5 labelled (row 2 is not): (0, 1) and (1, 5) differ, (0, 5) do not; group b: equal
    assert i.tolist() == [0, 1] and j.tolist() == [1, 5]
    empty = row_pairs(["a"], np.array([1.0]))
    assert empty[0].size == 0 and empty[0].dtype == np.int64


def test_pearson_by_hand_and_nan_when_constant() -> None:
    # x = (1, 2, 3), y = (1, 3, 2): centred (-1, 0, 1) and (-1, 1, 0): 1 / (sqrt 2 · sqrt 2) = 0.5
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert math.isnan(pearson(np.array([1.0, 1.0]), np.array([1.0, 2.0])))
    assert math.isnan(pearson(np.array([1.0]), np.array([2.0])))


def test_gate_spread_mean_std_max_share_and_entropy() -> None:
    w = np.array([[0.5, 0.5], [0.9, 0.1]])
    out = gate_spread(w, ["a", "b"])
    assert out["per_objective"]["a"] == pytest.approx({"mean": 0.7, "std": 0.2})
    assert out["per_objective"]["b"] == pytest.approx({"mean": 0.3, "std": 0.2})
    assert out["max_share_mean"] == pytest.approx(0.7)
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert out["entropy_mean"] == pytest.approx((math.log(2) + h) / 2)
    assert out["entropy_uniform"] == pytest.approx(math.log(2)) and out["examples"] == 2


def test_per_objective_on_a_toy() -> None:
    """Two test pairs and four rows under two prompts, one objective ``k``:

    pair 0: labels 1 vs 0, objective .9 vs .2 (right), scalar s 1 vs 2 (wrong);
    pair 1: labels 0.5 vs 0.5 (undecided);
    rows p: labels 1, 0 -> objective .8, .1 (right), scalar 3, 0 (right);
    rows q: labels 0, 1 -> objective .4, .3 (wrong), scalar 0, 5 (right); correlation over the four rows."""
    names = ["k"]
    pair_c, pair_r = np.array([[1.0], [0.5]]), np.array([[0.0], [0.5]])
    row_labels = np.array([[1.0], [0.0], [0.0], [1.0]])
    objectives = np.array([[0.9], [0.0], [0.2], [0.0], [0.8], [0.1], [0.4], [0.3]])  # chosen 2, rejected 2, rows 4
    scalar = np.array([1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 5.0])
    out = per_objective(names, pair_c, pair_r, row_labels, ["p", "p", "q", "q"], {"objectives": objectives},
                        {"s": scalar}, seed=0)["k"]
    assert out["pairs_decided"] == 1 and out["row_pairs_decided"] == 2 and out["rows_labelled"] == 4
    assert out["pairs"]["objective"]["value"] == 1.0 and out["pairs"]["s"]["value"] == 0.0
    assert out["rows"]["objective"]["value"] == 0.5 and out["rows"]["s"]["value"] == 1.0
    assert out["corr_pearson"] == pytest.approx(pearson(np.array([0.8, 0.1, 0.4, 0.3]), np.array([1.0, 0, 0, 1])))


@pytest.mark.usefixtures("hf_datasets_cache")
def test_quick_run_with_a_tiny_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--quick`` on the shipped set: every section of the report is there, ArmoRM's features path
    matches the saved folder's scorer, and a second run reuses the models and scores."""
    from _common import OFFLINE_ENV
    from multi_objective import main

    for key, value in OFFLINE_ENV.items():  # set here so that they are restored after the test
        monkeypatch.setenv(key, value)

    model = tiny_bert(tmp_path / "bert")
    out = tmp_path / "report.json"
    argv = ["--quick", "--model", str(model), "--threads", "1", "--workdir", str(tmp_path / "work"), "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report["pairwise_accuracy"]) == {"armo_scalar", "bt", "frozen_linear_bt"}
    assert report["data"]["objectives"][-1] == "verbosity" and set(report["per_objective"]) == set(
        report["data"]["objectives"])
    assert report["armo"]["scorer_check"]["max_abs_diff_reward"] < 1e-4
    assert set(report["gate"]["weights"]["per_objective"]) == set(report["data"]["objectives"])
    assert main(argv) == 0
    assert json.loads(out.read_text())["pairwise_accuracy"] == report["pairwise_accuracy"]
