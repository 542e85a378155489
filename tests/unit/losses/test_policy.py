"""Policy (DPO-family) losses: values worked out by hand, configs, the missing reference, gradients, and
equality with TRL 1.16's own code.

The hand-computed numbers use one batch of three pairs (``PAIRS`` below), chosen so that each loss's
pieces are whole numbers: with β 0.5 the log-ratio gaps β·h are 1.5, 0 and −1.

TRL 1.16 has no separable DPO loss function: ``DPOTrainer._compute_loss`` runs the model, sums its per-token
log-probs and then branches on ``loss_type``. The equality tests call that very method unbound, with a
stand-in ``self`` holding only the attributes it reads and a stand-in model that returns given per-token
log-probs (``trl_dpo`` below), so TRL's own arithmetic computes the expected loss and metrics from the
same numbers ours get as sums and token counts. TRL 1.16's ``sigmoid`` ignores ``label_smoothing``;
conservative DPO (our ``dpo`` with ``label_smoothing``) is checked against TRL's ``aot`` branch, whose
formula is cDPO's applied to sorted log-ratios, on a batch that is already sorted (so the sort is the
identity, asserted). SimPO is checked against ``trl.experimental.cpo.CPOTrainer.cpo_loss`` (a method
that takes the two average log-probs) fed by TRL's ``CPOTrainer.get_batch_logps``. TRL's ``sft`` term is
a mean over all chosen tokens of the batch, equal to ours only when lengths are equal (both asserted).
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from trl import DPOTrainer
from trl.experimental.cpo import CPOTrainer

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


# ---------------------------------------------------------------- equality with TRL 1.16


class _TokenLogpsModel:
    """Stands in for the model in ``DPOTrainer._compute_loss``: returns fixed per-token log-probs (2B, T)."""

    training = True

    def __init__(self, per_token: torch.Tensor) -> None:
        self.per_token = per_token

    def __call__(self, **kwargs: object) -> SimpleNamespace:
        zeros = torch.zeros_like(self.per_token)
        return SimpleNamespace(log_probs=self.per_token, entropy=zeros, mean_logits=zeros,
                               is_top1=zeros.bool())


def trl_dpo(loss_type: str, batch: dict[str, torch.Tensor], *, beta: float,
            label_smoothing: float = 0.0) -> tuple[float, dict[str, float]]:
    """TRL 1.16's DPO loss and logged metrics on per-token log-probs (B, T) with 0/1 masks (B, T)."""
    per_token = torch.cat([batch["chosen"] * batch["chosen_mask"], batch["rejected"] * batch["rejected_mask"]])
    mask = torch.cat([batch["chosen_mask"], batch["rejected_mask"]]).long()
    completion_mask = torch.cat([torch.zeros(mask.shape[0], 1, dtype=torch.long), mask], dim=1)  # a prompt token
    inputs = {"input_ids": torch.zeros_like(completion_mask), "attention_mask": torch.ones_like(completion_mask),
              "completion_mask": completion_mask, "ref_chosen_logps": batch["ref_chosen"],
              "ref_rejected_logps": batch["ref_rejected"]}
    model = _TokenLogpsModel(per_token)
    same = lambda x: x  # noqa: E731 -- one process: gather is the identity
    trainer = SimpleNamespace(
        model=model, accelerator=SimpleNamespace(device=torch.device("cpu"), gather=same, gather_for_metrics=same),
        aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl",
        loss_types=[loss_type], loss_weights=[1.0], beta=beta, label_smoothing=label_smoothing, use_weighting=False,
        _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1)
    loss = DPOTrainer._compute_loss(trainer, model, inputs, False)
    return loss.item(), {k: v[0] for k, v in trainer._metrics["train"].items()}


