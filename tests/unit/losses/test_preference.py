"""Bradley--Terry loss: values worked out by hand, stability at extreme gaps, gradients, metrics."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.losses import LOSSES, LossOutput, PairRewards
from rewardkit.losses.preference import BTConfig, bradley_terry

LOG2 = math.log(2.0)  # 0.6931471805599453
SOFTPLUS_M1 = math.log1p(math.exp(-1.0))  # softplus(-1) = log(1 + e^-1) = 0.31326168751822286


def t(*values: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def bt(chosen: torch.Tensor, rejected: torch.Tensor, *, margin: torch.Tensor | None = None,
       center_coef: float = 0.0) -> LossOutput:
    """The registered loss on typed inputs, as the training job calls it."""
    return LOSSES.get("bt")(PairRewards(chosen, rejected, margin), BTConfig(center_coef=center_coef))


def test_registered_as_bt_with_its_config_and_input_type() -> None:
    spec = LOSSES.get("bt")
    assert spec.fn is bradley_terry and spec.config is BTConfig and spec.inputs is PairRewards
    assert "bt" in LOSSES.names()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="center_coef must be >= 0"):
        BTConfig(center_coef=-1.0)


def test_use_margin_false_ignores_the_margin() -> None:
    # gap 1, margin 1: with the margin softplus(0) = log 2; without it softplus(-1)
    out = bradley_terry(PairRewards(t(1.0), t(0.0), t(1.0)), BTConfig(use_margin=False))
    assert out.per_example.tolist() == pytest.approx([SOFTPLUS_M1], abs=1e-12)


def test_known_values() -> None:
    # per pair: -log σ(r_c - r_r) = softplus(-(r_c - r_r))
    #   pair 0: gap 1 -> softplus(-1) = log(1 + e^-1) = 0.313261687518...
    #   pair 1: gap 0 -> softplus(0) = log 2 = 0.693147180559...
    #   mean = (0.313261687518 + 0.693147180559) / 2 = 0.503204434039...
    out = bt(t(1.0, 0.0), t(0.0, 0.0))
    assert isinstance(out, LossOutput)
    assert out.per_example.shape == (2,)
    assert out.per_example.tolist() == pytest.approx([SOFTPLUS_M1, LOG2], abs=1e-12)
    assert out.loss.item() == pytest.approx((SOFTPLUS_M1 + LOG2) / 2, abs=1e-12)
    assert abs(SOFTPLUS_M1 - 0.31326168751822286) < 1e-15
    assert abs((SOFTPLUS_M1 + LOG2) / 2 - 0.5032044340390841) < 1e-15


def test_only_the_gap_matters() -> None:
    a = bt(t(1.0, -2.0, 3.5), t(0.0, -1.0, 3.5))
    b = bt(t(101.0, 98.0, 103.5), t(100.0, 99.0, 103.5))
    assert a.per_example.tolist() == pytest.approx(b.per_example.tolist(), abs=1e-12)
    # gap -1 -> softplus(1) = log(1 + e) = 1.313261687518...
    assert a.per_example[1].item() == pytest.approx(math.log1p(math.e), abs=1e-12)


def test_margin() -> None:
    # logits = gap - m: pair 0: 2 - 1 = 1 -> softplus(-1); pair 1: 0 - 0 = 0 -> log 2; pair 2: 1 - 2 = -1 -> log(1 + e)
    out = bt(t(2.0, 0.0, 1.0), t(0.0, 0.0, 0.0), margin=t(1.0, 0.0, 2.0))
    assert out.per_example.tolist() == pytest.approx([SOFTPLUS_M1, LOG2, math.log1p(math.e)], abs=1e-12)
    # a zero margin is the same as none
    assert bt(t(1.0, 0.0), t(0.0, 0.0), margin=t(0.0, 0.0)).loss.item() == pytest.approx(
        bt(t(1.0, 0.0), t(0.0, 0.0)).loss.item(), abs=1e-15)
    # metrics describe the raw gap, not gap - margin
    assert out.metrics["margin"].mean().item() == pytest.approx(1.0)


def test_center_coef() -> None:
    # + c·(r_c + r_r)² with c = 0.1: pair 0: (1 + 0)² = 1 -> +0.1; pair 1: (3 + 3)² = 36 -> +3.6 (gap 0: log 2)
    out = bt(t(1.0, 3.0), t(0.0, 3.0), center_coef=0.1)
    assert out.per_example.tolist() == pytest.approx([SOFTPLUS_M1 + 0.1, LOG2 + 3.6], abs=1e-12)
    assert out.loss.item() == pytest.approx((SOFTPLUS_M1 + 0.1 + LOG2 + 3.6) / 2, abs=1e-12)


def test_metrics_count_ties_as_wrong() -> None:
    # gaps 1, 0 (tie), -0.5, 2: correct only where gap > 0 -> 2 of 4
    out = bt(t(1.0, 0.0, 0.0, 3.0), t(0.0, 0.0, 0.5, 1.0))
    # per pair: accuracy 1, 0, 0, 1; margin = the gap; reward_mean = (r_c + r_r) / 2
    assert out.metrics["accuracy"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out.metrics["margin"].tolist() == pytest.approx([1.0, 0.0, -0.5, 2.0])
    assert out.metrics["reward_mean"].tolist() == pytest.approx([0.5, 0.0, 0.25, 2.0])
    assert not any(v.requires_grad for v in out.metrics.values())


def test_gradient_by_hand() -> None:
    # d/d r_c of mean_i softplus(-(r_c,i - r_r,i)) = -σ(-gap_i) / B, and the opposite for r_r
    #   pair 0: gap 1 -> -σ(-1)/2 = -0.268941421.../2 = -0.134470710...
    #   pair 1: gap 0 -> -σ(0)/2 = -0.25
    chosen, rejected = t(1.0, 0.0).requires_grad_(), t(0.0, 0.0).requires_grad_()
    bt(chosen, rejected).loss.backward()
    sig_m1 = 1 / (1 + math.e)
    assert chosen.grad.tolist() == pytest.approx([-sig_m1 / 2, -0.25], abs=1e-12)
    assert rejected.grad.tolist() == pytest.approx([sig_m1 / 2, 0.25], abs=1e-12)


@pytest.mark.parametrize("center_coef", [0.0, 0.3])
@pytest.mark.parametrize("with_margin", [False, True])
def test_gradcheck(center_coef: float, with_margin: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    chosen = torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
    rejected = torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
    margin = torch.rand(6, dtype=torch.float64, generator=gen) if with_margin else None

    def loss(c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return bt(c, r, margin=margin, center_coef=center_coef).loss

    def per_example(c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return bt(c, r, margin=margin, center_coef=center_coef).per_example

    assert torch.autograd.gradcheck(loss, (chosen, rejected))
    assert torch.autograd.gradcheck(per_example, (chosen, rejected))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_finite_for_extreme_gaps(dtype: torch.dtype) -> None:
    # gaps +1e4 and -1e4: -log σ(1e4) = 0 and -log σ(-1e4) = 1e4; log(1 + exp(1e4)) would overflow
    chosen = torch.tensor([5e3, -5e3], dtype=dtype, requires_grad=True)
    rejected = torch.tensor([-5e3, 5e3], dtype=dtype, requires_grad=True)
    out = bt(chosen, rejected)
    out.loss.backward()
    assert torch.isfinite(out.per_example).all()
    assert out.per_example.dtype == dtype
    assert out.per_example[0].item() == 0.0
    assert out.per_example[1].item() == pytest.approx(1e4, rel=1e-2)  # bf16 holds 1e4 as 9984 or 10048
    assert torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all()
    # the gradient saturates: 0 for the confidently right pair, -1/B for the confidently wrong one
    assert chosen.grad.float().tolist() == pytest.approx([0.0, -0.5], abs=1e-3)
    assert out.metrics["accuracy"].mean().item() == 0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_for_extreme_gaps_with_centering(dtype: torch.dtype) -> None:
    chosen = torch.tensor([1e4, 0.0], dtype=dtype)
    rejected = torch.tensor([0.0, 1e4], dtype=dtype)
    out = bt(chosen, rejected, center_coef=0.01)
    assert torch.isfinite(out.per_example).all()
    # pair 1: 1e4 (BT) + 0.01 · (1e4)² = 1e4 + 1e6
    assert out.per_example[1].item() == pytest.approx(1e4 + 1e6, rel=1e-2)


@pytest.mark.parametrize(("chosen_shape", "rejected_shape"), [((2,), (3,)), ((2, 1), (2, 1)), ((), ()), ((4,), (2, 2))])
def test_shape_mismatch_raises(chosen_shape: tuple[int, ...], rejected_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"chosen and rejected must both be \(B,\)"):
        bt(torch.zeros(chosen_shape), torch.zeros(rejected_shape))
