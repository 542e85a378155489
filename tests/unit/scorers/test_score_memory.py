"""Scoring in windows (issue 16): ``score_file`` parses, tokenizes and scores a window of records at a time
and keeps only numbers, training-time evaluation reads token ids from Arrow per batch, and the default token budget
follows the device. Windows must not change anything: values, input order, fields, invalid records."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rewardkit.data.dataset import load_examples, tokenize_examples
from rewardkit.data.formats import DataError, DataValidationError, Location, PreferenceExample, parse_record
from rewardkit.models.reward_model import load_reward_model
from rewardkit.scorers.files import scan_records, score_file, windows
from rewardkit.scoring import (
    CPU_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    RewardModelScorer,
    ScorerOptions,
    default_batch_tokens,
)
from rewardkit.train.evaluation import PairSides, score_on_all_ranks, score_pairs_on_all_ranks
from tiny_models import tiny_bert, tiny_llama

CPU = ScorerOptions(device="cpu", dtype="float32")


def _records(n: int) -> list[dict]:
    """n records: pairs whose chosen side has i + 1 characters after the space, every third a completion row."""
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append({"prompt": f"row {i}", "completion": " " + "c" * (i + 1), "id": i})
        else:
            out.append({"prompt": f"question {i}?", "chosen": " " + "word " * (i + 1), "rejected": " no" * (i % 4 + 1),
                        "id": i, "meta": {"k": [i]}})
    return out


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("bert") / "bert")


def test_windows_cover_every_record_once() -> None:
    assert list(windows(7, 3)) == [(0, 3), (3, 6), (6, 7)]
    assert list(windows(6, 3)) == [(0, 3), (3, 6)] and list(windows(0, 3)) == []


def test_windowed_scores_equal_one_window_and_a_direct_reference(bert: Path, tmp_path: Path) -> None:
    records = _records(11)
    data = _write(tmp_path / "data.jsonl", [json.dumps(r) for r in records])
    small, whole = tmp_path / "small.jsonl", tmp_path / "whole.jsonl"
    r_small = score_file(str(bert), str(data), str(small), options=CPU, window=2)  # 6 windows, one split pair side
    r_whole = score_file(str(bert), str(data), str(whole), options=CPU, window=10_000)
    assert (r_small.pairs, r_small.completions, r_small.sequences) == (r_whole.pairs, r_whole.completions, 19) == (8, 3, 19)
    a, b = _read(small), _read(whole)
    # the reference: the scorer called on every response at once, outside score_file
    examples = [parse_record(r, Location("x", line=i + 1)) for i, r in enumerate(records)]
    scorer = RewardModelScorer(str(bert), device="cpu", dtype="float32")
    chosen = scorer.score([e.prompt for e in examples],
                          [e.chosen if isinstance(e, PreferenceExample) else e.completion for e in examples],
                          [e.conversational for e in examples]).rewards
    pairs = [i for i, e in enumerate(examples) if isinstance(e, PreferenceExample)]
    rejected = scorer.score([examples[i].prompt for i in pairs], [examples[i].rejected for i in pairs],
                            [examples[i].conversational for i in pairs]).rewards
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert list(x) == list(y)  # same fields, same order
        key = "chosen_score" if i in pairs else "score"
        assert x[key] == pytest.approx(y[key], abs=1e-6) and x[key] == pytest.approx(float(chosen[i]), abs=1e-6)
        if i in pairs:
            ref = float(rejected[pairs.index(i)])
            assert x["rejected_score"] == pytest.approx(y["rejected_score"], abs=1e-6)
            assert x["rejected_score"] == pytest.approx(ref, abs=1e-6)
        assert {k: x[k] for k in records[i]} == records[i]  # every input field kept


def test_input_order_and_fields_across_windows(tmp_path: Path) -> None:
    records = _records(10)
    data = _write(tmp_path / "data.jsonl", [json.dumps(r) for r in records])
    out = tmp_path / "out.jsonl"
    result = score_file("length", str(data), str(out), options=CPU, window=3)
    rows = _read(out)
    assert [r["id"] for r in rows] == list(range(10))
    for i, row in enumerate(rows):  # length: characters of the response, worked out from _records
        if i % 3 == 2:
            assert (row["score"], row["truncated"]) == (float(i + 2), False) and "chosen_score" not in row
        else:
            assert row["chosen_score"] == float(1 + 5 * (i + 1))
            assert row["rejected_score"] == float(3 * (i % 4 + 1))
            assert row["meta"] == {"k": [i]}
    assert (result.pairs, result.completions, result.invalid, result.truncated_sequences) == (7, 3, 0, 0)


def test_invalid_records_across_a_window_boundary(tmp_path: Path) -> None:
    good = [json.dumps(r) for r in _records(5)]
    # valid records 0, 1 | invalid, invalid | valid 2 | invalid | valid 3, 4: with windows of 2 valid
    # records the invalid lines sit between windows and inside one
    lines = [good[0], good[1], "{broken", json.dumps({"prompt": "p", "chosen": 3}), good[2],
             json.dumps({"nothing": 1}), good[3], good[4]]
    data = _write(tmp_path / "data.jsonl", lines)
    out = tmp_path / "out.jsonl"
    result = score_file("length", str(data), str(out), options=CPU, skip_invalid=True, window=2)
    rows = _read(out)
    assert len(rows) == 8 and result.invalid == 3
    assert [("error" in r) for r in rows] == [False, False, True, True, False, True, False, False]
    assert all(r["score"] is None for r in rows if "error" in r)
    valid = [r for r in rows if "error" not in r]
    assert [r["id"] for r in valid] == [0, 1, 2, 3, 4]
    assert valid[2]["score"] == 4.0 and valid[4]["chosen_score"] == 26.0  # " ccc" and " word " * 5


def test_scan_counts_pairs_and_refuses_invalid_records_unless_skipped(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in _records(4)]
    data = _write(tmp_path / "data.jsonl", [lines[0], "{broken", *lines[1:]])
    with pytest.raises(DataValidationError, match=r"(?s)1 invalid record\(s\) in .*data\.jsonl:2: bad JSON"):
        scan_records(str(data))
    is_pair, invalid = scan_records(str(data), skip_invalid=True)
    assert is_pair.tolist() == [True, True, False, True] and invalid == 1
    with pytest.raises(DataValidationError, match="no valid record is left"):
        scan_records(str(_write(tmp_path / "bad.jsonl", ["{broken"])), skip_invalid=True)
    with pytest.raises(DataError, match="no records"):
        scan_records(str(_write(tmp_path / "empty.jsonl", [])))


def test_judge_in_windows_equals_one_window(tmp_path: Path) -> None:
    lm = tiny_llama(tmp_path / "lm")
    records = [r for r in _records(5) if "rejected" in r]
    data = _write(tmp_path / "pairs.jsonl", [json.dumps(r) for r in records])
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    score_file(f"judge:{lm}", str(data), str(a), options=CPU, window=1)
    score_file(f"judge:{lm}", str(data), str(b), options=CPU)
    for x, y in zip(_read(a), _read(b), strict=True):
        assert list(x) == list(y)
        assert x["chosen_score"] == pytest.approx(y["chosen_score"], abs=1e-6) == -x["rejected_score"]


def test_default_budget_follows_the_device(bert: Path) -> None:
    assert default_batch_tokens("cpu") == default_batch_tokens(torch.device("cpu")) == CPU_BATCH_TOKENS == 512
    assert default_batch_tokens("cuda:1") == default_batch_tokens("mps") == GPU_BATCH_TOKENS == 65_536
    assert RewardModelScorer(str(bert), device="cpu").max_tokens == 512
    assert RewardModelScorer.from_spec(str(bert), ScorerOptions(device="cpu", batch_tokens=99)).max_tokens == 99


def test_evaluation_reads_pairs_from_arrow_and_matches_lists(bert: Path, tmp_path: Path) -> None:
    records = [r for r in _records(9) if "rejected" in r]
    data = _write(tmp_path / "pairs.jsonl", [json.dumps(r) for r in records])
    rm = load_reward_model(bert)
    tokenized = tokenize_examples(load_examples(data).dataset, rm.encoder)
    cols = tokenized[:]
    n = len(records)
    sides = PairSides(tokenized)
    assert sides.lengths().tolist() == [len(s) for s in cols["chosen_input_ids"] + cols["rejected_input_ids"]]
    ids, _, starts = sides.fetch([n + 1, 0, n + 1, 2])  # rejected 1, chosen 0, a repeat, chosen 2
    assert ids == [cols["rejected_input_ids"][1], cols["chosen_input_ids"][0], cols["rejected_input_ids"][1],
                   cols["chosen_input_ids"][2]]
    assert starts == [cols["rejected_response_start"][1], cols["chosen_response_start"][0],
                      cols["rejected_response_start"][1], cols["chosen_response_start"][2]]
    one = SimpleNamespace(num_processes=1, process_index=0, device=torch.device("cpu"))
    chosen, rejected = score_pairs_on_all_ranks(one, rm.net, rm.pad_token_id, tokenized, max_tokens=64)
    lists = score_on_all_ranks(one, rm.net, rm.pad_token_id, cols["chosen_input_ids"] + cols["rejected_input_ids"],
                               cols["chosen_token_type_ids"] + cols["rejected_token_type_ids"],
                               cols["chosen_response_start"] + cols["rejected_response_start"], max_tokens=10_000)
    np.testing.assert_allclose(np.concatenate([chosen, rejected]), lists, atol=1e-6)
    direct = RewardModelScorer(str(bert), device="cpu").score(
        [[{"role": "user", "content": r["prompt"]}] for r in records],
        [[{"role": "assistant", "content": r["chosen"]}] for r in records], False).rewards
    np.testing.assert_allclose(chosen, direct, atol=1e-6)
