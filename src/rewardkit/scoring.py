"""Scoring: one forward path for training and inference, token-budget batching, and scorers.

A *scorer* is anything with ``score(prompts, responses, conversational) -> ScoreOutput``; they are
registered by name in :data:`SCORERS` (``rm``: a rewardkit or HF sequence-classification RM folder;
``length``: a tiny dummy that scores by response length, for fast end-to-end tests).

Scores do not depend on the batch size: sequences are right-padded with a pad token distinct from EOS
and attention masks are exact, so batch 1 and batch 64 agree to float precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rewardkit.data.chat import Encoded
from rewardkit.data.collate import pad_sequences, token_budget_batches
from rewardkit.data.formats import Message
from rewardkit.models.reward_model import RewardModel, load_reward_model
from rewardkit.registry import Registry

DEFAULT_MAX_TOKENS = 16_384
DEFAULT_MAX_BATCH = 256


@dataclass(frozen=True)
class ScoreOutput:
    """``rewards``: (N,) float32; ``truncated``: (N,) bool, whether the truncation policy cut the input."""

    rewards: np.ndarray
    truncated: np.ndarray


class Scorer(Protocol):
    """Anything that maps (prompt, response) message lists to scalar rewards."""

    name: str

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput: ...


SCORERS: Registry[Callable[..., Scorer]] = Registry("scorer")


def forward_rewards(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards of a padded batch: ``batch`` has ``input_ids``/``attention_mask`` (N, T) and optionally
    ``token_type_ids``; returns (N,) in the model's dtype. The model pools as it does under plain
    transformers (BERT: pooler on [CLS]; decoders: last non-pad token)."""
    return model(**batch).logits[:, 0]


@torch.inference_mode()
def score_token_ids(
    model: Any, pad_id: int, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None,
    *, max_tokens: int = DEFAULT_MAX_TOKENS, max_batch: int = DEFAULT_MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Score tokenized sequences, longest first, in batches of at most ``max_tokens`` padded tokens;
    returns (N,) float32 in input order. ``token_type_ids`` may hold empty lists (decoders)."""
    device = next(model.parameters()).device
    out = np.zeros(len(input_ids), dtype=np.float32)
    for idx in token_budget_batches([len(s) for s in input_ids], max_tokens, max_batch):
        types = [token_type_ids[i] for i in idx] if token_type_ids is not None else None
        batch = pad_sequences([input_ids[i] for i in idx], types, pad_id)
        rewards = forward_rewards(model, {k: v.to(device) for k, v in batch.items()})
        out[idx] = rewards.float().cpu().numpy()
        if progress is not None:
            progress(len(idx))
    return out


def score_encoded(rm: RewardModel, encoded: Sequence[Encoded], **kwargs: Any) -> np.ndarray:
    """:func:`score_token_ids` for :class:`~rewardkit.data.chat.Encoded` inputs of ``rm``."""
    ids = [e.input_ids for e in encoded]
    types = [e.token_type_ids or [] for e in encoded]
    return score_token_ids(rm.model, rm.pad_token_id, ids, types, **kwargs)


def _broadcast(flag: Sequence[bool] | bool, n: int) -> list[bool]:
    return [flag] * n if isinstance(flag, bool) else list(flag)


@SCORERS.register("rm")
class RewardModelScorer:
    """A scalar reward model folder (rewardkit or any HF sequence-classification RM) as a scorer."""

    def __init__(
        self, path: str, *, max_length: int | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
        device: str = "cpu",
    ) -> None:
        self.rm = load_reward_model(path, max_length=max_length, device=device)
        self.name = path
        self.max_tokens = max_tokens

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        flags = _broadcast(conversational, len(prompts))
        encoded = [self.rm.encoder.encode(p, r, c) for p, r, c in zip(prompts, responses, flags, strict=True)]
        rewards = score_encoded(self.rm, encoded, max_tokens=self.max_tokens)
        return ScoreOutput(rewards, np.array([e.truncated for e in encoded], dtype=bool))


@SCORERS.register("length")
class LengthScorer:
    """Dummy scorer: reward = number of characters of the response (fast tests; 'longer wins')."""

    def __init__(self, path: str = "length", **_: Any) -> None:
        self.name = "length"

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        rewards = np.array([sum(len(m["content"]) for m in r) for r in responses], dtype=np.float32)
        return ScoreOutput(rewards, np.zeros(len(responses), dtype=bool))


def load_scorer(spec: str, **kwargs: Any) -> Scorer:
    """``spec`` is ``kind:path`` (e.g. ``rm:runs/rm``, ``length``) or a path, which means ``rm:path``."""
    kind, sep, path = spec.partition(":")
    if sep and kind in SCORERS:
        return SCORERS.get(kind)(path, **kwargs)
    if spec in SCORERS:
        return SCORERS.get(spec)(spec, **kwargs)
    return SCORERS.get("rm")(spec, **kwargs)
