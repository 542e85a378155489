"""Pairwise evaluation of scored preference pairs: accuracy with an interval, beside trivial baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.eval.stats import Estimate, bootstrap_mean, length_baselines, pairwise_correct


@dataclass(frozen=True)
class PairwiseReport:
    """Accuracy of a scorer on N pairs (ties count as wrong), its 95% bootstrap interval, and the
    trivial baselines on the same pairs; ``by_group`` holds accuracy per named group of pairs."""

    accuracy: Estimate
    baselines: dict[str, float]
    mean_margin: float
    by_group: dict[str, Estimate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy.to_dict(), "baselines": self.baselines, "mean_margin": self.mean_margin,
                "by_group": {k: v.to_dict() for k, v in self.by_group.items()}}


def evaluate_pairs(
    chosen: np.ndarray, rejected: np.ndarray, *, chosen_len: Sequence[int], rejected_len: Sequence[int],
    groups: Sequence[Sequence[str]] | None = None, seed: int = 0,
) -> PairwiseReport:
    """``chosen``/``rejected``: (N,) scores; lengths: (N,) response lengths for the longer/shorter-wins
    baselines; ``groups``: for each pair, the names of the groups it belongs to (may be several)."""
    correct = pairwise_correct(chosen, rejected)
    by_group: dict[str, Estimate] = {}
    if groups is not None:
        names = sorted({g for gs in groups for g in gs})
        for name in names:
            idx = [i for i, gs in enumerate(groups) if name in gs]
            by_group[name] = bootstrap_mean(correct[idx], seed=seed)
    return PairwiseReport(bootstrap_mean(correct, seed=seed), length_baselines(chosen_len, rejected_len),
                          float(np.mean(np.asarray(chosen) - np.asarray(rejected))) if len(correct) else float("nan"),
                          by_group)
