"""Unlearning losses: values worked out by hand, FLAT's divergence signs, NPO's gradient as GA's times the
published weight, configs, the missing reference and detached metrics.

The forget batch (``FORGET`` below) has three answers chosen so the pieces are whole numbers: mean token
log-probs −8/4 = −2, −3/3 = −1, −10/5 = −2 and log-ratios to the reference −8 − (−6) = −2, 0, −10 − (−12) = 2.
FLAT's expected values are its table (METHODS.md §7) evaluated on small P_e/P_f by hand (the arithmetic is
written next to each).
"""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.errors import OptionError
from rewardkit.losses import (
    LOSSES,
    ForgetLogps,
    LossOutput,
    PreferenceLogps,
    ResponseLogps,
    RetainKL,
    TemplateProbs,
)
from rewardkit.losses.policy import DPOConfig, dpo
from rewardkit.losses.unlearning import (
    DIVERGENCES,
    REFERENCE_UNLEARN_LOSSES,
    RETAIN_LOSSES,
    UNLEARNING_LOSSES,
    FLATConfig,
    GAConfig,
    GradDiffConfig,
    IdkConfig,
    NPOConfig,
    RetainKLConfig,
    RetainNLLConfig,
    SimNPOConfig,
    flat,
    ga,
    grad_diff,
    idk,
    npo,
    retain_kl,
    retain_nll,
    simnpo,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def softplus(x: float) -> float:
    """log(1 + e^x) = −log σ(−x), written out."""
    return math.log(1.0 + math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


FORGET = dict(forget=t(-8.0, -3.0, -10.0), tokens=t(4, 3, 5), ref_forget=t(-6.0, -3.0, -12.0))
LOGRATIO = (-2.0, 0.0, 2.0)


def forget(**changes: torch.Tensor | None) -> ForgetLogps:
    return ForgetLogps(**{**FORGET, **changes})


def check(out: LossOutput, expected: list[float], abs: float = 1e-12) -> None:
    assert out.per_example.shape == (len(expected),)
    assert out.per_example.tolist() == pytest.approx(expected, abs=abs)
    assert out.loss.item() == pytest.approx(sum(expected) / len(expected), abs=abs)
    assert all(v.shape == (len(expected),) and not v.requires_grad for v in out.metrics.values())


def test_registered_names_configs_and_input_types() -> None:
    expected = {"ga": (ga, GAConfig, ForgetLogps), "grad_diff": (grad_diff, GradDiffConfig, ForgetLogps),
                "npo": (npo, NPOConfig, ForgetLogps), "simnpo": (simnpo, SimNPOConfig, ForgetLogps),
                "flat": (flat, FLATConfig, TemplateProbs), "idk": (idk, IdkConfig, PreferenceLogps),
                "retain_nll": (retain_nll, RetainNLLConfig, ResponseLogps),
                "retain_kl": (retain_kl, RetainKLConfig, RetainKL)}
    for name, (fn, config, inputs) in expected.items():
        spec = LOSSES.get(name)
        assert (spec.fn, spec.config, spec.inputs) == (fn, config, inputs), name
    assert RETAIN_LOSSES == {"none": None, "nll": "retain_nll", "kl": "retain_kl"}
    assert set(REFERENCE_UNLEARN_LOSSES) == {"npo", "idk"}


def test_defaults() -> None:
    shared = [(c.forget_coef, c.retain, c.retain_coef) for c in
              (GAConfig(), GradDiffConfig(), NPOConfig(), SimNPOConfig(), FLATConfig(), IdkConfig())]
    assert shared == [(1.0, "none", 1.0), (1.0, "nll", 1.0), (1.0, "nll", 1.0), (1.0, "nll", 1.0),
                      (1.0, "none", 1.0), (1.0, "none", 1.0)]
    assert GAConfig().normalize == GradDiffConfig().normalize == "tokens"
    assert NPOConfig().beta == 0.1
    assert (SimNPOConfig().beta, SimNPOConfig().delta) == (2.5, 0.0)
    assert (FLATConfig().divergence, FLATConfig().mean_over) == ("tv", "answer")
    assert (IdkConfig().beta, IdkConfig().label_smoothing) == (0.1, 0.0)
    assert RetainNLLConfig().normalize == RetainKLConfig().normalize == "tokens"


def test_ga_known_values_and_metrics() -> None:
    # lp/|y|: -8/4 = -2, -3/3 = -1, -10/5 = -2 -> mean -5/3
    out = LOSSES.get("ga")(forget(ref_forget=None))
    check(out, [-2.0, -1.0, -2.0])
    assert out.metrics["forget_logp_per_token"].tolist() == [-2.0, -1.0, -2.0]
    assert out.metrics["forget_logps"].tolist() == [-8.0, -3.0, -10.0]
    # summed: the log-probs themselves
    check(ga(forget(), GAConfig(normalize="sequence")), [-8.0, -3.0, -10.0])
    # grad_diff's forget term is ga's; a zero token count counts as 1
    check(grad_diff(forget(), GradDiffConfig()), [-2.0, -1.0, -2.0])
    check(ga(ForgetLogps(t(-3.0), t(0)), GAConfig()), [-3.0])


def test_npo_known_values_and_metrics() -> None:
    # β = 0.5: -(2/β)·logσ(-βx) = 4·softplus(βx), βx = -1, 0, 1
    out = LOSSES.get("npo")(forget(), NPOConfig(beta=0.5))
    check(out, [4 * softplus(-1.0), 4 * math.log(2.0), 4 * softplus(1.0)])
    assert out.per_example[1].item() == pytest.approx(2.772588722239781, abs=1e-12)  # (2/β)·log 2 at π = π_ref
    assert out.metrics["forget_logratio"].tolist() == [-2.0, 0.0, 2.0]
    assert out.metrics["npo_weight"].tolist() == pytest.approx([2 * sigmoid(-1.0), 1.0, 2 * sigmoid(1.0)])
    assert out.metrics["forget_logp_per_token"].tolist() == [-2.0, -1.0, -2.0]


def test_npo_without_reference_raises() -> None:
    with pytest.raises(ValueError, match="'npo' loss needs reference log-probs"):
        npo(forget(ref_forget=None), NPOConfig())
    with pytest.raises(ValueError, match="ref_forget must be"):
        npo(forget(ref_forget=t(1.0)), NPOConfig())


def test_npo_gradient_is_ga_gradient_times_published_weight() -> None:
    # d/dlp [-(2/β)·logσ(-β(lp - ref))] = -(2/β)·σ(β(lp - ref))·(-β) = 2σ(β(lp - ref)) = w,
    # and GA on sums has d(lp)/dlp = 1, so ∂NPO/∂lp = w · ∂GA/∂lp with w = 2π^β/(π^β + π_ref^β).
    for beta in (0.1, 0.5, 2.0):
        lp_npo = FORGET["forget"].clone().requires_grad_(True)
        npo(forget(forget=lp_npo), NPOConfig(beta=beta)).per_example.sum().backward()
        lp_ga = FORGET["forget"].clone().requires_grad_(True)
        ga(forget(forget=lp_ga), GAConfig(normalize="sequence")).per_example.sum().backward()
        assert lp_ga.grad.tolist() == [1.0, 1.0, 1.0]
        weight = [2 * sigmoid(beta * x) for x in LOGRATIO]
        assert lp_npo.grad.tolist() == pytest.approx([w * g for w, g in zip(weight, lp_ga.grad.tolist(), strict=True)], abs=1e-12)
        # the same weight in the paper's form, from the probabilities
        pi, ref = FORGET["forget"].exp(), FORGET["ref_forget"].exp()
        assert lp_npo.grad.tolist() == pytest.approx((2 * pi**beta / (pi**beta + ref**beta)).tolist(), abs=1e-12)
    # against GA's default (per-token) normalisation the factor is w·|y|: ∂(lp/|y|)/∂lp = 1/|y|
    lp = FORGET["forget"].clone().requires_grad_(True)
    ga(forget(forget=lp), GAConfig()).per_example.sum().backward()
    assert lp.grad.tolist() == pytest.approx([1 / 4, 1 / 3, 1 / 5])


def test_npo_tends_to_ga_as_beta_goes_to_zero() -> None:
    # (2/β)·softplus(βx) = (2/β)·log 2 + x + βx²/4 + O(β³): minus the constant, NPO -> lp - ref (GA on sums)
    # and its gradient 2σ(βx) -> 1 (GA's), with an error about βx/2.
    beta = 1e-4
    lp = FORGET["forget"].clone().requires_grad_(True)
    out = npo(forget(forget=lp), NPOConfig(beta=beta))
    out.per_example.sum().backward()
    shifted = (out.per_example.detach() - 2 / beta * math.log(2.0)).tolist()
    assert shifted == pytest.approx([x + beta * x * x / 4 for x in LOGRATIO], abs=1e-6)
    assert shifted == pytest.approx(list(LOGRATIO), abs=2e-4)
    assert lp.grad.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)
    # for large β the weight switches off once the answer is below the reference: 2σ(-200) ≈ 0, 2σ(200) ≈ 2
    assert npo(forget(), NPOConfig(beta=100.0)).metrics["npo_weight"].tolist() == pytest.approx([0.0, 1.0, 2.0])


def test_simnpo_known_values_is_reference_free() -> None:
    # NLL/|y| = 2, 1, 2; β = 2, δ = 0.5: z = β(NLL/|y| - δ) = 3, 1, 3; -(2/β)·logσ(z) = softplus(-z)
    out = LOSSES.get("simnpo")(forget(ref_forget=None), SimNPOConfig(beta=2.0, delta=0.5))
    check(out, [softplus(-3.0), softplus(-1.0), softplus(-3.0)])
    assert out.per_example[1].item() == pytest.approx(0.31326168751822286, abs=1e-12)
    # a reference, if given, is ignored; δ = 0, β = 1: -2·logσ(NLL/|y|) = 2·softplus(-2), 2·softplus(-1), ...
    check(simnpo(forget(), SimNPOConfig(beta=1.0)), [2 * softplus(-2.0), 2 * softplus(-1.0), 2 * softplus(-2.0)])


PAIR = dict(policy_chosen=t(-10.0, -8.0), policy_rejected=t(-15.0, -9.0), chosen_tokens=t(4, 2),
            rejected_tokens=t(3, 3), ref_chosen=t(-12.0, -8.0), ref_rejected=t(-14.0, -9.0))


def test_idk_is_dpo_with_the_refusal_chosen() -> None:
    # pair 0: lr_c = 2, lr_r = -1 -> h = 3, β = 0.5 -> softplus(-1.5); pair 1: h = 0 -> log 2
    inputs = PreferenceLogps(**PAIR)
    out = LOSSES.get("idk")(inputs, IdkConfig(beta=0.5))
    check(out, [softplus(-1.5), math.log(2.0)])
    reference = dpo(inputs, DPOConfig(beta=0.5))
    assert out.per_example.tolist() == reference.per_example.tolist()
    assert out.metrics["margin"].tolist() == [1.5, 0.0]
    assert out.metrics["forget_logp_per_token"].tolist() == [-5.0, -3.0]  # -15/3, -9/3
    # label smoothing passes through: 0.8·softplus(-z) + 0.2·softplus(z)
    check(idk(inputs, IdkConfig(beta=0.5, label_smoothing=0.2)),
          [0.8 * softplus(-1.5) + 0.2 * softplus(1.5), math.log(2.0)])
    with pytest.raises(ValueError, match="'idk' loss needs reference log-probs"):
        idk(PreferenceLogps(**{**PAIR, "ref_chosen": None}), IdkConfig())


def test_retain_losses_known_values() -> None:
    # -lp/|y|: 10/4 = 2.5, 6/3 = 2
    out = LOSSES.get("retain_nll")(ResponseLogps(policy=t(-10.0, -6.0), tokens=t(4, 3)))
    check(out, [2.5, 2.0])
    assert out.metrics["retain_nll_per_token"].tolist() == [2.5, 2.0]
    check(retain_nll(ResponseLogps(t(-10.0, -6.0), t(4, 3)), RetainNLLConfig(normalize="sequence")), [10.0, 6.0])
    # Σ KL / |y|: 0.8/4 = 0.2, 0.3/3 = 0.1
    out = LOSSES.get("retain_kl")(RetainKL(kl=t(0.8, 0.3), tokens=t(4, 3)))
    check(out, [0.2, 0.1])
    assert out.metrics["retain_kl_per_token"].tolist() == pytest.approx([0.2, 0.1])
    check(retain_kl(RetainKL(t(0.8, 0.3), t(4, 3)), RetainKLConfig(normalize="sequence")), [0.8, 0.3])


# Template: row 0 answer tokens 0.2, 0.4 (+ a pad), row 1 one token 0.5 -> P_e = 0.3, 0.5 over answers;
# over all 3 positions: 0.6/3 = 0.2, 0.5/3. Forget: row 0 0.6, 0.8; row 1 0.2 (+ a pad) -> P_f = 0.7, 0.2;
# over all 2 positions: 0.7, 0.1.
TEMPLATE = TemplateProbs(template=t(0.2, 0.4, 0.0, 0.5, 0.0, 0.0).view(2, 3),
                         template_mask=torch.tensor([[True, True, False], [True, False, False]]),
                         forget=t(0.6, 0.8, 0.2, 0.0).view(2, 2),
                         forget_mask=torch.tensor([[True, True], [True, False]]))
P_E, P_F = (0.3, 0.5), (0.7, 0.2)

# The table, evaluated by hand at (P_e, P_f); loss = a(P_e) - c(P_f).
HAND = {
    "kl": lambda e, f: -e + math.exp(f - 1),
    "js": lambda e, f: softplus(-e) + softplus(f) - 2 * math.log(2.0),
    "pearson": lambda e, f: -e + f * f / 4 + f,
    "jeffrey": lambda e, f: -e + f + f * f / 4 + f ** 3 / 16,
    "tv": lambda e, f: -math.tanh(e) / 2 + math.tanh(f) / 2,
    "reverse_kl": lambda e, f: math.exp(-e) - 1 + f,
    "squared_hellinger": lambda e, f: math.exp(-e) + math.exp(f) - 2,
    "neyman": lambda e, f: math.exp(-e) + 1 - 2 * math.exp(-f / 2),
}


@pytest.mark.parametrize("divergence", sorted(HAND))
def test_flat_known_values(divergence: str) -> None:
    out = flat(TEMPLATE, FLATConfig(divergence=divergence))
    check(out, [HAND[divergence](e, f) for e, f in zip(P_E, P_F, strict=True)])
    assert out.metrics["template_prob"].tolist() == pytest.approx(list(P_E))
    assert out.metrics["forget_prob"].tolist() == pytest.approx(list(P_F))


def test_flat_literal_values_and_mean_over_all() -> None:
    # TV, row 0: -tanh(0.3)/2 + tanh(0.7)/2 = -0.1456563 + 0.3021839; KL row 0: -0.3 + e^{-0.3} = -0.3 + 0.7408182
    out = LOSSES.get("flat")(TEMPLATE)
    assert out.per_example[0].item() == pytest.approx(0.15652758, abs=1e-8)
    assert flat(TEMPLATE, FLATConfig(divergence="kl")).per_example[0].item() == pytest.approx(0.44081822, abs=1e-8)
    # JS row 1: softplus(-0.5) + softplus(0.2) - 2 log 2 = 0.4740770 + 0.7981389 - 1.3862944
    assert flat(TEMPLATE, FLATConfig(divergence="js")).per_example[1].item() == pytest.approx(-0.11407851, abs=1e-8)
    # over all positions: P_e = 0.2, 1/6; P_f = 0.7, 0.1
    out = flat(TEMPLATE, FLATConfig(mean_over="all"))
    check(out, [HAND["tv"](0.2, 0.7), HAND["tv"](1 / 6, 0.1)])
    assert out.metrics["template_prob"].tolist() == pytest.approx([0.2, 1 / 6])
    assert out.metrics["forget_prob"].tolist() == pytest.approx([0.7, 0.1])


def _step(divergence: str, template: torch.Tensor, forget_: torch.Tensor) -> None:
    """One SGD step (lr 0.05) on leaf probabilities; asserts P_e rose and P_f fell."""
    template, forget_ = template.clone().requires_grad_(True), forget_.clone().requires_grad_(True)
    ones_e, ones_f = torch.ones_like(template, dtype=torch.bool), torch.ones_like(forget_, dtype=torch.bool)
    flat(TemplateProbs(template, ones_e, forget_, ones_f), FLATConfig(divergence=divergence)).loss.backward()
    with torch.no_grad():
        new_e, new_f = template - 0.05 * template.grad, forget_ - 0.05 * forget_.grad
    assert (new_e.mean(1) > template.mean(1)).all(), divergence
    assert (new_f.mean(1) < forget_.mean(1)).all(), divergence


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_flat_gradient_step_raises_template_and_lowers_forget_probability(divergence: str) -> None:
    for p in (0.05, 0.3, 0.6, 0.95):
        _step(divergence, t(p, p / 2).view(1, 2), t(p, 1 - p / 2).view(1, 2))
    # through a softmax: the probabilities of given tokens under trainable logits (B=2, T=3, V=5)
    gen = torch.Generator().manual_seed(0)
    logits_e = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    logits_f = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    ids_e, ids_f = torch.tensor([[0, 1, 2], [3, 4, 0]]), torch.tensor([[4, 3, 2], [1, 0, 1]])
    mask_e = torch.tensor([[True, True, True], [True, True, False]])
    mask_f = torch.tensor([[True, True, False], [True, True, True]])

    def probs() -> tuple[torch.Tensor, torch.Tensor]:
        return (logits_e.softmax(-1).gather(-1, ids_e[..., None])[..., 0] * mask_e,
                logits_f.softmax(-1).gather(-1, ids_f[..., None])[..., 0] * mask_f)

    pe, pf = probs()
    out = flat(TemplateProbs(pe, mask_e, pf, mask_f), FLATConfig(divergence=divergence))
    out.loss.backward()
    with torch.no_grad():
        logits_e -= 1.0 * logits_e.grad
        logits_f -= 1.0 * logits_f.grad
        pe, pf = probs()
        after = flat(TemplateProbs(pe, mask_e, pf, mask_f), FLATConfig(divergence=divergence))
    assert (after.metrics["template_prob"] > out.metrics["template_prob"]).all(), divergence
    assert (after.metrics["forget_prob"] < out.metrics["forget_prob"]).all(), divergence


def test_flat_published_reverse_kl_hellinger_neyman_rows_are_sign_reversed() -> None:
    # FLAT's rows as published (METHODS.md §7): the loss a(P_e) - c(P_f) rises with P_e, so descent lowers P_e;
    # reverse-KL and squared Hellinger also fall with P_f (descent raises it). Ours are the f-GAN pairs instead.
    published = {"reverse_kl": (torch.exp, lambda x: 1 + x),
                 "squared_hellinger": (lambda x: torch.exp(x) - 1, lambda x: 1 - torch.exp(-x)),
                 "neyman": (lambda x: torch.exp(x) - 1, lambda x: -(2 - 2 * torch.sqrt(1 - x)))}
    for name, (a, c) in published.items():
        e, f = t(0.3).requires_grad_(True), t(0.6).requires_grad_(True)
        (a(e) - c(f)).backward()
        assert e.grad.item() > 0, name  # descent lowers the template probability: wrong way
        if name != "neyman":  # Neyman's c is -f*(x) without an activation; it does lower P_f
            assert f.grad.item() < 0, name
        ours_a, ours_c = DIVERGENCES[name]
        e2, f2 = t(0.3).requires_grad_(True), t(0.6).requires_grad_(True)
        (ours_a(e2) - ours_c(f2)).backward()
        assert e2.grad.item() < 0 and f2.grad.item() > 0, name
    # reverse-KL and squared Hellinger as published are ours evaluated at -x (the minus in g = -e^{-v} dropped)
    x = t(0.1, 0.4, 0.9)
    for name in ("reverse_kl", "squared_hellinger"):
        assert published[name][0](x).tolist() == pytest.approx(DIVERGENCES[name][0](-x).tolist())
        assert published[name][1](x).tolist() == pytest.approx(DIVERGENCES[name][1](-x).tolist())


@pytest.mark.parametrize(("fn", "cfg"), [
    (ga, GAConfig()), (ga, GAConfig(normalize="sequence")), (npo, NPOConfig(beta=0.5)),
    (simnpo, SimNPOConfig(beta=2.0, delta=0.5)),
])
def test_forget_finite_difference_gradients(fn, cfg) -> None:
    def loss(lp: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return fn(ForgetLogps(lp, FORGET["tokens"], ref), cfg).loss

    args = (FORGET["forget"].clone().requires_grad_(True), FORGET["ref_forget"].clone().requires_grad_(True))
    assert torch.autograd.gradcheck(loss, args)


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_flat_finite_difference_gradients(divergence: str) -> None:
    def loss(template: torch.Tensor, forget_: torch.Tensor) -> torch.Tensor:
        return flat(TemplateProbs(template, TEMPLATE.template_mask, forget_, TEMPLATE.forget_mask),
                    FLATConfig(divergence=divergence)).loss

    args = (TEMPLATE.template.clone().requires_grad_(True), TEMPLATE.forget.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(loss, args)


def test_retain_and_idk_finite_difference_gradients() -> None:
    tokens = t(4, 3)
    assert torch.autograd.gradcheck(lambda p: retain_nll(ResponseLogps(p, tokens), RetainNLLConfig()).loss,
                                    (t(-10.0, -6.0).requires_grad_(True),))
    assert torch.autograd.gradcheck(lambda k: retain_kl(RetainKL(k, tokens), RetainKLConfig()).loss,
                                    (t(0.8, 0.3).requires_grad_(True),))
    assert torch.autograd.gradcheck(
        lambda c, r: idk(PreferenceLogps(**{**PAIR, "policy_chosen": c, "policy_rejected": r}), IdkConfig()).loss,
        (PAIR["policy_chosen"].clone().requires_grad_(True), PAIR["policy_rejected"].clone().requires_grad_(True)))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: GAConfig(forget_coef=0.0), "forget_coef must be > 0"),
    (lambda: GAConfig(retain="mse"), "retain must be 'none', 'nll' or 'kl'"),
    (lambda: GradDiffConfig(retain_coef=-1.0), "retain_coef must be >= 0"),
    (lambda: GAConfig(normalize="batch"), "normalize must be 'tokens' or 'sequence'"),
    (lambda: NPOConfig(beta=0.0), "beta must be > 0"),
    (lambda: SimNPOConfig(beta=-1.0), "beta must be > 0"),
    (lambda: FLATConfig(divergence="hellinger"), "divergence must be one of kl, js"),
    (lambda: FLATConfig(mean_over="batch"), "mean_over must be 'answer' or 'all'"),
    (lambda: IdkConfig(beta=0.0), "beta must be > 0"),
    (lambda: IdkConfig(label_smoothing=0.5), r"label_smoothing must be in \[0, 0.5\)"),
    (lambda: RetainNLLConfig(normalize="x"), "normalize must be"),
    (lambda: RetainKLConfig(normalize="x"), "normalize must be"),
])
def test_config_is_validated(make, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        make()


def test_every_config_field_has_help() -> None:
    from dataclasses import fields

    for name in ("ga", "grad_diff", "npo", "simnpo", "flat", "idk", "retain_nll", "retain_kl"):
        for f in fields(LOSSES.get(name).config):
            assert f.metadata.get("help"), f"{name}.{f.name}"


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"forget and tokens must both be \(B,\)"):
        ga(ForgetLogps(t(-1.0, -2.0), t(1)), GAConfig())
    with pytest.raises(ValueError, match="template and template_mask must both be"):
        flat(TemplateProbs(t(0.1, 0.2), torch.tensor([True, True]), TEMPLATE.forget, TEMPLATE.forget_mask),
             FLATConfig())
    with pytest.raises(ValueError, match="same batch size"):
        flat(TemplateProbs(TEMPLATE.template[:1], TEMPLATE.template_mask[:1], TEMPLATE.forget, TEMPLATE.forget_mask),
             FLATConfig())


def test_policy_job_refuses_unlearning_losses_that_share_its_input_types() -> None:
    from rewardkit.train.config import PolicyTrainConfig

    assert LOSSES.get("idk").inputs is PreferenceLogps and LOSSES.get("retain_nll").inputs is ResponseLogps
    assert {"ga", "grad_diff", "npo", "simnpo", "flat", "idk", "retain_nll", "retain_kl"} == UNLEARNING_LOSSES
    for name in ("idk", "retain_nll"):
        with pytest.raises(OptionError, match=f"'{name}' is an unlearning loss; it belongs to `rewardkit train unlearn`"):
            PolicyTrainConfig(data="d.jsonl", loss={"name": name})
