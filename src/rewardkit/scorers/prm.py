"""A process reward model as a scorer (``prm:DIR``, pointwise): the reward of a response is an aggregate of
its steps' P(right).

The response (its messages' contents joined by ``"\\n"``) is split into steps at ``"\\n"`` with blank lines
dropped (:func:`rewardkit.models.prm.split_response`), encoded exactly as in training, and each step's
P(right) read at its label token. Aggregation, chosen in the spec: ``prm:DIR`` or ``prm:DIR#agg=min``
(default: the weakest step), ``prm:DIR#agg=last`` (the last step's), ``prm:DIR#agg=product`` (all steps
right, as if independent). Steps dropped by the max length are not scored (the item is marked truncated).
:meth:`PrmScorer.step_scores` returns the per-step probabilities; :meth:`PrmScorer.score_steps` scores
steps given as a list (``eval --benchmark first-error``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.prm import load_prm, split_response, step_probabilities
from rewardkit.scoring import DEFAULT_MAX_TOKENS, ScoreOutput, ScorerOptions


def _product(p: np.ndarray) -> float:
    return float(np.exp(np.sum(np.log(np.clip(p.astype(np.float64), 1e-300, 1.0)))))


AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {
    "min": lambda p: float(np.min(p)),
    "last": lambda p: float(p[-1]),
    "product": _product,
}


def aggregate(probabilities: Sequence[np.ndarray], how: str = "min") -> np.ndarray:
    """Rewards (N,) float32 from each response's step probabilities (k_i,) by ``how`` (min, last, product)."""
    if how not in AGGREGATIONS:
        raise OptionError(f"unknown PRM aggregation {how!r}; known: {sorted(AGGREGATIONS)}")
    fn = AGGREGATIONS[how]
    return np.array([fn(p) if len(p) else np.nan for p in probabilities], dtype=np.float32)


def parse_prm_spec(path: str) -> tuple[str, str]:
    """``"DIR#agg=last"`` -> (``DIR``, ``last``); ``"DIR"`` -> (``DIR``, ``min``)."""
    folder, sep, rest = path.partition("#")
    if not sep:
        return folder, "min"
    key, eq, value = rest.partition("=")
    if key.strip() != "agg" or not eq:
        raise OptionError(f"prm:{path}: expected prm:DIR#agg=min|last|product, got '#{rest}'")
    if value.strip() not in AGGREGATIONS:
        raise OptionError(f"prm:{path}: unknown aggregation {value.strip()!r}; known: {sorted(AGGREGATIONS)}")
    return folder, value.strip()


@dataclass(frozen=True)
class StepScores:
    """``probabilities``: per input, P(right) of each scored step (k_i,) float32; ``truncated`` (N,) bool."""

    probabilities: list[np.ndarray]
    truncated: np.ndarray


class PrmScorer:
    """``prm:DIR[#agg=min|last|product]``: a PRM folder written by ``rewardkit train prm``."""

    pointwise = True
    yields_uncertainty = False

    def __init__(self, path: str, *, agg: str = "min", max_length: int | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto", dtype: str = "auto") -> None:
        if agg not in AGGREGATIONS:
            raise OptionError(f"unknown PRM aggregation {agg!r}; known: {sorted(AGGREGATIONS)}")
        self.prm = load_prm(path, max_length=max_length, device=device, dtype=dtype)
        self.agg = agg
        self.max_tokens = max_tokens
        self.name = path if agg == "min" else f"{path}#agg={agg}"

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> PrmScorer:
        folder, agg = parse_prm_spec(path)
        return cls(folder, agg=agg, max_length=opts.max_length, max_tokens=opts.batch_tokens or DEFAULT_MAX_TOKENS,
                   device=opts.device, dtype=opts.dtype)

    def score_steps(self, prompts: Sequence[Sequence[Message]], steps: Sequence[Sequence[str]],
                    conversational: Sequence[bool] | bool = True) -> StepScores:
        """P(right) of every given step of each (prompt, steps) input."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        flags = [conversational] * len(prompts) if isinstance(conversational, bool) else list(conversational)
        encoded = [self.prm.encoder.encode(p, list(s), c) for p, s, c in zip(prompts, steps, flags, strict=True)]
        probs = step_probabilities(self.prm.model, self.prm.pad_token_id, encoded, max_tokens=self.max_tokens)
        return StepScores(probs, np.array([e.truncated for e in encoded], dtype=bool))

    def step_scores(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
                    conversational: Sequence[bool] | bool = True) -> list[np.ndarray]:
        """Per response, P(right) of each of its steps (k_i,) float32 (split at newlines, blank lines dropped)."""
        return self.score_steps(prompts, self._split(responses), conversational).probabilities

    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
              conversational: Sequence[bool] | bool = True) -> ScoreOutput:
        out = self.score_steps(prompts, self._split(responses), conversational)
        return ScoreOutput(aggregate(out.probabilities, self.agg), out.truncated)

    @staticmethod
    def _split(responses: Sequence[Sequence[Message]]) -> list[list[str]]:
        return [split_response("\n".join(m["content"] for m in r)) for r in responses]
