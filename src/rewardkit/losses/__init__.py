"""Losses: small pure functions of rewards or log-probabilities, registered by name in :data:`LOSSES`."""

from __future__ import annotations

from rewardkit.losses.base import LOSSES, LossOutput

__all__ = ["LOSSES", "LossOutput"]

# Importing the modules registers their losses.
from rewardkit.losses import preference as _preference  # noqa: F401
