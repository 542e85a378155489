"""Selection rules over per-pair numbers: scorer agreement, best fraction per group, length balance.

Pure functions on numpy columns over the M pairs that reach the step (input order); each returns a
boolean keep mask (M,) or weights (M,). Nothing here sees a text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rewardkit.errors import OptionError

SELECT_BY = ("margin", "chosen", "mean")


@dataclass(frozen=True)
class KeepRule:
    """``--keep``: ``agree`` (P(chosen > rejected) > 0.5) or ``top`` with ``fraction`` in (0, 1]."""

    kind: str
    fraction: float = 1.0


def parse_keep(text: str) -> KeepRule:
    """``"agree"`` or ``"top:F"`` (0 < F <= 1) -> :class:`KeepRule`; anything else is an OptionError."""
    if text == "agree":
        return KeepRule("agree")
    kind, _, value = text.partition(":")
    if kind == "top":
        try:
            f = float(value)
        except ValueError:
            f = float("nan")
        if 0.0 < f <= 1.0:
            return KeepRule("top", f)
    raise OptionError(f"--keep must be 'agree' or 'top:F' with 0 < F <= 1 (e.g. top:0.3), got {text!r}")


def selection_values(by: str, chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """(M,) float64 value each pair is ranked by: ``margin`` chosen − rejected reward (default),
    ``chosen`` the chosen reward, ``mean`` the mean of both rewards."""
    if by == "margin":
        return chosen - rejected
    if by == "chosen":
        return chosen.copy()
    if by == "mean":
        return (chosen + rejected) / 2.0
    raise OptionError(f"--select-by must be one of {', '.join(SELECT_BY)}, got {by!r}")


def top_fraction(values: np.ndarray, groups: np.ndarray, fraction: float) -> np.ndarray:
    """(M,) bool: within each group code of ``groups`` (M,) int, the ``ceil(fraction × size)`` pairs with
    the highest ``values`` (M,) float; ties go to the earlier pair (a stable sort)."""
    keep = np.zeros(len(values), dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        k = math.ceil(fraction * len(rows) - 1e-9)
        order = np.argsort(-values[rows], kind="stable")
        keep[rows[order[:k]]] = True
    return keep


def longer_wins(chosen_len: np.ndarray, rejected_len: np.ndarray) -> float | None:
    """Fraction of pairs whose chosen response is longer, among pairs of unequal length (None if none)."""
    unequal = chosen_len != rejected_len
    n = int(unequal.sum())
    return float((chosen_len[unequal] > rejected_len[unequal]).sum() / n) if n else None


def balance_drop(chosen_len: np.ndarray, rejected_len: np.ndarray, *, seed: int) -> np.ndarray:
    """(M,) bool keep mask: a seeded random subset of the majority side (chosen longer, or chosen shorter)
    is dropped so both sides have as many pairs; equal-length pairs are all kept. "Longer wins" is then
    exactly 50% (or undefined, when no unequal pair is left)."""
    longer = np.flatnonzero(chosen_len > rejected_len)
    shorter = np.flatnonzero(chosen_len < rejected_len)
    keep = np.ones(len(chosen_len), dtype=bool)
    major, minor = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
    excess = len(major) - len(minor)
    if excess:
        rng = np.random.default_rng(seed)
        keep[rng.choice(major, size=excess, replace=False)] = False
    return keep


def balance_weights(chosen_len: np.ndarray, rejected_len: np.ndarray) -> np.ndarray:
    """(M,) float64 weights by inverse frequency: with U unequal pairs, L of them chosen-longer and
    S = U − L chosen-shorter, a chosen-longer pair weighs U / (2L) and a chosen-shorter one U / (2S), so
    each side weighs U / 2 in total; equal-length pairs weigh 1. With one side empty nothing can be
    balanced and every weight is 1."""
    w = np.ones(len(chosen_len), dtype=np.float64)
    longer, shorter = chosen_len > rejected_len, chosen_len < rejected_len
    n_l, n_s = int(longer.sum()), int(shorter.sum())
    if n_l and n_s:
        w[longer] = (n_l + n_s) / (2 * n_l)
        w[shorter] = (n_l + n_s) / (2 * n_s)
    return w
