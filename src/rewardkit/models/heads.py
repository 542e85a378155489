"""Reward heads: what turns a backbone's K outputs into a scalar reward, named objectives and uncertainty.

The backbone is always a standard ``AutoModelForSequenceClassification`` with ``num_labels = K``: plain
transformers loads a saved model and returns the K objective values (``id2label`` names them). A head
adds only what plain transformers cannot express, saved beside the model in ``head.safetensors`` and
described (with the formula of the scalar reward) in ``rewardkit.json``:

- ``scalar``    K = 1. reward = o₁ (today's Bradley--Terry RM; no extra weights).
- ``multi``     K named objectives o (N, K). Coefficients c = w T̃ where w (N, K) are either fixed
                ``weights`` or a gating network's non-negative weights from the prompt's representation
                (ArmoRM: an MLP, softmax(z / temperature) · logit_scale), and T̃ = Tᵀ for an optional
                K × K ``transform`` (e.g. verbosity debiasing, T = I with T[verb, :] −= λ).
                reward = Σ_k o_k · c_k.
- ``gaussian``  K objectives with a mean (the backbone's outputs) and a log standard deviation each
                (a linear layer on the pooled hidden state, clamped to [−10, 10]). reward = Σ_k w_k μ_k,
                uncertainty = sqrt(Σ_k w_k² σ_k²) (independent objectives); w fixed, or a gating network's
                (URM), as for ``multi``.

Each head is a ``torch.nn.Module`` registered in :data:`HEADS` and built from its :class:`HeadConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from rewardkit.errors import OptionError
from rewardkit.registry import Registry

Pooling = Literal["first", "last"]


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})

LOG_STD_BOUNDS = (-10.0, 10.0)


@dataclass
class HeadConfig:
    """A head's settings, stored in ``rewardkit.json`` under ``head``."""

    kind: str = _f("scalar", "head: scalar (one reward), multi (named objectives, optional gating), gaussian "
                   "(mean and log-std per objective)")
    objectives: list[str] = field(default_factory=lambda: ["reward"],
                                  metadata={"help": "objective names, comma-separated (one per output)"})
    weights: list[float] | None = field(
        default=None, metadata={"help": "multi/gaussian: fixed weights over the objectives (default 1/K each)"})
    gating: bool = _f(False, "multi/gaussian: a prompt-conditioned gating network (ArmoRM, URM) instead of fixed weights")
    gating_hidden: int = _f(256, "gating MLP width")
    gating_layers: int = _f(2, "gating MLP Linear layers")
    gating_temperature: float = _f(10.0, "gating softmax temperature T (ArmoRM: 10)")
    gating_dropout: float = _f(0.0, "gating MLP dropout")
    transform: list[list[float]] | None = field(
        default=None, metadata={"help": "multi: K x K matrix T, coefficients = w Tᵀ (YAML only)"})
    pooling: Literal["first", "last"] = _f(
        "last", "set from the backbone: first (encoders' [CLS]) or last (decoders' last token)")
    prompt_offset: int = _f(
        0, "set from the chat template: the gating input is this many tokens before the prompt's last token "
        "(the generation prompt's length, so gating reads the token before the assistant header, as ArmoRM)")

    def __post_init__(self) -> None:
        if self.kind not in HEADS:
            raise OptionError(f"head.kind: unknown head {self.kind!r}; known: {HEADS.names()}")
        k = len(self.objectives)
        if k == 0 or len(set(self.objectives)) != k:
            raise OptionError(f"head.objectives: need distinct names, got {self.objectives}")
        if self.kind == "scalar" and k != 1:
            raise OptionError(f"a scalar head has one objective, got {self.objectives}")
        if self.weights is not None and len(self.weights) != k:
            raise OptionError(f"head.weights: {len(self.weights)} weights for {k} objectives")
        if self.transform is not None and (len(self.transform) != k or any(len(r) != k for r in self.transform)):
            raise OptionError(f"head.transform must be a {k} × {k} matrix")
        if self.gating and self.kind not in ("multi", "gaussian"):
            raise OptionError("head.gating needs head.kind=multi or gaussian")
        if self.gating_temperature <= 0:
            raise OptionError(f"head.gating_temperature must be > 0, got {self.gating_temperature}")

    @property
    def num_objectives(self) -> int:
        return len(self.objectives)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HeadConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class HeadOutput:
    """``reward`` (N,) float; ``objectives`` (N, K) float or None for a scalar head; ``log_std`` (N, K)
    and ``uncertainty`` (N,) for heads that estimate it, else None; ``weights`` (N, K) the gating network's
    weights over the objectives for a gated head (ArmoRM, URM), else None. Tensors keep autograd."""

    reward: torch.Tensor
    objectives: torch.Tensor | None = None
    log_std: torch.Tensor | None = None
    uncertainty: torch.Tensor | None = None
    weights: torch.Tensor | None = None


