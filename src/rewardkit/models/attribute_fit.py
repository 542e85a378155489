"""ArmoRM's closed-form parts (METHODS §2): per-objective ridge regression with the penalty chosen on a
validation split, and the verbosity debiasing rule. Pure numpy, float64.

Ridge (sklearn's ``Ridge(alpha, fit_intercept=False)``): ``w = argmin ‖y − X w‖² + α‖w‖²
= (XᵀX + αI)⁻¹ Xᵀ y``, computed for every α of the grid at once from one thin SVD ``X = U S Vᵀ``:
``w(α) = V diag(s / (s² + α)) Uᵀ y``. Each objective is fitted on its own labelled rows (NaN labels are
skipped per objective), split 80/20 (seeded); the α with the lowest validation MSE wins (ties: the smaller
α) and, as ArmoRM does, the weights are those fitted on the training split.

Verbosity debiasing: on a reference set's objective values ``R`` (N, K), each objective i gets the first
penalty λ of a sorted grid at which ``Spearman(R_i − λ R_verb, R_verb) ≤ threshold``; λ starts at 1, so
the verbosity column itself and an objective that never falls below the threshold keep λ = 1. The
transform ``T = I; T[verb, :] −= λ`` gives debiased objectives ``R' = R T`` (the verbosity column
becomes 0), which the multi head applies as coefficients ``c = w Tᵀ``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardkit.errors import OptionError

RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)  # ArmoRM's grid
# ArmoRM's penalty grid: 0, .01, .025, .05, .075, .1, .125, .15, then .2 to .95 by .05
VERBOSITY_PENALTIES = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15,
                       *(round(0.2 + 0.05 * i, 2) for i in range(16)))
CORR_THRESHOLD = 0.03  # ArmoRM's command-line default


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """Ridge weights without intercept for each penalty: ``x`` (n, d), ``y`` (n,) -> (len(alphas), d) float64."""
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if any(a <= 0 for a in alphas):
        raise OptionError(f"ridge penalties must be > 0, got {list(alphas)}")
    u, s, vt = np.linalg.svd(x64, full_matrices=False)  # (n, r), (r,), (r, d)
    uty = u.T @ y64  # (r,)
    shrink = s[None, :] / (s[None, :] ** 2 + np.asarray(alphas, dtype=np.float64)[:, None])  # (A, r)
    return (shrink * uty[None, :]) @ vt  # (A, d)


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights (d,) float64 for one penalty."""
    return ridge_path(x, y, [alpha])[0]


@dataclass(frozen=True)
class RidgeFit:
    """One objective's fit: ``weights`` (d,), the chosen ``alpha``, validation MSE per grid penalty."""

    weights: np.ndarray
    alpha: float
    val_mse: dict[float, float]
    n_train: int
    n_val: int


def select_ridge(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 alphas: Sequence[float] = RIDGE_ALPHAS) -> RidgeFit:
    """Fit every α on the training rows and keep the one with the lowest validation MSE (ties: the first,
    i.e. the smaller α of a sorted grid). With no validation row the middle of the grid is used."""
    grid = sorted(float(a) for a in alphas)
    path = ridge_path(x_train, y_train, grid)  # (A, d)
    if len(y_val) == 0:
        k = len(grid) // 2
        return RidgeFit(path[k], grid[k], {}, len(y_train), 0)
    pred = np.asarray(x_val, dtype=np.float64) @ path.T  # (n_val, A)
    mse = ((pred - np.asarray(y_val, dtype=np.float64)[:, None]) ** 2).mean(0)
    k = int(np.argmin(mse))
    return RidgeFit(path[k], grid[k], dict(zip(grid, mse.tolist(), strict=True)), len(y_train), len(y_val))


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices of a seeded shuffle; ``round(val_fraction·n)`` validation rows, at least one
    when n ≥ 2 and the fraction is positive, and at least one training row."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(round(val_fraction * n), 1 if val_fraction > 0 and n >= 2 else 0), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fit_objectives(x: np.ndarray, labels: np.ndarray, *, alphas: Sequence[float] = RIDGE_ALPHAS,
                   val_fraction: float = 0.2, seed: int = 42, names: Sequence[str] | None = None
                   ) -> list[RidgeFit]:
    """Stage 1: one ridge per objective on its labelled rows. ``x`` (n, d) features, ``labels`` (n, K)
    with NaN for missing; returns K fits (stack their ``weights`` for W (K, d))."""
    fits = []
    for k in range(labels.shape[1]):
        rows = np.flatnonzero(~np.isnan(labels[:, k]))
        name = names[k] if names is not None else str(k)
        if len(rows) == 0:
            raise OptionError(f"objective {name!r} has no label to fit")
        train, val = split_rows(len(rows), val_fraction, seed)
        tr, va = rows[train], rows[val]
        fits.append(select_ridge(x[tr], labels[tr, k], x[va], labels[va, k], alphas))
    return fits


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n (float64) with ties given their average rank (scipy's ``rankdata(method='average')``)."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_a)) + 1]  # where each run of equal values begins
    ends = np.r_[starts[1:], len(a)]
    ranks = np.empty(len(a), dtype=np.float64)
    for lo, hi in zip(starts, ends, strict=True):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2.0  # mean of ranks lo+1 .. hi
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson of average ranks); NaN when either side is constant."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def verbosity_penalties(objectives: np.ndarray, verbosity: int, *, threshold: float = CORR_THRESHOLD,
                        grid: Sequence[float] = VERBOSITY_PENALTIES) -> np.ndarray:
    """λ (K,) float64: for each objective the first λ of the sorted ``grid`` with
    ``Spearman(R_i − λ R_verb, R_verb) ≤ threshold``, else 1 (and 1 for the verbosity column)."""
    r = np.asarray(objectives, dtype=np.float64)
    penalties = np.ones(r.shape[1], dtype=np.float64)
    verb = r[:, verbosity]
    for i in range(r.shape[1]):
        if i == verbosity:
            continue
        for lam in sorted(grid):
            rho = spearman(r[:, i] - lam * verb, verb)
            if rho <= threshold:  # NaN (a constant column) never passes
                penalties[i] = lam
                break
    return penalties


def debias_transform(penalties: np.ndarray, verbosity: int) -> np.ndarray:
    """``T = I; T[verb, :] −= λ`` (K, K) float64, so that ``(R T)_i = R_i − λ_i R_verb``."""
    t = np.eye(len(penalties), dtype=np.float64)
    t[verbosity, :] -= penalties
    return t
