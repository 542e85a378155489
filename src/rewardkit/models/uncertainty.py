"""Last-layer uncertainty for any reward model (AdvPO, Zhang et al. 2024; METHODS §5).

A reward model's K outputs are a linear function of one feature vector: the input ``φ(x, y)`` (H,) of its
output layer, at the position the backbone pools. For decoders (Llama, GPT-2, Qwen, ...) that is the final
(normed) hidden state of the last real token; for BERT the pooler's output at ``[CLS]``; for RoBERTa the
classification head's ``tanh(dense(h_<s>))``. With the reward ``r = θᵀφ`` fitted on preference pairs,

    M = λI + Σ_i d_i d_iᵀ,   d_i = φ(x_i, y_i^c) − φ(x_i, y_i^r)        (H, H), accumulated in float64
    U(x, y) = sqrt(φᵀ M⁻¹ φ) = ‖L⁻¹ φ‖,   M = L Lᵀ (Cholesky)              (N,)

is the width of the reward's confidence interval up to a constant (``|r* − r̂| ≤ b·U``): large along
directions the training pairs never contrasted. Scoring stores ``W = L⁻¹`` once and pays one extra
matrix-vector product per item (``‖W φ‖``, a sum of squares, so never negative).

λ (``DEFAULT_LAMBDA`` = 1.0): METHODS §5 gives no default; 1 is the usual ridge / LinUCB choice. A
feature direction no pair contrasted then has U = its component of φ, one the pairs contrasted n times
with spread s has U ≈ component / sqrt(1 + n s²).

Stored beside the model: ``uncertainty.safetensors`` (``precision`` = M, (H, H) float64) and an
``uncertainty`` entry in ``rewardkit.json`` (λ, pairs, dim, the feature layer, the data).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rewardkit.data.io import atomic_write_json, make_readable
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.models.heads import Pooling, head_inputs

DEFAULT_LAMBDA = 1.0
UNCERTAINTY_FILE = "uncertainty.safetensors"
METADATA_FILE = "rewardkit.json"  # the same file as rewardkit.models.reward_model.METADATA_FILE
METHOD = "advpo-last-layer"
_OUTPUT_NAMES = ("score", "classifier.out_proj", "classifier", "out_proj")


# ----------------------------------------------------------------------------- the maths (pure)


def precision_matrix(dim: int, lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """The prior ``λ I`` (dim, dim) float64 that pairs are added to."""
    if not lam > 0:
        raise OptionError(f"lambda must be > 0 (it keeps M invertible), got {lam}")
    return torch.eye(dim, dtype=torch.float64) * lam


def add_pairs(m: torch.Tensor, phi_chosen: torch.Tensor, phi_rejected: torch.Tensor) -> torch.Tensor:
    """``M + Σ_i d_i d_iᵀ`` with ``d = φ_c − φ_r``: ``m`` (H, H) float64, ``phi_*`` (B, H) any float dtype.
    Returns a new (H, H) float64 tensor (the difference is taken in float64)."""
    if phi_chosen.shape != phi_rejected.shape or phi_chosen.shape[-1] != m.shape[0]:
        raise ValueError(f"features {tuple(phi_chosen.shape)} / {tuple(phi_rejected.shape)} do not fit M {tuple(m.shape)}")
    d = phi_chosen.double().to(m.device) - phi_rejected.double().to(m.device)  # (B, H)
    return m + d.T @ d


def whitener(m: torch.Tensor) -> torch.Tensor:
    """``W = L⁻¹`` (H, H) float64 for ``M = L Lᵀ``, so that ``φᵀ M⁻¹ φ = ‖W φ‖²``. Cholesky then a triangular
    solve (never an explicit inverse of M); raises ``ValueError`` if ``m`` is not positive definite."""
    m = m.double()
    chol, info = torch.linalg.cholesky_ex((m + m.T) / 2)
    if int(info) != 0:
        raise ValueError(f"M is not positive definite (Cholesky failed at column {int(info)}); is lambda > 0?")
    eye = torch.eye(m.shape[0], dtype=torch.float64, device=m.device)
    return torch.linalg.solve_triangular(chol, eye, upper=False)


def uncertainty(phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``U = sqrt(φᵀ M⁻¹ φ) = ‖W φ‖`` (N,) for features ``phi`` (N, H) and the whitener ``w`` (H, H);
    computed in ``w``'s dtype (float32 when scoring, float64 in tests)."""
    return (phi.to(w.dtype) @ w.T).norm(dim=-1)


# ----------------------------------------------------------------------------- features from the forward


