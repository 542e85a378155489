"""``rewardkit eval --benchmark first-error``: ProcessBench's first-wrong-step evaluation of a process reward model.

Rows: ``problem`` (string), ``steps`` (list of strings), ``label`` (index of the first wrong step, -1 when
every step is right) -- our ``first_error.jsonl`` (``data synth --task mused | two-hop | math-champ``) and
ProcessBench's published rows (``id, generator, problem, steps, final_answer_correct, label``) alike.

Rules (ProcessBench, Zheng et al. 2024): the predicted first error is the first step whose P(right) is below
``threshold`` (0.5), or -1 when none is; accuracy on erroneous samples (label != -1) is the exact match of
that index, accuracy on correct samples (label == -1) is predicting -1, and F1 is their harmonic mean.
Intervals: 95% percentile bootstrap, resampling erroneous and correct samples separately (their numbers are
fixed by the data). Steps that did not fit the PRM's ``max_length`` count as predicted right (counted).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.io import (
    DataError,
    Location,
    atomic_write_json,
    atomic_writer,
    iter_records,
    no_records_error,
)
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.stats import Estimate

BENCHMARK = "first-error"


def predicted_first_error(probs: Sequence[float] | np.ndarray, threshold: float = 0.5) -> int:
    """Index of the first step with P(right) < ``threshold``; -1 if none."""
    below = np.flatnonzero(np.asarray(probs, dtype=np.float64) < threshold)
    return int(below[0]) if below.size else -1


@dataclass(frozen=True)
class FirstErrorMetrics:
    """Accuracy on erroneous samples, on correct samples, and their harmonic mean (each with its interval)."""

    error_accuracy: Estimate
    correct_accuracy: Estimate
    f1: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"error_accuracy": self.error_accuracy.to_dict(), "correct_accuracy": self.correct_accuracy.to_dict(),
                "f1": self.f1.to_dict()}


def harmonic_f1(error_acc: float | np.ndarray, correct_acc: float | np.ndarray) -> Any:
    """2ab / (a + b), 0 where a + b = 0 (NaN propagates where a class is absent)."""
    a, b = np.asarray(error_acc, dtype=np.float64), np.asarray(correct_acc, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(a + b > 0, 2 * a * b / np.where(a + b > 0, a + b, 1.0), 0.0)
    f = np.where(np.isnan(a) | np.isnan(b), np.nan, f)
    return float(f) if f.ndim == 0 else f


def first_error_metrics(predicted: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray, *,
                        n_boot: int = 2000, seed: int = 0) -> FirstErrorMetrics:
    """ProcessBench's metrics of predicted first-error indices (N,) against labels (N,); ``n_boot`` 0: no
    interval (low = high = the value)."""
    pred, gold = np.asarray(predicted, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    err, ok = gold != -1, gold == -1
    hit_err = (pred[err] == gold[err]).astype(np.float64)  # (n_err,)
    hit_ok = (pred[ok] == -1).astype(np.float64)  # (n_ok,)
    a = float(hit_err.mean()) if hit_err.size else float("nan")
    b = float(hit_ok.mean()) if hit_ok.size else float("nan")
    f = harmonic_f1(a, b)
    if n_boot <= 0:
        return FirstErrorMetrics(Estimate(a, a, a, hit_err.size), Estimate(b, b, b, hit_ok.size),
                                 Estimate(f, f, f, gold.size))
    rng = np.random.default_rng(seed)
    ra = hit_err[rng.integers(0, hit_err.size, (n_boot, hit_err.size))].mean(1) if hit_err.size else np.full(n_boot, np.nan)
    rb = hit_ok[rng.integers(0, hit_ok.size, (n_boot, hit_ok.size))].mean(1) if hit_ok.size else np.full(n_boot, np.nan)
    return FirstErrorMetrics(_estimate(a, ra, hit_err.size), _estimate(b, rb, hit_ok.size),
                             _estimate(f, harmonic_f1(ra, rb), gold.size))


def _estimate(value: float, replicates: np.ndarray, n: int) -> Estimate:
    x = np.asarray(replicates, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Estimate(value, float("nan"), float("nan"), n)
    low, high = np.percentile(x, [2.5, 97.5])
    return Estimate(value, float(low), float(high), n)


@dataclass(frozen=True)
class FirstErrorRow:
    id: str
    problem: str
    steps: tuple[str, ...]
    label: int
    group: str  # ProcessBench's generator / our meta.task, for the per-group breakdown


def parse_first_error_row(record: Mapping[str, Any], loc: Location) -> FirstErrorRow:
    """A first-error record -> :class:`FirstErrorRow`; a :class:`DataError` naming file:line and field otherwise."""
    problem = record.get("problem")
    if not isinstance(problem, str):
        raise DataError(loc, "problem", "expected a string")
    steps = record.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataError(loc, "steps", "expected a non-empty list of step strings")
    label = record.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        raise DataError(loc, "label", f"expected the first wrong step's index in [0, {len(steps) - 1}] or -1, "
                        f"got {label!r}")
    meta = record.get("meta") if isinstance(record.get("meta"), Mapping) else {}
    group = record.get("generator") or meta.get("task") or ""
    return FirstErrorRow(str(record.get("id", f"{loc}")), problem, tuple(steps), label, str(group))


def read_first_error_rows(path: str, *, limit: int | None = None) -> list[FirstErrorRow]:
    rows = []
    for loc, record in iter_records(path):
        if isinstance(record, DataError):
            raise record
        rows.append(parse_first_error_row(record, loc))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise no_records_error(path, "first-error rows")
    return rows


@dataclass
class FirstErrorResult:
    benchmark: str
    model: str
    data: str
    threshold: float
    items: int
    metrics: FirstErrorMetrics
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps_unscored: int = 0
    items_truncated: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "model": self.model, "data": self.data, "threshold": self.threshold,
                "items": self.items, "rules": "ProcessBench: first step with P(right) < threshold, else -1; "
                "accuracy on erroneous and on correct samples, F1 = harmonic mean",
                "metrics": self.metrics.to_dict(), "groups": self.groups, "steps_unscored": self.steps_unscored,
                "items_truncated": self.items_truncated, "seconds": self.seconds}


def evaluate_first_error(scorer: Any, rows: Sequence[FirstErrorRow], *, threshold: float = 0.5, n_boot: int = 2000,
                         seed: int = 0, model: str = "", data: str = "") -> tuple[FirstErrorResult, list[dict[str, Any]]]:
    """Score each row's steps with ``scorer.score_steps`` (a ``prm:`` scorer) and apply ProcessBench's rules:
    (result, per-item records)."""
    if not callable(getattr(scorer, "score_steps", None)):
        raise UnsupportedError(f"{model or scorer}: the first-error benchmark needs a process reward model "
                               "(prm:DIR, trained with `rewardkit train prm`) that scores each step")
    if not 0.0 < threshold < 1.0:
        raise OptionError(f"--threshold must be in (0, 1), got {threshold}")
    t0 = time.perf_counter()
    scored = scorer.score_steps([[{"role": "user", "content": r.problem}] for r in rows], [r.steps for r in rows],
                                False)
    pred = np.array([predicted_first_error(p, threshold) for p in scored.probabilities], dtype=np.int64)
    gold = np.array([r.label for r in rows], dtype=np.int64)
    groups: dict[str, dict[str, Any]] = {}
    for name in sorted({r.group for r in rows} - {""}):
        idx = np.array([r.group == name for r in rows])
        groups[name] = {"items": int(idx.sum()),
                        **first_error_metrics(pred[idx], gold[idx], n_boot=n_boot, seed=seed).to_dict()}
    unscored = sum(len(r.steps) - len(p) for r, p in zip(rows, scored.probabilities, strict=True))
    result = FirstErrorResult(BENCHMARK, model, data, threshold, len(rows),
                              first_error_metrics(pred, gold, n_boot=n_boot, seed=seed), groups, unscored,
                              int(np.sum(scored.truncated)), time.perf_counter() - t0)
    items = [{"id": r.id, "label": r.label, "predicted": int(q), "correct": bool(q == r.label),
              "step_probabilities": [round(float(x), 6) for x in p]}
             for r, q, p in zip(rows, pred, scored.probabilities, strict=True)]
    return result, items


def write_first_error(out: str | Path, result: FirstErrorResult, items: Sequence[Mapping[str, Any]]) -> Path:
    """``OUT/results.json`` and ``OUT/items.jsonl``."""
    import json

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "results.json", result.to_dict())
    with atomic_writer(folder / "items.jsonl") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    return folder
