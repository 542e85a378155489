"""What a benchmark number does not show: length bias and score distributions, on the pairwise view.

Every benchmark item is a prompt with some correct and some incorrect responses. Its *comparisons*
are all (correct, incorrect) pairs of responses within the item -- one for a preference pair, ``n − 1``
for a best-of-n item, 9 for an RM-Bench item. Length is counted in characters of the response, so the
numbers do not depend on a model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

from rewardkit.eval.benchmarks.base import Item

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HIST_BINS = 30


@dataclass(frozen=True)
class Comparisons:
    """M (correct, incorrect) response pairs: ``item`` (M,) int64 index of the item; ``margin`` (M,)
    float64 = score(correct) − score(incorrect); ``correct_len``/``incorrect_len`` (M,) int64 characters."""

    item: np.ndarray
    margin: np.ndarray
    correct_len: np.ndarray
    incorrect_len: np.ndarray


def comparisons(items: Sequence[Item], scores: Sequence[np.ndarray]) -> Comparisons:
    """All (correct, incorrect) pairs within each item, with their margins and lengths."""
    idx, margin, c_len, i_len = [], [], [], []
    for k, (it, s) in enumerate(zip(items, scores, strict=True)):
        labels = np.asarray(it.labels, dtype=bool)
        lengths = it.response_lengths()
        s = np.asarray(s, dtype=np.float64)
        good, bad = np.flatnonzero(labels), np.flatnonzero(~labels)
        g, b = np.repeat(good, len(bad)), np.tile(bad, len(good))
        idx.append(np.full(len(g), k))
        margin.append(s[g] - s[b])
        c_len.append(lengths[g])
        i_len.append(lengths[b])
    return Comparisons(_cat(idx, np.int64), _cat(margin, np.float64), _cat(c_len, np.int64), _cat(i_len, np.int64))


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def rank_average(x: np.ndarray) -> np.ndarray:
    """Ranks (N,) float64 of ``x`` starting at 0, ties given their average rank (``scipy.stats.rankdata``)."""
    return rankdata(np.asarray(x, dtype=np.float64), method="average") - 1.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of (N,) ``a`` and ``b`` (``scipy.stats.spearmanr``); NaN if either is
    constant or N < 3."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


@dataclass(frozen=True)
class LengthBias:
    """How much the scores follow length.

    ``score_length_spearman``: rank correlation of each response's score with its length (all responses).
    ``margin_length_spearman``: rank correlation, over comparisons, of the score margin with the length
    difference (correct − incorrect) -- the part of the preference that length alone would predict.
    ``accuracy_*``: comparison accuracy (ties wrong) split by whether the correct response is longer,
    shorter or of equal length; ``n_*`` how many comparisons fall in each split.
    """

    score_length_spearman: float
    margin_length_spearman: float
    accuracy_correct_longer: float
    accuracy_correct_shorter: float
    accuracy_equal_length: float
    n_correct_longer: int
    n_correct_shorter: int
    n_equal_length: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def length_bias(items: Sequence[Item], scores: Sequence[np.ndarray], comp: Comparisons) -> LengthBias:
    """Length-bias statistics of one scorer on ``items``."""
    all_scores = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]) if scores else np.zeros(0)
    all_lens = np.concatenate([it.response_lengths() for it in items]) if items else np.zeros(0)
    right = comp.margin > 0
    splits = {"longer": comp.correct_len > comp.incorrect_len, "shorter": comp.correct_len < comp.incorrect_len,
              "equal": comp.correct_len == comp.incorrect_len}
    acc = {k: float(right[m].mean()) if m.any() else float("nan") for k, m in splits.items()}
    return LengthBias(
        spearman(all_scores, all_lens),
        spearman(comp.margin, (comp.correct_len - comp.incorrect_len).astype(np.float64)),
        acc["longer"], acc["shorter"], acc["equal"],
        int(splits["longer"].sum()), int(splits["shorter"].sum()), int(splits["equal"].sum()))


@dataclass(frozen=True)
class ScoreDistribution:
    """Scores of correct and incorrect responses: summaries and histograms over shared bin ``edges``."""

    correct: dict[str, float]
    incorrect: dict[str, float]
    edges: tuple[float, ...]
    correct_hist: tuple[int, ...]
    incorrect_hist: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"correct": self.correct, "incorrect": self.incorrect, "edges": list(self.edges),
                "correct_hist": list(self.correct_hist), "incorrect_hist": list(self.incorrect_hist)}


def _summary(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {"n": 0}
    q = np.quantile(x, QUANTILES)
    return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()),
            **{f"p{round(p * 100)}": float(v) for p, v in zip(QUANTILES, q, strict=True)}, "max": float(x.max())}


def score_distribution(items: Sequence[Item], scores: Sequence[np.ndarray], *, bins: int = HIST_BINS) -> ScoreDistribution:
    """Distributions of the scores given to correct and to incorrect responses."""
    good, bad = [], []
    for it, s in zip(items, scores, strict=True):
        labels = np.asarray(it.labels, dtype=bool)
        s = np.asarray(s, dtype=np.float64)
        good.append(s[labels])
        bad.append(s[~labels])
    g = np.concatenate(good) if good else np.zeros(0)
    b = np.concatenate(bad) if bad else np.zeros(0)
    both = np.concatenate([g, b])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    return ScoreDistribution(_summary(g), _summary(b), tuple(float(e) for e in edges),
                             tuple(int(c) for c in np.histogram(g, edges)[0]),
                             tuple(int(c) for c in np.histogram(b, edges)[0]))


def gating_spread(weights: Sequence[np.ndarray], names: Sequence[str]) -> dict[str, Any]:
    """How a gated multi-objective head (ArmoRM, URM) spreads its weight over the objectives, over every
    scored response: per objective the mean and std of its weight; the mean of the largest weight; and the
    mean entropy of the weights (nats) beside the uniform one, ``log K`` (a gate near one objective has
    entropy near 0; one that ignores the prompt has std near 0).

    Args:
        weights: per item, (n_k, K) weights (rows sum to the head's logit scale, 1 for ArmoRM's softmax).
        names: the K objective names.
    """
    w = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1, len(names)) for x in weights])  # (N, K)
    p = w / np.clip(w.sum(-1, keepdims=True), 1e-12, None)  # (N, K), rows sum to 1
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)  # (N,)
    return {"objectives": {n: {"mean": float(w[:, j].mean()), "std": float(w[:, j].std())} for j, n in enumerate(names)},
            "top_weight_mean": float(p.max(-1).mean()), "entropy_mean": float(entropy.mean()),
            "entropy_uniform": float(np.log(len(names))), "responses": int(w.shape[0])}
