"""Policy (DPO-family) losses: pure functions of sequence log-probabilities, matching TRL 1.16.

Every loss takes :class:`PreferenceLogps` (or :class:`ResponseLogps` for ``sft``): (B,) float sums of the
response-token log-probabilities under the policy (and, for reference-based losses, a frozen reference),
and (B,) token counts. Notation used below::

    lr_c = π_c − ref_c,  lr_r = π_r − ref_r     (B,)  log-ratios of chosen / rejected
    h    = lr_c − lr_r                            (B,)  the DPO "logit" before β

=========  =======================================================  ===================================
name       per-example loss                                         TRL 1.16
=========  =======================================================  ===================================
dpo        −(1−ε)·logσ(βh) − ε·logσ(−βh)   (ε = label_smoothing)    DPOTrainer ``sigmoid`` (ε = 0)
robust     [−(1−ε)·logσ(βh) + ε·logσ(−βh)] / (1−2ε)                 DPOTrainer ``robust``
ipo        (lr_c/|y_c| − lr_r/|y_r| − 1/(2β))²                      DPOTrainer ``ipo``
hinge      relu(1 − βh)                                             DPOTrainer ``hinge``
simpo      −(1−ε)·logσ(βΔ − γ) − ε·logσ(γ − βΔ), Δ = π_c/|y_c| − π_r/|y_r|   CPOTrainer ``simpo`` (cpo_alpha 0)
apo_zero   1 − σ(β·lr_c) + σ(β·lr_r)                                DPOTrainer ``apo_zero``
sft        −π/|y|  (or −π with ``normalize="sequence"``)            see :func:`sft`
=========  =======================================================  ===================================

Every pairwise loss returns, as detached (B,) metrics (TRL's names, with ``_`` for ``/``):
``rewards_chosen`` / ``rewards_rejected`` (β·lr_c, β·lr_r; for simpo β times the average log-prob),
``margin`` (their difference), ``accuracy`` (margin > 0; a tie is wrong) and ``logps_chosen`` /
``logps_rejected`` (the policy's sequence sums). A reference-based loss given no reference raises
``ValueError``; :data:`REFERENCE_LOSSES` names them, so a job can check before it builds a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from rewardkit.errors import OptionError
from rewardkit.losses.base import LossOutput, PreferenceLogps, ResponseLogps, register_loss

REFERENCE_LOSSES = frozenset({"dpo", "robust", "ipo", "hinge", "apo_zero"})
"""The registered policy losses that need reference log-probs (``ref_chosen``/``ref_rejected``)."""


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise OptionError(f"loss.beta must be > 0, got {beta}")


def _check_label_smoothing(eps: float) -> None:
    if not 0.0 <= eps < 0.5:
        raise OptionError(f"loss.label_smoothing must be in [0, 0.5), got {eps}")


@dataclass
class DPOConfig:
    """Settings of the DPO loss (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "β, the strength of the KL tie to the reference (TRL default 0.1)"})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "ε of conservative DPO (cDPO): the assumed probability that a label is flipped, in [0, 0.5); 0 is plain DPO"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)
        _check_label_smoothing(self.label_smoothing)


