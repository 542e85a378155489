"""Scorers beyond the core reward model, and the helpers an evaluation uses on any scorer.

Every scorer is registered in :data:`rewardkit.scoring.SCORERS` (lazily, so importing the registry loads
no model) and built one way, :func:`rewardkit.scoring.build_scorer` (``SCORERS[kind].from_spec(path,
ScorerOptions)``):

- ``rm:PATH`` (or a bare path) -- a rewardkit or any HF sequence-classification RM (core);
- ``dpo:POLICY`` -- a DPO policy's implicit reward, with ``ref_model`` or reference-free
  (:mod:`rewardkit.scorers.implicit`);
- ``judge:MODEL`` -- a generative judge reading the answer-token logits of an instruct LM
  (:mod:`rewardkit.scorers.judge`; pairwise);
- ``direction:RM#name=w,...`` -- a direction over a multi-objective RM's objectives
  (:mod:`rewardkit.scorers.direction`);
- ``verifier`` / ``verifier:FILE`` -- programmatic checks (:mod:`rewardkit.scorers.verifier`);
- ``hybrid:SPEC`` -- the verifier where an item is checkable, SPEC elsewhere (:mod:`rewardkit.scorers.hybrid`);
- ``length`` -- a dummy scoring responses by their length (core; fast tests).

Pointwise scorers have ``score(prompts, responses, conversational) -> ScoreOutput``; pairwise scorers
(judges) have ``compare(prompts, first, second) -> ScoreOutput`` of log-odds that ``first`` is better.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from rewardkit.data.chat import PairEncoder
from rewardkit.data.formats import Message
from rewardkit.scorers.lm import CachingTokenizer, model_fingerprint
from rewardkit.scoring import (
    SCORERS,
    PessimisticScorer,
    RewardModelScorer,
    ScoreOutput,
    ScorerOptions,
    build_scorer,
    is_pairwise,
    parse_spec,
    score_encoded_output,
)


def scorer_identity(scorer: Any, opts: ScorerOptions) -> dict[str, Any]:
    """Everything that changes this scorer's scores: the cache namespace and the reproducibility record."""
    if isinstance(scorer, PessimisticScorer):
        return {**scorer_identity(scorer.inner, opts), "pessimism": scorer.k}
    if hasattr(scorer, "identity"):
        return dict(scorer.identity())
    if isinstance(scorer, RewardModelScorer):
        rm = scorer.rm
        return {"kind": "rm", "model": rm.name, "fingerprint": model_fingerprint(_local_path(rm.name)),
                "max_length": rm.encoder.max_length, "input_format": rm.encoder.input_format,
                "dtype": str(next(rm.model.parameters()).dtype).removeprefix("torch."),
                "trained_on": (rm.metadata.get("data") or {}).get("sha256")}
    return {"kind": type(scorer).__name__, "name": getattr(scorer, "name", type(scorer).__name__)}


def _local_path(name: str) -> str:
    from rewardkit.models.backbones import resolve_backbone

    return resolve_backbone(name)


PointwiseFn = Callable[..., ScoreOutput]


class TokenizeOnceRM:
    """A reward-model scorer whose inputs are built by the RM's own encoder over a caching tokenizer, so
    each prompt is tokenized once however many responses it has; scoring is the core's length-sorted,
    token-budget batched pass (:func:`rewardkit.scoring.score_encoded`), identical ids and scores."""

    def __init__(self, scorer: RewardModelScorer) -> None:
        rm = scorer.rm
        self.scorer = scorer
        self.tokenizer = CachingTokenizer(rm.tokenizer)
        self.encoder = PairEncoder(self.tokenizer, rm.encoder.input_format, rm.encoder.max_length)

    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
              conversational: Sequence[bool], *, progress: Callable[[int], None] | None = None) -> ScoreOutput:
        encoded = [self.encoder.encode(p, r, c) for p, r, c in zip(prompts, responses, conversational, strict=True)]
        return score_encoded_output(self.scorer.rm, encoded, max_tokens=self.scorer.max_tokens, progress=progress)


def pointwise_function(scorer: Any) -> PointwiseFn:
    """``fn(prompts, responses, conversational, progress=None) -> ScoreOutput`` for a pointwise scorer."""
    if isinstance(scorer, PessimisticScorer):
        inner = pointwise_function(scorer.inner)
        return lambda *args, progress=None: scorer.adjust(inner(*args, progress=progress))
    if isinstance(scorer, RewardModelScorer):
        return TokenizeOnceRM(scorer).score
    takes_progress = "progress" in inspect.signature(scorer.score).parameters

    def fn(prompts: Any, responses: Any, conversational: Any, *, progress: Callable[[int], None] | None = None
           ) -> ScoreOutput:
        if takes_progress:
            return scorer.score(prompts, responses, conversational, progress=progress)
        out = scorer.score(prompts, responses, conversational)
        if progress is not None:
            progress(len(prompts))
        return out

    return fn


__all__ = ["SCORERS", "ScoreOutput", "ScorerOptions", "build_scorer", "is_pairwise", "parse_spec", "pointwise_function",
           "scorer_identity"]
