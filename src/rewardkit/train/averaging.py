"""HMA search (METHODS §8): learn the per-group averaging ratios α_k, with both models frozen.

Only the K group logits ``a_k`` are trained. At each step the averaged parameters
``α_g·θ_base + (1 − α_g)·θ_tuned`` (:func:`~rewardkit.models.averaging.merged_parameters`, α from
:func:`~rewardkit.models.averaging.hma_alphas`, so their mean stays ``init``) are fed to the tuned model's
module with ``torch.func.functional_call``, and the loss is

    token-mean NLL of the "collected" responses  +  reg_alpha · Σ_k |α_k − init|

(METHODS: LM loss on high-reward samples, which stands in for reward; the regulariser keeps α near
``init``). Parameters outside the decoder layers keep ``α = init`` throughout, as LMFlow merges lm_head.

The logits go through the model's own forward (full (B, T, V) logits of a small batch; models with a
final logit softcap apply it there): the shared
:func:`~rewardkit.models.causal_lm.sequence_logps` recomputes its lm-head chunks in the backward pass
from the module's attributes, which ``functional_call`` has restored by then, so it cannot carry the
gradient to α. It is used for every NLL that is only measured (before and after the search, the tax);
a test checks that the two agree at step 0.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call

from rewardkit.errors import OptionError
from rewardkit.models.averaging import (
    SPLITS,
    AveragingPlan,
    LMText,
    alpha_logit,
    average_models,
    distinct_parameters,
    group_of,
    hma_alphas,
    layer_of,
    lm_batch,
    merged_parameters,
    num_layers,
    response_nll,
    split_layers,
)


@dataclass(frozen=True)
class HMASearchConfig:
    """HMA's search settings; defaults from LMFlow's script (METHODS §8) except ``steps`` and ``split``."""

    groups: int = field(default=3, metadata={"help": "layer groups K (each gets its own alpha)"})
    split: str = field(default="equal", metadata={"help": "equal: K runs of equal size; lmflow: block3's 0-8/9-16/17-end"})
    init: float = field(default=0.2, metadata={"help": "mean alpha, fixed exactly (0 = tuned model, 1 = base)"})
    eps: float = field(default=0.2, metadata={"help": "epsilon in (sigmoid(a)+eps): bounds each alpha away from 0"})
    lr: float = field(default=2e-5, metadata={"help": "Adam learning rate on the group logits"})
    reg_alpha: float = field(default=1e-4, metadata={"help": "weight of sum_k |alpha_k - init|"})
    steps: int | None = field(default=None, metadata={"help": "optimizer steps; None = one epoch of the data"})
    batch_size: int = field(default=2, metadata={"help": "rows per step"})
    max_length: int = field(default=512, metadata={"help": "tokens per row at most (block_size)"})
    seed: int = field(default=0, metadata={"help": "order of the rows"})

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise OptionError(f"split must be one of {SPLITS}, got {self.split!r}")
        alpha_logit(self.init)  # raises unless 0 < init < 1
        checks = {"groups": self.groups >= 1, "eps": self.eps > 0, "lr": self.lr > 0, "reg_alpha": self.reg_alpha >= 0,
                  "batch_size": self.batch_size >= 1, "max_length": self.max_length >= 8,
                  "steps": self.steps is None or self.steps >= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise OptionError(f"invalid HMA search setting(s): {', '.join(bad)} (groups, batch_size, steps >= 1; "
                              "eps, lr > 0; reg_alpha >= 0; max_length >= 8)")


@dataclass(frozen=True)
class SearchStep:
    """One logged step: the batch's NLL per token, the regulariser, and the α (K,) after the update."""

    step: int
    nll: float
    reg: float
    alphas: tuple[float, ...]


@dataclass(frozen=True)
class SearchResult:
    """The searched plan, its logits, the history and the data NLL per token before/after."""

    plan: AveragingPlan
    logits: tuple[float, ...]
    history: tuple[SearchStep, ...]
    nll_before: float
    nll_after: float

    def to_dict(self) -> dict[str, Any]:
        return {"logits": list(self.logits), "nll_per_token_before": self.nll_before,
                "nll_per_token_after": self.nll_after,
                "history": [{"step": s.step, "nll": s.nll, "reg": s.reg, "alphas": list(s.alphas)}
                            for s in self.history]}


