"""Scorers beyond the core reward model, and how an evaluation builds any scorer from its spec.

Registered in :data:`rewardkit.scoring.SCORERS` (lazily, so importing the registry loads no model):

- ``rm:PATH`` (or a bare path) -- a rewardkit or any HF sequence-classification RM (core);
- ``dpo:POLICY`` -- a DPO policy's implicit reward, with ``ref_model`` or reference-free
  (:mod:`rewardkit.scorers.implicit`);
- ``judge:MODEL`` -- a generative judge reading the answer-token logits of an instruct LM
  (:mod:`rewardkit.scorers.judge`);
- ``length`` -- a dummy scoring responses by their length (core; fast tests).

Pointwise scorers have ``score(prompts, responses, conversational) -> ScoreOutput``; pairwise scorers
(judges) have ``compare(prompts, first, second) -> ScoreOutput`` of log-odds that ``first`` is better.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardkit.data.chat import PairEncoder
from rewardkit.data.formats import Message
from rewardkit.models.devices import DTYPES
from rewardkit.scorers.lm import DEFAULT_LM_TOKENS, CachingTokenizer, model_fingerprint
from rewardkit.scoring import (
    DEFAULT_MAX_TOKENS,
    SCORERS,
    RewardModelScorer,
    ScoreOutput,
    Scorer,
    score_encoded,
)


@dataclass(frozen=True)
class ScorerOptions:
    """Settings every scorer of one evaluation shares. ``batch_tokens`` None means the scorer's default
    (16,384 padded tokens for reward models, 2,048 for LM scorers, whose logits carry the vocabulary)."""

    max_length: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    batch_tokens: int | None = None
    ref_model: str | None = None
    ref_free: str | None = None
    seed: int = 0
    judge_both_orders: bool = True


def parse_spec(spec: str) -> tuple[str, str]:
    """``"kind:path"`` -> (kind, path) for a registered kind; a bare registered name -> (name, name);
    anything else is a reward-model path (``rm``) -- the rule of :func:`rewardkit.scoring.load_scorer`."""
    kind, sep, path = spec.partition(":")
    if sep and kind in SCORERS:
        return kind, path
    if spec in SCORERS:
        return spec, spec
    return "rm", spec


def build_scorer(spec: str, opts: ScorerOptions) -> Scorer:
    """The scorer named by ``spec`` with the evaluation's settings."""
    kind, path = parse_spec(spec)
    factory = SCORERS.get(kind)
    if kind == "rm":
        scorer = factory(path, max_length=opts.max_length, max_tokens=opts.batch_tokens or DEFAULT_MAX_TOKENS,
                         device=opts.device)
        scorer.rm.model.to(DTYPES[opts.dtype])
        return scorer
    lm = {"max_length": opts.max_length, "max_tokens": opts.batch_tokens or DEFAULT_LM_TOKENS,
          "dtype": opts.dtype, "device": opts.device}
    if kind == "dpo":
        return factory(path, ref_model=opts.ref_model, ref_free=opts.ref_free, **lm)
    if kind == "judge":
        return factory(path, seed=opts.seed, both_orders=opts.judge_both_orders, **lm)
    # other registered scorers get the shared settings their constructor names
    shared = {"max_length": opts.max_length, "max_tokens": opts.batch_tokens or DEFAULT_MAX_TOKENS,
              "device": opts.device, "dtype": opts.dtype, "seed": opts.seed}
    params = inspect.signature(factory).parameters
    return factory(path, **{k: v for k, v in shared.items() if k in params})


def is_pairwise(scorer: Any) -> bool:
    """True for judges, which compare two responses instead of scoring one."""
    return callable(getattr(scorer, "compare", None))


def scorer_identity(scorer: Any, opts: ScorerOptions) -> dict[str, Any]:
    """Everything that changes this scorer's scores: the cache namespace and the reproducibility record."""
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
        with torch.inference_mode():
            rewards = score_encoded(self.scorer.rm, encoded, max_tokens=self.scorer.max_tokens, progress=progress)
        return ScoreOutput(rewards, np.array([e.truncated for e in encoded], dtype=bool))


def pointwise_function(scorer: Any) -> PointwiseFn:
    """``fn(prompts, responses, conversational, progress=None) -> ScoreOutput`` for a pointwise scorer."""
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


__all__ = ["ScorerOptions", "build_scorer", "is_pairwise", "parse_spec", "pointwise_function", "scorer_identity"]
