"""``rewardkit data curate`` from the command line: outputs, exit 2 on bad input, --help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from curate_files import ROWS, bench_file, read_jsonl, write_jsonl

from rewardkit.cli import main


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out"
    rc = main(["data", "curate", str(src), "--out", str(out), "--dedup", "exact,near", "--decontaminate",
               str(bench_file(tmp_path)), "--filter-by", "length", "--keep", "agree", "--balance-length", "weight",
               "--skip-invalid", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "curated 9 records" in text and "wrote" in text
    removed = {r["source_line"]: r["reason"] for r in read_jsonl(out / "removed.jsonl")}
    # lines 1, 3, 6, 9 survive dedup and decontamination; the length scorer keeps those with the longer chosen:
    # 1 ("Paris is the capital." vs "Lyon."), 3, 6 (yes indeed < not really: disagree), 9 (shorter: disagree)
    assert removed == {2: "exact_duplicate", 4: "near_duplicate", 5: "contaminated", 7: "contaminated",
                       8: "invalid", 6: "disagree", 9: "disagree"}
    kept = read_jsonl(out / "kept.jsonl")
    assert len(kept) + len(removed) == len(ROWS)
    assert [k["weight"] for k in kept] == [1.0, 1.0]  # both chosen-longer: one side only, nothing to balance
    report = json.loads((out / "report.json").read_text())
    assert report["removed_by_step"]["filter"] == 2 and (out / "report.html").is_file()


def test_cli_invalid_record_exit_2_names_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert main(["data", "curate", str(src), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert f"{src}:8: field 'rejected'" in capsys.readouterr().err


def test_cli_bad_option_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    assert main(["data", "curate", str(src), "--out", str(tmp_path / "o"), "--filter-by", "length", "--keep",
                 "top:2", "--no-progress"]) == 2
    assert "--keep must be" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["data", "curate", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dedup", "--near-threshold", "--decontaminate", "--filter-by", "--keep", "--per",
                 "--balance-length", "--skip-invalid", "--device", "--batch-tokens"):
        assert flag in text
