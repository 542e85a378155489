"""Pairwise reward-model losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rewardkit.losses.base import LOSSES, LossOutput


@LOSSES.register("bt")
def bradley_terry(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> LossOutput:
    """Bradley--Terry loss ``-log σ(r_c - r_r - m) + c·(r_c + r_r)²``.

    Args:
        chosen: (B,) float rewards of the chosen responses.
        rejected: (B,) float rewards of the rejected responses.
        margin: (B,) optional required gap ``m`` (0 where a pair has none), as in Llama-2's RM.
        center_coef: weight ``c`` of the reward-centering term (Eisenstein et al. 2023), which keeps
            rewards near zero mean; 0 disables it.

    Computed with ``logsigmoid``, so it stays finite for any reward gap in fp16/bf16/fp32.
    """
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(f"chosen and rejected must both be (B,), got {tuple(chosen.shape)} and {tuple(rejected.shape)}")
    gap = chosen - rejected
    logits = gap - margin if margin is not None else gap
    per_example = -F.logsigmoid(logits)
    if center_coef:
        per_example = per_example + center_coef * (chosen + rejected) ** 2
    with torch.no_grad():
        metrics = {
            "accuracy": (gap > 0).float().mean().item(),
            "margin": gap.float().mean().item(),
            "reward_mean": torch.cat([chosen, rejected]).float().mean().item(),
        }
    return LossOutput(per_example.mean(), per_example, metrics)
