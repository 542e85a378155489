"""Small statistics for honest evaluation numbers: bootstrap intervals and trivial baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% percentile-bootstrap interval and the number of items."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "ci95_low": self.low, "ci95_high": self.high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> Estimate:
    """Mean of ``values`` (N,) with a percentile bootstrap interval (``n_boot`` resamples, seeded)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(x.mean()), float(low), float(high), int(x.size))


def pairwise_correct(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """(N,) 1.0 where ``chosen > rejected``; an exact tie counts as wrong (reward-bench's rule)."""
    return (np.asarray(chosen) > np.asarray(rejected)).astype(np.float64)


def length_baselines(chosen_len: Sequence[int], rejected_len: Sequence[int]) -> dict[str, float]:
    """Accuracy of the trivial pickers on the same pairs: random (ties = 0.5 in expectation),
    longer-wins and shorter-wins (ties count as wrong, as for a model)."""
    c, r = np.asarray(chosen_len), np.asarray(rejected_len)
    if c.size == 0:
        return {"random": float("nan"), "longer_wins": float("nan"), "shorter_wins": float("nan")}
    return {"random": 0.5, "longer_wins": float((c > r).mean()), "shorter_wins": float((c < r).mean())}
