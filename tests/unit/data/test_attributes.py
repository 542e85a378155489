"""Attribute files: HelpSteer2 rows, UltraFeedback fine-grained ratings and any numeric columns read into
(prompt, response, labels) with NaN for missing ratings; bad input names file, line and field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.data.attributes import is_attribute_file, load_attributes
from rewardkit.data.formats import DataError, DataValidationError
from rewardkit.errors import InputError


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def helpsteer_row(prompt: str, response: str, h: float | None = 3, v: float | None = 2) -> dict:
    """Shaped like nvidia/HelpSteer2's jsonl rows (five 0-4 integer columns)."""
    return {"prompt": prompt, "response": response, "helpfulness": h, "correctness": 3, "coherence": 4,
            "complexity": 1, "verbosity": v}


def ultrafeedback_row(instruction: str) -> dict:
    """Shaped like openbmb/UltraFeedback: ratings are strings, "N/A" where an aspect was not rated."""
    def comp(text: str, ratings: dict[str, str], overall: float) -> dict:
        return {"model": "m", "response": text, "overall_score": overall, "fine-grained_score": 4.0,
                "annotations": {k: {"Rating": r, "Rationale": "..."} for k, r in ratings.items()}}
    return {"source": "evol", "instruction": instruction, "models": ["m", "m"], "completions": [
        comp("First answer.", {"instruction_following": "5", "honesty": "4", "truthfulness": "N/A",
                               "helpfulness": "3"}, 7.5),
        comp("Second answer.", {"instruction_following": "2", "honesty": "N/A", "truthfulness": "3",
                                "helpfulness": "1"}, 3.0),
    ]}


def test_helpsteer2_rows_read_with_the_five_attributes_and_nan_for_missing(tmp_path: Path) -> None:
    path = _write(tmp_path / "hs2.jsonl", [helpsteer_row("p1", "r1"), helpsteer_row("p2", "r2", h=None),
                                          helpsteer_row("p3", "r3", v="N/A")])
    assert is_attribute_file(path)
    data = load_attributes(path)
    assert data.names == ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    assert data.format == "rated" and len(data.examples) == 3
    labels = data.labels()
    assert labels.shape == (3, 5)
    np.testing.assert_array_equal(labels[0], [3, 3, 4, 1, 2])
    assert math.isnan(labels[1, 0]) and labels[1, 4] == 2
    assert math.isnan(labels[2, 4])
    assert data.examples[0].prompt == ({"role": "user", "content": "p1"},)
    assert data.examples[0].response == ({"role": "assistant", "content": "r1"},)
    assert data.summary()["labelled_per_attribute"] == {"helpfulness": 2, "correctness": 3, "coherence": 3,
                                                        "complexity": 3, "verbosity": 2}


def test_ifeval_lite_objective_rows_gzipped_message_list_prompt_string_response_nulls(tmp_path: Path) -> None:
    """Rows shaped like ``rewardkit.synth``'s ``objectives_*.jsonl.gz``: the prompt a message list, the
    response a string, one column per instruction kind (null where the prompt has none), text columns
    (ids, source) and the gold beside them; ``--attributes kinds,verbosity`` picks the labels."""
    import gzip

    def row(text: str, no_commas: float | None, max_words: float | None, words: int) -> dict:
        return {"prompt_id": "f-1a", "family_id": "f-1", "prompt": [{"role": "user", "content": "Say hi. No commas."}],
                "response": text, "source": "sample", "gold": 1.0, "max_words": max_words, "no_commas": no_commas,
                "uppercase": None, "verbosity": words}

    path = tmp_path / "objectives_train.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in (row("Hi there", 1.0, None, 2), row("Hi, you", 0.0, 0.5, 2)):
            f.write(json.dumps(r) + "\n")
    assert is_attribute_file(path)
    data = load_attributes(path, attributes=["max_words", "no_commas", "uppercase", "verbosity"])
    assert data.names == ("max_words", "no_commas", "uppercase", "verbosity") and len(data.examples) == 2
    np.testing.assert_array_equal(data.labels(), [[np.nan, 1.0, np.nan, 2.0], [0.5, 0.0, np.nan, 2.0]])
    assert data.examples[0].conversational
    assert data.examples[0].prompt == ({"role": "user", "content": "Say hi. No commas."},)
    assert data.examples[1].response == ({"role": "assistant", "content": "Hi, you"},)
    assert data.summary()["labelled_per_attribute"] == {"max_words": 1, "no_commas": 2, "uppercase": 0, "verbosity": 2}


def test_ultrafeedback_one_example_per_completion_ratings_as_strings_na_is_nan(tmp_path: Path) -> None:
    path = _write(tmp_path / "uf.jsonl", [ultrafeedback_row("Write a haiku.")])
    data = load_attributes(path)
    assert data.format == "ultrafeedback"
    assert data.names == ("instruction_following", "honesty", "truthfulness", "helpfulness")
    labels = data.labels()
    np.testing.assert_array_equal(labels[0][[0, 1, 3]], [5, 4, 3])
    assert math.isnan(labels[0, 2]) and math.isnan(labels[1, 1])
    assert data.examples[1].response[0]["content"] == "Second answer."
    # a completion's own numbers can be named as attributes
    both = load_attributes(path, attributes=["overall_score", "helpfulness"])
    np.testing.assert_array_equal(both.labels(), [[7.5, 3], [3.0, 1]])


