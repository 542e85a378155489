"""Abstention on the most uncertain items: the curve, its area and the 80% accuracy on a toy list worked
by hand; ``rewardkit eval`` writes them (and each objective's own accuracy) to results.json and the
report when the scorer reports uncertainty and objectives, identically from the score cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.eval.abstention import abstention, accuracy_at, area, curve, item_uncertainty
from rewardkit.eval.runner import EvalConfig, run_eval
from rewardkit.scoring import SCORERS, ScoreOutput

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


def test_curve_area_and_accuracy_at_80_by_hand() -> None:
    credit = np.array([1.0, 0.0, 1.0, 1.0])
    u = np.array([0.1, 0.9, 0.2, 0.5])
    # most certain first: items 0, 2, 3, 1 with credit 1, 1, 1, 0 -> accuracy of the m kept 1, 1, 1, 3/4
    coverage, accuracy = curve(credit, u)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(accuracy, [1.0, 1.0, 1.0, 0.75])
    assert area(credit, u) == pytest.approx((1 + 1 + 1 + 0.75) / 4)  # 0.9375
    assert accuracy_at(credit, u, 0.8) == 1.0  # floor(0.8 * 4) = 3 items kept
    assert accuracy_at(credit, u, 1.0) == 0.75
    assert accuracy_at(credit, u, 0.1) == 1.0  # at least one item
    # uninformative U (all equal): ties keep input order, 1, 1/2, 2/3, 3/4 -> area (1 + .5 + .6667 + .75) / 4
    assert area(credit, np.zeros(4)) == pytest.approx((1 + 0.5 + 2 / 3 + 0.75) / 4)
    # a pair's uncertainty: sqrt(U_c² + U_r²)
    np.testing.assert_allclose(item_uncertainty([np.array([3.0, 4.0]), np.array([0.0, 0.5])]), [5.0, 0.5])


def test_intervals_come_from_the_resamples() -> None:
    credit, u = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.9, 0.2, 0.5])
    same = [(np.arange(4), np.arange(4))] * 3  # three resamples that are the data itself: zero-width intervals
    a = abstention(credit, u, same)
    assert a.accuracy_all == (0.75, 0.75, 0.75) and a.accuracy_at_80 == (1.0, 1.0, 1.0)
    assert a.area == pytest.approx((0.9375,) * 3) and a.gain == pytest.approx((0.1875,) * 3)
    assert dict(a.grid)[0.8] == 1.0 and dict(a.grid)[1.0] == 0.75


class NumbersScorer:
    """``numbers``: each response reads "r u a b": reward r, uncertainty u, objectives a and b."""

    name = "numbers"

    @classmethod
    def from_spec(cls, path: str, opts: Any) -> NumbersScorer:
        return cls()

    def score(self, prompts: Sequence[Any], responses: Sequence[Any], conversational: Any = True) -> ScoreOutput:
        v = np.array([[float(x) for x in r[0]["content"].split()] for r in responses], dtype=np.float32)
        return ScoreOutput(v[:, 0], np.zeros(len(v), bool), v[:, 2:], ("a", "b"), v[:, 1])


if "numbers" not in SCORERS:
    SCORERS.register("numbers")(NumbersScorer)

# chosen / rejected as "r u a b": pairs 1, 2 and 4 right and sure, pair 3 wrong and unsure (U = sqrt(9 + 16) = 5);
# objective a always prefers chosen, b always rejected
PAIRS = [("1 0.1 1 0", "0 0.1 0 1"), ("1 0.2 1 0", "0 0.2 0 1"), ("0 3 1 0", "1 4 0 1"), ("1 0.3 1 0", "0 0.4 0 1")]


def test_eval_reports_abstention_and_objectives(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": c, "rejected": r}) + "\n"
                            for i, (c, r) in enumerate(PAIRS)), encoding="utf-8")
    results = []
    for _ in range(2):  # the second run reads every score, uncertainty and objective back from the cache
        run_eval(EvalConfig(models=("numbers",), data=str(data), out=str(tmp_path / "out"), n_boot=200,
                            cache=str(tmp_path / "cache")))
        results.append(json.loads((tmp_path / "out" / "results.json").read_text())["models"][0])
    assert results[1]["scoring"]["from_cache"] == 8
    for model in results:
        a = model["abstention"]
        assert a["accuracy_all"]["value"] == 0.75 and a["accuracy_at_80"]["value"] == 1.0
        assert a["area"]["value"] == pytest.approx(0.9375) and a["gain"]["value"] == pytest.approx(0.1875)
        assert model["objectives"]["a"]["value"] == 1.0 and model["objectives"]["b"]["value"] == 0.0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Uncertainty and objectives" in report and "80% most certain" in report


def test_no_abstention_without_uncertainty(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "a long answer", "rejected": "short"}) + "\n")
    run_eval(EvalConfig(models=("length",), data=str(data), out=str(tmp_path / "out"), n_boot=100))
    model = json.loads((tmp_path / "out" / "results.json").read_text())["models"][0]
    assert "abstention" not in model and "objectives" not in model
    assert "Uncertainty and objectives" not in (tmp_path / "out" / "report.html").read_text()
