"""The loss registry and the result type every loss returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rewardkit.registry import Registry


@dataclass(frozen=True)
class LossOutput:
    """``loss``: scalar mean over the batch; ``per_example``: (B,) losses, for weighting across
    micro-batches and ranks; ``metrics``: detached floats for logging."""

    loss: torch.Tensor
    per_example: torch.Tensor
    metrics: dict[str, float]


LOSSES: Registry[Callable[..., LossOutput]] = Registry("loss")
