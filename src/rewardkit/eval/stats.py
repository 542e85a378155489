"""Small statistics for honest evaluation numbers: bootstrap intervals and trivial baselines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rewardkit.stats import Estimate, bootstrap_mean, pairwise_correct, pairwise_summary

__all__ = ["Estimate", "bootstrap_mean", "cluster_bootstrap", "length_baselines", "paired_difference",
           "pairwise_correct", "pairwise_summary", "percentile_interval"]


def length_baselines(chosen_len: Sequence[int], rejected_len: Sequence[int]) -> dict[str, float]:
    """Accuracy of the trivial pickers on the same pairs: random (ties = 0.5 in expectation),
    longer-wins and shorter-wins (ties count as wrong, as for a model)."""
    c, r = np.asarray(chosen_len), np.asarray(rejected_len)
    if c.size == 0:
        return {"random": float("nan"), "longer_wins": float("nan"), "shorter_wins": float("nan")}
    return {"random": 0.5, "longer_wins": float((c > r).mean()), "shorter_wins": float((c < r).mean())}


# ----------------------------------------------------------------------------- clustered, stratified bootstrap


def cluster_bootstrap(strata: Sequence[str], clusters: Sequence[str], *, n_boot: int = 2000,
                      seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``n_boot`` resamples of N rows as ``(rows, cluster_ids)``, both (M,) int64.

    Within each stratum (a benchmark subset, whose size is fixed by design) its clusters are drawn with
    replacement, as many as it has; the rows of a drawn cluster come together (e.g. RewardBench 2's
    ``ref``/``tied`` rows of one prompt). Each draw gets a fresh cluster id, so a cluster drawn twice
    counts as two clusters. Seeded: the same inputs give the same resamples, so two models evaluated
    on the same items can be compared replicate by replicate (a paired bootstrap).
    """
    rng = np.random.default_rng(seed)
    members: dict[str, dict[str, list[int]]] = {}
    for i, (s, c) in enumerate(zip(strata, clusters, strict=True)):
        members.setdefault(s, {}).setdefault(c, []).append(i)
    groups = [[np.asarray(v, dtype=np.int64) for v in m.values()] for m in members.values()]
    singletons = [np.concatenate(g) if all(len(m) == 1 for m in g) else None for g in groups]
    for _ in range(n_boot):
        rows, ids, next_id = [], [], 0
        for g, flat in zip(groups, singletons, strict=True):
            pick = rng.integers(0, len(g), size=len(g))
            if flat is not None:
                rows.append(flat[pick])
                ids.append(next_id + np.arange(len(g)))
            else:
                rows.extend(g[k] for k in pick)
                ids.extend(np.full(len(g[k]), next_id + t) for t, k in enumerate(pick))
            next_id += len(g)
        yield np.concatenate(rows), np.concatenate(ids).astype(np.int64)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of bootstrap ``replicates`` (R,), ignoring NaN replicates."""
    x = np.asarray(replicates, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(x, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """``b − a`` on the same items, its 95% paired-bootstrap interval and a two-sided bootstrap p-value
    (twice the smaller share of replicates on either side of 0, capped at 1)."""

    diff: float
    low: float
    high: float
    p_value: float

    def to_dict(self) -> dict[str, float]:
        return {"diff": self.diff, "ci95_low": self.low, "ci95_high": self.high, "p_value": self.p_value}


def paired_difference(a: float, b: float, a_reps: np.ndarray, b_reps: np.ndarray,
                      level: float = 0.95) -> PairedDifference:
    """Compare two models whose replicates (R,) come from the SAME resamples of the same items."""
    d = np.asarray(b_reps, dtype=np.float64) - np.asarray(a_reps, dtype=np.float64)
    d = d[~np.isnan(d)]
    low, high = percentile_interval(d, level)
    if d.size == 0:
        return PairedDifference(b - a, low, high, float("nan"))
    p = min(1.0, 2 * min(float((d <= 0).mean()), float((d >= 0).mean())))
    return PairedDifference(b - a, low, high, p)
