"""Unlearning losses: pure functions of the forget (and retain) log-probabilities, METHODS.md §7.

Forget losses take :class:`ForgetLogps` (sums of log π_θ over each forget answer's tokens, their token counts
and, for ``npo``, the frozen reference's sums), :class:`TemplateProbs` (``flat``) or :class:`PreferenceLogps`
(``idk``). Retain losses take :class:`ResponseLogps` (``retain_nll``) or :class:`RetainKL` (``retain_kl``).
Notation below, per example: ``lp = log π_θ(y|x)`` (the sum), ``|y|`` its token count, ``ref`` the reference's
sum, ``x = lp − ref``::

    =========  =====================================================  =======================================
    name       per-example loss (minimised)                           defaults
    =========  =====================================================  =======================================
    ga         lp/|y|  (= −CE; ``normalize="sequence"``: lp)           retain none
    grad_diff  lp/|y|  (the ga term; the job adds the retain term)     retain nll
    npo        −(2/β)·logσ(−β·x)                                       β 0.1, retain nll
    simnpo     −(2/β)·logσ(β·(−lp/|y| − δ))                            β 2.5, δ 0, retain nll
    flat       a(P_e) − c(P_f)   (f-divergence table below)           tv, mean over answer tokens, retain none
    idk        dpo with the refusal chosen, the forget answer rejected  β 0.1, retain none
    retain_nll −lp/|y| on a retain answer                              —
    retain_kl  Σ_t KL(π_ref‖π_θ)/|y| on a retain answer                 —
    =========  =====================================================  =======================================

Every forget-loss config carries ``forget_coef`` γ, ``retain`` ("none", "nll" or "kl": which retain loss the job
adds, :data:`RETAIN_LOSSES`) and ``retain_coef`` α; the job computes ``γ·mean(L_f) + α·mean(L_r)``, each mean
over its own stream's examples (the loop scales each stream's sum by its own count). The losses here return
per-example values only; they never see the coefficients.

Per-example means, not open-unlearning's batch token mean: open-unlearning's GA is −(HF mean CE over all
answer tokens of the batch), which weights an example by its length and depends on how a batch is split.
Ours is the mean over examples of each example's mean token log-prob, so a batch's loss is a plain mean of
(B,) values and gradient accumulation and data parallelism reproduce it exactly. The two agree when all
answers have the same length.

NPO's gradient is GA's (on sums) times a weight. With ``x = lp − ref``, ``d/dx[−(2/β)·logσ(−βx)] = 2σ(βx)``,
so ``∂L_NPO/∂lp = w·∂(lp)/∂lp`` with ``w = 2σ(β(lp − ref)) = 2π^β/(π^β + π_ref^β)`` (the NPO paper's weight,
in (0, 2), 1 at π = π_ref). As β → 0, ``w → 1`` and ``L_NPO = (2/β)·log 2 + x + O(β)``: NPO tends to GA
on sums (``ga`` with ``normalize="sequence"``) up to a constant. Both are tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from rewardkit.errors import OptionError
from rewardkit.losses.base import (
    ForgetLogps,
    LossOutput,
    PreferenceLogps,
    ResponseLogps,
    RetainKL,
    TemplateProbs,
    register_loss,
)
from rewardkit.losses.policy import DPOConfig, dpo

RETAIN_LOSSES = {"none": None, "nll": "retain_nll", "kl": "retain_kl"}
"""A forget config's ``retain`` setting → the registered retain loss the job adds (None: no retain stream)."""

UNLEARNING_LOSSES = frozenset({"ga", "grad_diff", "npo", "simnpo", "flat", "idk", "retain_nll", "retain_kl"})
"""Every loss registered here: ``idk`` and ``retain_nll`` take the policy job's input types
(PreferenceLogps, ResponseLogps) but belong to ``rewardkit train unlearn``."""

