"""Pre-PPO prompt selection (rewardkit.infer.select_prompts, `data select-prompts`).

A scripted sampler returns responses of chosen lengths and the ``length`` scorer scores them by their
number of characters, so every prompt's mean reward -- and so the selection and the order -- is worked
out by hand in the comments. One CLI run uses the tiny random Llama (SmolLM2's tokenizer) as the policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli.main import main
from rewardkit.errors import OptionError
from rewardkit.infer import select_prompts as sp
from rewardkit.infer.select_prompts import (
    SelectConfig,
    guess_category,
    merged_order,
    row_category,
    select_hardest,
    select_prompts_file,
)

# prompt, its two scripted responses (lengths), mean length
ROWS = [
    ({"prompt": "Solve 2 + 2.", "answer": "4"}, ("aaaaaa", "aaaaaa")),  # mean 6, math (heuristic)
    ({"prompt": "Tell me a story."}, ("a", "a")),  # mean 1
    ({"prompt": [{"role": "user", "content": "Describe the sea."}]}, ("aaaa", "aaaaaaaa")),  # mean 6
    ({"prompt": "Name a colour.", "category": "chat"}, ("aa", "aaaa")),  # mean 3
    ({"prompt": "Write a python function.", "label": "def f(): pass"}, ("aaa", "aaa")),  # mean 3, code
]


def scripted(prompts: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
    by_text = {(r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][0]["content"]): list(t) for r, t in ROWS}
    return [by_text[p[-1]["content"]][:k] for p in prompts]


@pytest.fixture()
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r, _ in ROWS), encoding="utf-8")
    return path


def run(tmp_path: Path, prompts_file: Path, **kw: object) -> tuple[list[dict], list[dict], dict]:
    fmt = str(kw.get("format", "openrlhf"))
    out = tmp_path / ("out.parquet" if fmt == "verl" else "out.jsonl")
    cfg = SelectConfig(keep=0.4, samples=2, **kw)  # type: ignore[arg-type]
    summary = select_prompts_file(reward="length", policy="unused", prompts=str(prompts_file), out=str(out),
                                  cfg=cfg, sampler=scripted)
    if fmt == "verl":
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    report = [json.loads(line) for line in Path(f"{out}.report.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows, report, summary


def text_of(row: dict) -> str:
    p = row["prompt"]
    return p if isinstance(p, str) else p[-1]["content"]


# ------------------------------------------------------------------------------------------ pure parts


def test_select_hardest_takes_ceil_of_keep_and_breaks_ties_by_order() -> None:
    means = np.array([6.0, 1.0, 6.0, 3.0, 3.0])
    # keep 0.4 of 5 = 2: prompt 1 (1.0), then the tie at 3.0 goes to the earlier prompt 3
    assert select_hardest(means, 0.4).tolist() == [False, True, False, True, False]
    # keep 0.3 of 5 = 1.5 -> ceil 2, the same two
    assert select_hardest(means, 0.3).tolist() == [False, True, False, True, False]
    assert select_hardest(means, 1.0).all()


def test_merged_order_and_curriculum() -> None:
    selected = np.array([False, True, False, True, False])
    cats = ["math", "other", "other", "chat", "code"]
    assert merged_order(selected, cats, curriculum=False) == [1, 3, 0, 2, 4]
    # math/code (0, 4) first in the merged order, then the others in the merged order (1, 3, 2)
    assert merged_order(selected, cats, curriculum=True) == [0, 4, 1, 3, 2]


def test_categories_from_fields_then_heuristic() -> None:
    assert row_category({"prompt": "hi", "ability": "math"}) == "math"
    assert row_category({"prompt": "hi", "data_source": "openai/gsm8k"}) == "math"
    assert row_category({"prompt": "hi", "category": "Coding"}) == "code"
    assert row_category({"prompt": "Solve x", "category": "chat"}) == "chat"  # the field wins over the text
    assert guess_category("Implement quicksort in Rust") == "code"
    assert guess_category("```\nprint(1)\n```") == "code"
    assert guess_category("What is 17 * 3?") == "math"
    assert guess_category("Solve for x") == "math"
    assert guess_category("Write a poem about autumn") == "other"


def test_config_validation() -> None:
    for bad in ({"keep": 0.0}, {"keep": 1.5}, {"samples": 0}, {"format": "csv"}):
        with pytest.raises(OptionError):
            SelectConfig(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ the file job


def test_selection_report_and_openrlhf_rows(tmp_path: Path, prompts_file: Path) -> None:
    rows, report, summary = run(tmp_path, prompts_file)
    # means 6, 1, 6, 3, 3 -> selected prompts 1 and 3, then 0, 2, 4
    assert [text_of(r) for r in rows] == ["Tell me a story.", "Name a colour.", "Solve 2 + 2.", "Describe the sea.",
                                          "Write a python function."]
    assert [(r["mean"], r["min"], r["max"], r["selected"], r["position"]) for r in report] == [
        (6.0, 6.0, 6.0, False, 2), (1.0, 1.0, 1.0, True, 0), (6.0, 4.0, 8.0, False, 3), (3.0, 2.0, 4.0, True, 1),
        (3.0, 3.0, 3.0, False, 4)]
    assert [r["category"] for r in report] == ["math", "other", "other", "chat", "code"]
    # OpenRLHF: prompt as chat messages, label only where the row has an answer
    assert rows[0] == {"prompt": [{"role": "user", "content": "Tell me a story."}]}
    assert rows[2] == {"prompt": [{"role": "user", "content": "Solve 2 + 2."}], "label": "4"}
    assert rows[4]["label"] == "def f(): pass"
    assert summary["selected"] == 2 and summary["prompts"] == 5
    assert summary["mean_reward_selected"] == pytest.approx(2.0)  # (1 + 3) / 2
    assert summary["mean_reward_all"] == pytest.approx(19 / 5)


def test_curriculum_puts_math_and_code_first(tmp_path: Path, prompts_file: Path) -> None:
    rows, _, _ = run(tmp_path, prompts_file, curriculum=True)
    assert [text_of(r) for r in rows] == ["Solve 2 + 2.", "Write a python function.", "Tell me a story.",
                                          "Name a colour.", "Describe the sea."]


def test_verl_parquet_fields(tmp_path: Path, prompts_file: Path) -> None:
    rows, _, _ = run(tmp_path, prompts_file, format="verl")
    first = rows[2]  # input prompt 0
    assert first == {"data_source": "rewardkit", "prompt": [{"role": "user", "content": "Solve 2 + 2."}],
                     "ability": "math", "reward_model": {"style": "rule", "ground_truth": "4"},
                     "extra_info": {"index": 0, "split": "train"}}
    assert rows[0]["reward_model"]["ground_truth"] == "" and rows[0]["extra_info"]["index"] == 1
    assert [r["extra_info"]["index"] for r in rows] == [1, 3, 0, 2, 4]


def test_trl_rows_keep_the_prompt_as_given(tmp_path: Path, prompts_file: Path) -> None:
    rows, _, _ = run(tmp_path, prompts_file, format="trl")
    assert rows[0] == {"prompt": "Tell me a story."}
    assert rows[3] == {"prompt": [{"role": "user", "content": "Describe the sea."}]}


def test_policy_sampler_runs_the_tiny_policy(policy: object) -> None:
    from rewardkit.infer.sampler import SamplingConfig

    sampler = sp.policy_sampler(policy, SamplingConfig(max_new_tokens=3, seed=1), prompts_per_batch=2)  # type: ignore[arg-type]
    prompts = [[{"role": "user", "content": t}] for t in ("a", "bb", "ccc")]
    out = sampler(prompts, 2)
    assert [len(x) for x in out] == [2, 2, 2]
    assert out == sampler(prompts, 2)  # seeded per (prompt, sample)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_end_to_end_tiny_policy(tmp_path: Path, prompts_file: Path, lm_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sel.jsonl"
    assert main(["data", "select-prompts", "--reward", "length", "--policy", str(lm_path), "--prompts",
                 str(prompts_file), "--keep", "0.4", "--samples", "2", "--max-new-tokens", "3", "--out", str(out),
                 "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["selected"] == 2 and summary["prompts"] == 5
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    report = [json.loads(x) for x in Path(f"{out}.report.jsonl").read_text(encoding="utf-8").splitlines()]
    means = [r["mean"] for r in report]
    chosen = sorted(range(5), key=lambda i: (means[i], i))[:2]
    assert sorted(i for i, r in enumerate(report) if r["selected"]) == sorted(chosen)


@pytest.mark.parametrize("bad", ["row", "keep"])
def test_cli_bad_input_exit_2(tmp_path: Path, prompts_file: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = prompts_file
    keep = "0.3"
    if bad == "row":
        prompts = tmp_path / "bad.jsonl"
        prompts.write_text('{"prompt": "ok"}\n{"question": "no prompt"}\n', encoding="utf-8")
    else:
        keep = "0"
    code = main(["data", "select-prompts", "--reward", "length", "--policy", "unused", "--prompts", str(prompts),
                 "--keep", keep, "--out", str(tmp_path / "o.jsonl")])
    assert code == 2
    err = capsys.readouterr().err
    assert ("bad.jsonl:2: field 'prompt'" in err) if bad == "row" else ("--keep" in err)


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["data", "select-prompts", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--curriculum" in text and "selected prompts first" in text and "verl" in text
