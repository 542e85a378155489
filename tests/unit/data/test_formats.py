"""Every supported row format and file type parses to the expected canonical example."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from rewardkit.data.dataset import iter_examples, load_examples, scan
from rewardkit.data.formats import (
    CompletionExample,
    DataError,
    Location,
    PreferenceExample,
    detect_format,
    iter_records,
    parse_record,
    to_canonical,
)

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

LOC = Location("prefs.jsonl", line=1)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def parse(record: dict[str, Any]) -> PreferenceExample:
    ex = parse_record(record, LOC)
    assert isinstance(ex, PreferenceExample)
    return ex


# ----------------------------------------------------------------------------- row formats


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}, "trl-explicit"),
        ({"chosen": "The sky is blue.", "rejected": "The sky is green."}, "trl-implicit"),
        ({"chosen": [user("q"), assistant("a")], "rejected": [user("q"), assistant("b")]}, "trl-conversational"),
        ({"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")]}, "trl-conversational"),
        ({"chosen": "\n\nHuman: hi\n\nAssistant: yo", "rejected": "\n\nHuman: hi\n\nAssistant: no"}, "hh-rlhf"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "subset": "chat", "id": 1}, "rewardbench"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "chosen_model": "m1"}, "rewardbench"),
        ({"prompt": "q", "completion": "a"}, "completion"),
        # a null prompt column (parquet files with a mix of rows) means "no prompt"
        ({"prompt": None, "chosen": "The sky is blue.", "rejected": "The sky is green."}, "trl-implicit"),
    ],
)
def test_detect_format(record: dict[str, Any], expected: str) -> None:
    assert detect_format(record) == expected


def test_detect_format_names_the_missing_key() -> None:
    with pytest.raises(KeyError) as info:
        detect_format({"chosen": "a"})
    assert info.value.args == ("rejected",)


def test_trl_explicit() -> None:
    ex = parse({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert ex == PreferenceExample(
        prompt=(user("The sky is"),), chosen=(assistant(" blue."),), rejected=(assistant(" green."),),
        conversational=False, format="trl-explicit", margin=None, extras={},
    )


def test_trl_explicit_empty_prompt_is_allowed() -> None:
    ex = parse({"prompt": "", "chosen": "a", "rejected": "b"})
    assert ex.prompt == (user(""),)


@pytest.mark.parametrize(
    ("chosen", "rejected", "prompt", "chosen_rest", "rejected_rest"),
    [
        # the shared prefix ends on a space: that is the prompt
        ("The sky is blue.", "The sky is green.", "The sky is ", "blue.", "green."),
        # shared "The sky is b" is backed off to the last whitespace, so no word is split
        ("The sky is blue", "The sky is black", "The sky is ", "blue", "black"),
        # a newline is whitespace too
        ("Q: colour?\nA: red", "Q: colour?\nA: rose", "Q: colour?\nA: ", "red", "rose"),
        # one text a prefix of the other: backed off to whitespace, so neither response is empty
        ("Hello", "Hello world", "", "Hello", "Hello world"),
        ("The sky is blue.", "The sky is blue. Really.", "The sky is ", "blue.", "blue. Really."),
    ],
)
def test_trl_implicit_prompt_is_shared_prefix_backed_off_to_whitespace(
    chosen: str, rejected: str, prompt: str, chosen_rest: str, rejected_rest: str
) -> None:
    ex = parse({"chosen": chosen, "rejected": rejected})
    assert ex.format == "trl-implicit"
    assert ex.conversational is False
    assert ex.prompt == ((user(prompt),) if prompt else ())
    assert ex.chosen == (assistant(chosen_rest),)
    assert ex.rejected == (assistant(rejected_rest),)


def test_trl_implicit_without_shared_prefix_has_no_prompt() -> None:
    ex = parse({"chosen": "abc", "rejected": "abd"})  # shares "ab", no whitespace to back off to
    assert ex.prompt == ()
    assert ex.chosen == (assistant("abc"),)
    assert ex.rejected == (assistant("abd"),)


def test_conversational_with_prompt() -> None:
    ex = parse({"prompt": [system("Be brief."), user("Sky colour?")],
                "chosen": [assistant("Blue.")], "rejected": [assistant("Green.")]})
    assert ex == PreferenceExample(
        prompt=(system("Be brief."), user("Sky colour?")), chosen=(assistant("Blue."),),
        rejected=(assistant("Green."),), conversational=True, format="trl-conversational",
    )


def test_conversational_without_prompt_splits_the_shared_turns() -> None:
    turns = [system("s"), user("q1"), assistant("a1"), user("q2")]
    ex = parse({"chosen": [*turns, assistant("good")], "rejected": [*turns, assistant("bad")]})
    assert ex.prompt == tuple(turns)
    assert ex.chosen == (assistant("good"),)
    assert ex.rejected == (assistant("bad"),)
    assert ex.conversational is True
    assert ex.format == "trl-conversational"


def test_conversational_responses_may_be_several_assistant_turns() -> None:
    ex = parse({"chosen": [user("q"), assistant("a"), assistant("and more")],
                "rejected": [user("q"), assistant("b")]})
    assert ex.prompt == (user("q"),)
    assert ex.chosen == (assistant("a"), assistant("and more"))
    assert ex.rejected == (assistant("b"),)


def test_conversational_diverging_before_a_user_turn_is_refused() -> None:
    """Dialogues that differ before their last user turn would make a "response" of user text (the reward
    model would be trained on what the user said): refused, naming the turn as the input numbers it."""
    with pytest.raises(DataError) as info:
        parse({"chosen": [user("q"), assistant("a"), user("more"), assistant("x")],
               "rejected": [user("q"), assistant("b")]})
    assert (info.value.field, info.value.message) == (
        "chosen[2].role", "a response must be assistant turns only, got 'user' (user turns belong in the prompt)")


def test_conversational_drops_extra_message_keys() -> None:
    ex = parse({"prompt": [{"role": "user", "content": "q", "language": "en"}],
                "chosen": [assistant("a")], "rejected": [assistant("b")]})
    assert ex.prompt == (user("q"),)


def test_hh_rlhf_single_turn() -> None:
    ex = parse({"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4.",
                "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5."})
    assert ex == PreferenceExample(
        prompt=(user("What is 2+2?"),), chosen=(assistant("4."),), rejected=(assistant("5."),),
        conversational=True, format="hh-rlhf",
    )


def test_hh_rlhf_multi_turn_shared_prefix_is_the_prompt() -> None:
    shared = "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?\n\nHuman: Name a fruit."
    ex = parse({"chosen": shared + "\n\nAssistant: An apple.", "rejected": shared + "\n\nAssistant: A hammer."})
    assert ex.format == "hh-rlhf"
    assert ex.prompt == (user("Hi there."), assistant("Hello! How can I help?"), user("Name a fruit."))
    assert ex.chosen == (assistant("An apple."),)
    assert ex.rejected == (assistant("A hammer."),)


def test_hh_rlhf_without_leading_newlines() -> None:
    ex = parse({"chosen": "Human: hi\n\nAssistant: yo", "rejected": "Human: hi\n\nAssistant: no"})
    assert ex.format == "hh-rlhf"
    assert ex.prompt == (user("hi"),)
    assert ex.chosen == (assistant("yo"),)


def test_hh_rlhf_multiline_turn_content_is_kept() -> None:
    ex = parse({"chosen": "\n\nHuman: list:\n- a\n- b\n\nAssistant: ok\nsure",
                "rejected": "\n\nHuman: list:\n- a\n- b\n\nAssistant: no"})
    assert ex.prompt == (user("list:\n- a\n- b"),)
    assert ex.chosen == (assistant("ok\nsure"),)


def test_rewardbench_row_is_a_chat_turn_and_keeps_its_columns() -> None:
    row = {"prompt": "Write a haiku.", "chosen": "Leaves fall...", "rejected": "No.",
           "chosen_model": "gpt-4", "rejected_model": "llama", "subset": "alpacaeval-easy", "id": 17}
    ex = parse(row)
    assert ex == PreferenceExample(
        prompt=(user("Write a haiku."),), chosen=(assistant("Leaves fall..."),), rejected=(assistant("No."),),
        conversational=True, format="rewardbench", margin=None,
        extras={"chosen_model": "gpt-4", "rejected_model": "llama", "subset": "alpacaeval-easy", "id": 17},
    )


def test_completion_rows() -> None:
    ex = parse_record({"prompt": "q", "completion": "a", "id": "c1"}, LOC)
    assert ex == CompletionExample(prompt=(user("q"),), completion=(assistant("a"),), conversational=False,
                                   extras={"id": "c1"})
    conv = parse_record({"prompt": [user("q")], "completion": [assistant("a")]}, LOC)
    assert conv == CompletionExample(prompt=(user("q"),), completion=(assistant("a"),), conversational=True)
    bare = parse_record({"completion": "a"}, LOC)
    assert isinstance(bare, CompletionExample)
    assert bare.prompt == ()


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.25, 0.25), (-2, -2.0), (None, None)])
def test_margin(value: Any, expected: float | None) -> None:
    ex = parse({"prompt": "q", "chosen": "a", "rejected": "b", "margin": value})
    assert ex.margin == expected
    assert type(ex.margin) is type(expected)
    assert "margin" not in ex.extras


def test_margin_on_conversational_and_hh_rows() -> None:
    conv = parse({"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")], "margin": 3})
    hh = parse({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b",
                "margin": 0.5})
    assert (conv.margin, hh.margin) == (3.0, 0.5)


def test_extras_are_kept_and_pair_keys_are_not() -> None:
    ex = parse({"prompt": "q", "chosen": "a", "rejected": "b", "margin": 1.0, "id": 9,
                "source": {"name": "x", "tags": [1, 2]}, "chat_template_kwargs": {"enable_thinking": False}})
    assert ex.extras == {"id": 9, "source": {"name": "x", "tags": [1, 2]},
                         "chat_template_kwargs": {"enable_thinking": False}}


# ----------------------------------------------------------------------------- canonical form


ROUND_TRIP_RECORDS = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 2.0, "id": 1},
    {"chosen": "The sky is blue.", "rejected": "The sky is green."},
    {"chosen": "abc", "rejected": "xyz"},  # implicit, no shared prefix: the prompt stays empty
    {"chosen": [user("q"), assistant("a")], "rejected": [user("q"), assistant("b")]},
    {"prompt": [], "chosen": [assistant("a")], "rejected": [assistant("b")]},
    {"prompt": [system("s"), user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")], "tag": "t"},
    {"chosen": "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: fruit?\n\nAssistant: apple",
     "rejected": "\n\nHuman: hi\n\nAssistant: yo\n\nHuman: fruit?\n\nAssistant: hammer", "margin": 1},
    {"prompt": "q", "chosen": "a", "rejected": "b", "subset": "math-prm", "id": 3, "chosen_model": "m"},
    {"prompt": "q", "completion": "a", "id": 4},
    {"completion": "just text"},
    {"prompt": [user("q")], "completion": [assistant("a")]},
]


def _content(ex: PreferenceExample | CompletionExample) -> tuple[Any, ...]:
    """Everything but the detected format name (a canonical row is TRL, whatever the input was)."""
    if isinstance(ex, CompletionExample):
        return ex.prompt, ex.completion, ex.conversational, dict(ex.extras)
    return ex.prompt, ex.chosen, ex.rejected, ex.conversational, ex.margin, dict(ex.extras)


@pytest.mark.parametrize("record", ROUND_TRIP_RECORDS, ids=lambda r: ",".join(r))
def test_to_canonical_round_trip(record: dict[str, Any]) -> None:
    first = parse_record(record, LOC)
    canonical = to_canonical(first)
    again = parse_record(json.loads(json.dumps(canonical)), LOC)
    assert _content(again) == _content(first)
    assert to_canonical(again) == canonical


def test_to_canonical_shapes() -> None:
    plain = to_canonical(parse({"chosen": "The sky is blue.", "rejected": "The sky is green.", "margin": 1, "k": 2}))
    assert plain == {"prompt": "The sky is ", "chosen": "blue.", "rejected": "green.", "margin": 1.0, "k": 2}
    hh = to_canonical(parse({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"}))
    assert hh == {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")]}
    rb = to_canonical(parse({"prompt": "q", "chosen": "a", "rejected": "b", "subset": "s"}))
    assert rb == {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")], "subset": "s"}
    assert to_canonical(parse_record({"prompt": "q", "completion": "a"}, LOC)) == {"prompt": "q", "completion": "a"}


# ----------------------------------------------------------------------------- file types


ROWS = [
    {"prompt": "q1", "chosen": "a1", "rejected": "b1", "margin": 0.5, "id": "r0"},
    {"prompt": [user("q2")], "chosen": [assistant("a2")], "rejected": [assistant("b2")], "id": "r1"},
    {"prompt": "q3", "chosen": "a3", "rejected": "b3", "id": "r2"},
]
EXPECTED = [
    PreferenceExample((user("q1"),), (assistant("a1"),), (assistant("b1"),), False, "trl-explicit", 0.5, {"id": "r0"}),
    PreferenceExample((user("q2"),), (assistant("a2"),), (assistant("b2"),), True, "trl-conversational", None,
                      {"id": "r1"}),
    PreferenceExample((user("q3"),), (assistant("a3"),), (assistant("b3"),), False, "trl-explicit", None,
                      {"id": "r2"}),
]


def _jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def _jsonl_gz(path: Path) -> Path:
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    return path


def _json(path: Path) -> Path:
    path.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    return path


def _json_gz(path: Path) -> Path:
    path.write_bytes(gzip.compress(json.dumps(ROWS).encode()))
    return path


def _arrow_rows() -> list[dict[str, Any]]:
    # Arrow needs one type per column: every row is conversational here (the mixed rows are in jsonl).
    return [{"prompt": [user(f"q{i}")], "chosen": [assistant(f"a{i}")], "rejected": [assistant(f"b{i}")],
             "margin": 0.5 if i == 0 else None, "id": f"r{i}"} for i in range(3)]


ARROW_EXPECTED = [
    PreferenceExample((user(f"q{i}"),), (assistant(f"a{i}"),), (assistant(f"b{i}"),), True, "trl-conversational",
                      0.5 if i == 0 else None, {"id": f"r{i}"})
    for i in range(3)
]


def _parquet(path: Path) -> Path:
    datasets.Dataset.from_list(_arrow_rows()).to_parquet(str(path))
    return path


def _disk(path: Path) -> Path:
    datasets.Dataset.from_list(_arrow_rows()).save_to_disk(str(path))
    return path


def _disk_dict_one_split(path: Path) -> Path:
    datasets.DatasetDict({"train": datasets.Dataset.from_list(_arrow_rows())}).save_to_disk(str(path))
    return path


@pytest.mark.parametrize(
    ("name", "make", "expected", "locations"),
    [
        ("p.jsonl", _jsonl, EXPECTED, ["{p}:1", "{p}:2", "{p}:3"]),
        ("p.jsonl.gz", _jsonl_gz, EXPECTED, ["{p}:1", "{p}:2", "{p}:3"]),
        ("P.JSONL", _jsonl, EXPECTED, ["{p}:1", "{p}:2", "{p}:3"]),
        ("p.json", _json, EXPECTED, ["{p}: row 0", "{p}: row 1", "{p}: row 2"]),
        ("p.json.gz", _json_gz, EXPECTED, ["{p}: row 0", "{p}: row 1", "{p}: row 2"]),
        ("p.parquet", _parquet, ARROW_EXPECTED, ["{p}: row 0", "{p}: row 1", "{p}: row 2"]),
        ("saved", _disk, ARROW_EXPECTED, ["{p}: row 0", "{p}: row 1", "{p}: row 2"]),
        ("saved_dict", _disk_dict_one_split, ARROW_EXPECTED, ["{p}: row 0", "{p}: row 1", "{p}: row 2"]),
    ],
)
def test_file_types(tmp_path: Path, name: str, make: Any, expected: list[PreferenceExample],
                    locations: list[str]) -> None:
    path = make(tmp_path / name)
    parsed = list(iter_examples(path))
    assert [str(loc) for loc, _ in parsed] == [s.format(p=path) for s in locations]
    assert [ex for _, ex in parsed] == expected
    assert scan(path).formats == {f: sum(e.format == f for e in expected) for f in {e.format for e in expected}}

    loaded = load_examples(path)
    assert (loaded.n_records, loaded.n_errors, loaded.errors) == (3, 0, [])
    rows = loaded.dataset.to_list()
    assert [r["location"] for r in rows] == [s.format(p=path) for s in locations]
    for row, ex in zip(rows, expected, strict=True):
        assert row["prompt"] == list(ex.prompt)
        assert row["chosen"] == list(ex.chosen)
        assert row["rejected"] == list(ex.rejected)
        assert row["conversational"] == ex.conversational
        assert row["margin"] == ex.margin
        assert row["format"] == ex.format
        assert json.loads(row["extras"]) == dict(ex.extras)


def test_jsonl_line_numbers_count_blank_lines(write_jsonl: Any) -> None:
    path = write_jsonl(["", ROWS[0], "   ", ROWS[2]])
    assert [str(loc) for loc, _ in iter_records(path)] == [f"{path}:2", f"{path}:4"]


def test_load_examples_keeps_completion_rows_for_kind_any(write_jsonl: Any) -> None:
    path = write_jsonl([ROWS[0], {"prompt": "q", "completion": "c"}])
    rows = load_examples(path, kind="any").dataset.to_list()
    assert [r["format"] for r in rows] == ["trl-explicit", "completion"]
    assert rows[1]["chosen"] == [assistant("c")]
    assert rows[1]["rejected"] == []


def test_dataset_dict_with_two_splits_names_the_split_folder(tmp_path: Path) -> None:
    path = tmp_path / "dd"
    ds = datasets.Dataset.from_list(_arrow_rows())
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(path))
    with pytest.raises(ValueError, match="splits") as info:
        list(iter_records(path))
    assert f"pass the split folder, e.g. {path}/train" in str(info.value)
    assert "['train', 'test']" in str(info.value)


def test_load_examples_dataset_dict_with_two_splits_gives_our_error(tmp_path: Path) -> None:
    """The same clear error must come out of ``load_examples`` (what ``train rm`` calls), not datasets'
    generic ``DatasetGenerationError`` that the CLI does not turn into an exit-2 message."""
    path = tmp_path / "dd"
    ds = datasets.Dataset.from_list(_arrow_rows())
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(path))
    with pytest.raises(ValueError, match=f"pass the split folder, e.g. {path}/train"):
        load_examples(path)


def test_unsupported_file_type_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "prefs.csv"
    path.write_text("chosen,rejected\na,b\n")
    with pytest.raises(ValueError, match=r"prefs\.csv: unsupported file type"):
        list(iter_records(path))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file"):
        list(iter_records(path))
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file"):
        load_examples(path)


def test_location_and_error_text() -> None:
    assert str(Location("f.jsonl", line=3)) == "f.jsonl:3"
    assert str(Location("f.parquet", row=0)) == "f.parquet: row 0"
    err = DataError(Location("f.jsonl", line=3), "chosen", "is empty")
    assert str(err) == "f.jsonl:3: field 'chosen': is empty"
    assert (err.field, err.message) == ("chosen", "is empty")
    assert str(DataError(Location("f.jsonl", line=4), None, "bad JSON")) == "f.jsonl:4: bad JSON"
