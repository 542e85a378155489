"""Compute accounting for inference-time alignment: what every Best-of-N / Speculative Rejection run cost.

Counted per prompt and summed per run:

- ``generated_tokens``: tokens sampled from the policy (the cost BoN and SpR are compared on);
- ``policy_forward_tokens``: tokens the policy read — each prompt's real tokens once (its prefill is
  shared by all its samples) plus one token per running sample per decode step;
- ``scorer_calls`` / ``scorer_items`` / ``scorer_tokens``: calls into the scorer, (prompt, response)
  items scored, and the tokens the scorer's model read (0 for programmatic verifiers; for reward-model
  scorers the ids of their own encoder, prompt included);
- ``policy_s`` / ``scorer_s`` / ``wall_s``: seconds spent decoding, scoring, and in total.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from rewardkit.data.formats import Message


@dataclass(frozen=True)
class Compute:
    """What a run (or one prompt of it) cost; ``+`` adds two of them field by field."""

    generated_tokens: int = 0
    policy_forward_tokens: int = 0
    scorer_calls: int = 0
    scorer_items: int = 0
    scorer_tokens: int = 0
    policy_s: float = 0.0
    scorer_s: float = 0.0
    wall_s: float = 0.0

    def __add__(self, other: Compute) -> Compute:
        return Compute(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def total(parts: Sequence[Compute]) -> Compute:
    """The sum of ``parts`` (an empty sum is all zeros)."""
    out = Compute()
    for part in parts:
        out = out + part
    return out


def apportion(whole: Compute, weights: Sequence[float]) -> list[Compute]:
    """Split shared seconds of a batch over its prompts in proportion to ``weights`` (their policy forward
    tokens); counts are not split (callers count them per prompt). Returns one time-only Compute each."""
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / max(len(w), 1))
    return [Compute(policy_s=whole.policy_s * s, scorer_s=whole.scorer_s * s, wall_s=whole.wall_s * s)
            for s in share.tolist()]


class MeteredScorer:
    """Wraps any scorer: scores one prompt's responses (plain strings) and counts calls, items, the
    scorer's input tokens and seconds.

    Input tokens: a scorer with ``encode``/``score_batch_encoded`` (the core ``rm`` scorer) is encoded
    once and its ids counted; a scorer keeping a ``tokens_read`` counter (rewardkit's hybrid and
    direction scorers) is read before and after; anything else (programmatic verifiers) counts 0.
    """

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.calls = 0
        self.items = 0
        self.tokens = 0
        self.seconds = 0.0

    def score(self, prompt: Sequence[Message], responses: Sequence[str], conversational: bool = True) -> np.ndarray:
        """Rewards (len(responses),) float32 of ``responses`` to ``prompt``."""
        if not responses:
            return np.zeros(0, dtype=np.float32)
        t0 = time.perf_counter()
        prompts = [list(prompt)] * len(responses)
        replies = [[{"role": "assistant", "content": r}] for r in responses]
        if hasattr(self.scorer, "encode") and hasattr(self.scorer, "score_batch_encoded"):
            encoded = self.scorer.encode(prompts, replies, conversational)
            self.tokens += sum(len(e.input_ids) for e in encoded)
            rewards = self.scorer.score_batch_encoded(encoded).rewards
        else:
            before = getattr(self.scorer, "tokens_read", 0)
            rewards = self.scorer.score(prompts, replies, conversational).rewards
            self.tokens += getattr(self.scorer, "tokens_read", 0) - before
        self.calls += 1
        self.items += len(responses)
        self.seconds += time.perf_counter() - t0
        return np.asarray(rewards, dtype=np.float32)

    def snapshot(self) -> Compute:
        """The counters so far, as a :class:`Compute` (scorer fields only)."""
        return Compute(scorer_calls=self.calls, scorer_items=self.items, scorer_tokens=self.tokens,
                       scorer_s=self.seconds)


def since(before: Compute, after: Compute) -> Compute:
    """``after − before`` field by field (the cost of what happened in between)."""
    return Compute(**{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(after)})
