"""``rewardkit uncertainty fit``: last-layer uncertainty for any reward model, from its training pairs.

One pass over a preference file with the model frozen: each pair's chosen and rejected features φ
(:mod:`rewardkit.models.uncertainty`: the output layer's input at the pooled position, read in the same
forward that gives the reward) are added to ``M = λI + Σ (φ_c − φ_r)(φ_c − φ_r)ᵀ`` in float64, chunk by
chunk, so memory does not grow with the file. M is written beside the model; from then on every scorer
of that folder also returns ``U = sqrt(φᵀ M⁻¹ φ)``. No training: the reward model is not changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.collate import pad_sequences, token_budget_batches
from rewardkit.data.dataset import load_examples
from rewardkit.errors import OptionError
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.reward_model import RewardModel, load_reward_model
from rewardkit.models.uncertainty import (
    DEFAULT_LAMBDA,
    UNCERTAINTY_FILE,
    add_pairs,
    capture_features,
    output_layer,
    pooled_features,
    precision_matrix,
    save_uncertainty,
    uncertainty,
    whitener,
)
from rewardkit.scoring import DEFAULT_MAX_BATCH, DEFAULT_MAX_TOKENS, forward_head
from rewardkit.train.reward import prepare_pairs

CHUNK_PAIRS = 256  # pairs embedded between two updates of M
SUMMARY_PAIRS = 2048  # the first pairs' features are kept to describe U on the training responses


@dataclass(frozen=True)
class FitConfig:
    """One fit: the model folder (written into), the training pairs and the feature pass's settings."""

    model: str
    data: str
    lam: float = DEFAULT_LAMBDA
    max_length: int | None = None
    skip_invalid: bool = False
    batch_tokens: int = DEFAULT_MAX_TOKENS
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lam) and self.lam > 0):
            raise OptionError(f"--lambda must be a finite number > 0, got {self.lam}")
        if self.batch_tokens < 1:
            raise OptionError(f"--batch-tokens must be positive, got {self.batch_tokens}")


@dataclass(frozen=True)
class FitResult:
    """What a fit wrote and measured. ``eigenvalues``: min and max of M (λ and λ + the largest spread);
    ``train_u``: quantiles of U over the first pairs' chosen and rejected responses (the scale for ``k``)."""

    folder: str
    file: str
    pairs: int
    dim: int
    lam: float
    seconds: float
    eigenvalues: tuple[float, float]
    train_u: dict[str, float]
    truncated_pairs: int
    skipped_invalid: int
    replaced: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@torch.inference_mode()
def embed(rm: RewardModel, input_ids: list[list[int]], token_type_ids: list[list[int]] | None,
          response_starts: list[int], *, max_tokens: int = DEFAULT_MAX_TOKENS) -> torch.Tensor:
    """φ (N, H) float64 of tokenized sequences: the reward forward (:func:`rewardkit.scoring.forward_head`)
    in token-budget batches, reading the output layer's input at the pooled position."""
    device = next(rm.net.parameters()).device
    _, layer = output_layer(rm.model)
    out = torch.zeros(len(input_ids), layer.in_features, dtype=torch.float64)
    for idx in token_budget_batches([len(s) for s in input_ids], max_tokens, DEFAULT_MAX_BATCH):
        types = [token_type_ids[i] for i in idx] if token_type_ids is not None else None
        batch = {k: v.to(device) for k, v in pad_sequences([input_ids[i] for i in idx], types, rm.pad_token_id).items()}
        starts = torch.tensor([response_starts[i] for i in idx], device=device)
        with capture_features(rm.model) as seen:
            forward_head(rm.net, batch, starts)
        out[idx] = pooled_features(seen[-1], batch["attention_mask"], rm.head.cfg.pooling).double().cpu()
    return out


def pair_features(rm: RewardModel, rows: dict[str, list[Any]], *, max_tokens: int = DEFAULT_MAX_TOKENS
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ_chosen (B, H), φ_rejected (B, H)) float64 for tokenized pair ``rows`` (``tokenize_examples`` columns),
    both sides in one length-sorted pass."""
    b = len(rows["chosen_input_ids"])
    ids = rows["chosen_input_ids"] + rows["rejected_input_ids"]
    types = rows["chosen_token_type_ids"] + rows["rejected_token_type_ids"]
    starts = rows["chosen_response_start"] + rows["rejected_response_start"]
    phi = embed(rm, ids, types if any(types) else None, starts, max_tokens=max_tokens)
    return phi[:b], phi[b:]


def fit_uncertainty(cfg: FitConfig) -> FitResult:
    """Fit M on ``cfg.data`` with the reward model ``cfg.model`` and save it beside the model."""
    folder = Path(resolve_backbone(cfg.model))
    if not folder.is_dir():
        raise OptionError(f"--model {cfg.model}: not a local model folder; the uncertainty is stored beside the "
                          "model, so give a folder (save a hub model with save_pretrained first)")
    rm = load_reward_model(str(folder), max_length=cfg.max_length, device=cfg.device, dtype=cfg.dtype)
    previous = (folder / UNCERTAINTY_FILE).exists()  # a refit replaces it (even one that no longer fits)
    loaded = load_examples(cfg.data, kind="preference", skip_invalid=cfg.skip_invalid)
    pairs = prepare_pairs(cfg.data, loaded, rm)
    dim = output_layer(rm.model)[1].in_features
    t0 = time.perf_counter()
    m = precision_matrix(dim, cfg.lam)
    kept: list[torch.Tensor] = []
    columns = [f"{s}_{c}" for s in ("chosen", "rejected") for c in ("input_ids", "token_type_ids", "response_start")]
    from tqdm.auto import tqdm

    with tqdm(total=len(pairs.tokenized), desc="uncertainty fit", unit="pair", dynamic_ncols=True) as bar:
        for rows in pairs.tokenized.select_columns(columns).iter(batch_size=CHUNK_PAIRS):
            phi_c, phi_r = pair_features(rm, rows, max_tokens=cfg.batch_tokens)
            m = add_pairs(m, phi_c, phi_r)
            if sum(len(x) for x in kept) < 2 * SUMMARY_PAIRS:
                kept += [phi_c, phi_r]
            bar.update(len(phi_c))
    seconds = time.perf_counter() - t0
    summary = pairs.summary()
    info = {"lambda": cfg.lam, "pairs": len(pairs.tokenized), "feature_layer": output_layer(rm.model)[0],
            "pooling": rm.head.cfg.pooling, "max_length": rm.encoder.max_length,
            "data": {"path": cfg.data, "sha256": summary["sha256"], "skipped_invalid": summary["skipped_invalid"]}}
    target = save_uncertainty(folder, m, info)
    eig = torch.linalg.eigvalsh(m)
    u = uncertainty(torch.cat(kept), whitener(m)).numpy()
    quantiles = {f"p{q}": float(np.percentile(u, q)) for q in (10, 50, 90)}
    return FitResult(str(folder), str(target), len(pairs.tokenized), dim, cfg.lam, seconds,
                     (float(eig[0]), float(eig[-1])), {"mean": float(u.mean()), **quantiles},
                     int(summary["truncation"]["pairs_truncated"]), int(summary["skipped_invalid"]), previous)