def token_batch(seed: int, b: int = 6, t_max: int = 7) -> dict[str, torch.Tensor]:
    """Random per-token log-probs (B, T) float64, masks of random lengths 1..T, reference sums (B,)."""
    g = torch.Generator().manual_seed(seed)
    lengths = [torch.randint(1, t_max + 1, (b,), generator=g) for _ in range(2)]
    masks = [(torch.arange(t_max)[None, :] < n[:, None]).double() for n in lengths]
    return {"chosen": -3 * torch.rand(b, t_max, generator=g, dtype=torch.float64),
            "rejected": -3 * torch.rand(b, t_max, generator=g, dtype=torch.float64),
            "chosen_mask": masks[0], "rejected_mask": masks[1],
            "ref_chosen": -10 * torch.rand(b, generator=g, dtype=torch.float64),
            "ref_rejected": -10 * torch.rand(b, generator=g, dtype=torch.float64)}


def as_logps(batch: dict[str, torch.Tensor]) -> PreferenceLogps:
    """Our input: the masked sums and the token counts of the same per-token log-probs."""
    return PreferenceLogps(
        policy_chosen=(batch["chosen"] * batch["chosen_mask"]).sum(1),
        policy_rejected=(batch["rejected"] * batch["rejected_mask"]).sum(1),
        chosen_tokens=batch["chosen_mask"].sum(1), rejected_tokens=batch["rejected_mask"].sum(1),
        ref_chosen=batch["ref_chosen"], ref_rejected=batch["ref_rejected"])


