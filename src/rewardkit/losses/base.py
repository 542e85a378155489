"""The loss registry, the typed inputs losses take, and the result type every loss returns.

A loss is a small pure function ``fn(inputs, cfg) -> LossOutput``: ``inputs`` is one frozen dataclass of
tensors (:class:`PairRewards` for reward models, :class:`PreferenceLogps` for policies, ...), ``cfg`` its
own small config dataclass, validated in ``__post_init__``. It knows nothing of models, data, devices or
ranks. Register it with :func:`register_loss` (name, config class, input type); the training job builds the
inputs, calls the loss, and logs exactly the metrics it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rewardkit.registry import Registry


@dataclass(frozen=True)
class LossOutput:
    """``loss``: scalar mean over the batch; ``per_example``: (B,) losses, for weighting across
    micro-batches and ranks; ``metrics``: detached (B,) per-example values to log (the loop logs their
    mean over the real examples of each logging window, exactly, whatever the batch split)."""

    loss: torch.Tensor
    per_example: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class PairRewards:
    """Rewards of B preference pairs: ``chosen``/``rejected`` (B,) float; ``margin`` (B,) optional
    required gap (0 where a pair has none)."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    margin: torch.Tensor | None = None


@dataclass(frozen=True)
class PreferenceLogps:
    """Sequence log-probabilities of B preference pairs under the policy (and a reference): sums (B,)
    float over the response tokens, and the number of response tokens (B,) (for length-normalised losses).
    ``ref_*`` are None for reference-free losses."""

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor
    ref_chosen: torch.Tensor | None = None
    ref_rejected: torch.Tensor | None = None


@dataclass(frozen=True)
class ResponseLogps:
    """Sequence log-probabilities of B single responses under the policy (supervised fine-tuning):
    ``policy`` (B,) float, the sum over each response's tokens; ``tokens`` (B,) their number."""

    policy: torch.Tensor
    tokens: torch.Tensor


@dataclass(frozen=True)
class ForgetLogps:
    """Unlearning inputs of B forget examples: ``forget`` (B,) float, Σ_t log π_θ(y_t | x, y_<t) over each
    forget answer's tokens; ``tokens`` (B,) their number; ``ref_forget`` (B,) the same under the frozen
    reference model (None for reference-free losses: GA, SimNPO)."""

    forget: torch.Tensor
    tokens: torch.Tensor
    ref_forget: torch.Tensor | None = None


@dataclass(frozen=True)
class RetainKL:
    """Retain-set KL inputs of R retain examples: ``kl`` (R,) float, Σ_t KL(π_ref(·|ctx_t) ‖ π_θ(·|ctx_t))
    over each retain answer's tokens; ``tokens`` (R,) their number."""

    kl: torch.Tensor
    tokens: torch.Tensor


@dataclass(frozen=True)
class TemplateProbs:
    """FLAT's inputs for B forget examples: per-token probabilities p_θ(y_t) of the template (refusal)
    answers ``template`` (B, T_e) and of the forget answers ``forget`` (B, T_f), float, 0 where the mask is
    False; ``template_mask`` (B, T_e) and ``forget_mask`` (B, T_f) bool, True at answer tokens."""

    template: torch.Tensor
    template_mask: torch.Tensor
    forget: torch.Tensor
    forget_mask: torch.Tensor


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the function, its config dataclass and the input type it takes."""

    fn: Callable[..., LossOutput]
    config: type
    inputs: type

    def __call__(self, inputs: Any, cfg: Any | None = None) -> LossOutput:
        return self.fn(inputs, cfg if cfg is not None else self.config())


LOSSES: Registry[LossSpec] = Registry("loss")


def register_loss(name: str, *, config: type, inputs: type) -> Callable[[Callable[..., LossOutput]], Callable[..., LossOutput]]:
    """Decorator: ``@register_loss("bt", config=BTConfig, inputs=PairRewards)``."""

    def add(fn: Callable[..., LossOutput]) -> Callable[..., LossOutput]:
        LOSSES.register(name)(LossSpec(fn, config, inputs))
        return fn

    return add
