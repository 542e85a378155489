"""Losses: small pure functions of typed rewards or log-probabilities, registered by name in :data:`LOSSES`."""

from __future__ import annotations

from rewardkit.losses.base import (
    LOSSES,
    ForgetLogps,
    LossOutput,
    LossSpec,
    PairRewards,
    PreferenceLogps,
    ResponseLogps,
    RetainKL,
    TemplateProbs,
    register_loss,
)

__all__ = ["LOSSES", "AttributeTargets", "ForgetLogps", "LossOutput", "LossSpec", "PairRewards", "PreferenceLogps",
           "ResponseLogps", "RetainKL", "TemplateProbs", "register_loss"]

# Importing the modules registers their losses.
from rewardkit.losses import policy as _policy  # noqa: F401
from rewardkit.losses import preference as _preference  # noqa: F401
from rewardkit.losses import regression as _regression  # noqa: F401
from rewardkit.losses import unlearning as _unlearning  # noqa: F401
from rewardkit.losses.regression import AttributeTargets
