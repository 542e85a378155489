"""Hostile inputs (issue 9's probe): each must end as an InputError whose message names the file (and the
line and field where there is one) -- the CLI's ``error: ...`` and exit 2 -- never a library traceback; and
nothing may be half-written or lost. Every hostile file is built here, under ``tmp_path``."""

from __future__ import annotations

import builtins
import gzip
import json
import os
from pathlib import Path
from typing import Any

import datasets
import pytest

from rewardkit.data.check import check_file
from rewardkit.data.convert import convert_file
from rewardkit.data.dataset import load_examples, scan
from rewardkit.data.formats import DataError, DataValidationError, iter_records, read_records
from rewardkit.errors import InputError, MissingInputError

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

GOOD = {"prompt": "What colour is the sky?", "chosen": "Blue.", "rejected": "Green."}
GOOD_LINE = json.dumps(GOOD)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """The per-record errors ``data check`` would list."""
    return [str(e) for e in scan(path).errors]


def assert_refused(path: Path, message: str) -> None:
    """Every loader refuses the file with an InputError carrying ``message`` (skip_invalid changes nothing:
    a file-level problem is not a record to skip)."""
    for call in (lambda: load_examples(path), lambda: load_examples(path, skip_invalid=True),
                 lambda: list(iter_records(path))):
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value) == message


def assert_convert_writes_nothing(src: Path, tmp_path: Path, message_part: str) -> None:
    out = tmp_path / "out" / "converted.jsonl"
    with pytest.raises(InputError) as info:
        convert_file(str(src), str(out))
    assert message_part in str(info.value)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


# ----------------------------------------------------------------------------- deep JSON


