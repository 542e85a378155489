"""Attribute-regression losses for multi-objective heads (URM, METHODS §5): the Gaussian negative
log-likelihood of the labels under each objective's predicted mean and standard deviation, and plain MSE.

Missing labels (NaN) are skipped: an example's loss is the mean over its observed objectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rewardkit.losses.base import LossOutput, register_loss

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class AttributeTargets:
    """Predictions and labels of B examples on K objectives: ``mean`` (B, K) float, ``log_std`` (B, K)
    float (None for losses that use only the mean), ``target`` (B, K) float with NaN where unlabelled."""

    mean: torch.Tensor
    target: torch.Tensor
    log_std: torch.Tensor | None = None


@dataclass
class GaussianNLLConfig:
    """Settings of the Gaussian NLL (``--set urm.loss=gaussian_nll``)."""

    full: bool = field(default=False, metadata={"help": "add the constant ½·log(2π) per objective"})


@dataclass
class AttributeMSEConfig:
    """The attribute MSE has no settings."""


def _observed(inputs: AttributeTargets) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mask (B, K) bool, target with NaN replaced by the mean (no NaN reaches autograd), count (B,))."""
    if inputs.mean.shape != inputs.target.shape or inputs.mean.dim() != 2:
        raise ValueError(f"mean and target must both be (B, K), got {tuple(inputs.mean.shape)} and "
                         f"{tuple(inputs.target.shape)}")
    mask = ~torch.isnan(inputs.target)
    target = torch.where(mask, inputs.target, inputs.mean.detach())
    return mask, target, mask.sum(-1).clamp(min=1).to(inputs.mean.dtype)


@register_loss("gaussian_nll", config=GaussianNLLConfig, inputs=AttributeTargets)
def gaussian_nll(inputs: AttributeTargets, cfg: GaussianNLLConfig) -> LossOutput:
    """Per observed label ``log σ + (a − μ)² / (2σ²)`` (``+ ½ log 2π`` if ``cfg.full``) with ``σ = exp(log_std)``:
    the same as ``torch.nn.GaussianNLLLoss`` with ``var = σ²``. Per example: the mean over its observed
    objectives. Metrics: ``mse`` (squared error of the mean) and ``std`` (mean σ), over observed labels."""
    if inputs.log_std is None:
        raise ValueError("the Gaussian NLL needs log_std (a gaussian head)")
    mask, target, count = _observed(inputs)
    err2 = (target - inputs.mean) ** 2
    nll = inputs.log_std + 0.5 * err2 * torch.exp(-2 * inputs.log_std)
    if cfg.full:
        nll = nll + HALF_LOG_2PI
    per_example = (nll * mask).sum(-1) / count
    with torch.no_grad():
        metrics = {"mse": (err2 * mask).sum(-1) / count, "std": (inputs.log_std.exp() * mask).sum(-1) / count}
    return LossOutput(per_example.mean(), per_example, metrics)


@register_loss("attribute_mse", config=AttributeMSEConfig, inputs=AttributeTargets)
def attribute_mse(inputs: AttributeTargets, cfg: AttributeMSEConfig) -> LossOutput:
    """Per example the mean squared error ``(a − μ)²`` over its observed objectives (DPA's regression)."""
    mask, target, count = _observed(inputs)
    per_example = (((target - inputs.mean) ** 2) * mask).sum(-1) / count
    return LossOutput(per_example.mean(), per_example, {"mse": per_example.detach()})