def test_ultrafeedback_raw_release_wraps_each_aspect_in_a_list(tmp_path: Path) -> None:
    row = ultrafeedback_row("q")
    for comp in row["completions"]:  # {"helpfulness": [{"Type": [...], "Rating": "3", ...}]}
        comp["annotations"] = {k: [dict(v, Type=["1"])] for k, v in comp["annotations"].items()}
    row["completions"][1]["annotations"]["honesty"] = []
    data = load_attributes(_write(tmp_path / "uf.jsonl", [row]))
    labels = data.labels()
    np.testing.assert_array_equal(labels[0][[0, 1, 3]], [5, 4, 3])
    assert math.isnan(labels[0, 2]) and math.isnan(labels[1, 1])
    row["completions"][0]["annotations"]["honesty"][0]["Rating"] = "x"
    with pytest.raises(DataValidationError, match=r"field 'completions\[0\].annotations.honesty\[0\].Rating'"):
        load_attributes(_write(tmp_path / "uf2.jsonl", [row]))


def test_any_numeric_columns_are_detected_or_named(tmp_path: Path) -> None:
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "response": [{"role": "assistant", "content": "yo"}],
             "safety": 1.0, "wit": 0.25, "id": "a"}]
    path = _write(tmp_path / "any.jsonl", rows)
    data = load_attributes(path)
    assert data.names == ("safety", "wit") and data.examples[0].conversational
    assert load_attributes(path, attributes=["wit"]).labels().tolist() == [[0.25]]


def test_a_record_without_any_rating_is_counted_not_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", [{"prompt": "p", "response": "r", "a": 1}, {"prompt": "p", "response": "s",
                                                                                   "a": None}])
    data = load_attributes(path)
    assert len(data.examples) == 1 and data.unrated == 1


@pytest.mark.parametrize(("row", "where"), [
    ({"prompt": "p", "response": "r", "helpfulness": "high"}, "a.jsonl:2: field 'helpfulness': expected a number"),
    ({"prompt": "p", "response": "r", "helpfulness": True}, "a.jsonl:2: field 'helpfulness': expected a number"),
    ({"prompt": "p", "response": "  ", "helpfulness": 1}, "a.jsonl:2: field 'response': is empty"),
    ({"prompt": "p", "response": [{"role": "user", "content": "x"}], "helpfulness": 1},
     "a.jsonl:2: field 'response[0].role'"),
    ({"prompt": "p", "chosen": "a", "rejected": "b"}, "a.jsonl:2: field 'response': missing"),
])
def test_bad_rated_rows_name_file_line_and_field(tmp_path: Path, row: dict, where: str) -> None:
    path = _write(tmp_path / "a.jsonl", [helpsteer_row("p", "ok"), row])
    with pytest.raises(DataValidationError) as e:
        load_attributes(path)
    assert isinstance(e.value, InputError)
    assert str(tmp_path / where) in str(e.value)
    kept = load_attributes(path, skip_invalid=True)
    assert len(kept.examples) == 1 and kept.n_errors == 1


def test_bad_ultrafeedback_rating_names_the_completion_and_aspect(tmp_path: Path) -> None:
    row = ultrafeedback_row("q")
    row["completions"][1]["annotations"]["honesty"]["Rating"] = "five"
    path = _write(tmp_path / "uf.jsonl", [row])
    with pytest.raises(DataValidationError, match=r"uf.jsonl:1: field 'completions\[1\].annotations.honesty.Rating'"):
        load_attributes(path)


def test_an_attribute_no_record_has_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", [helpsteer_row("p", "r")])
    with pytest.raises(DataError, match=r"no record has attribute.*'helpfulnes'"):
        load_attributes(path, attributes=["helpfulnes"])


def test_a_preference_file_is_not_an_attribute_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert not is_attribute_file(path)


def test_data_check_reports_attribute_files(tmp_path: Path, minilm_tokenizer: object) -> None:
    from rewardkit.data.chat import PairEncoder
    from rewardkit.data.check import check_file

    row = ultrafeedback_row("q")
    row["completions"][0]["annotations"]["honesty"]["Rating"] = "five"
    path = _write(tmp_path / "uf.jsonl", [ultrafeedback_row("Write a haiku."), row])
    report = check_file(str(path), encoder=PairEncoder(minilm_tokenizer, "text_pair", 64), tokenizer="minilm")
    d = report.to_dict()
    assert not report.ok and d["records"] == 2 and d["invalid"] == 1
    assert d["formats"] == {"attributes-ultrafeedback": 3}  # 2 + 1 valid completions
    assert "uf.jsonl:2: field 'completions[0].annotations.honesty.Rating'" in d["errors"][0]
    assert d["token_lengths"]["sequences"] == 3 and d["truncation"]["sequences"] == 3
