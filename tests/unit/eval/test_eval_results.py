"""results.json is strict JSON: NaN and infinities become null."""

from __future__ import annotations

import json
import math

from rewardkit.eval.results import Metric, json_safe, write_json


def test_nan_becomes_null_and_json_is_strict(tmp_path) -> None:
    obj = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": (2, "x"), "m": Metric("overall", 0.5, 0.4, 0.6, 10)}
    assert json_safe({"a": math.nan, "b": [math.inf]}) == {"a": None, "b": [None]}
    path = write_json(tmp_path / "r.json", {**obj, "m": obj["m"].to_dict()})
    back = json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert back == {"a": None, "b": [1.0, None, {"c": None}], "d": [2, "x"],
                    "m": {"key": "overall", "value": 0.5, "ci95_low": 0.4, "ci95_high": 0.6, "n": 10}}
    assert Metric("section/Chat Hard", 1, 1, 1, 1).label == "Chat Hard" and Metric("overall", 1, 1, 1, 1).level == "overall"
    assert not list(tmp_path.glob(".*.tmp"))