@dataclass
class RobustConfig:
    """Settings of robust DPO (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "β, the strength of the KL tie to the reference (TRL default 0.1)"})
    label_smoothing: float = field(default=0.1, metadata={
        "help": "ε, the probability that a preference label is flipped, in [0, 0.5) (rDPO paper's 0.1; 0 is plain DPO)"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)
        _check_label_smoothing(self.label_smoothing)


@dataclass
class IPOConfig:
    """Settings of the IPO loss (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "τ of the IPO paper: the target gap is 1/(2τ) (TRL default 0.1)"})
    length_normalize: bool = field(default=True, metadata={
        "help": "divide each log-ratio by its response's token count, as TRL does; false is the paper's sums"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)


@dataclass
class HingeConfig:
    """Settings of the SLiC hinge loss (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "β: the hinge asks for a log-ratio gap of 1/β (TRL default 0.1)"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)


@dataclass
class SimPOConfig:
    """Settings of the SimPO loss (``--set loss.<field>=...``)."""

    beta: float = field(default=2.0, metadata={"help": "β, the scale of the length-averaged log-probs (SimPO paper 2.0)"})
    gamma: float = field(default=1.0, metadata={
        "help": "γ, the target reward margin, absolute (TRL's simpo_gamma); 1.0 = the paper's γ/β 0.5 at β 2"})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "ε: conservative (label-smoothed) SimPO as in TRL's CPOTrainer, in [0, 0.5); 0 is the paper's loss"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)
        if self.gamma < 0:
            raise OptionError(f"loss.gamma must be >= 0, got {self.gamma}")
        _check_label_smoothing(self.label_smoothing)


@dataclass
class APOZeroConfig:
    """Settings of the APO-zero loss (``--set loss.<field>=...``)."""

    beta: float = field(default=0.1, metadata={"help": "β, the scale of the log-ratios inside σ (TRL default 0.1)"})

    def __post_init__(self) -> None:
        _check_beta(self.beta)


@dataclass
class SFTConfig:
    """Settings of the supervised fine-tuning loss (``--set loss.<field>=...``)."""

    normalize: str = field(default="tokens", metadata={
        "help": "'tokens': mean NLL per response token; 'sequence': the response's summed NLL"})

    def __post_init__(self) -> None:
        if self.normalize not in ("tokens", "sequence"):
            raise OptionError(f"loss.normalize must be 'tokens' or 'sequence', got {self.normalize!r}")


def _check_pair(inputs: PreferenceLogps) -> None:
    shapes = {tuple(t.shape) for t in (inputs.policy_chosen, inputs.policy_rejected, inputs.chosen_tokens,
                                       inputs.rejected_tokens)}
    if len(shapes) != 1 or inputs.policy_chosen.dim() != 1:
        raise ValueError(f"policy_chosen, policy_rejected, chosen_tokens and rejected_tokens must all be (B,), "
                         f"got shapes {sorted(shapes)}")


def _logratios(inputs: PreferenceLogps, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(lr_c, lr_r), each (B,): policy minus reference sequence log-probs; ValueError without a reference."""
    _check_pair(inputs)
    if inputs.ref_chosen is None or inputs.ref_rejected is None:
        raise ValueError(f"the {name!r} loss needs reference log-probs (ref_chosen and ref_rejected); "
                         f"use a reference model, or a reference-free loss (simpo, sft)")
    if inputs.ref_chosen.shape != inputs.policy_chosen.shape or inputs.ref_rejected.shape != inputs.policy_chosen.shape:
        raise ValueError(f"ref_chosen and ref_rejected must be (B,) like the policy's, got "
                         f"{tuple(inputs.ref_chosen.shape)} and {tuple(inputs.ref_rejected.shape)}")
    return inputs.policy_chosen - inputs.ref_chosen, inputs.policy_rejected - inputs.ref_rejected


def _per_token(total: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B,) sum / (B,) token count (at least 1, as TRL clamps), in ``total``'s dtype."""
    return total / tokens.to(total.dtype).clamp(min=1.0)


def _output(per_example: torch.Tensor, chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
            inputs: PreferenceLogps) -> LossOutput:
    """The loss and TRL's metrics, from (B,) losses and (B,) implicit rewards."""
    with torch.no_grad():
        c, r = chosen_rewards.detach().float(), rejected_rewards.detach().float()
        metrics = {"rewards_chosen": c, "rewards_rejected": r, "margin": c - r, "accuracy": (c > r).float(),
                   "logps_chosen": inputs.policy_chosen.detach().float(),
                   "logps_rejected": inputs.policy_rejected.detach().float()}
    return LossOutput(per_example.mean(), per_example, metrics)


def _smoothed_sigmoid(logits: torch.Tensor, eps: float) -> torch.Tensor:
    """(B,) ``−(1−ε)·logσ(z) − ε·logσ(−z)``: the logistic loss against labels smoothed by ε."""
    loss = -F.logsigmoid(logits)
    return (1 - eps) * loss - eps * F.logsigmoid(-logits) if eps else loss


@register_loss("dpo", config=DPOConfig, inputs=PreferenceLogps)
def dpo(inputs: PreferenceLogps, cfg: DPOConfig) -> LossOutput:
    """DPO (Rafailov et al. 2023): ``−logσ(β·h)``, ``h = (π_c − ref_c) − (π_r − ref_r)``.

    Args:
        inputs: ``policy_*``/``ref_*`` (B,) float sequence log-prob sums; token counts are unused.
        cfg: ``beta``; ``label_smoothing`` ε > 0 gives conservative DPO (cDPO, Mitchell 2023),
            ``−(1−ε)·logσ(βh) − ε·logσ(−βh)``: the expected loss when each label is flipped with probability ε.

    TRL 1.16's ``sigmoid`` is the ε = 0 case (its ``label_smoothing`` only acts on ``robust``, ``exo_pair``
    and ``aot``; TRL before 1.0 applied it to ``sigmoid`` exactly as here). Returns (B,) per-example losses.
    """
    lr_c, lr_r = _logratios(inputs, "dpo")
    per_example = _smoothed_sigmoid(cfg.beta * (lr_c - lr_r), cfg.label_smoothing)
    return _output(per_example, cfg.beta * lr_c, cfg.beta * lr_r, inputs)


@register_loss("robust", config=RobustConfig, inputs=PreferenceLogps)
def robust(inputs: PreferenceLogps, cfg: RobustConfig) -> LossOutput:
    """Robust DPO (rDPO, Chowdhury et al. 2024), TRL's ``robust``:
    ``[(1−ε)·(−logσ(βh)) − ε·(−logσ(−βh))] / (1−2ε)``.

    Unlike cDPO (``dpo`` with ``label_smoothing``), which averages over the flipped label and so is biased,
    rDPO is an unbiased estimate of the clean DPO loss when each label is flipped with probability ε
    (``cfg.label_smoothing``, as TRL names it). It can be negative for a single pair. ε = 0 is plain DPO.

    Args:
        inputs: ``policy_*``/``ref_*`` (B,) float sequence log-prob sums.
        cfg: ``beta``, ``label_smoothing`` ε in [0, 0.5).
    """
    lr_c, lr_r = _logratios(inputs, "robust")
    logits, eps = cfg.beta * (lr_c - lr_r), cfg.label_smoothing
    per_example = (-(1 - eps) * F.logsigmoid(logits) + eps * F.logsigmoid(-logits)) / (1 - 2 * eps)
    return _output(per_example, cfg.beta * lr_c, cfg.beta * lr_r, inputs)


@register_loss("ipo", config=IPOConfig, inputs=PreferenceLogps)
def ipo(inputs: PreferenceLogps, cfg: IPOConfig) -> LossOutput:
    """IPO (Azar et al. 2023, eq. 17): ``(h' − 1/(2β))²`` with ``β`` the paper's τ.

    With ``cfg.length_normalize`` (default, as TRL 1.16) ``h' = lr_c/|y_c| − lr_r/|y_r|``: each log-ratio is
    divided by its response's token count (at least 1). The paper writes sequence sums (``h' = h``,
    ``length_normalize=False``); TRL notes that the IPO authors confirmed the normalised form is what their
    results used, and it keeps the squared loss from growing with length.

    Args:
        inputs: ``policy_*``/``ref_*`` (B,) float sums; ``chosen_tokens``/``rejected_tokens`` (B,) counts.
        cfg: ``beta`` (τ), ``length_normalize``.
    """
    lr_c, lr_r = _logratios(inputs, "ipo")
    if cfg.length_normalize:
        gap = _per_token(lr_c, inputs.chosen_tokens) - _per_token(lr_r, inputs.rejected_tokens)
    else:
        gap = lr_c - lr_r
    per_example = (gap - 1 / (2 * cfg.beta)) ** 2
    return _output(per_example, cfg.beta * lr_c, cfg.beta * lr_r, inputs)


@register_loss("hinge", config=HingeConfig, inputs=PreferenceLogps)
def hinge(inputs: PreferenceLogps, cfg: HingeConfig) -> LossOutput:
    """SLiC hinge (Zhao et al. 2023) on DPO's log-ratio gap, TRL's ``hinge``: ``relu(1 − β·h)``.

    Args:
        inputs: ``policy_*``/``ref_*`` (B,) float sequence log-prob sums.
        cfg: ``beta``; the loss is zero once ``h ≥ 1/β``. (SLiC's paper uses raw log-probs, no reference.)
    """
    lr_c, lr_r = _logratios(inputs, "hinge")
    per_example = torch.relu(1 - cfg.beta * (lr_c - lr_r))
    return _output(per_example, cfg.beta * lr_c, cfg.beta * lr_r, inputs)


@register_loss("simpo", config=SimPOConfig, inputs=PreferenceLogps)
def simpo(inputs: PreferenceLogps, cfg: SimPOConfig) -> LossOutput:
    """SimPO (Meng et al. 2024), reference-free: ``−logσ(β·(π_c/|y_c| − π_r/|y_r|) − γ)``.

    Args:
        inputs: ``policy_*`` (B,) float sums and ``*_tokens`` (B,) counts; ``ref_*`` are ignored.
        cfg: ``beta`` (paper 2.0), ``gamma`` the absolute target margin (TRL's ``simpo_gamma``; the paper's
            scripts set ``gamma_beta_ratio`` γ/β, 0.5 at β 2 is the default γ 1.0), ``label_smoothing`` ε
            for the conservative form ``−(1−ε)·logσ(z) − ε·logσ(−z)`` TRL's CPOTrainer also offers.

    Equals TRL's ``CPOTrainer`` with ``loss_type="simpo"`` and ``cpo_alpha=0`` (no NLL term). The implicit
    rewards in the metrics are β times the average log-prob per token, as SimPO defines them.
    """
    _check_pair(inputs)
    avg_c = _per_token(inputs.policy_chosen, inputs.chosen_tokens)
    avg_r = _per_token(inputs.policy_rejected, inputs.rejected_tokens)
    per_example = _smoothed_sigmoid(cfg.beta * (avg_c - avg_r) - cfg.gamma, cfg.label_smoothing)
    return _output(per_example, cfg.beta * avg_c, cfg.beta * avg_r, inputs)


@register_loss("apo_zero", config=APOZeroConfig, inputs=PreferenceLogps)
def apo_zero(inputs: PreferenceLogps, cfg: APOZeroConfig) -> LossOutput:
    """APO-zero (D'Oosterlinck et al. 2024, eq. 7), TRL's ``apo_zero``: ``1 − σ(β·lr_c) + σ(β·lr_r)``.

    Pushes the chosen likelihood up and the rejected one down independently (not only their gap); for data
    whose chosen answers beat the model's own. In (0, 2) per pair.

    Args:
        inputs: ``policy_*``/``ref_*`` (B,) float sequence log-prob sums.
        cfg: ``beta``.
    """
    lr_c, lr_r = _logratios(inputs, "apo_zero")
    per_example = 1 - torch.sigmoid(cfg.beta * lr_c) + torch.sigmoid(cfg.beta * lr_r)
    return _output(per_example, cfg.beta * lr_c, cfg.beta * lr_r, inputs)


@register_loss("sft", config=SFTConfig, inputs=ResponseLogps)
def sft(inputs: ResponseLogps, cfg: SFTConfig) -> LossOutput:
    """Supervised fine-tuning: the negative log-likelihood of each response, ``−π/|y|`` per example.

    Args:
        inputs: ``policy`` (B,) float sums of the response-token log-probs, ``tokens`` (B,) their counts.
        cfg: ``normalize="tokens"`` (default) divides by the response's token count (at least 1), the mean
            NLL per token; ``"sequence"`` keeps the summed NLL.

    The batch loss is the mean over examples of the per-example mean. TRL's SFTTrainer and DPOTrainer's
    ``sft`` term instead average over all tokens of the batch, which weights long responses more; the two
    agree when the responses have equal lengths. Metrics: ``logps`` (the sums) and ``nll_per_token``.
    """
    if inputs.policy.shape != inputs.tokens.shape or inputs.policy.dim() != 1:
        raise ValueError(f"policy and tokens must both be (B,), got {tuple(inputs.policy.shape)} and "
                         f"{tuple(inputs.tokens.shape)}")
    per_token = -_per_token(inputs.policy, inputs.tokens)
    per_example = per_token if cfg.normalize == "tokens" else -inputs.policy
    with torch.no_grad():
        metrics = {"logps": inputs.policy.detach().float(), "nll_per_token": per_token.detach().float()}
    return LossOutput(per_example.mean(), per_example, metrics)