def test_jsonl_nested_10000_levels_is_one_skippable_record_error(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.jsonl", GOOD_LINE + "\n" + "[" * 10_000 + "]" * 10_000 + "\n" + GOOD_LINE + "\n")
    message = f"{path}:2: bad JSON: nested more than 100 levels deep"
    assert errors_of(path) == [message]
    with pytest.raises(DataValidationError) as info:
        load_examples(path)
    assert [str(e) for e in info.value.errors] == [message]
    loaded = load_examples(path, skip_invalid=True)
    assert (loaded.n_records, loaded.n_errors, loaded.errors, len(loaded.dataset)) == (3, 1, [message], 2)


def test_a_value_nested_150_levels_names_its_field(tmp_path: Path) -> None:
    """Deep enough to refuse, shallow enough for json to parse: the field is named, its path cut short."""
    record = GOOD_LINE[:-1] + ', "meta": ' + "[" * 150 + "]" * 150 + "}"
    path = write(tmp_path / "deep.jsonl", record + "\n")
    [error] = scan(path).errors
    assert error.message == "nested more than 100 levels deep"
    assert error.field == ("meta" + "[0]" * 150)[:80] + "..."  # the first 80 characters of the path
    assert str(error).startswith(f"{path}:1: field 'meta[0][0]")


def test_json_list_nested_10000_levels_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.json", "[" + "[" * 10_000 + "]" * 10_000 + "]")
    message = f"{path}:1: bad JSON: nested more than 100 levels deep"
    assert errors_of(path) == [message]
    with pytest.raises(DataValidationError) as info:
        load_examples(path, skip_invalid=True)  # the only "record" is the file: nothing valid is left
    assert str(info.value) == f"1 invalid record(s) in {path}:\n  {message}\n  no valid record is left to use"


# ----------------------------------------------------------------------------- huge integers


@pytest.mark.parametrize(("digits", "problem"), [
    (400, "expected a finite number, got an integer with 400 digits"),  # float() overflows
    (5000, "an integer with 5000 digits is too long to read (at most 4300)"),  # beyond Python's int-string limit
])
def test_a_margin_with_hundreds_of_digits_names_file_line_and_field(tmp_path: Path, digits: int,
                                                                    problem: str) -> None:
    path = write(tmp_path / "m.jsonl", GOOD_LINE + "\n" + GOOD_LINE[:-1] + ', "margin": ' + "9" * digits + "}\n")
    message = f"{path}:2: field 'margin': {problem}"
    assert errors_of(path) == [message]
    with pytest.raises(DataValidationError) as info:
        load_examples(path)
    assert [str(e) for e in info.value.errors] == [message]
    assert len(load_examples(path, skip_invalid=True).dataset) == 1
    assert_convert_writes_nothing(path, tmp_path, message)


def test_a_huge_integer_in_another_field_names_that_field(tmp_path: Path) -> None:
    path = write(tmp_path / "m.jsonl", GOOD_LINE[:-1] + ', "meta": {"ids": [1, -' + "7" * 5000 + "]}}\n")
    assert errors_of(path) == [f"{path}:1: field 'meta.ids[1]': an integer with 5000 digits is too long to read "
                               "(at most 4300)"]


# ----------------------------------------------------------------------------- gzip


def test_a_truncated_gzip_names_the_file_and_the_line_where_it_broke(tmp_path: Path) -> None:
    data = gzip.compress(((GOOD_LINE + "\n") * 2000).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as info:
        list(iter_records(path))
    line = info.value.location.line
    assert line is not None and 1 < line < 2000
    assert_refused(path, f"{path}:{line}: the compressed data ends early (the .gz file is truncated)")
    assert_convert_writes_nothing(path, tmp_path, f"{path}:{line}: the compressed data ends early")


def test_a_plain_text_file_named_gz(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.jsonl.gz", GOOD_LINE + "\n")
    assert_refused(path, f"{path}: not gzip data, though the name ends in .gz (Not a gzipped file (b'{{\"'))")


def test_damaged_gzip_data(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(((GOOD_LINE + "\n") * 50).encode()))
    data[20:40] = bytes(20)  # zero a piece of the deflate stream
    path = tmp_path / "bad.json.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_examples(path)
    assert str(info.value).startswith(f"{path}: damaged gzip data (")


# ----------------------------------------------------------------------------- parquet and datasets folders


def test_a_zero_row_parquet_file_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    datasets.Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []}).to_parquet(str(path))
    for call in (lambda: load_examples(path), lambda: load_examples(path, skip_invalid=True),
                 lambda: check_file(str(path))):
        with pytest.raises(DataError) as info:
            call()
        assert str(info.value) == f"{path}: no records"
    assert_convert_writes_nothing(path, tmp_path, f"{path}: no records")


@pytest.mark.parametrize("content", [b"hello", b"PAR1" + b"x" * 100 + b"PAR1", GOOD_LINE.encode()])
def test_a_file_named_parquet_that_is_not_parquet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_examples(path)
    assert str(info.value).startswith(f"{path}: not a readable Parquet file (")
    assert_convert_writes_nothing(path, tmp_path, f"{path}: not a readable Parquet file")


def test_a_datasets_folder_with_a_truncated_arrow_shard(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    datasets.Dataset.from_list([GOOD] * 500).save_to_disk(str(folder))
    [shard] = folder.glob("*.arrow")
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DataError) as info:
        load_examples(folder)
    assert str(info.value).startswith(f"{folder}: damaged datasets folder (")
    assert_convert_writes_nothing(folder, tmp_path, f"{folder}: damaged datasets folder")


def test_a_folder_that_is_not_a_datasets_folder(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.jsonl").write_text(GOOD_LINE + "\n")
    assert_refused(folder, f"{folder}: not a folder written by datasets' save_to_disk "
                           "(no state.json or dataset_dict.json)")


# ----------------------------------------------------------------------------- permissions


def deny_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make opening ``path`` fail as a file without read permission does. (Tests run as root in CI, where
    ``chmod 000`` does not stop reads, so the kernel's answer is simulated at ``open``.)"""
    real_open = builtins.open

    def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)


@pytest.mark.parametrize("name", ["locked.jsonl", "locked.json.gz", "locked.parquet"])
def test_a_file_without_read_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = write(tmp_path / name, GOOD_LINE + "\n")
    deny_reading(monkeypatch, path)
    for call in (lambda: load_examples(path), lambda: list(iter_records(path)), lambda: scan(path),
                 lambda: read_records(path)):
        with pytest.raises(MissingInputError) as info:
            call()
        assert str(info.value) == f"{path}: cannot read: Permission denied"
    assert_convert_writes_nothing(path, tmp_path, f"{path}: cannot read: Permission denied")


def test_a_file_in_a_folder_without_search_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even asking whether the file exists is refused (simulated at ``stat``, as for ``open`` above)."""
    path = write(tmp_path / "data.jsonl", GOOD_LINE + "\n")
    real_stat = Path.stat

    def guarded(self: Path, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", guarded)
    for call in (lambda: load_examples(path), lambda: list(iter_records(path)), lambda: scan(path)):
        with pytest.raises(MissingInputError) as info:
            call()
        assert str(info.value) == f"{path}: cannot read: Permission denied"


def test_a_file_without_read_permission_for_real(tmp_path: Path) -> None:
    """The same through the kernel where it applies (not as root): mode 000."""
    path = write(tmp_path / "locked.jsonl", GOOD_LINE + "\n")
    path.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: the file is read, which is also right
            assert load_examples(path).n_records == 1
        else:
            with pytest.raises(MissingInputError, match=f"{path}: cannot read: Permission denied"):
                load_examples(path)
    finally:
        path.chmod(0o644)


# ----------------------------------------------------------------------------- lone surrogates


def test_a_lone_surrogate_is_refused_at_validation(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", GOOD_LINE + "\n" + '{"prompt": "q", "chosen": "ok \\ud800", "rejected": "b"}\n')
    message = (f"{path}:2: field 'chosen': contains a lone surrogate (U+D800 at character 3: a JSON escape such "
               "as \\ud800 without its pair), which is not valid Unicode text")
    assert errors_of(path) == [message]
    with pytest.raises(DataValidationError):
        load_examples(path)
    assert len(load_examples(path, skip_invalid=True).dataset) == 1
    assert_convert_writes_nothing(path, tmp_path, message)
    message.encode("utf-8")  # the message itself can be printed


def test_a_lone_surrogate_in_a_message_or_a_key(tmp_path: Path) -> None:
    rows = ['{"prompt": [{"role": "user", "content": "q\\udfff"}], "chosen": [{"role": "assistant", '
            '"content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}',
            GOOD_LINE[:-1] + ', "x\\ud83d": 1}']
    path = write(tmp_path / "s.jsonl", "\n".join(rows) + "\n")
    assert [(e.field, e.message.split(" (")[0]) for e in scan(path).errors] == [
        ("prompt[0].content", "contains a lone surrogate"), ("'x\\ud83d'", "the key contains a lone surrogate")]


def test_a_surrogate_pair_is_ordinary_text(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", '{"prompt": "q", "chosen": "\\ud83d\\ude42", "rejected": "b"}\n')
    assert load_examples(path).dataset[0]["chosen"] == [{"role": "assistant", "content": "🙂"}]


# ----------------------------------------------------------------------------- empty inputs


@pytest.mark.parametrize(("name", "content"), [("e.jsonl", ""), ("blank.jsonl", "\n   \n\t\n"), ("e.json", "[]"),
                                               ("e.jsonl.gz", None)])
def test_an_input_without_records_is_refused_everywhere(tmp_path: Path, name: str, content: str | None) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes(gzip.compress(b""))
    else:
        write(path, content)
    message = f"{path}: no records"
    for call in (lambda: load_examples(path), lambda: load_examples(path, kind="any", skip_invalid=True),
                 lambda: check_file(str(path)), lambda: read_records(path)):
        with pytest.raises(DataError) as info:
            call()
        assert str(info.value) == message
    assert_convert_writes_nothing(path, tmp_path, message)


# ----------------------------------------------------------------------------- invisible responses and roles


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", " \u200b\n\ufeff\t",
                                       "\u00ad", "\u200e\u202a\u2066"])
def test_a_response_of_zero_width_characters_is_empty(tmp_path: Path, invisible: str) -> None:
    rows = [{**GOOD, "rejected": invisible},
            {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": invisible}],
             "rejected": [{"role": "assistant", "content": "b"}]},
            {"prompt": "q", "completion": invisible}]
    path = write(tmp_path / "z.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    problem = "is empty (only whitespace and invisible characters such as U+200B zero-width space)"
    assert errors_of(path) == [f"{path}:1: field 'rejected': {problem}", f"{path}:2: field 'chosen': {problem}",
                               f"{path}:3: field 'completion': {problem}"]


def test_visible_text_around_zero_width_characters_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "z.jsonl", json.dumps({**GOOD, "chosen": "\u200bBlue\u200d."}) + "\n")
    assert load_examples(path).dataset[0]["chosen"][0]["content"] == "\u200bBlue\u200d."


def msgs(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


@pytest.mark.parametrize(("record", "field", "role"), [
    ({"prompt": msgs(("user", "q")), "chosen": msgs(("system", "a")), "rejected": msgs(("assistant", "b"))},
     "chosen[0].role", "system"),
    ({"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a")), "rejected": msgs(("user", "b"))},
     "rejected[0].role", "user"),
    ({"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "a"), ("tool", "{}")),
      "rejected": msgs(("assistant", "b"))}, "chosen[1].role", "tool"),
    ({"chosen": msgs(("user", "q"), ("assistant", "a")), "rejected": msgs(("user", "q"), ("user", "b"))},
     "rejected[1].role", "user"),
    ({"prompt": "q", "completion": msgs(("user", "c"))}, "completion[0].role", "user"),
])
def test_a_response_holds_assistant_turns_only(write_jsonl: Any, record: dict[str, Any], field: str,
                                               role: str) -> None:
    path = write_jsonl([GOOD, record])
    assert errors_of(path) == [f"{path}:2: field '{field}': a response must be assistant turns only, got "
                               f"'{role}' ({role} turns belong in the prompt)"]


def test_hh_transcripts_that_differ_before_the_last_human_turn(write_jsonl: Any) -> None:
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: fruit?\n\nAssistant: apple"
    rejected = "\n\nHuman: hi\n\nAssistant: go away\n\nHuman: fruit?\n\nAssistant: hammer"
    path = write_jsonl([{"chosen": chosen, "rejected": rejected}])
    assert errors_of(path) == [f"{path}:1: field 'chosen': turn 3 is a Human turn, but a response must be "
                               "Assistant turns only (the two transcripts differ before their last Human turn)"]


def test_tool_and_system_turns_are_allowed_in_a_prompt(write_jsonl: Any) -> None:
    prompt = msgs(("system", "s"), ("user", "weather?"), ("assistant", "calling"), ("tool", '{"t": 20}'))
    path = write_jsonl([{"prompt": prompt, "chosen": msgs(("assistant", "20 C")),
                         "rejected": msgs(("assistant", "cold"))}])
    assert load_examples(path).dataset[0]["prompt"] == prompt


# ----------------------------------------------------------------------------- outputs


def test_convert_into_a_folder_made_read_only_mid_run(tmp_path: Path, write_jsonl: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder refuses the final rename (as a read-only folder does; simulated, since root ignores modes):
    an InputError naming the output, the old output intact, no temporary file left."""
    src = write_jsonl([GOOD, GOOD])
    out = tmp_path / "out" / "converted.jsonl"
    out.parent.mkdir()
    out.write_text("previous\n")

    def refuse(a: Any, b: Any) -> None:
        raise PermissionError(13, "Permission denied", str(a), None, str(b))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(InputError) as info:
        convert_file(str(src), str(out))
    assert str(info.value) == f"{out}: cannot write: Permission denied"
    assert [p.name for p in out.parent.iterdir()] == ["converted.jsonl"]
    assert out.read_text() == "previous\n"


def test_convert_into_an_unwritable_place(tmp_path: Path, write_jsonl: Any) -> None:
    src = write_jsonl([GOOD])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError) as info:
        convert_file(str(src), str(blocker / "out.jsonl"))  # a file where the folder should be
    assert str(info.value) == f"{blocker / 'out.jsonl'}: cannot write: File exists"
    with pytest.raises(InputError) as info:
        convert_file(str(src), str(tmp_path))  # a folder where the file should be
    assert str(info.value) == f"{tmp_path}: cannot write: Is a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "file"]
