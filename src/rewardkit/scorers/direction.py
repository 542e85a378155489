"""A direction over a multi-output reward model's objectives (``direction:RM``; DPA, METHODS §3).

A multi-objective RM gives ``r(x, y) ∈ R^k`` (e.g. helpfulness, correctness, verbosity, ...). A user's
preference is a unit vector ``v`` (‖v‖ = 1) and the scalar reward is ``R_v(x, y) = vᵀ r(x, y)``
(Wang et al., ACL 2024). ``--direction helpfulness=0.9,verbosity=-0.4`` is normalised to
``(0.914, −0.406)``; objectives not named get weight 0; an unknown name is an error listing the known.

Objective names come from the RM folder's ``rewardkit.json`` (``objectives``), else the model config's
``id2label``. A one-output RM has the single objective ``reward`` (any positive weight gives the RM).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.reward_model import RewardModel, load_reward_model
from rewardkit.models.uncertainty import attach_uncertainty
from rewardkit.scoring import (
    DEFAULT_MAX_TOKENS,
    ScoreOutput,
    ScorerOptions,
    model_yields_uncertainty,
    score_encoded_output,
)

_ITEM = re.compile(r"^\s*([^=,\s]+)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_direction(text: str) -> dict[str, float]:
    """``"helpfulness=0.9,verbosity=-0.4"`` → ``{"helpfulness": 0.9, "verbosity": -0.4}``."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        m = _ITEM.match(part)
        if m is None:
            raise OptionError(f"bad direction item {part!r}: expected NAME=NUMBER, e.g. helpfulness=0.9,verbosity=-0.4")
        if m.group(1) in weights:
            raise OptionError(f"objective {m.group(1)!r} is given twice in the direction")
        weights[m.group(1)] = float(m.group(2))
    return weights


def unit_vector(weights: Mapping[str, float], objectives: Sequence[str]) -> np.ndarray:
    """The direction as a unit vector (k,) float64 over ``objectives`` (unnamed objectives get 0)."""
    unknown = sorted(set(weights) - set(objectives))
    if unknown:
        raise OptionError(f"unknown objective(s) {unknown}; this reward model has {list(objectives)}")
    v = np.array([float(weights.get(name, 0.0)) for name in objectives], dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise OptionError("a direction needs at least one non-zero, finite weight")
    return v / norm


def objective_names(rm: RewardModel) -> list[str]:
    """The names of the RM's outputs (its head's objectives: ``rewardkit.json``, else ``id2label``, else
    ``reward`` for a one-output RM)."""
    return rm.objectives


def objective_scores(rm: RewardModel, encoded: Sequence[Any], *, max_tokens: int = DEFAULT_MAX_TOKENS) -> np.ndarray:
    """All outputs (N, k) float32 of ``rm`` for encoded inputs, through the one scoring path."""
    out = score_encoded_output(rm, encoded, max_tokens=max_tokens)
    return out.objectives if out.objectives is not None else out.rewards[:, None]


class DirectionScorer:
    """``direction:RM`` with ``direction="helpfulness=0.9,verbosity=-0.4"`` (or a mapping), or the spec
    ``direction:RM#helpfulness=0.9,verbosity=-0.4``: rewards ``vᵀ r(x, y)``."""

    def __init__(
        self, path: str, *, direction: str | Mapping[str, float] | None = None, max_length: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto", dtype: str = "auto",
    ) -> None:
        if direction is None:
            path, sep, direction = path.rpartition("#")
            if not sep:
                raise OptionError("a direction scorer needs a direction: direction:RM#name=w,... or direction=...")
        weights = parse_direction(direction) if isinstance(direction, str) else dict(direction)
        self.rm = attach_uncertainty(load_reward_model(path, max_length=max_length, device=device, dtype=dtype))
        self.objectives = objective_names(self.rm)
        self.vector = unit_vector(weights, self.objectives)
        self.max_tokens = max_tokens
        self.tokens_read = 0
        shown = ",".join(f"{n}={w:.3f}" for n, w in zip(self.objectives, self.vector, strict=True) if w)
        self.name = f"{path}#{shown}"

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> DirectionScorer:
        """``direction:RM#name=w,...``, or ``direction:RM`` with ``opts.direction``."""
        return cls(path, direction=opts.direction if "#" not in path else None, max_length=opts.max_length,
                   max_tokens=opts.batch_tokens or DEFAULT_MAX_TOKENS, device=opts.device, dtype=opts.dtype)

    def _output(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool,
    ) -> ScoreOutput:
        """The model's own output for the items: its reward, objectives (if any), truncation, uncertainty."""
        if len(prompts) != len(responses):
            raise OptionError(f"{len(prompts)} prompts but {len(responses)} responses")
        flags = [conversational] * len(prompts) if isinstance(conversational, bool) else list(conversational)
        encoded = [self.rm.encoder.encode(p, r, c) for p, r, c in zip(prompts, responses, flags, strict=True)]
        self.tokens_read += sum(len(e.input_ids) for e in encoded)
        return score_encoded_output(self.rm, encoded, max_tokens=self.max_tokens)

    def objective_scores(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (N, k) float32, truncated (N,) bool)`` over every objective."""
        out = self._output(prompts, responses, conversational)
        return (out.objectives if out.objectives is not None else out.rewards[:, None]), out.truncated

    @property
    def yields_uncertainty(self) -> bool:
        """As the model's own scorer: a fitted last-layer U (it describes the features every objective is
        read from, so it applies to any direction over them), a gaussian head or an ensemble."""
        return model_yields_uncertainty(self.rm)

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        """Rewards (N,) float32 = the objective scores (N, k) times the unit direction (k,)."""
        out = self._output(prompts, responses, conversational)
        scores = out.objectives if out.objectives is not None else out.rewards[:, None]
        return ScoreOutput((scores.astype(np.float64) @ self.vector).astype(np.float32), out.truncated,
                           scores, tuple(self.objectives), out.uncertainty)
