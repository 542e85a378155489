"""Any scorer as a preference model: the probability that the first of two responses is the better one.

One function for everything that filters or pseudo-labels pairs (``data curate --filter-by``, ``train
ssrm``): for a pointwise scorer (a reward model, a multi-objective or pessimistic one, a verifier) it is
the Bradley-Terry probability sigma(r(x, a) - r(x, b)); for a pairwise judge it is sigma of the judge's
log-odds, which a judge built with both orders already averages over (a, b) and (b, a).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from rewardkit.data.formats import Message
from rewardkit.scorers import pointwise_function
from rewardkit.scoring import is_pairwise


@dataclass(frozen=True)
class PairPreferences:
    """``p_first``: (N,) float64, P(first better); ``truncated``: (N,) bool, either side cut;
    ``first_scores`` / ``second_scores``: (N,) float64 rewards of each side (pointwise scorers only)."""

    p_first: np.ndarray
    truncated: np.ndarray
    first_scores: np.ndarray | None = None
    second_scores: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        """(N,) max(p, 1 - p): how sure the scorer is of its own choice (SSRM's threshold quantity)."""
        return np.maximum(self.p_first, 1.0 - self.p_first)


def preference_probabilities(scorer: Any, prompts: Sequence[Sequence[Message]], first: Sequence[Sequence[Message]],
                             second: Sequence[Sequence[Message]], conversational: Sequence[bool], *,
                             progress: Callable[[int], None] | None = None) -> PairPreferences:
    """P(``first[i]`` is better than ``second[i]``) for N pairs under ``scorer`` (any built scorer)."""
    n = len(prompts)
    if not (len(first) == len(second) == len(conversational) == n):
        raise ValueError(f"{n} prompts but {len(first)} first, {len(second)} second, {len(conversational)} flags")
    if is_pairwise(scorer):
        out = scorer.compare(prompts, first, second, progress=progress)
        return PairPreferences(expit(np.asarray(out.rewards, dtype=np.float64)), np.asarray(out.truncated, bool))
    fn = pointwise_function(scorer)
    out = fn([*prompts, *prompts], [*first, *second], [*conversational, *conversational], progress=progress)
    rewards = np.asarray(out.rewards, dtype=np.float64)
    cut = np.asarray(out.truncated, dtype=bool)
    return PairPreferences(expit(rewards[:n] - rewards[n:]), cut[:n] | cut[n:], rewards[:n], rewards[n:])
