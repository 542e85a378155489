"""``data check`` (counts, token lengths, truncation) and ``data convert`` (canonical TRL jsonl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.data.chat import PairEncoder
from rewardkit.data.check import check_file, length_summary
from rewardkit.data.convert import convert_file
from rewardkit.data.dataset import iter_examples
from rewardkit.data.formats import DataValidationError
from rewardkit.errors import OptionError

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

TWELVE = "one two three four five six seven eight nine ten eleven twelve"
TWENTY = " ".join(["word"] * 20)

# MiniLM WordPiece: every word below is one token (asserted in the test); text_pair adds [CLS] [SEP] [SEP].
def minilm_encoder(tok: Any, max_length: int) -> PairEncoder:
    """What the CLI builds for ``--tokenizer minilm``: MiniLM is a BERT encoder, so text pairs."""
    return PairEncoder(tok, "text_pair", max_length)


CHECK_ROWS = [
    {"prompt": "hello", "chosen": "yes", "rejected": "no"},  # 1+1+3 = 5 and 5
    {"prompt": TWELVE, "chosen": "yes", "rejected": "no thanks"},  # 12+1+3 = 16 and 12+2+3 = 17
    {"prompt": "hello", "chosen": TWENTY, "rejected": "no"},  # 1+20+3 = 24 and 5
    {"prompt": "hello", "completion": "yes"},  # one sequence: 5
    {"prompt": "hello", "chosen": "same", "rejected": "same"},  # invalid: identical
]


def test_check_file_counts_lengths_and_truncation(write_jsonl: Any, minilm_tokenizer: Any) -> None:
    tok = minilm_tokenizer
    for text, n in [("hello", 1), ("yes", 1), ("no", 1), ("no thanks", 2), (TWELVE, 12), (TWENTY, 20)]:
        assert len(tok(text, add_special_tokens=False)["input_ids"]) == n, text
    path = write_jsonl(CHECK_ROWS)
    report = check_file(str(path), encoder=minilm_encoder(tok, 16), tokenizer="minilm")

    assert not report.ok
    d = report.to_dict()
    assert (d["records"], d["valid"], d["invalid"]) == (5, 4, 1)
    assert d["formats"] == {"trl-explicit": 3, "completion": 1}
    assert d["errors"] == [f"{path}:5: field 'rejected': is identical to 'chosen' (the pair carries no preference)"]
    assert (d["tokenizer"], d["max_length"]) == ("minilm", 16)

    # untruncated lengths of the 7 sequences: 5, 5, 16, 17, 24, 5, 5 (see CHECK_ROWS)
    lengths = [5, 5, 16, 17, 24, 5, 5]
    assert d["token_lengths"] == {"sequences": 7, "mean": 77 / 7, "p50": 5.0,
                                  "p90": float(np.percentile(lengths, 90)), "p99": float(np.percentile(lengths, 99)),
                                  "max": 24}
    # max_length 16 leaves 13 tokens for prompt + response:
    # - row 2 rejected: 12 + 2 = 14 > 13; the response fits beside min(12, 13 // 4) = 3 prompt tokens,
    #   so only the oldest prompt token goes (1 prompt token dropped);
    # - row 3 chosen: 1 + 20 = 21 > 13; the prompt keeps min(1, 3) = 1 token, the response is cut to 12
    #   (8 response tokens dropped).
    assert d["truncation"] == {"sequences": 7, "truncated_sequences": 2, "pairs_truncated": 2,
                               "prompt_tokens_dropped": 1, "response_tokens_dropped": 8, "response_cut_sequences": 1,
                               "sequences_partly_tokenized": 0}


def test_check_file_without_tokenizer(write_jsonl: Any) -> None:
    path = write_jsonl(CHECK_ROWS[:2])
    report = check_file(str(path), tokenizer=None)
    assert report.ok
    assert (report.scan.n_records, report.scan.n_errors, report.lengths, report.truncation) == (2, 0, {}, {})


def test_check_file_all_invalid_skips_tokenizing(write_jsonl: Any, minilm_tokenizer: Any) -> None:
    report = check_file(str(write_jsonl([CHECK_ROWS[4]])), encoder=minilm_encoder(minilm_tokenizer, 512),
                        tokenizer="minilm")
    assert not report.ok
    assert (report.scan.n_errors, report.lengths, report.truncation, report.tokenizer) == (1, {}, {}, None)


def test_check_file_needs_an_encoder_to_measure_tokens(write_jsonl: Any, minilm_tokenizer: Any) -> None:
    """``rewardkit.data`` builds no tokenizer (it sits below ``rewardkit.models``): a name alone is refused
    rather than silently measuring nothing, and a stated max_length must be the encoder's."""
    path = str(write_jsonl(CHECK_ROWS[:1]))
    with pytest.raises(OptionError, match="tokenizer 'minilm' needs encoder="):
        check_file(path, tokenizer="minilm")
    with pytest.raises(OptionError, match="max_length 16 differs from the encoder's 512"):
        check_file(path, encoder=minilm_encoder(minilm_tokenizer, 512), max_length=16)
    report = check_file(path, encoder=minilm_encoder(minilm_tokenizer, 512), max_length=512)
    assert (report.tokenizer, report.max_length, report.lengths["max"]) == (None, 512, 5)


def test_length_summary() -> None:
    assert length_summary(np.array([], dtype=int)) == {}
    # linear-interpolated percentiles of 1..4: p90 at index 0.9 × 3 = 2.7 -> 3.7, p99 at 2.97 -> 3.97
    summary = length_summary(np.array([1, 2, 3, 4]))
    assert summary == {"sequences": 4, "mean": 2.5, "p50": 2.5, "p90": pytest.approx(3.7),
                       "p99": pytest.approx(3.97), "max": 4}
    assert type(summary["sequences"]) is int and type(summary["max"]) is int