HEADS: Registry[type[RewardHead]] = Registry("head")


class RewardHead(nn.Module):
    """Base of the heads: maps the backbone's outputs (N, K) (and, if ``needs_hidden``, its last hidden
    states) to a :class:`HeadOutput`."""

    kind: ClassVar[str]
    needs_hidden: ClassVar[bool] = False

    def __init__(self, cfg: HeadConfig, hidden_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.hidden_size = hidden_size

    def formula(self) -> str:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, hidden: torch.Tensor | None = None,
                pooled_at: torch.Tensor | None = None, prompt_at: torch.Tensor | None = None) -> HeadOutput:
        """``logits`` (N, K); ``hidden`` (N, T, H) last hidden states; ``pooled_at`` (N,) int64, the
        position the backbone pools; ``prompt_at`` (N,) int64, the prompt's last token (gating input)."""
        raise NotImplementedError


def _at(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``hidden`` (N, T, H) at one position per row ``index`` (N,) -> (N, H)."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def _fixed_weights(cfg: HeadConfig) -> torch.Tensor:
    k = cfg.num_objectives
    w = cfg.weights if cfg.weights is not None else [1.0 / k] * k
    return torch.tensor(w, dtype=torch.float32)


@HEADS.register("scalar")
class ScalarHead(RewardHead):
    kind = "scalar"

    def formula(self) -> str:
        return "reward = logits[0]"

    def forward(self, logits: torch.Tensor, hidden: torch.Tensor | None = None,
                pooled_at: torch.Tensor | None = None, prompt_at: torch.Tensor | None = None) -> HeadOutput:
        return HeadOutput(logits[:, 0])


class GatingNetwork(nn.Module):
    """ArmoRM's gating: an MLP (``layers`` Linear layers of width ``hidden``, ReLU, dropout) from the
    prompt representation (N, H) to K non-negative weights ``softmax(z / T) · logit_scale`` (N, K)."""

    def __init__(self, in_features: int, k: int, *, hidden: int, layers: int, temperature: float,
                 dropout: float) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(max(layers - 1, 0)):
            mods += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        mods.append(nn.Linear(width, k))
        self.mlp = nn.Sequential(*mods)
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(x.float()) / self.temperature, dim=-1) * self.logit_scale


@HEADS.register("multi")
class MultiObjectiveHead(RewardHead):
    kind = "multi"

    def __init__(self, cfg: HeadConfig, hidden_size: int) -> None:
        super().__init__(cfg, hidden_size)
        k = cfg.num_objectives
        self.gate = GatingNetwork(hidden_size, k, hidden=cfg.gating_hidden, layers=cfg.gating_layers,
                                  temperature=cfg.gating_temperature, dropout=cfg.gating_dropout) if cfg.gating else None
        transform = torch.tensor(cfg.transform, dtype=torch.float32) if cfg.transform is not None else torch.eye(k)
        self.register_buffer("transform", transform)
        self.register_buffer("weights", _fixed_weights(cfg))

    @property
    def needs_hidden(self) -> bool:  # type: ignore[override]
        return self.gate is not None

    def formula(self) -> str:
        w = "gating(prompt) = softmax(mlp(h_prompt) / T) · logit_scale" if self.gate is not None else "fixed weights w"
        return f"reward = Σ_k o_k · c_k, c = w Tᵀ, w = {w}, T = transform (identity if none)"

    def mixture(self, n: int, hidden: torch.Tensor | None, prompt_at: torch.Tensor | None) -> torch.Tensor:
        """(N, K) weights ``w`` over the objectives: the gate's output for the prompt, or the fixed weights."""
        if self.gate is not None:
            if hidden is None or prompt_at is None:
                raise ValueError("a gated head needs the hidden states and the prompt's last position")
            return self.gate(_at(hidden, prompt_at))  # (N, K)
        return self.weights.expand(n, -1)

    def forward(self, logits: torch.Tensor, hidden: torch.Tensor | None = None,
                pooled_at: torch.Tensor | None = None, prompt_at: torch.Tensor | None = None) -> HeadOutput:
        objectives = logits.float()  # (N, K)
        w = self.mixture(objectives.shape[0], hidden, prompt_at)
        coeff = w @ self.transform.T  # (N, K): the coefficients w Tᵀ
        return HeadOutput((objectives * coeff).sum(-1), objectives, weights=w if self.gate is not None else None)


