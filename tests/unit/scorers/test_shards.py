"""Sharded scoring: strided shards, the merge back into input order, and ``rewardkit score`` under torchrun
(two processes) writing the same file as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.scorers.shards import Shard, merge_shards, score_sharded
from rewardkit.types import ScoreOutput
from tiny_models import tiny_bert


def _out(values: list[float], objectives: bool = True) -> ScoreOutput:
    r = np.array(values, np.float32)
    obj = np.stack([r, -r], axis=1) if objectives else None
    return ScoreOutput(r, r > 2, obj, ("a", "b") if objectives else (), r / 10)


def test_strided_positions() -> None:
    assert Shard(1, 3).positions(7).tolist() == [1, 4]
    assert Shard(0, 3).positions(7).tolist() == [0, 3, 6]
    assert Shard(2, 4).positions(2).tolist() == []
    assert Shard().device("auto") == "auto" and Shard(0, 2).device("cpu") == "cpu"


def test_merge_puts_every_item_back_in_input_order() -> None:
    # 5 items on 3 ranks: rank 0 has 0 and 3, rank 1 has 1 and 4, rank 2 has 2
    parts = [(np.array([0, 3]), _out([0.0, 3.0])), (np.array([1, 4]), _out([1.0, 4.0])),
             (np.array([2]), _out([2.0]))]
    merged = merge_shards(parts, 5)
    np.testing.assert_array_equal(merged.rewards, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(merged.objectives[:, 1], [0, -1, -2, -3, -4])
    np.testing.assert_array_equal(merged.truncated, [False, False, False, True, True])
    np.testing.assert_allclose(merged.uncertainty, [0, 0.1, 0.2, 0.3, 0.4])
    assert merged.objective_names == ("a", "b")


def test_a_rank_without_items_adds_nothing_and_gaps_are_refused() -> None:
    empty = ScoreOutput(np.zeros(0, np.float32), np.zeros(0, bool))  # no objectives: it had nothing to score
    merged = merge_shards([(np.array([0]), _out([7.0])), (np.array([1]), _out([8.0])), (np.array([], int), empty)], 2)
    np.testing.assert_array_equal(merged.rewards, [7, 8])
    with pytest.raises(ValueError, match=r"not each of 0\.\.2 once"):
        merge_shards([(np.array([0, 2]), _out([1.0, 2.0]))], 3)
    with pytest.raises(ValueError, match="objectives"):
        ScoreOutput.concat([_out([1.0]), _out([2.0], objectives=False)])


def test_one_process_scores_everything_in_order() -> None:
    seen: list[list[int]] = []

    def score(mine: np.ndarray) -> ScoreOutput:
        seen.append(mine.tolist())
        return _out([float(k) for k in mine])

    out = score_sharded(Shard(), 4, score)
    assert seen == [[0, 1, 2, 3]]
    np.testing.assert_array_equal(out.rewards, [0, 1, 2, 3])


def test_score_under_torchrun_writes_what_one_process_writes(tmp_path: Path) -> None:
    rows = [{"prompt": f"question {i}?", "chosen": " yes " * (i + 1), "rejected": " no"} for i in range(7)]
    rows.append({"prompt": "alone", "completion": " one completion row"})
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = tiny_bert(tmp_path / "bert")
    one = tmp_path / "one.jsonl"
    assert main(["score", "--model", str(model), "--data", str(data), "--out", str(one), "--device", "cpu"]) == 0
    two = tmp_path / "two.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "rewardkit.cli", "score", "--model", str(model), "--data", str(data), "--out", str(two),
           "--device", "cpu"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1 and "on 2 processes" in proc.stdout, proc.stdout
    a = [json.loads(line) for line in one.read_text().splitlines()]
    b = [json.loads(line) for line in two.read_text().splitlines()]
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b] == [r["prompt"] for r in rows]
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in ("chosen_score", "rejected_score", "score"):
            if key in x:
                assert y[key] == pytest.approx(x[key], abs=1e-5)


def test_eval_under_torchrun_reports_what_one_process_reports(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": " good " * (i % 4 + 1), "rejected": " bad " * (7 - i % 5)} for i in range(9)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = tiny_bert(tmp_path / "bert")
    args = ["eval", "--model", str(model), "--data", str(data), "--device", "cpu", "--no-report", "--n-boot", "200"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29532",
           "-m", "rewardkit.cli", *args, "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1
    one = [json.loads(line) for line in (tmp_path / "one" / "items.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two" / "items.jsonl").read_text().splitlines()]
    assert len(one) == len(two) == 9
    for a, b in zip(one, two, strict=True):
        assert b["uid"] == a["uid"]
        (sa,), (sb,) = a["models"].values(), b["models"].values()
        np.testing.assert_allclose(sb["scores"], sa["scores"], atol=1e-5)
        assert sb["credit"] == sa["credit"]
    acc = [json.loads((tmp_path / d / "results.json").read_text())["models"][0]["metrics"] for d in ("one", "two")]
    assert acc[0] == acc[1]