def test_cli_data_check_prints_truncation(write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(CHECK_ROWS[:4])
    assert main(["data", "check", str(path), "--max-length", "16"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 4 records, 4 valid, 0 invalid" in out
    assert "tokens per sequence (minilm): mean 11, p50 5, " in out
    assert ("max length 16: 2 records would be truncated (2 of 7 sequences; 1 with the response cut); "
            "nothing is dropped") in out


# ----------------------------------------------------------------------------- convert


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


CONVERT_ROWS: list[dict[str, Any]] = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 1.5, "id": "a", "tags": ["x"]},
    {"chosen": "The sky is blue.", "rejected": "The sky is green.", "source": "implicit"},
    {"chosen": [user("q"), assistant("a")], "rejected": [user("q"), assistant("b")]},
    {"chosen": "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: fruit?\n\nAssistant: apple",
     "rejected": "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: fruit?\n\nAssistant: hammer", "margin": 2},
    {"prompt": "Write a haiku.", "chosen": "Leaves fall.", "rejected": "No.", "subset": "chat", "id": 7,
     "chosen_model": "m1", "rejected_model": "m2"},
    {"prompt": "q", "completion": "c", "score_hint": None},
    {"chosen": "abc", "rejected": "xyz"},
]

CONVERTED = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 1.5, "id": "a", "tags": ["x"]},
    {"prompt": "The sky is ", "chosen": "blue.", "rejected": "green.", "source": "implicit"},
    {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")]},
    {"prompt": [user("hi"), assistant("yo"), user("fruit?")], "chosen": [assistant("apple")],
     "rejected": [assistant("hammer")], "margin": 2.0},
    {"prompt": [user("Write a haiku.")], "chosen": [assistant("Leaves fall.")], "rejected": [assistant("No.")],
     "subset": "chat", "id": 7, "chosen_model": "m1", "rejected_model": "m2"},
    {"prompt": "q", "completion": "c", "score_hint": None},
    {"chosen": "abc", "rejected": "xyz"},
]


def _content(ex: Any) -> tuple[Any, ...]:
    """An example without its detected format name (converted rows are TRL, whatever the input was)."""
    fields = ("prompt", "chosen", "rejected", "completion", "conversational", "margin")
    return (*(getattr(ex, k, None) for k in fields), dict(ex.extras))


def test_convert_writes_canonical_trl_that_re_reads_the_same(tmp_path: Path, write_jsonl: Any) -> None:
    src = write_jsonl(CONVERT_ROWS, name="mixed.jsonl.gz")
    dst = tmp_path / "out" / "canonical.jsonl"
    result = convert_file(str(src), str(dst))
    assert result.written == 7
    assert result.formats == {"trl-explicit": 1, "trl-implicit": 2, "trl-conversational": 1, "hh-rlhf": 1,
                              "rewardbench": 1, "completion": 1}
    lines = dst.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == CONVERTED
    assert [_content(ex) for _, ex in iter_examples(dst)] == [_content(ex) for _, ex in iter_examples(src)]
    assert [p.name for p in dst.parent.iterdir()] == ["canonical.jsonl"]  # no temporary file left


def test_convert_keeps_unicode_readable(tmp_path: Path, write_jsonl: Any) -> None:
    src = write_jsonl([{"prompt": "Ça va ?", "chosen": "Très bien 🙂", "rejected": "Non."}])
    dst = tmp_path / "out.jsonl"
    convert_file(str(src), str(dst))
    assert "Très bien 🙂" in dst.read_text(encoding="utf-8")


def test_convert_from_parquet(tmp_path: Path) -> None:
    import datasets

    src = tmp_path / "in.parquet"
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "margin": None, "id": 1},
            {"prompt": "r", "chosen": "c", "rejected": "d", "margin": 0.5, "id": 2}]
    datasets.Dataset.from_list(rows).to_parquet(str(src))
    dst = tmp_path / "out.jsonl"
    assert convert_file(str(src), str(dst)).written == 2
    assert [json.loads(line) for line in dst.read_text().splitlines()] == [
        {"prompt": "q", "chosen": "a", "rejected": "b", "id": 1},
        {"prompt": "r", "chosen": "c", "rejected": "d", "margin": 0.5, "id": 2},
    ]


def test_convert_bad_input_writes_nothing(tmp_path: Path, write_jsonl: Any) -> None:
    src = write_jsonl([CONVERT_ROWS[0], {"prompt": "q", "chosen": "a"}])
    dst = tmp_path / "out" / "canonical.jsonl"
    with pytest.raises(DataValidationError) as info:
        convert_file(str(src), str(dst))
    assert info.value.n_errors == 1
    assert [str(e) for e in info.value.errors] == [
        f"{src}:2: field 'rejected': missing (a preference row needs 'chosen' and 'rejected')"]
    assert not dst.parent.exists()


def test_convert_refuses_to_overwrite_its_input(write_jsonl: Any) -> None:
    src = write_jsonl(CONVERT_ROWS[:1])
    before = src.read_bytes()
    with pytest.raises(ValueError, match="would overwrite the input"):
        convert_file(str(src), str(src))
    assert src.read_bytes() == before


def test_cli_data_convert(tmp_path: Path, write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(CONVERT_ROWS[:2])
    dst = tmp_path / "out.jsonl"
    assert main(["data", "convert", str(src), str(dst)]) == 0
    assert f"wrote 2 records to {dst}" in capsys.readouterr().out
    assert [json.loads(line) for line in dst.read_text().splitlines()] == CONVERTED[:2]
