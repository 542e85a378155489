"""The results of ``rewardkit eval``: frozen dataclasses, written to ``results.json``.

Every number comes with what it means: the metric's 95% bootstrap interval and item count, the trivial
baselines on the same items, whether the overall covers every published section (``coverage``), the
share of items whose input was truncated, the known dirt kept in the data (``data.remarks``), and the
exact settings (versions, fingerprints of model and data) that reproduce it. NaN (e.g. accuracy of an
empty split) is written as ``null``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data.io import atomic_write_text
from rewardkit.eval.abstention import Abstention
from rewardkit.eval.analysis import LengthBias, ScoreDistribution
from rewardkit.eval.benchmarks.base import Coverage, describe_note
from rewardkit.eval.calibration import Calibration
from rewardkit.eval.stats import PairedDifference

RESULTS_FORMAT = "rewardkit-eval/1"


@dataclass(frozen=True)
class Metric:
    """One reported number: ``key`` is ``overall``, ``overall/...``, ``section/NAME[/...]`` or ``subset/NAME``."""

    key: str
    value: float
    low: float
    high: float
    n: int

    @property
    def level(self) -> str:
        return self.key.split("/")[0]

    @property
    def label(self) -> str:
        return self.key.partition("/")[2] or self.key

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "ci95_low": self.low, "ci95_high": self.high, "n": self.n}


@dataclass(frozen=True)
class ModelResult:
    """One scorer's evaluation: metrics with intervals, bias checks, calibration, distributions, and how
    the scoring went (distinct inputs, cache hits, truncation, time)."""

    spec: str
    scorer: dict[str, Any]
    metrics: tuple[Metric, ...]
    length_bias: LengthBias
    calibration: Calibration
    distribution: ScoreDistribution
    scoring: dict[str, Any]
    truncated_items: int
    n_items: int = 0  # items evaluated: the denominator of ``truncated_share``
    abstention: Abstention | None = None  # when the scorer reports uncertainty (:mod:`rewardkit.eval.abstention`)
    objectives: dict[str, dict[str, float]] | None = None  # per-objective overall with 95% interval (multi heads)
    gating: dict[str, Any] | None = None  # a gated head's weights over the objectives (:func:`~rewardkit.eval.analysis.gating_spread`)

    def metric(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)

    @property
    def truncated_share(self) -> float:
        """Fraction of items with at least one truncated input (NaN with no items)."""
        return self.truncated_items / self.n_items if self.n_items else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "scorer": self.scorer, "metrics": [m.to_dict() for m in self.metrics],
                "length_bias": self.length_bias.to_dict(), "calibration": self.calibration.to_dict(),
                "score_distribution": self.distribution.to_dict(), "scoring": self.scoring,
                "truncated_items": self.truncated_items, "truncated_share": self.truncated_share,
                **({"abstention": self.abstention.to_dict()} if self.abstention is not None else {}),
                **({"objectives": self.objectives} if self.objectives is not None else {}),
                **({"gating": self.gating} if self.gating is not None else {})}


@dataclass(frozen=True)
class Comparison:
    """A paired-bootstrap comparison of two models on one metric: ``diff = b − a``."""

    model_a: str
    model_b: str
    key: str
    result: PairedDifference

    def to_dict(self) -> dict[str, Any]:
        return {"model_a": self.model_a, "model_b": self.model_b, "key": self.key, **self.result.to_dict()}


@dataclass(frozen=True)
class DataInfo:
    """What was evaluated: the source, its fingerprint, counts, invalid records and known dirt (``notes``:
    counts and lists by key; :meth:`remarks`: the same as sentences)."""

    source: str
    fingerprint: str
    records: int
    items: int
    responses: int
    skipped_invalid: int
    invalid: list[str]
    notes: dict[str, Any]
    subsets: dict[str, int]

    def remarks(self) -> list[str]:
        """Each note as a sentence (``"2 item(s) with an empty/whitespace answer, kept and scored ..."``)."""
        return [describe_note(k, v) for k, v in self.notes.items()]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "remarks": self.remarks()}


@dataclass(frozen=True)
class Settings:
    """Everything needed to reproduce the numbers (with the data and model fingerprints)."""

    benchmark: str
    split: str | None
    seed: int
    n_boot: int
    max_length: int | None
    dtype: str
    batch_tokens: int | None
    device: str
    ref_model: str | None
    ref_free: str | None
    judge_both_orders: bool
    limit: int | None
    versions: dict[str, str]
    command: list[str] = field(default_factory=list)
    started: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class EvalResult:
    """The whole evaluation, as written to ``results.json``."""

    benchmark: str
    description: str
    data: DataInfo
    settings: Settings
    baselines: dict[str, dict[str, float]]
    models: tuple[ModelResult, ...]
    comparisons: tuple[Comparison, ...]
    out_dir: str
    coverage: Coverage | None = None  # None: the benchmark publishes no fixed sections (``pairs``)
    shortcuts: dict[str, Any] | None = None  # on synthetic-testbed pairs: rules that never read the prompt

    @property
    def complete(self) -> bool:
        """True unless the overall misses a published section (or part of one)."""
        return self.coverage is None or self.coverage.complete

    def to_dict(self) -> dict[str, Any]:
        return {"format": RESULTS_FORMAT, "benchmark": self.benchmark, "description": self.description,
                "complete": self.complete, "coverage": self.coverage.to_dict() if self.coverage else None,
                "data": self.data.to_dict(), "settings": self.settings.to_dict(), "baselines": self.baselines,
                "models": [m.to_dict() for m in self.models],
                "comparisons": [c.to_dict() for c in self.comparisons],
                **({"shortcuts": self.shortcuts} if self.shortcuts is not None else {})}


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write strict JSON atomically (nothing half-written; ordinary permissions)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False,
                                         default=str) + "\n")
    return target
