"""Every bad input is reported with its exact place (file:line or row) and field, all at once, never silently;
the CLI turns them into exit code 2 with an ``error:`` line and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.data.dataset import MAX_LISTED_ERRORS, load_examples, scan
from rewardkit.data.formats import DataError, DataValidationError, iter_records

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

GOOD = {"prompt": "What colour is the sky?", "chosen": "Blue.", "rejected": "Green."}
GOOD_2 = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
          "rejected": [{"role": "assistant", "content": "Go away."}]}
HH_OK = "\n\nHuman: Name a fruit.\n\nAssistant: An apple."


def msgs(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": r, "content": c} for r, c in pairs]


# (id, line 2 of the file, field, message). Lines 1 and 3 are valid.
BAD_LINES: list[tuple[str, Any, str | None, str]] = [
    ("cut-off-json", '{"chosen": "a", ', None, "bad JSON: Expecting property name enclosed in double quotes at column 17"),
    ("missing-comma", '{"chosen": "a" "rejected": "b"}', None, "bad JSON: Expecting ',' delimiter at column 16"),
    ("not-json", "chosen=a", None, "bad JSON: Expecting value at column 1"),
    ("array-line", "[1, 2]", None, "expected a JSON object, got list"),
    ("string-line", '"just text"', None, "expected a JSON object, got str"),
    ("number-line", "3", None, "expected a JSON object, got int"),
    ("non-utf8", b'{"chosen": "caf\xe9", "rejected": "b"}', None, "not valid UTF-8 (byte 15: b'\\xe9')"),
    ("missing-chosen", {"prompt": "q", "rejected": "b"}, "chosen",
     "missing (a preference row needs 'chosen' and 'rejected')"),
    ("missing-rejected", {"prompt": "q", "chosen": "a"}, "rejected",
     "missing (a preference row needs 'chosen' and 'rejected')"),
    ("empty-chosen", {"prompt": "q", "chosen": "", "rejected": "b"}, "chosen", "is empty"),
    ("whitespace-rejected", {"prompt": "q", "chosen": "a", "rejected": " \n\t "}, "rejected", "is empty"),
    ("empty-implicit-chosen", {"chosen": "", "rejected": "b"}, "chosen", "is empty"),
    ("chosen-not-string", {"prompt": "q", "chosen": 1, "rejected": "b"}, "chosen", "expected a string, got int"),
    ("prompt-not-string", {"prompt": 5, "chosen": "a", "rejected": "b"}, "prompt", "expected a string, got int"),
    ("identical-explicit", {"prompt": "q", "chosen": "same", "rejected": "same"}, "rejected",
     "is identical to 'chosen' (the pair carries no preference)"),
    ("identical-implicit", {"chosen": "The sky is blue.", "rejected": "The sky is blue."}, "rejected",
     "is identical to 'chosen' (the pair carries no preference)"),
    ("identical-conversational", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")),
                                  "rejected": msgs(("assistant", "a"))}, "rejected",
     "is identical to 'chosen' (the pair carries no preference)"),
    ("identical-dialogues", {"chosen": msgs(("user", "q"), ("assistant", "a")),
                             "rejected": msgs(("user", "q"), ("assistant", "a"))}, "rejected",
     "is identical to 'chosen' (the pair carries no preference)"),
    ("identical-hh", {"chosen": HH_OK, "rejected": HH_OK}, "rejected",
     "is identical to 'chosen' (the pair carries no preference)"),
    ("unknown-role", {"prompt": msgs(("user", "q")), "chosen": msgs(("bot", "a")),
                      "rejected": msgs(("assistant", "b"))}, "chosen[0].role",
     "unknown role 'bot' (expected one of ['assistant', 'system', 'tool', 'user'])"),
    ("unknown-role-in-prompt", {"prompt": msgs(("system", "s"), ("human", "q")), "chosen": msgs(("assistant", "a")),
                                "rejected": msgs(("assistant", "b"))}, "prompt[1].role",
     "unknown role 'human' (expected one of ['assistant', 'system', 'tool', 'user'])"),
    ("message-missing-content", {"prompt": msgs(("user", "q")), "chosen": [{"role": "assistant"}],
                                 "rejected": msgs(("assistant", "b"))}, "chosen[0]",
     "a message must be an object with 'role' and 'content'"),
    ("message-not-object", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")),
                            "rejected": ["b"]}, "rejected[0]", "a message must be an object with 'role' and 'content'"),
    ("content-not-string", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")),
                            "rejected": msgs(("assistant", ["b"]))}, "rejected[0].content", "expected a string, got list"),
    ("content-null", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", None)),
                      "rejected": msgs(("assistant", "b"))}, "chosen[0].content", "expected a string, got NoneType"),
    ("conversational-rejected-is-text", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")),
                                         "rejected": "b"}, "rejected", "expected a list of messages, got str"),
    ("empty-message-list", {"prompt": msgs(("user", "q")), "chosen": [], "rejected": msgs(("assistant", "b"))},
     "chosen", "is empty"),
    ("blank-assistant-turn", {"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")),
                              "rejected": msgs(("assistant", "  "))}, "rejected", "is empty"),
    ("margin-string", {**GOOD, "margin": "1.5"}, "margin", "expected a finite number, got '1.5'"),
    ("margin-nan", '{"prompt": "q", "chosen": "a", "rejected": "b", "margin": NaN}', "margin",
     "expected a finite number, got nan"),
    ("margin-infinity", '{"prompt": "q", "chosen": "a", "rejected": "b", "margin": -Infinity}', "margin",
     "expected a finite number, got -inf"),
    ("margin-bool", {**GOOD, "margin": True}, "margin", "expected a finite number, got True"),
    ("margin-list", {**GOOD, "margin": [1]}, "margin", "expected a finite number, got [1]"),
    ("hh-rejected-not-starting-with-human", {"chosen": HH_OK, "rejected": "\n\nAssistant: A hammer."}, "rejected",
     "HH-RLHF transcript must start with '\\n\\nHuman:'"),
    ("hh-ending-on-human", {"chosen": HH_OK + "\n\nHuman: And another?", "rejected": HH_OK.replace("apple", "axe")},
     "chosen", "HH-RLHF transcript must end with an Assistant turn"),
    ("hh-empty-last-turn", {"chosen": "\n\nHuman: q\n\nAssistant:", "rejected": "\n\nHuman: q\n\nAssistant: b"},
     "chosen", "is empty"),
    ("completion-empty", {"prompt": "q", "completion": " "}, "completion", "is empty"),
]


def _file(write_jsonl: Any, bad: Any) -> Path:
    return write_jsonl([GOOD, bad, GOOD_2])


@pytest.mark.parametrize(("bad", "field", "message"), [b[1:] for b in BAD_LINES], ids=[b[0] for b in BAD_LINES])
def test_bad_line_is_reported_with_line_and_field(write_jsonl: Any, bad: Any, field: str | None,
                                                  message: str) -> None:
    path = _file(write_jsonl, bad)
    result = scan(path)
    assert (result.n_records, result.n_errors, result.formats) == (3, 1, {"trl-explicit": 1, "trl-conversational": 1})
    [err] = result.errors
    assert isinstance(err, DataError)
    assert (str(err.location), err.field, err.message) == (f"{path}:2", field, message)
    where = f"{path}:2: field '{field}'" if field else f"{path}:2"
    assert str(err) == f"{where}: {message}"


def test_all_errors_are_collected_in_one_pass(write_jsonl: Any) -> None:
    """A bad JSON line does not hide the lines after it: every bad record is listed, with its line."""
    rows = [GOOD, '{"chosen": ', GOOD_2, {"prompt": "q", "chosen": "", "rejected": "b"}, "[]", GOOD,
            {**GOOD, "margin": "x"}]
    path = write_jsonl(rows)
    result = scan(path)
    assert (result.n_records, result.n_errors) == (7, 4)
    assert [(str(e.location), e.field) for e in result.errors] == [
        (f"{path}:2", None), (f"{path}:4", "chosen"), (f"{path}:5", None), (f"{path}:7", "margin")]

    with pytest.raises(DataValidationError) as info:
        load_examples(path)
    e = info.value
    assert (e.path, e.n_errors) == (str(path), 4)
    assert e.errors == [str(x) for x in result.errors]
    text = str(e)
    assert text.startswith(f"4 invalid record(s) in {path}:\n")
    for err in result.errors:
        assert f"\n  {err}\n" in text
    assert "--skip-invalid" in text


def test_skip_invalid_loads_the_rest_and_counts_and_lists_what_it_left_out(write_jsonl: Any) -> None:
    rows = [GOOD, '{"chosen": ', GOOD_2, {"prompt": "q", "chosen": "", "rejected": "b"}]
    path = write_jsonl(rows)
    loaded = load_examples(path, skip_invalid=True)
    assert (loaded.n_records, loaded.n_errors, len(loaded.dataset)) == (4, 2, 2)
    assert loaded.errors == [
        f"{path}:2: bad JSON: Expecting value at column 12",
        f"{path}:4: field 'chosen': is empty",
    ]
    assert type(loaded.errors) is list  # it is written into rewardkit.json: a list, not a datasets Column
    assert [r["location"] for r in loaded.dataset] == [f"{path}:1", f"{path}:3"]
    assert "error" not in loaded.dataset.column_names
    assert json.loads(json.dumps(loaded.to_dict())) == {"records": 4, "skipped_invalid": 2, "invalid": loaded.errors}


def test_many_errors_list_the_first_and_count_all(write_jsonl: Any) -> None:
    n_bad = MAX_LISTED_ERRORS + 5
    path = write_jsonl([GOOD] + [{"prompt": "q", "chosen": "a", "rejected": "a"}] * n_bad)
    with pytest.raises(DataValidationError) as info:
        load_examples(path)
    assert info.value.n_errors == n_bad
    assert len(info.value.errors) == MAX_LISTED_ERRORS
    assert info.value.errors[0] == f"{path}:2: field 'rejected': is identical to 'chosen' (the pair carries no preference)"
    assert f"... and 5 more (run `rewardkit data check {path}`)" in str(info.value)
    result = scan(path)
    assert (result.n_errors, len(result.errors)) == (n_bad, MAX_LISTED_ERRORS)


def test_completion_rows_are_errors_where_pairs_are_needed(write_jsonl: Any) -> None:
    path = write_jsonl([GOOD, {"prompt": "q", "completion": "c"}])
    with pytest.raises(DataValidationError) as info:
        load_examples(path, kind="preference")
    assert info.value.errors == [
        f"{path}:2: field 'chosen': missing (this command needs preference pairs, got a prompt/completion row)"]
    loaded = load_examples(path, kind="completion", skip_invalid=True)
    assert loaded.errors == [f"{path}:1: field 'completion': missing (expected prompt/completion rows)"]
    assert len(loaded.dataset) == 1


def test_json_file_that_is_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps(GOOD))
    [(_, err)] = list(iter_records(path))
    assert isinstance(err, DataError)
    assert str(err) == f"{path}:1: a .json file must hold a list of records (use .jsonl for one per line)"
    result = scan(path)
    assert (result.n_records, result.n_errors) == (1, 1)


def test_json_list_with_a_non_object_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps([GOOD, "oops", {"prompt": "q", "chosen": "a"}]))
    result = scan(path)
    assert [str(e) for e in result.errors] == [
        f"{path}: row 1: expected a JSON object, got str",
        f"{path}: row 2: field 'rejected': missing (a preference row needs 'chosen' and 'rejected')",
    ]


def test_broken_json_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_text('[\n  {"chosen": "a", "rejected": "b"},\n  {"chosen": "a" "rejected": "b"}\n]\n')
    [(_, err)] = list(iter_records(path))
    assert str(err) == f"{path}:3: bad JSON: Expecting ',' delimiter at column 18"


def test_non_utf8_json_file(tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_bytes(b'[{"chosen": "caf\xe9", "rejected": "b"}]')
    [(_, err)] = list(iter_records(path))
    assert str(err) == f"{path}:1: not valid UTF-8 (byte offset 16)"


def test_gzipped_jsonl_errors_name_the_line(write_jsonl: Any) -> None:
    path = write_jsonl([GOOD, {"prompt": "q", "chosen": "a", "rejected": ""}], name="prefs.jsonl.gz")
    assert [str(e) for e in scan(path).errors] == [f"{path}:2: field 'rejected': is empty"]


def test_arrow_rows_name_their_row(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "prefs.parquet"
    datasets.Dataset.from_list([GOOD, {"prompt": "q", "chosen": "a", "rejected": "a"}]).to_parquet(str(path))
    assert [str(e) for e in scan(path).errors] == [
        f"{path}: row 1: field 'rejected': is identical to 'chosen' (the pair carries no preference)"]


# ----------------------------------------------------------------------------- CLI


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_cli_data_check_reports_each_bad_line(write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl([GOOD, {"prompt": "q", "chosen": "a", "rejected": " "}, GOOD_2, "{"])
    assert main(["data", "check", str(path), "--tokenizer", "none"]) == 2
    out, err = capsys.readouterr()
    assert f"{path}: 4 records, 2 valid, 2 invalid" in out
    assert "format trl-conversational: 1" in out
    assert f"  error: {path}:2: field 'rejected': is empty" in err.splitlines()
    assert f"  error: {path}:4: bad JSON: Expecting property name enclosed in double quotes at column 2" in err.splitlines()


def test_cli_data_check_json_report(write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl([GOOD, {**GOOD, "margin": True}])
    assert main(["data", "check", str(path), "--tokenizer", "none", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert (report["records"], report["valid"], report["invalid"]) == (2, 1, 1)
    assert report["errors"] == [f"{path}:2: field 'margin': expected a finite number, got True"]


def test_cli_data_check_valid_file_exits_0(write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl([GOOD, GOOD_2])
    assert main(["data", "check", str(path), "--tokenizer", "none"]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: 2 records, 2 valid, 0 invalid" in out
    assert err == ""


def test_cli_data_check_empty_file_is_not_ok(write_jsonl: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl([])
    assert main(["data", "check", str(path), "--tokenizer", "none"]) == 2
    assert _error_lines(capsys.readouterr().err) == [f"error: {path}: no records"]


def test_cli_data_convert_bad_input_writes_nothing(tmp_path: Path, write_jsonl: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl([GOOD, {"prompt": "q", "chosen": "a", "rejected": "a"}, GOOD_2])
    out = tmp_path / "out" / "canonical.jsonl"
    assert main(["data", "convert", str(path), str(out)]) == 2
    err = capsys.readouterr().err
    assert _error_lines(err) == [f"error: 1 invalid record(s) in {path}:"]
    assert f"  {path}:2: field 'rejected': is identical to 'chosen' (the pair carries no preference)" in err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_cli_data_convert_error_only_suggests_flags_it_accepts(tmp_path: Path, write_jsonl: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The validation error ends with "or pass --skip-invalid"; ``data convert`` must then accept it."""
    from rewardkit.cli import build_parser

    path = write_jsonl([GOOD, {"prompt": "q", "chosen": "a", "rejected": "a"}])
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", str(path), str(out)]) == 2
    if "--skip-invalid" in capsys.readouterr().err:
        try:
            args = build_parser().parse_args(["data", "convert", str(path), str(out), "--skip-invalid"])
        except SystemExit:
            pytest.fail("the error tells the user to pass --skip-invalid, which `data convert` does not accept")
        assert args.skip_invalid is True