@HEADS.register("gaussian")
class GaussianHead(RewardHead):
    kind = "gaussian"
    needs_hidden = True

    def __init__(self, cfg: HeadConfig, hidden_size: int) -> None:
        super().__init__(cfg, hidden_size)
        self.log_std = nn.Linear(hidden_size, cfg.num_objectives)
        nn.init.zeros_(self.log_std.weight)
        nn.init.zeros_(self.log_std.bias)
        self.register_buffer("weights", _fixed_weights(cfg))
        self.gate = GatingNetwork(hidden_size, cfg.num_objectives, hidden=cfg.gating_hidden, layers=cfg.gating_layers,
                                  temperature=cfg.gating_temperature, dropout=cfg.gating_dropout) if cfg.gating else None

    def formula(self) -> str:
        w = "gating(prompt) = softmax(mlp(h_prompt) / T) · logit_scale" if self.gate is not None else "fixed weights"
        return (f"reward = Σ_k w_k μ_k; uncertainty = sqrt(Σ_k w_k² σ_k²), σ = exp(clamp(log_std(h_pooled), -10, 10)), "
                f"w = {w}")

    def forward(self, logits: torch.Tensor, hidden: torch.Tensor | None = None,
                pooled_at: torch.Tensor | None = None, prompt_at: torch.Tensor | None = None) -> HeadOutput:
        if hidden is None or pooled_at is None:
            raise ValueError("a gaussian head needs the hidden states and the pooled position")
        mean = logits.float()  # (N, K)
        log_std = self.log_std(_at(hidden, pooled_at).float()).clamp(*LOG_STD_BOUNDS)  # (N, K)
        if self.gate is not None:
            if prompt_at is None:
                raise ValueError("a gated head needs the prompt's position")
            w = self.gate(_at(hidden, prompt_at))  # (N, K)
        else:
            w = self.weights.expand_as(mean)
        var = (w**2 * torch.exp(2 * log_std)).sum(-1)
        return HeadOutput((mean * w).sum(-1), mean, log_std, var.sqrt(), w if self.gate is not None else None)


def build_head(cfg: HeadConfig, hidden_size: int) -> RewardHead:
    return HEADS.get(cfg.kind)(cfg, hidden_size)


def head_inputs(attention_mask: torch.Tensor, pooling: Pooling, response_starts: torch.Tensor | None, *,
                prompt_offset: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(pooled_at (N,), prompt_at (N,) or None)`` for a right-padded batch: the backbone pools the first
    token (encoders) or the last real one (decoders); the gating input is the prompt's last token
    ``response_start − 1``, or ``prompt_offset`` tokens before it (the token before the generation prompt)."""
    if pooling == "first":
        pooled = torch.zeros(attention_mask.shape[0], dtype=torch.long, device=attention_mask.device)
    else:
        pooled = attention_mask.long().sum(-1) - 1
    prompt = None if response_starts is None else \
        (response_starts.to(attention_mask.device) - 1 - prompt_offset).clamp(min=0)
    return pooled, prompt


def run_head(model: Any, head: RewardHead, batch: dict[str, torch.Tensor], *,
             response_starts: torch.Tensor | None = None) -> HeadOutput:
    """The one reward forward: the backbone on a right-padded ``batch`` (``input_ids``/``attention_mask``
    (N, T), optionally ``token_type_ids``), then the head. ``response_starts`` (N,) int64: index of each
    row's first response token (needed by gated heads)."""
    if not head.needs_hidden:
        return head(model(**batch).logits)
    out = model(**batch, output_hidden_states=True)
    pooled, prompt = head_inputs(batch["attention_mask"], head.cfg.pooling, response_starts,
                                 prompt_offset=head.cfg.prompt_offset)
    return head(out.logits, out.hidden_states[-1], pooled, prompt)
