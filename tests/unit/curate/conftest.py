"""Hand-made preference files for the curation tests."""

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
