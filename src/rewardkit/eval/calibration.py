"""Calibration of pairwise preferences read off reward margins: P(chosen ≻ rejected) = σ(Δ).

A scalar reward model trained with the Bradley--Terry loss claims ``P(a ≻ b) = σ(r_a − r_b)``. On M
(correct, incorrect) comparisons with margins ``Δ = r_correct − r_incorrect`` we check that claim the
way classifiers are checked: the predicted winner is the side σ(Δ) favours, its confidence is
``σ(|Δ|)`` ∈ [0.5, 1], and it is right iff ``Δ > 0`` (a tie is wrong, as in every benchmark rule).
Confidences are binned into equal-width bins over [0.5, 1]; the expected calibration error is
``ECE = Σ_b (n_b / M)·|accuracy_b − confidence_b|``. Also reported: the log loss ``mean softplus(−Δ)``
(the BT loss itself) and the Brier score ``mean (1 − σ(Δ))²``.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import expit

DEFAULT_BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    """Comparisons whose confidence lies in ``[low, high)`` (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """ECE, log loss and Brier score over ``n`` comparisons, and the reliability bins."""

    n: int
    ece: float
    log_loss: float
    brier: float
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "ece": self.ece, "log_loss": self.log_loss, "brier": self.brier,
                "bins": [asdict(b) for b in self.bins]}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) without overflow for any finite float (``scipy.special.expit``), float64."""
    return expit(np.asarray(x, dtype=np.float64))


def calibration(margins: np.ndarray, *, n_bins: int = DEFAULT_BINS) -> Calibration:
    """Calibration of ``margins`` (M,) = score(correct) − score(incorrect); see the module docstring."""
    d = np.asarray(margins, dtype=np.float64)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    if d.size == 0:
        empty = tuple(ReliabilityBin(float(a), float(b), 0, float("nan"), float("nan"))
                      for a, b in itertools.pairwise(edges))
        return Calibration(0, float("nan"), float("nan"), float("nan"), empty)
    conf = sigmoid(np.abs(d))
    right = (d > 0).astype(np.float64)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        c = float(conf[mask].mean()) if count else float("nan")
        a = float(right[mask].mean()) if count else float("nan")
        if count:
            ece += count / d.size * abs(a - c)
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, c, a))
    log_loss = float(np.mean(np.logaddexp(0.0, -d)))
    brier = float(np.mean((1.0 - sigmoid(d)) ** 2))
    return Calibration(int(d.size), float(ece), log_loss, brier, tuple(bins))