REFERENCE_UNLEARN_LOSSES = frozenset({"npo", "idk"})
"""The forget losses that need reference log-probs (a ``retain="kl"`` setting needs a reference too)."""


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise OptionError(f"loss.beta must be > 0, got {beta}")


@dataclass
class ForgetTerms:
    """The fields every forget-loss config shares: how the job weighs the forget and retain terms."""

    forget_coef: float = field(default=1.0, metadata={"help": "γ, the weight of the forget loss in the total"})
    retain: str = field(default="none", metadata={
        "help": "the retain term the job adds: 'none', 'nll' (retain_nll) or 'kl' (retain_kl, KL(π_ref‖π_θ))"})
    retain_coef: float = field(default=1.0, metadata={"help": "α, the weight of the retain loss in the total"})

    def __post_init__(self) -> None:
        if not self.forget_coef > 0:
            raise OptionError(f"loss.forget_coef must be > 0, got {self.forget_coef}")
        if self.retain not in RETAIN_LOSSES:
            raise OptionError(f"loss.retain must be 'none', 'nll' or 'kl', got {self.retain!r}")
        if not self.retain_coef >= 0:
            raise OptionError(f"loss.retain_coef must be >= 0, got {self.retain_coef}")


def _check_normalize(normalize: str) -> None:
    if normalize not in ("tokens", "sequence"):
        raise OptionError(f"loss.normalize must be 'tokens' or 'sequence', got {normalize!r}")


