"""Helpers for the evaluation tests: the hand-written fixtures and a scorer that reads scores from a table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rewardkit.scoring import SCORERS, ScoreOutput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eval"


class TableScorer:
    """``table:PATH`` -- reward = ``table[response text]`` from a JSON file (texts are stripped); an unknown
    text is an error, so a fixture cannot be scored by accident. Counts the inputs it scored."""

    calls: ClassVar[list[int]] = []

    def __init__(self, path: str) -> None:
        self.name = f"table:{Path(path).parent.name}"
        self.table = {k.strip(): float(v) for k, v in json.loads(Path(path).read_text()).items()}

    @classmethod
    def from_spec(cls, path: str, opts: Any) -> TableScorer:
        return cls(path)

    def score(self, prompts: Sequence[Any], responses: Sequence[Any], conversational: Any = True) -> ScoreOutput:
        TableScorer.calls.append(len(responses))
        rewards = [self.table["\n".join(m["content"] for m in r).strip()] for r in responses]
        return ScoreOutput(np.asarray(rewards, dtype=np.float32), np.zeros(len(responses), dtype=bool))


if "table" not in SCORERS:
    SCORERS.register("table")(TableScorer)


def table_scores(items: Sequence[Any], fixture: str) -> list[np.ndarray]:
    """Per-item score arrays for ``items`` from ``FIXTURES/fixture/scores.json``."""
    scorer = TableScorer(str(FIXTURES / fixture / "scores.json"))
    return [scorer.score([it.prompt] * len(it.responses), list(it.responses)).rewards.astype(np.float64)
            for it in items]
