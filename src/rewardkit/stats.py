"""The statistics every layer shares: a mean with its bootstrap interval, and the one pairwise evaluation
of scored preference pairs (used by training's evaluation, ``rewardkit eval`` and the quickstart)."""

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


def pairwise_summary(chosen: np.ndarray, rejected: np.ndarray, *, seed: int = 0, n_boot: int = 2000
                     ) -> dict[str, float]:
    """The one pairwise evaluation: accuracy (a tie is wrong) with its 95% bootstrap interval, the mean
    margin and the number of pairs, for scores ``chosen``/``rejected`` (N,)."""
    chosen, rejected = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    acc = bootstrap_mean(pairwise_correct(chosen, rejected), seed=seed, n_boot=n_boot)
    margin = float(np.mean(chosen - rejected)) if len(chosen) else float("nan")
    return {"accuracy": acc.value, "accuracy_ci95_low": acc.low, "accuracy_ci95_high": acc.high,
            "margin": margin, "pairs": float(len(chosen))}
