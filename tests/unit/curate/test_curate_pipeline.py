"""``curate`` end to end on hand-made files; each test lists the input lines it expects removed, and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from curate_files import ROWS, bench_file, pair, read_jsonl, write_jsonl

from rewardkit.curate import CurateConfig, curate
from rewardkit.data.formats import DataError
from rewardkit.errors import OptionError


def _removed(out: Path) -> dict[int, str]:
    return {r["source_line"]: r["reason"] for r in read_jsonl(out / "removed.jsonl")}


def test_dedup_and_decontamination_remove_the_listed_lines(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out"
    cfg = CurateConfig(dedup=("exact", "near"), decontaminate=(str(bench_file(tmp_path)),), skip_invalid=True,
                       progress=False)
    result = curate(src, out, cfg)
    assert _removed(out) == {2: "exact_duplicate", 4: "near_duplicate", 5: "contaminated", 7: "contaminated",
                             8: "invalid"}
    removed = {r["source_line"]: r for r in read_jsonl(out / "removed.jsonl")}
    assert removed[2]["duplicate_of"] == 1 and removed[4]["duplicate_of"] == 3
    assert (removed[5]["rule"], removed[5]["benchmark_uid"]) == ("prompt_ngram", "41")
    assert removed[7]["rule"] == "response_exact" and removed[7]["benchmark_file"] == str(tmp_path / "rb.jsonl")
    assert removed[2]["prompt"] == ROWS[1]["prompt"]  # the record itself, unchanged
    kept = read_jsonl(out / "kept.jsonl")
    assert kept == [ROWS[0], ROWS[2], ROWS[5], ROWS[8]]  # input records unchanged, in order
    assert result.n_input == 9 and result.n_kept + sum(result.removed.values()) == 9
    report = json.loads((out / "report.json").read_text())
    assert report["removed_by_step"] == {"invalid": 1, "dedup_exact": 1, "dedup_near": 1, "decontaminate": 2}
    assert report["groups"]["b"] == {"input": 4, "kept": 2, "near_duplicate": 1, "contaminated": 1}
    assert report["examples"]["exact_duplicate"][0]["source_line"] == 2
    assert "Curation report" in (out / "report.html").read_text()


def test_prompt_scope_dedups_on_the_prompt_only(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [pair("Same Prompt", "a", "b"), pair("same  prompt", "c", "d"),
                                              pair("other", "a", "b")])
    curate(src, tmp_path / "pair", CurateConfig(dedup=("exact",), progress=False))
    assert _removed(tmp_path / "pair") == {}
    curate(src, tmp_path / "prompt", CurateConfig(dedup=("exact",), dedup_scope="prompt", progress=False))
    assert _removed(tmp_path / "prompt") == {2: "exact_duplicate"}


def test_invalid_without_skip_names_file_and_line(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    with pytest.raises(DataError, match=r"in\.jsonl:8: field 'rejected'"):
        curate(src, tmp_path / "out", CurateConfig(progress=False))
    assert not (tmp_path / "out" / "kept.jsonl").exists()


def test_bad_json_line_goes_to_removed_with_skip(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps(ROWS[2]) + "\n")
    curate(src, tmp_path / "out", CurateConfig(skip_invalid=True, progress=False))
    (bad,) = read_jsonl(tmp_path / "out" / "removed.jsonl")
    assert bad["source_line"] == 2 and bad["reason"] == "invalid" and "bad JSON" in bad["error"]
    assert len(read_jsonl(tmp_path / "out" / "kept.jsonl")) == 2


def test_agree_filter_with_the_length_scorer(tmp_path: Path) -> None:
    # length scorer: reward = characters; P(chosen > rejected) = sigmoid(len(c) - len(r)) > 0.5 iff c longer
    src = write_jsonl(tmp_path / "in.jsonl", [pair("p1", "longer answer", "short"),  # 1 kept
                                              pair("p2", "short", "longer answer"),  # 2 disagree
                                              pair("p3", "abc", "xyz"),  # 3 p = 0.5: not > 0.5, removed
                                              pair("p4", "ab", "a")])  # 4 kept
    curate(src, tmp_path / "out", CurateConfig(filter_by="length", keep="agree", progress=False))
    removed = read_jsonl(tmp_path / "out" / "removed.jsonl")
    assert {r["source_line"]: (r["reason"], r["p_chosen"]) for r in removed} == \
        {2: ("disagree", 0.000335), 3: ("disagree", 0.5)}  # sigmoid(5 - 13) = 0.000335


def test_top_fraction_per_column(tmp_path: Path) -> None:
    # margin = len(chosen) - len(rejected) under the length scorer
    rows = [pair("p1", "aaaaa", "a", cat="x"),  # 1 margin 4
            pair("p2", "aa", "a", cat="x"),  # 2 margin 1 -> not top in x
            pair("p3", "aaa", "a", cat="x"),  # 3 margin 2
            pair("p4", "a", "aaaa", cat="y"),  # 4 margin -3 -> not top in y
            pair("p5", "aa", "a", cat="y"),  # 5 margin 1
            pair("p6", "a", "aa"),  # 6 no cat: its own group, margin -1, ceil(0.5 * 1) = 1 kept
            ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    curate(src, tmp_path / "out", CurateConfig(filter_by="length", keep="top:0.5", per="cat", progress=False))
    removed = {r["source_line"]: r for r in read_jsonl(tmp_path / "out" / "removed.jsonl")}
    assert sorted(removed) == [2, 4]  # x: ceil(1.5) = 2 of 3 kept (1, 3); y: 1 of 2 kept (5)
    assert (removed[2]["reason"], removed[2]["group"], removed[2]["select_margin"]) == ("not_top", "x", 1.0)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["group_column"] == "cat" and report["groups"]["(none)"] == {"input": 1, "kept": 1}
    curate(src, tmp_path / "chosen", CurateConfig(filter_by="length", keep="top:0.5", per="cat",
                                                  select_by="chosen", progress=False))
    assert sorted(_removed(tmp_path / "chosen")) == [2, 4]  # chosen lengths x: 5, 2, 3; y: 1, 2


def _length_rows() -> list[dict[str, object]]:
    # 6 chosen-longer (lines 1-6), 2 chosen-shorter (7, 8), 1 equal (9): longer wins 6/8 = 75%
    return [*(pair(f"p{i}", "long answer", "short") for i in range(1, 7)),
            pair("p7", "s", "much longer"), pair("p8", "t", "much longer"), pair("p9", "same", "size")]


def test_length_balance_drop_reaches_exactly_half(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", _length_rows())
    result = curate(src, tmp_path / "out", CurateConfig(balance_length="drop", seed=3, progress=False))
    removed = _removed(tmp_path / "out")
    assert len(removed) == 4 and set(removed) <= {1, 2, 3, 4, 5, 6}
    assert set(removed.values()) == {"length_balance"}
    assert result.report["length_bias"]["before"] == 0.75 and result.report["length_bias"]["after"] == 0.5
    assert len(read_jsonl(tmp_path / "out" / "kept.jsonl")) == 5


def test_length_balance_weight_values(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", _length_rows())
    result = curate(src, tmp_path / "out", CurateConfig(balance_length="weight", progress=False))
    weights = [r["weight"] for r in read_jsonl(tmp_path / "out" / "kept.jsonl")]
    # U = 8 unequal pairs: longer U / (2 * 6) = 2/3, shorter U / (2 * 2) = 2, equal 1
    assert weights == pytest.approx([2 / 3] * 6 + [2.0, 2.0, 1.0])
    assert result.report["length_bias"]["after_weighted"] == pytest.approx(0.5)


def test_non_jsonl_input_writes_canonical_rows(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected":
                                "\n\nHuman: hi\n\nAssistant: go away"}, ROWS[0], ROWS[1]]))
    curate(src, tmp_path / "out", CurateConfig(dedup=("exact",), progress=False))
    kept = read_jsonl(tmp_path / "out" / "kept.jsonl")
    assert kept[0] == {"prompt": [{"role": "user", "content": "hi"}],  # the HH transcript, canonical
                       "chosen": [{"role": "assistant", "content": "hello"}],
                       "rejected": [{"role": "assistant", "content": "go away"}]}
    assert kept[1] == ROWS[0]
    assert _removed(tmp_path / "out") == {2: "exact_duplicate"}  # 0-based row for non-jsonl input


def test_config_is_validated() -> None:
    with pytest.raises(OptionError, match="--dedup"):
        CurateConfig(dedup=("fuzzy",))
    with pytest.raises(OptionError, match="go together"):
        CurateConfig(keep="agree")
    with pytest.raises(OptionError, match="--near-threshold"):
        CurateConfig(near_threshold=1.0)


class _FakeJudge:
    """A pairwise judge whose log-odds that the first response is better is +2 when it has an 'x', else -2."""

    name = "fake-judge"

    def compare(self, prompts, first, second, progress=None):  # type: ignore[no-untyped-def]
        from rewardkit.types import ScoreOutput

        logits = [2.0 if "x" in f[0]["content"] else -2.0 for f in first]
        return ScoreOutput(np.array(logits, dtype=np.float32), np.zeros(len(first), dtype=bool))


def test_judge_agree_and_top_by_log_odds(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [pair("p1", "x marks", "b"), pair("p2", "a", "b"),
                                              pair("p3", "xx", "b")])
    judge = _FakeJudge()
    curate(src, tmp_path / "agree", CurateConfig(filter_by="judge:fake", keep="agree", progress=False), scorer=judge)
    (row,) = read_jsonl(tmp_path / "agree" / "removed.jsonl")
    assert (row["source_line"], row["p_chosen"]) == (2, 0.119203)  # sigmoid(-2)
    curate(src, tmp_path / "top", CurateConfig(filter_by="judge:fake", keep="top:0.34", progress=False), scorer=judge)
    # ceil(0.34 * 3) = 2 kept by log-odds 2, -2, 2: lines 1 and 3
    assert _removed(tmp_path / "top") == {2: "not_top"}
    with pytest.raises(OptionError, match="pointwise"):
        curate(src, tmp_path / "bad", CurateConfig(filter_by="judge:fake", keep="top:0.5", select_by="chosen",
                                                   progress=False), scorer=judge)
