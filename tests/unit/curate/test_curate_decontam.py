"""Decontamination: 13-gram prompt overlap (not 12), whole short prompts, exact responses, readers by format."""

from __future__ import annotations

from pathlib import Path

import pytest
from curate_files import words, write_jsonl

from rewardkit.curate.decontam import BenchmarkIndex, Hit, build_index, detect_benchmark
from rewardkit.errors import InputError, OptionError

BENCH_PROMPT = words(30, "b")  # b0 ... b29


def _rewardbench(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "rb.jsonl", [
        {"prompt": BENCH_PROMPT, "chosen": "The Benchmark Answer.", "rejected": "wrong", "subset": "alpacaeval-easy",
         "id": 41, "chosen_model": "x", "rejected_model": "y"},
        {"prompt": "short one", "chosen": "c", "rejected": "r", "subset": "mt-bench-easy", "id": 42,
         "chosen_model": "x", "rejected_model": "y"},
    ])


def test_13_gram_overlap_is_contaminated_12_gram_is_not(tmp_path: Path) -> None:
    index = build_index([str(_rewardbench(tmp_path))], n=13)
    shared13 = " ".join(BENCH_PROMPT.split()[5:18])  # b5..b17: 13 benchmark words in a row
    shared12 = " ".join(BENCH_PROMPT.split()[5:17])  # b5..b16: only 12
    hit = index.match(f"please answer {shared13.upper()} thanks", ["x", "y"])  # case differs: normalised
    assert hit == Hit(str(tmp_path / "rb.jsonl"), "41", "prompt_ngram")
    assert index.match(f"please answer {shared12} thanks", ["x", "y"]) is None


def test_short_prompt_matches_only_whole(tmp_path: Path) -> None:
    index = build_index([str(_rewardbench(tmp_path))], n=13)
    assert index.match("  Short   ONE ", ["x", "y"]) == Hit(str(tmp_path / "rb.jsonl"), "42", "prompt_exact")
    assert index.match("short one more", ["x", "y"]) is None


def test_exact_response_match(tmp_path: Path) -> None:
    index = build_index([str(_rewardbench(tmp_path))], n=13, response_min_words=1)
    assert index.match("unrelated prompt", ["mine", "the  benchmark answer."]) == \
        Hit(str(tmp_path / "rb.jsonl"), "41", "response_exact")
    assert index.match("unrelated prompt", ["the benchmark answer, almost"]) is None


def test_short_responses_are_not_matched_by_default(tmp_path: Path) -> None:
    long_answer = "a benchmark answer long enough to count: thirteen words or more in this one"  # 14 words
    bench = write_jsonl(tmp_path / "eval.jsonl", [{"prompt": "p1", "chosen": "What do you mean?", "rejected": "no"},
                                                  {"prompt": "p2", "chosen": long_answer, "rejected": "no"}])
    index = build_index([str(bench)])  # defaults: 13-grams, responses of 13+ words
    assert index.match("another dialogue", ["What do you mean?", "x"]) is None  # 4 words: everywhere
    assert index.match("another dialogue", ["x", long_answer.upper()]) == Hit(str(bench), "1", "response_exact")
    with pytest.raises(OptionError, match="response-min-words"):
        BenchmarkIndex(13, -1)


def test_plain_pairs_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "eval.jsonl", [{"prompt": BENCH_PROMPT, "chosen": "yes", "rejected": "no"}])
    assert detect_benchmark(str(path)) == "pairs"
    index = build_index([str(path)], n=13, response_min_words=1)
    assert index.match(BENCH_PROMPT, ["a", "b"]) == Hit(str(path), "0", "prompt_ngram")
    assert index.match("q", ["b", "YES"]).rule == "response_exact"  # type: ignore[union-attr]


def test_detect_benchmark_by_fields(tmp_path: Path) -> None:
    assert detect_benchmark(str(_rewardbench(tmp_path))) == "rewardbench"
    rb2 = write_jsonl(tmp_path / "rb2.jsonl", [{"id": "1", "prompt": "p", "chosen": ["a"], "rejected": ["b", "c", "d"],
                                                "subset": "Math", "num_correct": 1}])
    assert detect_benchmark(str(rb2)) == "rewardbench2"
    rmbench = write_jsonl(tmp_path / "rmbench.jsonl", [{"id": 1, "prompt": "p", "chosen": ["a", "b", "c"],
                                                        "rejected": ["d", "e", "f"], "domain": "chat"}])
    assert detect_benchmark(str(rmbench)) == "rmbench"
    rmb = write_jsonl(tmp_path / "rmb.jsonl", [{"conversation_input": [], "chosen": {}, "reject": {}}])
    assert detect_benchmark(str(rmb)) == "rmb"


def test_rewardbench2_responses_indexed(tmp_path: Path) -> None:
    rb2 = write_jsonl(tmp_path / "rb2.jsonl", [{"id": "7", "prompt": "p", "chosen": ["right answer"],
                                                "rejected": ["w1", "w2", "w3"], "subset": "Math", "num_correct": 1}])
    index = build_index([str(rb2)], n=13, response_min_words=1)
    assert index.match("another prompt", ["W2"]) == Hit(str(rb2), "7", "response_exact")


def test_bad_options_and_files(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--ngram"):
        BenchmarkIndex(0)
    with pytest.raises(OptionError, match="--decontaminate-format"):
        build_index([str(_rewardbench(tmp_path))], fmt="mmlu")
    with pytest.raises(InputError, match=r"missing\.jsonl: no such file"):
        build_index([str(tmp_path / "missing.jsonl")])
