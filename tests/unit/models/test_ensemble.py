"""Ensembles: the members' mean reward and objectives, their population std as uncertainty (a toy by hand)."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.models.ensemble import ensemble_outputs
from rewardkit.models.heads import HeadOutput


def test_mean_and_std_of_three_members_by_hand() -> None:
    # item 0: rewards 1, 2, 3 -> mean 2, std sqrt(((−1)² + 0 + 1²) / 3) = sqrt(2/3) = 0.816496580927726
    # item 1: rewards 5, 5, 5 -> mean 5, std 0
    outs = [HeadOutput(torch.tensor([1.0, 5.0]), torch.tensor([[1.0, 0.0], [2.0, 2.0]])),
            HeadOutput(torch.tensor([2.0, 5.0]), torch.tensor([[3.0, 0.0], [2.0, 2.0]])),
            HeadOutput(torch.tensor([3.0, 5.0]), torch.tensor([[5.0, 3.0], [2.0, 2.0]]))]
    out = ensemble_outputs(outs)
    assert out.reward.tolist() == [2.0, 5.0]
    assert out.uncertainty.tolist() == pytest.approx([math.sqrt(2 / 3), 0.0])
    assert out.objectives.tolist() == [[3.0, 1.0], [2.0, 2.0]]
    assert out.log_std is None


def test_two_members_disagree_by_half_their_gap_and_scalar_members_have_no_objectives() -> None:
    out = ensemble_outputs([HeadOutput(torch.tensor([0.0])), HeadOutput(torch.tensor([3.0]))])
    assert out.reward.tolist() == [1.5] and out.uncertainty.tolist() == [1.5] and out.objectives is None
