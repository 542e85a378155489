"""Pairwise reward-model losses."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from rewardkit.errors import OptionError
from rewardkit.losses.base import LossOutput, PairRewards, register_loss


@dataclass
class BTConfig:
    """Settings of the Bradley--Terry loss (``--set loss.<field>=...``)."""

    center_coef: float = field(default=0.0, metadata={"help": "reward-centering weight c in c·(r_c + r_r)²; 0 disables"})
    use_margin: bool = field(default=True, metadata={"help": "use the data's optional `margin` column as the BT margin"})

    def __post_init__(self) -> None:
        if self.center_coef < 0:
            raise OptionError(f"loss.center_coef must be >= 0, got {self.center_coef}")


@register_loss("bt", config=BTConfig, inputs=PairRewards)
def bradley_terry(inputs: PairRewards, cfg: BTConfig) -> LossOutput:
    """Bradley--Terry loss ``-log σ(r_c - r_r - m) + c·(r_c + r_r)²``.

    Args:
        inputs: ``chosen``/``rejected`` (B,) float rewards; ``margin`` (B,) optional required gap ``m``
            (0 where a pair has none), as in Llama-2's RM -- used when ``cfg.use_margin``.
        cfg: ``center_coef`` is the weight ``c`` of the reward-centering term (Eisenstein et al. 2023),
            which keeps rewards near zero mean; 0 disables it.

    Computed with ``logsigmoid``, so it stays finite for any reward gap in fp16/bf16/fp32. Metrics (per
    pair): ``accuracy`` (gap > 0; a tie is wrong), ``margin`` (the gap), ``reward_mean`` ((r_c + r_r) / 2).
    """
    chosen, rejected = inputs.chosen, inputs.rejected
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(f"chosen and rejected must both be (B,), got {tuple(chosen.shape)} and {tuple(rejected.shape)}")
    gap = chosen - rejected
    margin = inputs.margin if cfg.use_margin else None
    per_example = -F.logsigmoid(gap - margin if margin is not None else gap)
    if cfg.center_coef:
        per_example = per_example + cfg.center_coef * (chosen + rejected) ** 2
    with torch.no_grad():
        metrics = {"accuracy": (gap > 0).float(), "margin": gap.float(),
                   "reward_mean": ((chosen + rejected) / 2).float()}
    return LossOutput(per_example.mean(), per_example, metrics)
