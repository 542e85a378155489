"""Policy (DPO-family) losses: values worked out by hand, configs, the missing reference, gradients.

The hand-computed numbers use one batch of three pairs (``PAIRS`` below), chosen so that each loss's
pieces are whole numbers: with β 0.5 the log-ratio gaps β·h are 1.5, 0 and −1.
"""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.losses import LOSSES, LossOutput, PreferenceLogps, ResponseLogps
from rewardkit.losses.policy import (
    REFERENCE_LOSSES,
    APOZeroConfig,
    DPOConfig,
    HingeConfig,
    IPOConfig,
    RobustConfig,
    SFTConfig,
    SimPOConfig,
    apo_zero,
    dpo,
    hinge,
    ipo,
    robust,
    sft,
    simpo,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def softplus(x: float) -> float:
    """log(1 + e^x) = −log σ(−x), written out."""
    return math.log(1.0 + math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# pair 0: lr_c = -10 - (-12) = 2,  lr_r = -15 - (-14) = -1 -> h = 3
# pair 1: lr_c = -8 - (-8) = 0,    lr_r = -9 - (-9) = 0    -> h = 0
# pair 2: lr_c = -20 - (-19) = -1, lr_r = -10 - (-11) = 1  -> h = -2
PAIRS = dict(policy_chosen=t(-10.0, -8.0, -20.0), policy_rejected=t(-15.0, -9.0, -10.0),
             chosen_tokens=t(4, 2, 5), rejected_tokens=t(2, 3, 4),
             ref_chosen=t(-12.0, -8.0, -19.0), ref_rejected=t(-14.0, -9.0, -11.0))
LR_C, LR_R = (2.0, 0.0, -1.0), (-1.0, 0.0, 1.0)
H = (3.0, 0.0, -2.0)
BETA = 0.5


def pairs(**changes: torch.Tensor | None) -> PreferenceLogps:
    return PreferenceLogps(**{**PAIRS, **changes})


def check(out: LossOutput, expected: list[float]) -> None:
    assert out.per_example.shape == (len(expected),)
    assert out.per_example.tolist() == pytest.approx(expected, abs=1e-12)
    assert out.loss.item() == pytest.approx(sum(expected) / len(expected), abs=1e-12)


def test_registered_names_configs_and_input_types() -> None:
    expected = {"dpo": (dpo, DPOConfig, PreferenceLogps), "robust": (robust, RobustConfig, PreferenceLogps),
                "ipo": (ipo, IPOConfig, PreferenceLogps), "hinge": (hinge, HingeConfig, PreferenceLogps),
                "simpo": (simpo, SimPOConfig, PreferenceLogps), "apo_zero": (apo_zero, APOZeroConfig, PreferenceLogps),
                "sft": (sft, SFTConfig, ResponseLogps)}
    for name, (fn, config, inputs) in expected.items():
        spec = LOSSES.get(name)
        assert (spec.fn, spec.config, spec.inputs) == (fn, config, inputs), name
    assert set(REFERENCE_LOSSES) == {"dpo", "robust", "ipo", "hinge", "apo_zero"}


def test_defaults() -> None:
    assert (DPOConfig().beta, DPOConfig().label_smoothing) == (0.1, 0.0)
    assert (RobustConfig().beta, RobustConfig().label_smoothing) == (0.1, 0.1)
    assert (IPOConfig().beta, IPOConfig().length_normalize) == (0.1, True)
    assert HingeConfig().beta == APOZeroConfig().beta == 0.1
    assert (SimPOConfig().beta, SimPOConfig().gamma, SimPOConfig().label_smoothing) == (2.0, 1.0, 0.0)
    assert SFTConfig().normalize == "tokens"


def test_dpo_known_values_and_metrics() -> None:
    # -log σ(βh) = softplus(-βh): βh = 1.5, 0, -1
    out = LOSSES.get("dpo")(pairs(), DPOConfig(beta=BETA))
    check(out, [math.log(1 + math.exp(-1.5)), math.log(2.0), math.log(1 + math.e)])
    assert out.per_example[0].item() == pytest.approx(0.20141327798275246, abs=1e-12)
    m = out.metrics
    assert m["rewards_chosen"].tolist() == pytest.approx([1.0, 0.0, -0.5])  # β·lr_c
    assert m["rewards_rejected"].tolist() == pytest.approx([-0.5, 0.0, 0.5])  # β·lr_r
    assert m["margin"].tolist() == pytest.approx([1.5, 0.0, -1.0])
    assert m["accuracy"].tolist() == [1.0, 0.0, 0.0]  # a tie is wrong
    assert m["logps_chosen"].tolist() == [-10.0, -8.0, -20.0]
    assert m["logps_rejected"].tolist() == [-15.0, -9.0, -10.0]
    assert all(v.shape == (3,) and not v.requires_grad for v in m.values())


def test_dpo_label_smoothing_is_conservative_dpo() -> None:
    # ε = 0.2: 0.8·softplus(-βh) + 0.2·softplus(βh)
    out = dpo(pairs(), DPOConfig(beta=BETA, label_smoothing=0.2))
    check(out, [0.8 * softplus(-z) + 0.2 * softplus(z) for z in (1.5, 0.0, -1.0)])
    # at βh = 0 both terms are log 2
    assert out.per_example[1].item() == pytest.approx(math.log(2.0), abs=1e-12)


def test_robust_known_values() -> None:
    # ε = 0.2: (0.8·softplus(-βh) - 0.2·softplus(βh)) / (1 - 0.4)
    out = robust(pairs(), RobustConfig(beta=BETA, label_smoothing=0.2))
    check(out, [(0.8 * softplus(-z) - 0.2 * softplus(z)) / 0.6 for z in (1.5, 0.0, -1.0)])
    # βh = 0: (0.8 - 0.2)·log 2 / 0.6 = log 2
    assert out.per_example[1].item() == pytest.approx(math.log(2.0), abs=1e-12)
    # ε = 0 is plain DPO
    assert robust(pairs(), RobustConfig(beta=BETA, label_smoothing=0.0)).per_example.tolist() == pytest.approx(
        dpo(pairs(), DPOConfig(beta=BETA)).per_example.tolist(), abs=1e-12)


def test_ipo_known_values_length_normalised_and_not() -> None:
    # β = 0.5 -> target 1/(2β) = 1
    # per token: pair 0: 2/4 - (-1)/2 = 1 -> 0;  pair 1: 0 -> (0 - 1)² = 1;  pair 2: -1/5 - 1/4 = -0.45 -> 1.45² = 2.1025
    check(ipo(pairs(), IPOConfig(beta=BETA)), [0.0, 1.0, 2.1025])
    # sums: (3 - 1)² = 4, (0 - 1)² = 1, (-2 - 1)² = 9
    check(ipo(pairs(), IPOConfig(beta=BETA, length_normalize=False)), [4.0, 1.0, 9.0])
    # a zero token count counts as 1 (TRL's clamp): lr_c 2/1 - (-1)/2 = 2.5 -> 1.5² = 2.25
    one = PreferenceLogps(t(-10.0), t(-15.0), t(0), t(2), t(-12.0), t(-14.0))
    check(ipo(one, IPOConfig(beta=BETA)), [2.25])


def test_hinge_known_values() -> None:
    # relu(1 - βh): 1 - 1.5 -> 0, 1 - 0 = 1, 1 + 1 = 2
    check(hinge(pairs(), HingeConfig(beta=BETA)), [0.0, 1.0, 2.0])


def test_apo_zero_known_values() -> None:
    # 1 - σ(β·lr_c) + σ(β·lr_r): β·lr_c = 1, 0, -0.5; β·lr_r = -0.5, 0, 0.5
    check(apo_zero(pairs(), APOZeroConfig(beta=BETA)),
          [1 - sigmoid(1.0) + sigmoid(-0.5), 1.0, 1 - sigmoid(-0.5) + sigmoid(0.5)])


def test_simpo_known_values_is_reference_free() -> None:
    # averages: chosen -10/4 = -2.5, -8/2 = -4, -20/5 = -4; rejected -15/2 = -7.5, -9/3 = -3, -10/4 = -2.5
    # Δ = 5, -1, -1.5; β = 2, γ = 1: z = βΔ - γ = 9, -3, -4; loss softplus(-z)
    out = simpo(pairs(ref_chosen=None, ref_rejected=None), SimPOConfig(beta=2.0, gamma=1.0))
    check(out, [softplus(-9.0), softplus(3.0), softplus(4.0)])
    # its implicit rewards are β·average log-prob
    assert out.metrics["rewards_chosen"].tolist() == pytest.approx([-5.0, -8.0, -8.0])
    assert out.metrics["rewards_rejected"].tolist() == pytest.approx([-15.0, -6.0, -5.0])
    assert out.metrics["accuracy"].tolist() == [1.0, 0.0, 0.0]
    # a reference, if given, is ignored
    assert simpo(pairs(), SimPOConfig(beta=2.0, gamma=1.0)).loss.item() == pytest.approx(out.loss.item(), abs=0)
    # ε = 0.1: 0.9·softplus(-z) + 0.1·softplus(z)
    check(simpo(pairs(), SimPOConfig(beta=2.0, gamma=1.0, label_smoothing=0.1)),
          [0.9 * softplus(-z) + 0.1 * softplus(z) for z in (9.0, -3.0, -4.0)])


def test_sft_known_values() -> None:
    # -π/|y|: 10/4 = 2.5, 6/3 = 2 -> mean 2.25; summed: 10, 6 -> 8
    inputs = ResponseLogps(policy=t(-10.0, -6.0), tokens=t(4, 3))
    out = LOSSES.get("sft")(inputs)
    check(out, [2.5, 2.0])
    assert out.metrics["nll_per_token"].tolist() == [2.5, 2.0]
    assert out.metrics["logps"].tolist() == [-10.0, -6.0]
    check(sft(inputs, SFTConfig(normalize="sequence")), [10.0, 6.0])


@pytest.mark.parametrize(("make", "message"), [
    (lambda: DPOConfig(beta=0.0), "beta must be > 0"),
    (lambda: DPOConfig(label_smoothing=0.5), r"label_smoothing must be in \[0, 0.5\)"),
    (lambda: DPOConfig(label_smoothing=-0.1), r"label_smoothing must be in \[0, 0.5\)"),
    (lambda: RobustConfig(label_smoothing=0.5), r"label_smoothing must be in \[0, 0.5\)"),
    (lambda: RobustConfig(beta=-1.0), "beta must be > 0"),
    (lambda: IPOConfig(beta=0.0), "beta must be > 0"),
    (lambda: HingeConfig(beta=-0.1), "beta must be > 0"),
    (lambda: APOZeroConfig(beta=0.0), "beta must be > 0"),
    (lambda: SimPOConfig(beta=0.0), "beta must be > 0"),
    (lambda: SimPOConfig(gamma=-1.0), "gamma must be >= 0"),
    (lambda: SimPOConfig(label_smoothing=0.7), r"label_smoothing must be in \[0, 0.5\)"),
    (lambda: SFTConfig(normalize="batch"), "normalize must be 'tokens' or 'sequence'"),
])
def test_config_is_validated(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("name", sorted(REFERENCE_LOSSES))
def test_reference_losses_need_a_reference(name: str) -> None:
    for missing in ({"ref_chosen": None}, {"ref_rejected": None}, {"ref_chosen": None, "ref_rejected": None}):
        with pytest.raises(ValueError, match=f"the '{name}' loss needs reference log-probs"):
            LOSSES.get(name)(pairs(**missing))


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"must all be \(B,\)"):
        dpo(pairs(chosen_tokens=t(1, 2)), DPOConfig())
    with pytest.raises(ValueError, match=r"ref_chosen and ref_rejected must be \(B,\)"):
        dpo(pairs(ref_chosen=t(1.0, 2.0)), DPOConfig())
    with pytest.raises(ValueError, match=r"policy and tokens must both be \(B,\)"):
        sft(ResponseLogps(t(1.0, 2.0), t(1)), SFTConfig())


def test_dpo_gradient_is_minus_beta_sigmoid_over_batch() -> None:
    # d/dπ_c mean_b[-log σ(β·h_b)] = -β·σ(-β·h_b) / B; d/dπ_r is its negative
    pc = PAIRS["policy_chosen"].clone().requires_grad_(True)
    pr = PAIRS["policy_rejected"].clone().requires_grad_(True)
    dpo(pairs(policy_chosen=pc, policy_rejected=pr), DPOConfig(beta=BETA)).loss.backward()
    expected = [-BETA * sigmoid(-BETA * h) / 3 for h in H]
    assert pc.grad.tolist() == pytest.approx(expected, abs=1e-12)
    assert pr.grad.tolist() == pytest.approx([-g for g in expected], abs=1e-12)
    # the reference gets no gradient path in practice, but mathematically it is the negative
    rc = PAIRS["ref_chosen"].clone().requires_grad_(True)
    dpo(pairs(ref_chosen=rc), DPOConfig(beta=BETA)).loss.backward()
    assert rc.grad.tolist() == pytest.approx([-g for g in expected], abs=1e-12)


@pytest.mark.parametrize(("fn", "cfg"), [
    (dpo, DPOConfig(beta=BETA, label_smoothing=0.1)), (robust, RobustConfig(beta=BETA)), (ipo, IPOConfig(beta=BETA)),
    (hinge, HingeConfig(beta=BETA)), (simpo, SimPOConfig()), (apo_zero, APOZeroConfig(beta=BETA)),
])
def test_finite_difference_gradients(fn, cfg) -> None:
    # hinge's kink is at βh = 1; the pairs sit at 1.5, 0, -1, away from it
    def loss(pc: torch.Tensor, pr: torch.Tensor) -> torch.Tensor:
        return fn(pairs(policy_chosen=pc, policy_rejected=pr), cfg).loss

    args = (PAIRS["policy_chosen"].clone().requires_grad_(True), PAIRS["policy_rejected"].clone().requires_grad_(True))
    assert torch.autograd.gradcheck(loss, args)


def test_sft_finite_difference_gradient() -> None:
    policy = t(-10.0, -6.0).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: sft(ResponseLogps(p, t(4, 3)), SFTConfig()).loss, (policy,))


def test_stable_at_extreme_log_ratios_in_float32() -> None:
    big = torch.tensor([1e4, -1e4], dtype=torch.float32)
    zero = torch.zeros(2, dtype=torch.float32)
    inputs = PreferenceLogps(big, zero, torch.ones(2), torch.ones(2), zero, zero)
    for name in ("dpo", "robust", "simpo"):
        out = LOSSES.get(name)(inputs)
        assert torch.isfinite(out.per_example).all(), name
    # dpo at βh = 1000: loss ~ 0; at βh = -1000: loss = 1000
    assert LOSSES.get("dpo")(inputs).per_example.tolist() == pytest.approx([0.0, 1000.0], abs=1e-3)
