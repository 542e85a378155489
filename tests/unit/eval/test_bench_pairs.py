"""``pairs``: any preference file, ties wrong, per-subset accuracy; values worked out from fixtures/eval/pairs."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import FIXTURES, table_scores

from rewardkit.data.formats import DataValidationError
from rewardkit.eval.benchmarks import get_benchmark
from rewardkit.eval.benchmarks.base import Item

DATA = str(FIXTURES / "pairs" / "prefs.jsonl")


def test_reads_every_format_and_refuses_the_invalid_row_unless_asked() -> None:
    bench = get_benchmark("pairs")
    with pytest.raises(DataValidationError, match=r"prefs.jsonl:4: field 'rejected': is empty"):
        bench.read(DATA)
    read = bench.read(DATA, skip_invalid=True)
    assert (read.n_records, read.n_errors, len(read.items)) == (4, 1, 3)
    assert [it.meta["format"] for it in read.items] == ["rewardbench", "trl-conversational", "hh-rlhf"]  # prompt + subset reads as reward-bench
    assert [it.subset for it in read.items] == ["geo", "geo", "chat"]
    assert all(it.labels == (True, False) for it in read.items)


def test_accuracy_by_hand() -> None:
    # geo: Paris 2 > Lyon 1 (right), Pacific 0.5 < Lake Geneva 1.5 (wrong) -> 1/2
    # chat: "Hi there!" 3 == "Go away." 3, a tie, counts wrong -> 0; overall 1/3
    bench = get_benchmark("pairs")
    items = bench.read(DATA, skip_invalid=True).items
    s = bench.summarize(bench.outcomes(items, table_scores(items, "pairs")))
    assert s["overall"].value == pytest.approx(1 / 3) and s["overall"].n == 3
    assert s["subset/geo"].value == pytest.approx(0.5) and s["subset/geo"].n == 2
    assert s["subset/chat"].value == 0.0
    assert bench.summarize(bench.random_outcomes(items))["overall"].value == 0.5


def test_no_subset_column_reports_overall_only(tmp_path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a", "chosen": " b", "rejected": " c"}\n')
    bench = get_benchmark("pairs")
    items = bench.read(str(f)).items
    assert list(bench.summarize(bench.outcomes(items, [np.array([1.0, 0.0])]))) == ["overall"]


def test_an_empty_file_is_an_error(tmp_path) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_text("")
    with pytest.raises(ValueError, match="no valid items"):
        get_benchmark("pairs").read(str(f))


def test_hub_names_load_through_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load(name: str, split: str) -> datasets.Dataset:
        calls.append((name, split))
        return datasets.Dataset.from_list([{"prompt": "q", "chosen": " yes", "rejected": " no", "subset": "s"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    read = get_benchmark("rewardbench").read("allenai/reward-bench")
    assert calls == [("allenai/reward-bench", "filtered")]
    assert isinstance(read.items[0], Item) and read.items[0].subset == "s"
    with pytest.raises(FileNotFoundError):
        get_benchmark("pairs").read("missing/file.jsonl")


def test_baselines_agree_with_the_core_length_baselines() -> None:
    from rewardkit.eval.runner import trivial_baselines
    from rewardkit.eval.stats import length_baselines

    bench = get_benchmark("pairs")
    items = bench.read(DATA, skip_invalid=True).items
    lengths = [it.response_lengths() for it in items]
    core = length_baselines([x[0] for x in lengths], [x[1] for x in lengths])
    ours = trivial_baselines(bench, items, seed=0)
    assert {k: ours[k]["overall"] for k in core} == core