def pick(batch: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    return {k: v[i:i + 1] for k, v in batch.items()}


TRL_NAMES = {"rewards_chosen": "rewards/chosen", "rewards_rejected": "rewards/rejected", "margin": "rewards/margins",
             "accuracy": "rewards/accuracies", "logps_chosen": "logps/chosen", "logps_rejected": "logps/rejected"}


@pytest.mark.parametrize(("name", "cfg", "trl_type", "eps"), [
    ("dpo", DPOConfig(beta=0.1), "sigmoid", 0.0),
    ("dpo", DPOConfig(beta=0.7), "sigmoid", 0.0),
    ("robust", RobustConfig(beta=0.1, label_smoothing=0.1), "robust", 0.1),
    ("robust", RobustConfig(beta=0.5, label_smoothing=0.3), "robust", 0.3),
    ("ipo", IPOConfig(beta=0.1), "ipo", 0.0),
    ("ipo", IPOConfig(beta=0.4), "ipo", 0.0),
    ("hinge", HingeConfig(beta=0.1), "hinge", 0.0),
    ("hinge", HingeConfig(beta=0.6), "hinge", 0.0),
    ("apo_zero", APOZeroConfig(beta=0.1), "apo_zero", 0.0),
    ("apo_zero", APOZeroConfig(beta=0.8), "apo_zero", 0.0),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_trl_dpo_trainer(name: str, cfg, trl_type: str, eps: float, seed: int) -> None:
    batch = token_batch(seed)
    ours = LOSSES.get(name)(as_logps(batch), cfg)
    loss, metrics = trl_dpo(trl_type, batch, beta=cfg.beta, label_smoothing=eps)
    assert ours.loss.item() == pytest.approx(loss, abs=1e-6)
    assert abs(ours.loss.item()) > 1e-3  # not a trivially zero comparison (robust can be negative)
    for i in range(len(ours.per_example)):  # per pair: TRL on a batch of one
        assert ours.per_example[i].item() == pytest.approx(trl_dpo(trl_type, pick(batch, i), beta=cfg.beta,
                                                                   label_smoothing=eps)[0], abs=1e-6)
    for ours_name, trl_name in TRL_NAMES.items():
        assert ours.metrics[ours_name].mean().item() == pytest.approx(metrics[trl_name], abs=1e-6), ours_name


@pytest.mark.parametrize("eps", [0.1, 0.25])
def test_conservative_dpo_equals_trl_aot_on_a_sorted_batch(eps: float) -> None:
    batch = token_batch(3)
    logps = as_logps(batch)
    # order the pairs by the policy's log-ratio, and give the reference increasing log-ratios too
    order = torch.argsort(logps.policy_chosen - logps.policy_rejected)
    batch = {k: v[order] for k, v in batch.items()}
    batch["ref_rejected"] = batch["ref_chosen"] - torch.linspace(-3.0, 2.0, len(order), dtype=torch.float64)
    logps = as_logps(batch)
    for diffs in (logps.policy_chosen - logps.policy_rejected, logps.ref_chosen - logps.ref_rejected):
        assert torch.equal(torch.sort(diffs).values, diffs)  # TRL's aot sort is the identity here
    ours = dpo(logps, DPOConfig(beta=0.3, label_smoothing=eps))
    assert ours.loss.item() == pytest.approx(trl_dpo("aot", batch, beta=0.3, label_smoothing=eps)[0], abs=1e-6)
    # and cDPO differs from plain DPO, so the comparison tests the smoothing
    assert abs(ours.loss.item() - trl_dpo("sigmoid", batch, beta=0.3)[0]) > 1e-2


def test_sft_equals_trl_on_equal_lengths_and_trl_weights_tokens_otherwise() -> None:
    batch = token_batch(4)
    full = {**batch, "chosen_mask": torch.ones_like(batch["chosen_mask"])}
    logps = as_logps(full)
    ours = sft(ResponseLogps(logps.policy_chosen, logps.chosen_tokens), SFTConfig())
    assert ours.loss.item() == pytest.approx(trl_dpo("sft", full, beta=0.1)[0], abs=1e-6)
    # unequal lengths: TRL averages over all chosen tokens of the batch, we average per response
    logps = as_logps(batch)
    assert len(set(logps.chosen_tokens.tolist())) > 1
    trl_loss = trl_dpo("sft", batch, beta=0.1)[0]
    assert trl_loss == pytest.approx((-logps.policy_chosen.sum() / logps.chosen_tokens.sum()).item(), abs=1e-6)
    ours = sft(ResponseLogps(logps.policy_chosen, logps.chosen_tokens), SFTConfig())
    assert abs(ours.loss.item() - trl_loss) > 1e-3


@pytest.mark.parametrize(("beta", "gamma", "eps"), [(2.0, 1.0, 0.0), (2.5, 1.375, 0.0), (0.1, 0.5, 0.0),
                                                    (2.0, 0.5, 0.1)])
def test_simpo_equals_trl_cpo_simpo(beta: float, gamma: float, eps: float) -> None:
    g = torch.Generator().manual_seed(5)
    b, t_len, vocab = 5, 8, 11
    logits = torch.randn(2 * b, t_len, vocab, generator=g, dtype=torch.float64)
    labels = torch.randint(0, vocab, (2 * b, t_len), generator=g)
    lengths = torch.randint(1, t_len, (2 * b,), generator=g)  # completion tokens at the end of each row
    labels[torch.arange(t_len)[None, :] < (t_len - lengths)[:, None]] = -100
    sums = CPOTrainer.get_batch_logps(logits, labels, average_log_prob=False)
    avgs = CPOTrainer.get_batch_logps(logits, labels, average_log_prob=True)
    tokens = (labels[:, 1:] != -100).sum(1)
    trainer = SimpleNamespace(alpha=0.0, accelerator=SimpleNamespace(device=torch.device("cpu")), loss_type="simpo",
                              simpo_gamma=gamma, beta=beta, label_smoothing=eps)
    losses, chosen_rewards, rejected_rewards = CPOTrainer.cpo_loss(trainer, avgs[:b], avgs[b:])
    ours = simpo(PreferenceLogps(sums[:b], sums[b:], tokens[:b], tokens[b:]),
                 SimPOConfig(beta=beta, gamma=gamma, label_smoothing=eps))
    assert ours.per_example.tolist() == pytest.approx(losses.tolist(), abs=1e-6)
    assert ours.metrics["rewards_chosen"].tolist() == pytest.approx(chosen_rewards.tolist(), abs=1e-6)
    assert ours.metrics["rewards_rejected"].tolist() == pytest.approx(rejected_rewards.tolist(), abs=1e-6)
