"""The Arrow caches are keyed by content: a file or a datasets folder rewritten in place, with the same
names, sizes and modification times, is read and tokenized again (scores were once served for the old
records)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import pytest

from rewardkit.data.chat import PairEncoder
from rewardkit.data.dataset import file_fingerprint, load_examples, tokenize_examples

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

OLD = [{"prompt": "q", "chosen": "good", "rejected": "bad"}, {"prompt": "r", "chosen": "yes", "rejected": "no"}]
NEW = [{"prompt": "q", "chosen": "fine", "rejected": "poor"}, {"prompt": "r", "chosen": "sun", "rejected": "ok"}]


def chosen_ids(path: Path, encoder: PairEncoder) -> list[list[int]]:
    """What ``score`` prepares: load (validate), then tokenize."""
    return list(tokenize_examples(load_examples(path).dataset, encoder)["chosen_input_ids"])


def expected(tok: Any, rows: list[dict[str, str]]) -> list[list[int]]:
    return [list(tok(r["prompt"], r["chosen"])["input_ids"]) for r in rows]


def rewrite_in_place(paths: list[Path], contents: dict[Path, bytes]) -> None:
    """Overwrite files in place and put every modification time back, as a copy tool that keeps times does."""
    times = {p: (p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in paths}
    for p, data in contents.items():
        with open(p, "r+b") as f:  # same inode, same name
            f.truncate(0)
            f.write(data)
    for p, (atime, mtime) in times.items():
        os.utime(p, ns=(atime, mtime))


def test_a_datasets_folder_rewritten_in_place_is_read_again(tmp_path: Path, minilm_tokenizer: Any) -> None:
    folder, other = tmp_path / "prefs", tmp_path / "other"
    datasets.Dataset.from_list(OLD).save_to_disk(str(folder))
    datasets.Dataset.from_list(NEW).save_to_disk(str(other))
    encoder = PairEncoder(minilm_tokenizer, "text_pair", 32)
    assert chosen_ids(folder, encoder) == expected(minilm_tokenizer, OLD)
    before = file_fingerprint(folder)

    files = sorted(p for p in folder.iterdir())
    assert [p.name for p in files] == sorted(p.name for p in other.iterdir())
    rewrite_in_place([folder, *files], {p: (other / p.name).read_bytes() for p in files})
    assert file_fingerprint(folder) != before

    assert chosen_ids(folder, encoder) == expected(minilm_tokenizer, NEW)


def test_a_file_rewritten_with_the_same_size_and_time_is_read_again(write_jsonl: Any, minilm_tokenizer: Any) -> None:
    path = write_jsonl(OLD)
    encoder = PairEncoder(minilm_tokenizer, "text_pair", 32)
    assert chosen_ids(path, encoder) == expected(minilm_tokenizer, OLD)
    new_bytes = path.read_bytes().replace(b'"good", "rejected": "bad"', b'"fine", "rejected": "poo"')
    assert len(new_bytes) == path.stat().st_size
    rewrite_in_place([path], {path: new_bytes})
    rows = [{**NEW[0], "rejected": "poo"}, OLD[1]]
    assert chosen_ids(path, encoder) == expected(minilm_tokenizer, rows)


def test_file_fingerprint_of_a_file_is_its_sha256(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"abc")  # sha256("abc"), FIPS 180-2 test vector
    assert file_fingerprint(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_file_fingerprint_of_a_folder_counts_names(tmp_path: Path) -> None:
    """Moving bytes from one file of a folder to another changes the fingerprint (names are hashed)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, (x, y) in ((a, (b"12", b"3")), (b, (b"1", b"23"))):
        folder.mkdir()
        (folder / "x").write_bytes(x)
        (folder / "y").write_bytes(y)
    assert file_fingerprint(a) != file_fingerprint(b)