def output_layer(backbone: Any) -> tuple[str, nn.Linear]:
    """``(name, layer)``: the Linear that maps φ to the K outputs of an HF sequence-classification model
    (``score`` for decoders, ``classifier`` for BERT, ``classifier.out_proj`` for RoBERTa, ...), else the
    last Linear with ``num_labels`` outputs."""
    modules = dict(backbone.named_modules())
    k = int(backbone.config.num_labels)
    for name in _OUTPUT_NAMES:
        layer = modules.get(name)
        if isinstance(layer, nn.Linear) and layer.out_features == k:
            return name, layer
    found = [(n, m) for n, m in modules.items() if isinstance(m, nn.Linear) and m.out_features == k]
    if not found:
        raise UnsupportedError(f"{type(backbone).__name__}: no output Linear layer with {k} outputs to read the "
                               "last-layer features from")
    return found[-1]


@contextlib.contextmanager
def capture_features(backbone: Any) -> Iterator[list[torch.Tensor]]:
    """While open, every forward of ``backbone`` appends its output layer's input to the yielded list:
    (N, T, H) for decoders (applied at every position), (N, H) for encoders (already pooled)."""
    _, layer = output_layer(backbone)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()


def pooled_features(captured: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """φ (N, H): ``captured`` (N, H) as it is, or (N, T, H) at the position the backbone pools (the first
    token, or the last real one of a right-padded ``attention_mask`` (N, T))."""
    if captured.dim() == 2:
        return captured
    pooled, _ = head_inputs(attention_mask, pooling, None)
    return captured[torch.arange(captured.shape[0], device=captured.device), pooled.to(captured.device)]


class LastLayerUncertainty(nn.Module):
    """U(φ) = ‖W φ‖ with the whitener ``W`` (H, H) of a fitted M as a float32 buffer (moves with ``.to``);
    ``info`` is the ``uncertainty`` entry of ``rewardkit.json``."""

    def __init__(self, m: torch.Tensor, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.register_buffer("w", whitener(m).float())
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        return int(self.w.shape[0])

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        """``phi`` (N, H) -> U (N,) float32."""
        return uncertainty(phi, self.w)


# ----------------------------------------------------------------------------- beside the model


def save_uncertainty(folder: str | Path, m: torch.Tensor, info: dict[str, Any]) -> Path:
    """Write M to ``folder/uncertainty.safetensors`` and ``info`` (+ the file name) under ``uncertainty`` in
    ``folder/rewardkit.json`` (created for a plain HF folder; other entries kept). Both atomic."""
    from safetensors.torch import save_file

    out = Path(folder)
    target = out / UNCERTAINTY_FILE
    tmp = out / f".{UNCERTAINTY_FILE}.tmp"
    save_file({"precision": m.double().cpu().contiguous()}, str(tmp))
    tmp.replace(target)
    make_readable(target)
    meta_path = out / METADATA_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    meta["uncertainty"] = {**info, "method": METHOD, "file": UNCERTAINTY_FILE, "dim": int(m.shape[0])}
    atomic_write_json(meta_path, meta, default=str)
    return target


def load_uncertainty(folder: str | Path, hidden: int | None = None) -> LastLayerUncertainty | None:
    """The fitted uncertainty of a model folder, or None when it has none (or ``folder`` is a hub name).
    ``hidden``: the feature width the model gives, checked against the stored M."""
    out = Path(folder)
    meta_path = out / METADATA_FILE
    if not meta_path.is_file():
        return None
    info = json.loads(meta_path.read_text(encoding="utf-8")).get("uncertainty")
    if not info:
        return None
    target = out / str(info.get("file", UNCERTAINTY_FILE))
    if not target.exists():
        raise FileNotFoundError(f"{out}: rewardkit.json names {target.name}, which is missing")
    from safetensors.torch import load_file

    m = load_file(str(target))["precision"]
    if m.dim() != 2 or m.shape[0] != m.shape[1] or (hidden is not None and m.shape[0] != hidden):
        raise OptionError(f"{target}: M is {tuple(m.shape)} but the model's features have {hidden} dimensions; "
                          "refit with `rewardkit uncertainty fit`")
    return LastLayerUncertainty(m, info)


def attach_uncertainty(rm: Any) -> Any:
    """Give a loaded :class:`~rewardkit.models.reward_model.RewardModel` its folder's fitted uncertainty
    (``rm.net.uncertainty``), on the model's device; returns ``rm``. A no-op for folders without one."""
    from rewardkit.models.backbones import resolve_backbone

    folder = Path(resolve_backbone(rm.name))
    if not folder.is_dir():
        return rm
    _, layer = output_layer(rm.model)
    module = load_uncertainty(folder, hidden=layer.in_features)
    if module is not None:
        rm.net.uncertainty = module.to(layer.weight.device)
    return rm
