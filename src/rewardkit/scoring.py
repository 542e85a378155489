"""Scoring: one forward path for training and inference, token-budget batching, and scorers.

A *scorer* is anything with ``score(prompts, responses, conversational) -> ScoreOutput``; they are
registered by name in :data:`SCORERS` (``rm``: a rewardkit or HF sequence-classification RM folder;
``length``: a tiny dummy that scores by response length, for fast end-to-end tests).

Scores do not depend on the batch size: sequences are right-padded with a pad token distinct from EOS
and attention masks are exact, so batch 1 and batch 64 agree to float precision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rewardkit.data.chat import Encoded
from rewardkit.data.collate import pad_sequences, token_budget_batches
from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.ensemble import EnsembleNet
from rewardkit.models.heads import HeadOutput
from rewardkit.models.reward_model import RewardModel, RewardNet, load_reward_model
from rewardkit.models.uncertainty import attach_uncertainty
from rewardkit.registry import Registry
from rewardkit.types import ScoreOutput
from rewardkit.verify.sandbox import SandboxLimits

DEFAULT_MAX_TOKENS = 16_384
DEFAULT_MAX_BATCH = 256
# Padded tokens per reward-model batch when none is given, by device (default_batch_tokens). On a CPU a small
# budget is as fast as a large one or faster -- benchmarks/score_throughput.py (untrained MiniLM RM, 1,624
# HH-RLHF sequences, max_length 256, quiet 2-core CPU, issue 16): 512 tokens 42.0 seq/s, 16,384 40.7,
# 65,536 33.6 -- the cores are busy at any batch, and a large batch only adds padding and cache misses.
# On a GPU a large batch keeps the device busy; 65,536 tokens of activations is far below its memory.
CPU_BATCH_TOKENS = 512
GPU_BATCH_TOKENS = 65_536


class Scorer(Protocol):
    """Anything that maps (prompt, response) message lists to scalar rewards."""

    name: str

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput: ...


class EncodingScorer(Scorer, Protocol):
    """A scorer that can tokenize first and score later, so a caller (the server's batcher) can count
    each item's tokens and group items from many requests into token-budget batches in between.
    ``score(p, r, c)`` equals ``score_batch_encoded(encode(p, r, c))``."""

    def encode(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> list[Encoded]: ...

    def score_batch_encoded(self, encoded: Sequence[Encoded]) -> ScoreOutput: ...


SCORERS: Registry[Any] = Registry("scorer")


@dataclass(frozen=True)
class ScorerOptions:
    """The one options object every scorer builds from (with its spec string; see :func:`build_scorer`).
    A scorer reads the fields it needs and ignores the rest. ``batch_tokens`` None means the scorer's
    default (for reward models :func:`default_batch_tokens` of the model's device; 2,048 for LM scorers,
    whose logits carry the vocabulary)."""

    max_length: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch_tokens: int | None = None
    ref_model: str | None = None  # dpo: the reference model
    ref_free: str | None = None  # dpo: avg | sum | norm without a reference
    seed: int = 0
    judge_both_orders: bool = True
    items: Any = None  # verifier / hybrid: file (or rows) whose rows carry constraints / answer / tests
    sandbox: SandboxLimits | None = None  # verifier / hybrid: limits for running code
    direction: str | None = None  # direction: weights over a multi-objective RM's objectives
    rm_scale: str = "raw"  # hybrid: raw | sigmoid for the reward model's part
    pessimism: float = 0.0  # k: every reward becomes r − k·U (needs a scorer with uncertainty); 0 = off


def default_batch_tokens(device: str | torch.device) -> int:
    """The padded-token budget per reward-model batch on ``device`` when none is given: small on a CPU
    (:data:`CPU_BATCH_TOKENS`), large on an accelerator (:data:`GPU_BATCH_TOKENS`); see the measurement above."""
    return CPU_BATCH_TOKENS if torch.device(device).type == "cpu" else GPU_BATCH_TOKENS


def parse_spec(spec: str) -> tuple[str, str]:
    """``"kind:path"`` -> (kind, path) for a registered kind; a bare registered name -> (name, name);
    anything else is a reward-model path or hub name (``rm``)."""
    kind, sep, path = spec.partition(":")
    if sep and kind in SCORERS:
        return kind, path
    if spec in SCORERS:
        return spec, spec
    return "rm", spec


def build_scorer(spec: str, options: ScorerOptions | None = None) -> Scorer:
    """The one way to build any scorer: ``SCORERS[kind].from_spec(path, options)`` for ``spec`` =
    ``kind:path`` (``rm:DIR``, ``dpo:POLICY``, ``judge:MODEL``, ``direction:RM#w``, ``verifier``,
    ``hybrid:SPEC``, ``length``) or a bare reward-model path. Used by score, eval, serve, generate and hybrid."""
    opts = options or ScorerOptions()
    kind, path = parse_spec(spec)
    if not opts.pessimism:
        return SCORERS.get(kind).from_spec(path, opts)
    k = check_pessimism(opts.pessimism)
    inner = SCORERS.get(kind).from_spec(path, dataclasses.replace(opts, pessimism=0.0))  # k applied once, here
    if getattr(inner, "yields_uncertainty", None) is False:
        raise OptionError(no_uncertainty_message(spec, k))
    return PessimisticScorer(inner, k)


def check_pessimism(k: float) -> float:
    """``k`` as a float, refusing a negative or non-finite one (an :class:`~rewardkit.errors.OptionError`)."""
    k = float(k)
    if not (math.isfinite(k) and k >= 0):
        raise OptionError(f"--pessimism must be a finite number >= 0, got {k}")
    return k


def no_uncertainty_message(spec: str, k: float) -> str:
    return (f"--pessimism {k:g} needs a scorer that reports uncertainty, and {spec!r} does not: fit one with "
            f"`rewardkit uncertainty fit --model RM --data TRAIN_PAIRS` (any reward model), or use a gaussian head")


def pessimistic(out: ScoreOutput, k: float, name: str = "the scorer") -> ScoreOutput:
    """``out`` with rewards ``r − k·U`` (N,) float32; ``uncertainty`` and ``objectives`` are kept as they are."""
    if out.uncertainty is None:
        raise OptionError(no_uncertainty_message(name, k))
    rewards = (out.rewards.astype(np.float64) - k * out.uncertainty.astype(np.float64)).astype(np.float32)
    return dataclasses.replace(out, rewards=rewards)


def model_yields_uncertainty(rm: RewardModel) -> bool:
    """Whether every output of ``rm`` carries ``uncertainty``: a fitted last-layer U, a gaussian head, or an
    ensemble (its members' disagreement), whatever its members' heads."""
    net = rm.net
    return net.uncertainty is not None or isinstance(net, EnsembleNet) or rm.head.cfg.kind == "gaussian"


class PessimisticScorer:
    """Any scorer with uncertainty, made pessimistic: every reward is ``r − k·U`` (AdvPO's lower confidence
    bound; ``k`` = ``ScorerOptions.pessimism``). Built only by :func:`build_scorer`. Every other attribute
    (``rm``, ``encode``, ...) is the inner scorer's, so the server batches it like the inner one."""

    def __init__(self, inner: Any, k: float) -> None:
        self.inner = inner
        self.k = k
        self.name = inner.name  # the served model id stays the model's; identities and /v1/models carry k

    def __getattr__(self, attr: str) -> Any:  # only for attributes not set above
        inner = self.__dict__.get("inner")
        if inner is None:  # half-built (copy, unpickling): no inner scorer to ask yet
            raise AttributeError(attr)
        return getattr(inner, attr)

    def adjust(self, out: ScoreOutput) -> ScoreOutput:
        return pessimistic(out, self.k, self.inner.name)

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        return self.adjust(self.inner.score(prompts, responses, conversational))

    def score_batch_encoded(self, encoded: Sequence[Encoded]) -> ScoreOutput:
        return self.adjust(self.inner.score_batch_encoded(encoded))


def is_pairwise(scorer: Any) -> bool:
    """True for judges, which compare two responses instead of scoring one."""
    return callable(getattr(scorer, "compare", None)) and not getattr(scorer, "pointwise", False)


def forward_head(net: Any, batch: dict[str, torch.Tensor], response_starts: torch.Tensor | None = None) -> HeadOutput:
    """The one reward forward for training and inference: ``net`` is a
    :class:`~rewardkit.models.reward_model.RewardNet` (backbone + head) or a bare HF sequence-classification
    model (its first output is the reward); ``batch`` has ``input_ids``/``attention_mask`` (N, T) and
    optionally ``token_type_ids``. The backbone pools as it does under plain transformers."""
    if isinstance(getattr(net, "module", net), RewardNet):  # also wrapped in DDP/FSDP
        return net(batch, response_starts)
    return HeadOutput(net(**batch).logits[:, 0])


@torch.inference_mode()
def score_sequences(
    net: Any, pad_id: int, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None = None,
    response_starts: Sequence[int] | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS,
    max_batch: int = DEFAULT_MAX_BATCH, progress: Callable[[int], None] | None = None,
) -> ScoreOutput:
    """Score tokenized sequences, longest first, in batches of at most ``max_tokens`` padded tokens.

    Returns, in input order, rewards (N,) float32 and, when the head has them, objectives (N, K),
    uncertainty (N,) and gating weights (N, K); ``truncated`` is all False (the caller knows what its encoder cut).
    ``token_type_ids`` may hold empty lists (decoders); ``response_starts`` are needed by gated heads.
    """
    device = next(net.parameters()).device
    n = len(input_ids)
    rewards = np.zeros(n, dtype=np.float32)
    objectives: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    weights: np.ndarray | None = None
    for idx in token_budget_batches([len(s) for s in input_ids], max_tokens, max_batch):
        types = [token_type_ids[i] for i in idx] if token_type_ids is not None else None
        batch = {k: v.to(device) for k, v in pad_sequences([input_ids[i] for i in idx], types, pad_id).items()}
        starts = None if response_starts is None else torch.tensor([response_starts[i] for i in idx])
        out = forward_head(net, batch, starts)
        rewards[idx] = out.reward.float().cpu().numpy()
        if out.objectives is not None:
            if objectives is None:
                objectives = np.zeros((n, out.objectives.shape[1]), dtype=np.float32)
            objectives[idx] = out.objectives.float().cpu().numpy()
        if out.uncertainty is not None:
            if uncertainty is None:
                uncertainty = np.zeros(n, dtype=np.float32)
            uncertainty[idx] = out.uncertainty.float().cpu().numpy()
        if out.weights is not None:
            if weights is None:
                weights = np.zeros((n, out.weights.shape[1]), dtype=np.float32)
            weights[idx] = out.weights.float().cpu().numpy()
        if progress is not None:
            progress(len(idx))
    names = tuple(net.head.cfg.objectives) if objectives is not None else ()
    return ScoreOutput(rewards, np.zeros(n, dtype=bool), objectives, names, uncertainty, weights)


def score_token_ids(net: Any, pad_id: int, input_ids: Sequence[Sequence[int]],
                    token_type_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any) -> np.ndarray:
    """Rewards (N,) float32 only, of :func:`score_sequences`."""
    return score_sequences(net, pad_id, input_ids, token_type_ids, **kwargs).rewards


def score_encoded_output(rm: RewardModel, encoded: Sequence[Encoded], **kwargs: Any) -> ScoreOutput:
    """:func:`score_sequences` for :class:`~rewardkit.data.chat.Encoded` inputs of ``rm``, with each
    input's ``truncated`` flag."""
    out = score_sequences(rm.net, rm.pad_token_id, [e.input_ids for e in encoded],
                          [e.token_type_ids or [] for e in encoded], [e.response_start for e in encoded], **kwargs)
    return dataclasses.replace(out, truncated=np.array([e.truncated for e in encoded], dtype=bool))


def score_encoded(rm: RewardModel, encoded: Sequence[Encoded], **kwargs: Any) -> np.ndarray:
    """Rewards (N,) float32 only, of :func:`score_encoded_output`."""
    return score_encoded_output(rm, encoded, **kwargs).rewards


def _broadcast(flag: Sequence[bool] | bool, n: int) -> list[bool]:
    return [flag] * n if isinstance(flag, bool) else list(flag)


@SCORERS.register("rm")
class RewardModelScorer:
    """A scalar reward model folder (rewardkit or any HF sequence-classification RM) as a scorer."""

    def __init__(
        self, path: str, *, max_length: int | None = None, max_tokens: int | None = None,
        device: str = "auto", dtype: str = "auto",
    ) -> None:
        """``max_tokens`` None: :func:`default_batch_tokens` of the device the model was loaded on."""
        self.rm = attach_uncertainty(load_reward_model(path, max_length=max_length, device=device, dtype=dtype))
        self.name = path
        self.max_tokens = max_tokens or default_batch_tokens(next(self.rm.model.parameters()).device)

    @property
    def yields_uncertainty(self) -> bool:
        """True when every output carries ``uncertainty``: a fitted last-layer U, a gaussian head, or an
        ensemble (its members' disagreement), whatever its members' heads."""
        return model_yields_uncertainty(self.rm)

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> RewardModelScorer:
        return cls(path, max_length=opts.max_length, max_tokens=opts.batch_tokens, device=opts.device,
                   dtype=opts.dtype)

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        return self.score_batch_encoded(self.encode(prompts, responses, conversational))

    def encode(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> list[Encoded]:
        """Tokenize (prompt, response) pairs with the model's encoder and truncation policy."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        flags = _broadcast(conversational, len(prompts))
        return [self.rm.encoder.encode(p, r, c) for p, r, c in zip(prompts, responses, flags, strict=True)]

    def score_batch_encoded(self, encoded: Sequence[Encoded]) -> ScoreOutput:
        """Score already-encoded inputs (longest first, in batches of ``max_tokens`` padded tokens)."""
        return score_encoded_output(self.rm, encoded, max_tokens=self.max_tokens)


@SCORERS.register("length")
class LengthScorer:
    """Dummy scorer: reward = number of characters of the response (fast tests; 'longer wins')."""

    yields_uncertainty = False  # so --pessimism is refused when the scorer is built

    def __init__(self, path: str = "length") -> None:
        self.name = "length"

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> LengthScorer:
        return cls(path)

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        rewards = np.array([sum(len(m["content"]) for m in r) for r in responses], dtype=np.float32)
        return ScoreOutput(rewards, np.zeros(len(responses), dtype=bool))


# Scorers that live in their own modules, imported on first use (see rewardkit.scorers).
SCORERS.register_lazy("dpo", "rewardkit.scorers.implicit:ImplicitRewardScorer")
SCORERS.register_lazy("judge", "rewardkit.scorers.judge:GenerativeJudge")
SCORERS.register_lazy("verifier", "rewardkit.scorers.verifier:VerifierScorer")
SCORERS.register_lazy("hybrid", "rewardkit.scorers.hybrid:HybridScorer")
SCORERS.register_lazy("direction", "rewardkit.scorers.direction:DirectionScorer")
SCORERS.register_lazy("prm", "rewardkit.scorers.prm:PrmScorer")
