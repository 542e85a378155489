"""Attribute-regression losses: the Gaussian NLL against hand-computed values and torch's GaussianNLLLoss,
missing labels skipped per objective, gradients by finite differences; the attribute MSE."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.losses import LOSSES, AttributeTargets
from rewardkit.losses.regression import AttributeMSEConfig, GaussianNLLConfig, attribute_mse, gaussian_nll

LOG2 = math.log(2.0)


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_registered_with_their_configs_and_input_type() -> None:
    spec = LOSSES.get("gaussian_nll")
    assert spec.fn is gaussian_nll and spec.config is GaussianNLLConfig and spec.inputs is AttributeTargets
    assert LOSSES.get("attribute_mse").fn is attribute_mse


def test_gaussian_nll_known_values() -> None:
    # objective 0: μ = 0, log σ = 0 (σ = 1), a = 1  -> 0 + ½·1/1 = 0.5
    # objective 1: μ = 1, log σ = log 2 (σ² = 4), a = 3 -> log 2 + ½·4/4 = 1.193147180559945
    # example 0 = mean of both = 0.8465735902799727; example 1 has objective 1 missing -> 0.5
    mean, log_std = t([[0.0, 1.0], [0.0, 1.0]]), t([[0.0, LOG2], [0.0, LOG2]])
    target = t([[1.0, 3.0], [1.0, math.nan]])
    out = gaussian_nll(AttributeTargets(mean, target, log_std), GaussianNLLConfig())
    assert out.per_example.tolist() == pytest.approx([0.8465735902799727, 0.5], abs=1e-12)
    assert out.loss.item() == pytest.approx((0.8465735902799727 + 0.5) / 2, abs=1e-12)
    assert out.metrics["mse"].tolist() == pytest.approx([(1 + 4) / 2, 1.0])
    assert out.metrics["std"].tolist() == pytest.approx([1.5, 1.0])
    full = gaussian_nll(AttributeTargets(mean, target, log_std), GaussianNLLConfig(full=True))
    assert (full.per_example - out.per_example).tolist() == pytest.approx([0.5 * math.log(2 * math.pi)] * 2)


def test_gaussian_nll_equals_torch_gaussian_nll_loss_with_var_sigma_squared() -> None:
    gen = torch.Generator().manual_seed(0)
    mean, target = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    log_std = torch.randn(5, 3, generator=gen) * 0.5
    ours = gaussian_nll(AttributeTargets(mean, target, log_std), GaussianNLLConfig(full=True)).loss
    ref = torch.nn.GaussianNLLLoss(full=True, eps=1e-12)(mean, target, torch.exp(2 * log_std))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)


def test_gaussian_nll_gradients_match_finite_differences_and_ignore_missing() -> None:
    mean = t([[0.3, -0.2], [1.0, 0.5]]).requires_grad_()
    log_std = t([[0.1, -0.4], [0.2, 0.0]]).requires_grad_()
    target = t([[1.0, math.nan], [0.0, 2.0]])

    def f(m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(AttributeTargets(m, target, s), GaussianNLLConfig()).loss

    assert torch.autograd.gradcheck(f, (mean, log_std))
    f(mean, log_std).backward()
    assert mean.grad[0, 1].item() == 0.0 and log_std.grad[0, 1].item() == 0.0  # the missing label


def test_attribute_mse_known_values() -> None:
    out = attribute_mse(AttributeTargets(t([[0.0, 1.0]]), t([[2.0, math.nan]])), AttributeMSEConfig())
    assert out.per_example.tolist() == [4.0]
    with pytest.raises(ValueError, match="needs log_std"):
        gaussian_nll(AttributeTargets(t([[0.0]]), t([[1.0]])), GaussianNLLConfig())