def test_cli_data_check_dataset_dict_folder_names_the_split(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import datasets

    path = tmp_path / "dd"
    ds = datasets.Dataset.from_list([GOOD])
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(path))
    assert main(["data", "check", str(path), "--tokenizer", "none"]) == 2
    assert _error_lines(capsys.readouterr().err) == [
        f"error: {path}: a DatasetDict with splits ['train', 'test']; pass the split folder, e.g. {path}/train"]


@pytest.mark.parametrize("command", [["data", "check", "{p}", "--tokenizer", "none"],
                                     ["data", "convert", "{p}", "{d}/out.jsonl"]])
def test_cli_missing_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            command: list[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    argv = [a.format(p=missing, d=tmp_path) for a in command]
    assert main(argv) == 2
    assert _error_lines(capsys.readouterr().err) == [f"error: {missing}: no such file or folder"]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Replace reward-model construction in ``train rm`` so no weights are ever loaded; records each call."""
    from accelerate.state import AcceleratorState

    import rewardkit.train.reward as reward

    built: list[str] = []

    def fake_build(name: str, **kwargs: Any) -> Any:
        built.append(name)
        raise ValueError("fake: a reward model was built")

    monkeypatch.setattr(reward, "build_reward_model", fake_build)
    yield built
    AcceleratorState._reset_state(reset_partial_state=True)  # leave no process-wide accelerate state behind


def test_cli_train_rm_bad_data_exits_2_before_any_model_is_built(
    tmp_path: Path, write_jsonl: Any, capsys: pytest.CaptureFixture[str], no_model_loading: list[str]
) -> None:
    """Validation comes first: a bad file must not wait for (possibly minutes of) model loading."""
    path = write_jsonl([GOOD, {"prompt": "q", "chosen": "", "rejected": "b"}])
    out = tmp_path / "run"
    rc = main(["train", "rm", "--data", str(path), "--out", str(out), "--precision", "fp32"])
    err = capsys.readouterr().err
    assert f"{path}:2: field 'chosen': is empty" in err
    assert no_model_loading == []
    assert rc == 2
    assert not out.exists()


def test_cli_train_rm_unknown_setting_exits_2_naming_it(
    tmp_path: Path, write_jsonl: Any, capsys: pytest.CaptureFixture[str], no_model_loading: list[str]
) -> None:
    path = write_jsonl([GOOD])
    rc = main(["train", "rm", "--data", str(path), "--out", str(tmp_path / "run"), "--set", "nosuchkey=1"])
    err = capsys.readouterr().err
    assert rc == 2
    [line] = err.splitlines()
    assert line.startswith("error: --set nosuchkey: unknown setting; known: [")
    assert no_model_loading == []


def test_cli_train_rm_without_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           no_model_loading: list[str]) -> None:
    assert main(["train", "rm", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: --data is required (or set `data:` in --config)"]
    assert no_model_loading == []
