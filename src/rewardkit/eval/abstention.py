"""Abstention: accuracy against coverage when a model declines the items it is least sure of.

Each item's uncertainty combines its responses' ``U`` as ``sqrt(Σ_i U_i²)`` — for a pair
``sqrt(U_c² + U_r²)``, the width of the margin ``r_c − r_r`` if the two rewards' errors were independent
(with last-layer U the exact width would be ‖φ_c − φ_r‖ in M⁻¹, which needs the features, not the scores).
Items are ranked from most to least certain (ties in input order); keeping the ``m`` most certain of N
gives coverage ``m/N`` and the mean credit of those items under the benchmark's rule. The curve's area is
the mean of that accuracy over m = 1..N: equal to the plain accuracy when U says nothing about errors,
higher when the errors sit among the uncertain items. ``gain`` = area − accuracy at full coverage.
Intervals: the evaluation's own cluster-bootstrap resamples, the same for every model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.eval.stats import percentile_interval

REPORTED_COVERAGE = 0.8  # "accuracy on the 80% most certain items"
GRID = tuple(round(0.05 * i, 2) for i in range(1, 21))  # coverages stored in results.json


def item_uncertainty(per_response: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) float64: ``sqrt(Σ_i U_i²)`` over each item's responses' uncertainties ``per_response[k]`` (n_k,)."""
    return np.array([math.sqrt(float(np.sum(np.square(u, dtype=np.float64)))) for u in per_response])


def curve(credit: np.ndarray, uncertainty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage (N,), accuracy (N,))``: keeping the m most certain items, m = 1..N, for ``credit`` (N,)
    in [0, 1] and ``uncertainty`` (N,) (smaller = surer; a stable sort, so ties keep input order)."""
    order = np.argsort(np.asarray(uncertainty, dtype=np.float64), kind="stable")
    kept = np.cumsum(np.asarray(credit, dtype=np.float64)[order])
    m = np.arange(1, len(order) + 1)
    return m / len(order), kept / m


def accuracy_at(credit: np.ndarray, uncertainty: np.ndarray, coverage: float) -> float:
    """Mean credit of the ``floor(coverage · N)`` most certain items (at least one); NaN with no items."""
    n = len(credit)
    if n == 0:
        return float("nan")
    m = max(1, math.floor(coverage * n + 1e-9))
    return float(curve(credit, uncertainty)[1][m - 1])


def area(credit: np.ndarray, uncertainty: np.ndarray) -> float:
    """The accuracy–coverage curve's area: the mean over m = 1..N of the accuracy of the m most certain."""
    return float(np.mean(curve(credit, uncertainty)[1])) if len(credit) else float("nan")


@dataclass(frozen=True)
class Abstention:
    """One model's abstention result (``results.json``: ``models[i].abstention``)."""

    n: int
    accuracy_all: tuple[float, float, float]  # value, 95% low, high
    accuracy_at_80: tuple[float, float, float]
    area: tuple[float, float, float]
    gain: tuple[float, float, float]  # area − accuracy_all, paired on the same resamples
    grid: tuple[tuple[float, float], ...]  # (coverage, accuracy) at GRID
    rule: str = "item uncertainty = sqrt(sum of its responses' U²); the most uncertain items are abstained on"

    def to_dict(self) -> dict[str, Any]:
        ci = ("value", "ci95_low", "ci95_high")
        return {"n": self.n, "rule": self.rule, "coverage_reported": REPORTED_COVERAGE,
                **{name: dict(zip(ci, getattr(self, name), strict=True))
                   for name in ("accuracy_all", "accuracy_at_80", "area", "gain")},
                "curve": [{"coverage": c, "accuracy": a} for c, a in self.grid]}


def abstention(credit: np.ndarray, uncertainty: np.ndarray, resamples: Iterable[tuple[np.ndarray, np.ndarray]]
               ) -> Abstention:
    """Accuracy at full coverage and at 80%, the area and its gain, each with a 95% interval over
    ``resamples`` (rows (M,), cluster ids) of the N items; the curve at :data:`GRID`."""
    credit = np.asarray(credit, dtype=np.float64)
    uncertainty = np.asarray(uncertainty, dtype=np.float64)

    def stats(c: np.ndarray, u: np.ndarray) -> tuple[float, float, float, float]:
        full, surest, a = float(np.mean(c)), accuracy_at(c, u, REPORTED_COVERAGE), area(c, u)
        return full, surest, a, a - full

    point = stats(credit, uncertainty)
    reps = np.array([stats(credit[rows], uncertainty[rows]) for rows, _ in resamples]).reshape(-1, 4)
    with_ci = [(point[j], *percentile_interval(reps[:, j])) for j in range(4)]
    grid = tuple((c, accuracy_at(credit, uncertainty, c)) for c in GRID)
    return Abstention(len(credit), *with_ci, grid)  # type: ignore[arg-type]
