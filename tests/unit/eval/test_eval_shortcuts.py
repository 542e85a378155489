"""Shortcut baselines beside an evaluation on testbed pairs: which files qualify, and the arithmetic on
the toy set of the audit's tests (worked out by hand there)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rewardkit.eval import shortcuts
from rewardkit.synth import audit


def _pair(pid: str, group: str, kind: str, chosen: str, rejected: str, sources: tuple[str, str]) -> dict:
    return {"prompt": [{"role": "user", "content": f"prompt {pid}"}], "prompt_id": pid, "group": group,
            "chosen": [{"role": "assistant", "content": chosen}], "rejected": [{"role": "assistant", "content": rejected}],
            "constraints": [{"kind": kind, "params": {"n": 3}}],
            "chosen_source": sources[0], "rejected_source": sources[1]}


# a twin (p1/p2: the same responses, opposite orders), an edit beating a sample, two samples
TOY = [
    _pair("p1", "g1", "max_words", "Two words.", "One two three four.", ("sample", "edit:extend")),
    _pair("p2", "g1", "min_words", "One two three four.", "Two words.", ("edit:extend", "sample")),
    _pair("p3", "g2", "min_words", "A b c d e.", "A b.", ("edit:pad", "sample")),
    _pair("p4", "g3", "max_words", "Yes no.", "One two three four five.", ("sample", "sample")),
]


def _write(path: Path, rows: list[dict]) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_testbed_rows_only_for_synth_pairs(tmp_path: Path) -> None:
    assert shortcuts.testbed_rows(str(_write(tmp_path / "t.jsonl", TOY))) == TOY
    assert shortcuts.testbed_rows(str(_write(tmp_path / "t.jsonl.gz", TOY))) == TOY
    plain = [{k: v for k, v in r.items() if k != "constraints"} for r in TOY]
    assert shortcuts.testbed_rows(str(_write(tmp_path / "plain.jsonl", plain))) is None
    strings = [{**r, "chosen": "x", "rejected": "y"} for r in TOY]
    assert shortcuts.testbed_rows(str(_write(tmp_path / "s.jsonl", strings))) is None
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    assert shortcuts.testbed_rows(str(tmp_path / "bad.jsonl")) is None
    assert shortcuts.testbed_rows("org/dataset-on-the-hub") is None


def test_model_free_on_the_toy_set() -> None:
    out = shortcuts.model_free(TOY, seed=0)
    # edited-wins: p1 wrong (0), p2 right (1), p3 right (1), p4 no opinion (0.5) -> 2.5 / 4
    assert out["edited_wins"]["value"] == pytest.approx(0.625) and out["edited_wins"]["n"] == 4
    assert out["edited_wins_decided"]["value"] == pytest.approx(2 / 3)
    # longer wins: p1 no, p2 yes, p3 yes, p4 no -> 0.5
    assert out["longer_wins"]["value"] == pytest.approx(0.5)
    assert out["shorter_wins"]["value"] == pytest.approx(0.5)
    # p1/p2 hold the same two responses in opposite orders: a prompt-blind scorer gets one of them
    assert out["prompt_blind_ceiling"] == pytest.approx(0.75)
    # three groups: under another group's instructions the verifiers' verdict is in [0, 1]
    assert 0.0 <= out["prompt_swap_gold"]["value"] <= 1.0 and out["prompt_swap_gold"]["n"] == 4
    low, high = out["edited_wins"]["ci95_low"], out["edited_wins"]["ci95_high"]
    assert 0.0 <= low <= 0.625 <= high <= 1.0


def test_write_swapped(tmp_path: Path) -> None:
    path = shortcuts.write_swapped(TOY, tmp_path / "sub" / "swapped.jsonl", seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == audit.swap_prompts(TOY, seed=3)
    assert all(r["chosen"] == t["chosen"] and r["group"] == t["group"] for r, t in zip(rows, TOY, strict=True))


def test_eval_on_testbed_pairs_reports_the_shortcuts(tmp_path: Path) -> None:
    """``rewardkit eval`` on synth pairs: the model-free rules beside the models, and each model's accuracy
    with the prompts swapped. The length scorer never reads the prompt, so swapping changes nothing."""
    from rewardkit.eval.runner import EvalConfig, run_eval

    data = _write(tmp_path / "pairs.jsonl", TOY)
    result, _ = run_eval(EvalConfig(models=("length",), data=str(data), out=str(tmp_path / "ev"), n_boot=200,
                                    report=False))
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())["shortcuts"]
    assert saved == json.loads(json.dumps(result.shortcuts))
    assert saved["edited_wins"]["value"] == pytest.approx(0.625) and saved["prompt_blind_ceiling"] == 0.75
    # length: longer wins, a tie is wrong for a model -> p2 and p3 right: 0.5, with or without the prompts
    assert result.models[0].metrics[0].value == pytest.approx(0.5)
    assert saved["prompt_swap"]["length"]["value"] == pytest.approx(0.5)
    assert (tmp_path / "ev" / "pairs_prompt_swapped.jsonl").exists()
    limited, _ = run_eval(EvalConfig(models=("length",), data=str(data), out=str(tmp_path / "ev2"), n_boot=200,
                                     report=False, limit=2))
    assert limited.shortcuts is None  # the first two pairs only: the rows would not align
