"""The atomic writers (all or nothing, ordinary permissions, one clear error) and the strict reader that
prompts files and verifier items use."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data.io import (
    DataError,
    Location,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    current_umask,
    make_readable,
    read_records,
)
from rewardkit.errors import InputError


@pytest.fixture
def umask() -> Iterator[None]:
    """Run with a known umask, put the caller's back after."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_umask_mode(tmp_path: Path, umask: None, mask: int, expected: int) -> None:
    os.umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"k": 1})
    with atomic_writer(tmp_path / "c.bin", binary=True) as f:
        f.write(b"\x00")
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"a.txt": expected, "b.json": expected,
                                                            "c.bin": expected}


def test_make_readable_gives_a_0600_file_the_umask_mode(tmp_path: Path, umask: None) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    path.chmod(0o600)  # what safetensors' save_file leaves
    make_readable(path)
    assert mode(path) == 0o644


def test_make_readable_of_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path / 'nope'}: cannot set its permissions: No such file"):
        make_readable(tmp_path / "nope")


def test_atomic_write_json_content_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "summary.json"  # folders are created
    atomic_write_json(path, {"name": "Zürich", "n": [1, 2]})
    assert path.read_text(encoding="utf-8") == '{\n  "name": "Zürich",\n  "n": [\n    1,\n    2\n  ]\n}\n'
    atomic_write_json(path, {"n": 3}, indent=None)
    assert path.read_text() == '{"n": 3}\n'
    atomic_write_json(path, {"out": Path("runs/rm")}, indent=None, default=str)
    assert path.read_text() == '{"out": "runs/rm"}\n'
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_an_unserialisable_object_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failure_inside_the_block_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(KeyError), atomic_writer(path) as f:  # a bug in the caller passes through unchanged
        f.write("half a record")
        raise KeyError("bug")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_write_error_is_an_input_error_naming_the_target(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(InputError) as info, atomic_writer(path):
        raise OSError(28, "No space left on device")  # what a write on a full disk raises
    assert str(info.value) == f"{path}: cannot write: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_an_error_reading_another_file_inside_the_block_passes_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info, atomic_writer(tmp_path / "out.jsonl"):
        open(tmp_path / "missing-input")  # noqa: SIM115 -- the error is the point
    assert not isinstance(info.value, InputError)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_fsync_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match="cannot write: No space left on device"):
        atomic_write_text(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_file_that_cannot_be_removed_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder made read-only after the temporary file was created refuses both the rename and the clean-up:
    the message says where the leftover is."""
    def refuse_replace(a: object, b: object) -> None:
        raise PermissionError(13, "Permission denied", str(a), None, str(b))

    def refuse_unlink(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(os, "replace", refuse_replace)
    monkeypatch.setattr(Path, "unlink", refuse_unlink)
    with pytest.raises(InputError) as info:
        atomic_write_text(tmp_path / "a.txt", "x")
    [tmp] = tmp_path.iterdir()
    assert str(info.value) == (f"{tmp_path / 'a.txt'}: cannot write: Permission denied (the temporary file {tmp} "
                               "could not be removed: Permission denied)")


def test_read_records(write_jsonl: Any, tmp_path: Path) -> None:
    path = write_jsonl([{"prompt": "a"}, "", {"prompt": "b"}, {"prompt": "c"}])
    assert read_records(path) == [(Location(str(path), line=1), {"prompt": "a"}),
                                  (Location(str(path), line=3), {"prompt": "b"}),
                                  (Location(str(path), line=4), {"prompt": "c"})]
    assert [r for _, r in read_records(path, limit=2)] == [{"prompt": "a"}, {"prompt": "b"}]
    gz = write_jsonl([{"prompt": "a"}], name="p.jsonl.gz")
    assert [r for _, r in read_records(gz)] == [{"prompt": "a"}]


def test_read_records_raises_the_first_bad_record_and_names_an_empty_file(write_jsonl: Any) -> None:
    path = write_jsonl([{"prompt": "a"}, "[1]", "{"])
    with pytest.raises(DataError, match=f"^{path}:2: expected a JSON object, got list$"):
        read_records(path)
    empty = write_jsonl([], name="empty.jsonl")
    with pytest.raises(DataError, match=f"^{empty}: no prompts$"):
        read_records(empty, what="prompts")


def test_a_utf8_byte_order_mark_at_the_start_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "a"}).encode() + b"\n")
    assert [r for _, r in read_records(path)] == [{"prompt": "a"}]
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes('{"prompt": "a"}\n'.encode("utf-16"))
    with pytest.raises(DataError, match=r"not valid UTF-8 .* the file looks like UTF-16; save it as UTF-8"):
        read_records(utf16)
