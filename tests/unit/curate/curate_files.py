"""Hand-made preference files for the curation tests (a plain module: tests/conftest.py is the suite's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def words(n: int, tag: str) -> str:
    """``n`` distinct words (``tag0 tag1 ...``): a long text with no repeated shingle."""
    return " ".join(f"{tag}{i}" for i in range(n))


BENCH_PROMPT = words(30, "b")
LONG = words(200, "w")


def bench_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "rb.jsonl", [
        {"prompt": BENCH_PROMPT, "chosen": "The benchmark answer explains, in thirteen words or more, exactly why this is right.", "rejected": "no", "subset": "alpacaeval-easy",
         "id": 41, "chosen_model": "x", "rejected_model": "y"}])


def pair(prompt: str, chosen: str, rejected: str, **extra: object) -> dict[str, object]:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}


ROWS = [
    pair("What is the capital of France?", "Paris is the capital.", "Lyon.", source="a"),  # 1 kept
    pair("what is  the CAPITAL of france? ", "PARIS is the capital.", "lyon.", source="a"),  # 2 exact dup of 1
    pair(LONG, "a fine answer", "bad", source="b"),  # 3 kept
    pair(LONG.replace("w100 ", "changed "), "a fine answer", "bad", source="b"),  # 4 near dup of 3
    pair("q " + " ".join(BENCH_PROMPT.split()[3:16]), "yes indeed", "not really", source="b"),  # 5 13-gram: contaminated
    pair("q " + " ".join(BENCH_PROMPT.split()[3:15]), "yes indeed", "not really", source="b"),  # 6 12-gram: kept
    pair("Another question", "THE BENCHMARK ANSWER EXPLAINS, IN THIRTEEN WORDS OR MORE, EXACTLY WHY THIS IS RIGHT.", "meh", source="c"),  # 7 response match: contaminated
    pair("x", "same", "same"),  # 8 invalid: chosen == rejected
    pair("Last question", "an answer", "a worse answer", source="c"),  # 9 kept
]