def regulariser(alphas: torch.Tensor, init: float) -> torch.Tensor:
    """``Σ_k |α_k − init|`` for ``alphas`` (K,) (METHODS' uniform weighting, ``sum_reg_type != 0.2``)."""
    return (alphas - init).abs().sum()


def batch_nll(model: Any, params: dict[str, torch.Tensor], texts: Sequence[LMText], pad_id: int) -> torch.Tensor:
    """Token-mean NLL (scalar) of the response tokens of ``texts`` under ``model`` with ``params``
    substituted (``torch.func.functional_call``; tied weights follow their first name)."""
    ids, mask, scored = lm_batch(texts, pad_id, next(iter(params.values())).device)  # (B, T) each
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = functional_call(model, params, (), {"input_ids": ids, "attention_mask": mask,
                                                 "position_ids": positions}).logits  # (B, T, V)
    keep = scored[:, 1:] & mask[:, 1:].bool()  # (B, T-1): token t predicted at t-1
    z = logits[:, :-1][keep]  # (N, V)
    z = z if z.dtype == torch.float64 else z.float()  # float32 at least (float64 kept: gradient checks)
    logps = z.gather(-1, ids[:, 1:][keep][:, None])[:, 0] - torch.logsumexp(z, dim=-1)  # (N,)
    return -logps.mean()


def _order(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Row indices of each step: seeded shuffles, epoch after epoch."""
    g = torch.Generator().manual_seed(seed)
    flat: list[int] = []
    while len(flat) < steps * batch_size:
        flat += torch.randperm(n, generator=g).tolist()
    return [flat[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def search_alphas(base: Any, tuned: Any, texts: Sequence[LMText], pad_id: int, cfg: HMASearchConfig, *,
                  on_step: Callable[[SearchStep], None] | None = None) -> SearchResult:
    """Run HMA's search on ``texts`` (the collected data) and return the plan it found.

    ``base`` and ``tuned`` are models of one architecture (unchanged: ``tuned``'s module is only
    called with substituted parameters). Deterministic for a given ``cfg.seed``.
    """
    if not texts or all(t.n_scored < 1 for t in texts):
        raise OptionError("the search data has no response tokens to score")
    base_p, tuned_p = distinct_parameters(base), distinct_parameters(tuned)
    layers = layer_of(tuned_p.keys())
    ranges = split_layers(num_layers(layers), cfg.groups, cfg.split)
    groups = group_of(layers, ranges)
    logits = torch.full((cfg.groups,), alpha_logit(cfg.init), requires_grad=True)  # (K,)
    opt = torch.optim.Adam([logits], lr=cfg.lr)
    steps = cfg.steps or math.ceil(len(texts) / cfg.batch_size)
    scratch = copy.deepcopy(tuned)  # holds the averaged weights whose NLL is measured

    def measured() -> tuple[AveragingPlan, float]:
        plan = AveragingPlan(ranges, _alphas_of(logits, cfg), cfg.init)
        return plan, response_nll(average_models(base, tuned, plan, into=scratch), texts, pad_id).per_token

    _, nll_before = measured()
    history = []
    for step, rows in enumerate(_order(len(texts), steps, cfg.batch_size, cfg.seed), start=1):
        alphas = hma_alphas(logits, cfg.init, cfg.eps)  # (K,)
        nll = batch_nll(tuned, merged_parameters(base_p, tuned_p, groups, alphas, cfg.init),
                        [texts[i] for i in rows], pad_id)
        reg = regulariser(alphas, cfg.init)
        opt.zero_grad()
        (nll + cfg.reg_alpha * reg).backward()
        opt.step()
        history.append(SearchStep(step, float(nll.detach()), float(reg.detach()), _alphas_of(logits, cfg)))
        if on_step is not None:
            on_step(history[-1])
    plan, nll_after = measured()
    return SearchResult(plan, tuple(float(x) for x in logits.detach()), tuple(history), nll_before, nll_after)


def _alphas_of(logits: torch.Tensor, cfg: HMASearchConfig) -> tuple[float, ...]:
    with torch.no_grad():
        return tuple(float(a) for a in hma_alphas(logits, cfg.init, cfg.eps))