@dataclass
class GAConfig(ForgetTerms):
    """Settings of gradient ascent on the forget set (``--set loss.<field>=...``)."""

    normalize: str = field(default="tokens", metadata={
        "help": "'tokens': each forget answer's mean token log-prob (−CE, as open-unlearning); 'sequence': its sum"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_normalize(self.normalize)


@dataclass
class GradDiffConfig(GAConfig):
    """Settings of GradDiff: gradient ascent on the forget set plus a retain term (``--set loss.<field>=...``)."""

    retain: str = field(default="nll", metadata={
        "help": "the retain term: 'nll' (default, open-unlearning GradDiff), 'kl' (KL(π_ref‖π_θ)) or 'none'"})


@dataclass
class NPOConfig(ForgetTerms):
    """Settings of NPO (``--set loss.<field>=...``); defaults are open-unlearning's NPO.yaml."""

    beta: float = field(default=0.1, metadata={"help": "β of NPO (paper and open-unlearning 0.1)"})
    retain: str = field(default="nll", metadata={
        "help": "the retain term: 'nll' (default, open-unlearning), 'kl' or 'none'"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_beta(self.beta)


@dataclass
class SimNPOConfig(ForgetTerms):
    """Settings of SimNPO (``--set loss.<field>=...``); β is the authors' TOFU config (open-unlearning: 4.5)."""

    beta: float = field(default=2.5, metadata={
        "help": "β (authors' TOFU config 2.5; open-unlearning 4.5 with forget_coef 0.125)"})
    delta: float = field(default=0.0, metadata={
        "help": "δ, the margin subtracted from the per-token NLL (open-unlearning's 'delta', the authors' 'gamma'; 0)"})
    retain: str = field(default="nll", metadata={
        "help": "the retain term: 'nll' (default, as both published configs), 'kl' or 'none'"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_beta(self.beta)


@dataclass
class IdkConfig(ForgetTerms):
    """Settings of IdkDPO: DPO with a refusal preferred over the forget answer (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "β of DPO (0.1)"})
    label_smoothing: float = field(default=0.0, metadata={"help": "ε of conservative DPO, in [0, 0.5); 0 is DPO"})

    def __post_init__(self) -> None:
        super().__post_init__()
        DPOConfig(beta=self.beta, label_smoothing=self.label_smoothing)  # validates both


@dataclass
class RetainNLLConfig:
    """Settings of the retain NLL term (``--set retain.<field>=...``)."""

    normalize: str = field(default="tokens", metadata={
        "help": "'tokens': each retain answer's mean NLL per token; 'sequence': its summed NLL"})

    def __post_init__(self) -> None:
        _check_normalize(self.normalize)


@dataclass
class RetainKLConfig:
    """Settings of the retain KL term (``--set retain.<field>=...``)."""

    normalize: str = field(default="tokens", metadata={
        "help": "'tokens': Σ_t KL(π_ref‖π_θ) / |y| per retain answer; 'sequence': the sum"})

    def __post_init__(self) -> None:
        _check_normalize(self.normalize)


def _per_token(total: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B,) sum / (B,) token count (at least 1), in ``total``'s dtype."""
    return total / tokens.to(total.dtype).clamp(min=1.0)


def _check_forget(inputs: ForgetLogps) -> None:
    if inputs.forget.dim() != 1 or inputs.forget.shape != inputs.tokens.shape:
        raise ValueError(f"forget and tokens must both be (B,), got {tuple(inputs.forget.shape)} and "
                         f"{tuple(inputs.tokens.shape)}")


def _forget_metrics(inputs: ForgetLogps, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        metrics = {"forget_logps": inputs.forget.detach().float(),
                   "forget_logp_per_token": _per_token(inputs.forget, inputs.tokens).detach().float()}
        metrics.update({k: v.detach().float() for k, v in extra.items()})
    return metrics


def _ga_term(inputs: ForgetLogps, normalize: str) -> LossOutput:
    _check_forget(inputs)
    per_example = _per_token(inputs.forget, inputs.tokens) if normalize == "tokens" else inputs.forget
    return LossOutput(per_example.mean(), per_example, _forget_metrics(inputs))


@register_loss("ga", config=GAConfig, inputs=ForgetLogps)
def ga(inputs: ForgetLogps, cfg: GAConfig) -> LossOutput:
    """Gradient ascent: minimise the forget answer's log-prob, ``lp/|y|`` per example (= −CE).

    Args:
        inputs: ``forget`` (B,) float sums of log π_θ over each forget answer, ``tokens`` (B,) their counts
            (``ref_forget`` is ignored).
        cfg: ``normalize="tokens"`` (default) is the mean token log-prob; ``"sequence"`` the sum.

    Unbounded below: the loss goes to −∞ as the answer's probability goes to 0 (why GA collapses).
    Metrics: ``forget_logps`` (the sums), ``forget_logp_per_token``.
    """
    return _ga_term(inputs, cfg.normalize)


@register_loss("grad_diff", config=GradDiffConfig, inputs=ForgetLogps)
def grad_diff(inputs: ForgetLogps, cfg: GradDiffConfig) -> LossOutput:
    """GradDiff's forget term: the same as :func:`ga`; its config adds the retain term (``retain="nll"``)."""
    return _ga_term(inputs, cfg.normalize)


@register_loss("npo", config=NPOConfig, inputs=ForgetLogps)
def npo(inputs: ForgetLogps, cfg: NPOConfig) -> LossOutput:
    """NPO (Zhang et al. 2024): ``−(2/β)·logσ(−β·(lp − ref))`` on sequence sums.

    Args:
        inputs: ``forget`` and ``ref_forget`` (B,) float sums of log π_θ and log π_ref over each forget answer.
        cfg: ``beta``.

    Bounded below by 0 (at π → 0) and ``(2/β)·log 2`` when π = π_ref. Its gradient in ``lp`` is
    ``w = 2σ(β(lp − ref))`` times GA's (see the module docstring). Metrics: ``forget_logps``,
    ``forget_logp_per_token``, ``forget_logratio`` (lp − ref) and ``npo_weight`` (w).
    """
    _check_forget(inputs)
    if inputs.ref_forget is None:
        raise ValueError("the 'npo' loss needs reference log-probs (ref_forget): give a reference model "
                         "(the model before unlearning), or use a reference-free loss (ga, simnpo, flat)")
    if inputs.ref_forget.shape != inputs.forget.shape:
        raise ValueError(f"ref_forget must be (B,) like forget, got {tuple(inputs.ref_forget.shape)}")
    logratio = inputs.forget - inputs.ref_forget
    per_example = -(2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * logratio)
    metrics = _forget_metrics(inputs, forget_logratio=logratio, npo_weight=2 * torch.sigmoid(cfg.beta * logratio))
    return LossOutput(per_example.mean(), per_example, metrics)


@register_loss("simnpo", config=SimNPOConfig, inputs=ForgetLogps)
def simnpo(inputs: ForgetLogps, cfg: SimNPOConfig) -> LossOutput:
    """SimNPO (Fan et al. 2024), reference-free: ``−(2/β)·logσ(β·(NLL/|y| − δ))`` with ``NLL/|y| = −lp/|y|``.

    Args:
        inputs: ``forget`` (B,) float sums, ``tokens`` (B,) counts; ``ref_forget`` is ignored.
        cfg: ``beta``, ``delta`` (the margin; open-unlearning's code form, ``β`` multiplies it).

    Minimising raises the per-token NLL; bounded below by 0. Metrics: ``forget_logps``,
    ``forget_logp_per_token``.
    """
    _check_forget(inputs)
    nll_per_token = -_per_token(inputs.forget, inputs.tokens)
    per_example = -(2.0 / cfg.beta) * F.logsigmoid(cfg.beta * (nll_per_token - cfg.delta))
    return LossOutput(per_example.mean(), per_example, _forget_metrics(inputs))


@register_loss("idk", config=IdkConfig, inputs=PreferenceLogps)
def idk(inputs: PreferenceLogps, cfg: IdkConfig) -> LossOutput:
    """IdkDPO: :func:`rewardkit.losses.policy.dpo` with the refusal as chosen and the forget answer as rejected.

    Args:
        inputs: ``policy_chosen``/``ref_chosen`` the refusal's (B,) sums, ``policy_rejected``/``ref_rejected``
            the forget answer's; token counts.
        cfg: ``beta``, ``label_smoothing`` (as ``dpo``).

    Metrics: dpo's (``rewards_chosen``, ``rewards_rejected``, ``margin``, ``accuracy``, ``logps_*``) and
    ``forget_logp_per_token`` (the rejected answer's mean token log-prob).
    """
    if inputs.ref_chosen is None or inputs.ref_rejected is None:
        raise ValueError("the 'idk' loss needs reference log-probs (ref_chosen and ref_rejected): give a "
                         "reference model (the model before unlearning)")
    out = dpo(inputs, DPOConfig(beta=cfg.beta, label_smoothing=cfg.label_smoothing))
    with torch.no_grad():
        per_token = _per_token(inputs.policy_rejected, inputs.rejected_tokens).detach().float()
    return LossOutput(out.loss, out.per_example, {**out.metrics, "forget_logp_per_token": per_token})


# FLAT's f-divergences: loss = a(P_e) − c(P_f), with a = −g and c = −f*∘g for the f-GAN output activation g
# and the convex conjugate f* (Nowozin et al. 2016, Table 2). Minimising the loss maximises the variational
# lower bound E_P[g(V)] − E_Q[f*(g(V))] of D_f(template ‖ forget), V the model's token probability.
_LOG2 = math.log(2.0)
DIVERGENCES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "kl": (lambda x: -x, lambda x: -torch.exp(x - 1)),
    "js": (lambda x: F.softplus(-x) - _LOG2, lambda x: -F.softplus(x) + _LOG2),
    "pearson": (lambda x: -x, lambda x: -(x ** 2 / 4 + x)),
    "jeffrey": (lambda x: -x, lambda x: -(x + x ** 2 / 4 + x ** 3 / 16)),  # FLAT's 3rd-order Taylor form of f*
    "tv": (lambda x: -torch.tanh(x) / 2, lambda x: -torch.tanh(x) / 2),
    # The three FLAT publishes with the sign reversed, derived from f-GAN's pairs (see flat's docstring):
    "reverse_kl": (lambda x: torch.exp(-x), lambda x: 1 - x),  # g = −e^{−v}, f*(t) = −1 − log(−t)
    "squared_hellinger": (lambda x: torch.exp(-x) - 1, lambda x: 1 - torch.exp(x)),  # g = 1 − e^{−v}, f* = t/(1−t)
    "neyman": (lambda x: torch.exp(-x) - 1, lambda x: -(2 - 2 * torch.exp(-x / 2))),  # g = 1 − e^{−v}, 2 − 2√(1−t)
}


@dataclass
class FLATConfig(ForgetTerms):
    """Settings of FLAT (``--set loss.<field>=...``); defaults are the FLAT repository's (Total-Variation)."""

    divergence: str = field(default="tv", metadata={
        "help": "the f-divergence: tv (FLAT default), kl, js, pearson, jeffrey, reverse_kl, squared_hellinger, neyman "
                "(the last three in their corrected, f-GAN form)"})
    mean_over: str = field(default="answer", metadata={
        "help": "P_e/P_f as the mean token probability over each answer's tokens ('answer'), or over every "
                "position of the padded row, zeros included, as FLAT's code ('all'; depends on padding)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.divergence not in DIVERGENCES:
            raise OptionError(f"loss.divergence must be one of {', '.join(DIVERGENCES)}, got {self.divergence!r}")
        if self.mean_over not in ("answer", "all"):
            raise OptionError(f"loss.mean_over must be 'answer' or 'all', got {self.mean_over!r}")


def _mean_prob(probs: torch.Tensor, mask: torch.Tensor, mean_over: str) -> torch.Tensor:
    """(B,) mean of (B, T) token probabilities over the mask's True positions, or over all T positions."""
    total = (probs * mask.to(probs.dtype)).sum(dim=1)  # (B,)
    if mean_over == "all":  # FLAT's code: every position of the padded row counts, zeros included
        return total / max(probs.shape[1], 1)
    return total / mask.sum(dim=1).to(probs.dtype).clamp(min=1.0)


@register_loss("flat", config=FLATConfig, inputs=TemplateProbs)
def flat(inputs: TemplateProbs, cfg: FLATConfig) -> LossOutput:
    """FLAT (Wang et al. 2025): ``a(P_e) − c(P_f)`` per example, from the f-divergence table :data:`DIVERGENCES`.

    Args:
        inputs: ``template`` (B, T_e) / ``forget`` (B, T_f) float token probabilities p_θ(y_t) of the refusal
            and forget answers, with bool masks of the answer tokens.
        cfg: ``divergence``; ``mean_over`` "answer" (default) or "all".

    ``P_e``, ``P_f`` (B,) are each example's mean token probability. FLAT's code averages over the whole
    batch and every position (prompt and padding as zeros) before applying ``a`` and ``c``; we apply them per
    example (so a batch's loss is a mean of (B,) values, exact under accumulation and data parallelism) and
    by default over answer tokens only, which does not depend on the batch's padding.

    Signs. Writing the variational bound ``D_f(P‖Q) ≥ E_P[g(V)] − E_Q[f*(g(V))]`` as a loss gives
    ``a = −g`` and ``c = −f*∘g``. f-GAN's activations g increase and f* never decreases (its slope is the
    maximiser u ≥ 0 of ``ut − f(u)``), so a and c both decrease: descent raises P_e and lowers P_f. FLAT's
    KL, JS, Pearson, Jeffrey and TV rows are these pairs. Its Reverse-KL and Squared-Hellinger rows are the
    pairs evaluated at −x (``a = e^x``, ``c = 1 + x``; ``a = e^x − 1``, ``c = 1 − e^{−x}``): both increase,
    so descent lowers P_e and raises P_f. Its Neyman row has ``a = e^x − 1`` (lowers P_e) and
    ``c = −f*(x)`` with no activation (decreasing, so it does lower P_f). We use
    the f-GAN activations instead: reverse-KL ``g = −e^{−v}``, ``f*(g) = v − 1`` → ``e^{−P_e} − 1 + P_f``;
    squared Hellinger ``g = 1 − e^{−v}``, ``f*(g) = e^v − 1`` → ``e^{−P_e} + e^{P_f} − 2``; Neyman
    ``g = 1 − e^{−v}``, ``f*(g) = 2 − 2e^{−v/2}`` → ``e^{−P_e} + 1 − 2e^{−P_f/2}``. A test checks that one
    gradient step raises P_e and lowers P_f for every divergence. Metrics: ``template_prob`` (P_e),
    ``forget_prob`` (P_f).
    """
    for probs, mask, name in ((inputs.template, inputs.template_mask, "template"),
                              (inputs.forget, inputs.forget_mask, "forget")):
        if probs.dim() != 2 or probs.shape != mask.shape:
            raise ValueError(f"{name} and {name}_mask must both be (B, T), got {tuple(probs.shape)} and "
                             f"{tuple(mask.shape)}")
    if inputs.template.shape[0] != inputs.forget.shape[0]:
        raise ValueError(f"template and forget must have the same batch size, got {inputs.template.shape[0]} "
                         f"and {inputs.forget.shape[0]}")
    p_e = _mean_prob(inputs.template, inputs.template_mask, cfg.mean_over)
    p_f = _mean_prob(inputs.forget, inputs.forget_mask, cfg.mean_over)
    activation, conjugate = DIVERGENCES[cfg.divergence]
    per_example = activation(p_e) - conjugate(p_f)
    metrics = {"template_prob": p_e.detach().float(), "forget_prob": p_f.detach().float()}
    return LossOutput(per_example.mean(), per_example, metrics)


@register_loss("retain_nll", config=RetainNLLConfig, inputs=ResponseLogps)
def retain_nll(inputs: ResponseLogps, cfg: RetainNLLConfig) -> LossOutput:
    """The retain NLL: ``−lp/|y|`` per retain answer (``normalize="sequence"``: ``−lp``), as ``sft``.

    Args:
        inputs: ``policy`` (B,) float sums of log π_θ over each retain answer, ``tokens`` (B,) their counts.

    Metrics: ``retain_nll_per_token``.
    """
    if inputs.policy.dim() != 1 or inputs.policy.shape != inputs.tokens.shape:
        raise ValueError(f"policy and tokens must both be (B,), got {tuple(inputs.policy.shape)} and "
                         f"{tuple(inputs.tokens.shape)}")
    per_token = -_per_token(inputs.policy, inputs.tokens)
    per_example = per_token if cfg.normalize == "tokens" else -inputs.policy
    return LossOutput(per_example.mean(), per_example, {"retain_nll_per_token": per_token.detach().float()})


@register_loss("retain_kl", config=RetainKLConfig, inputs=RetainKL)
def retain_kl(inputs: RetainKL, cfg: RetainKLConfig) -> LossOutput:
    """The retain KL: ``Σ_t KL(π_ref‖π_θ) / |y|`` per retain answer (``normalize="sequence"``: the sum).

    Args:
        inputs: ``kl`` (R,) float sums over each retain answer's tokens, ``tokens`` (R,) their counts.

    Metrics: ``retain_kl_per_token``.
    """
    if inputs.kl.dim() != 1 or inputs.kl.shape != inputs.tokens.shape:
        raise ValueError(f"kl and tokens must both be (R,), got {tuple(inputs.kl.shape)} and "
                         f"{tuple(inputs.tokens.shape)}")
    per_token = _per_token(inputs.kl, inputs.tokens)
    per_example = per_token if cfg.normalize == "tokens" else inputs.kl
    return LossOutput(per_example.mean(), per_example, {"retain_kl_per_token": per_token.detach().float()})
