"""Resident memory on CPU: a saver that leaves every result bit for bit unchanged, and the peak to report.

Measured on the quickstart's training (MiniLM, 8 pairs = 16 sequences of up to 170 tokens per step, one
thread; README section "Memory"):

- :func:`recomputed_attention`: on CPU with attention dropout, ``scaled_dot_product_attention`` runs its
  math kernel, which keeps the (B, H, T, T) probabilities and dropout masks of every layer for backward
  (~420 MB at B 16, T 168, 12 heads, 6 layers). Recomputing them in backward
  (:func:`torch.utils.checkpoint.checkpoint`, which replays the same dropout masks) cost ~10% more CPU time
  per step on 2 loaded cores (12 steps: 41.0 vs 36.8 CPU s; peak 1.58 vs 1.88 GB); the linear layers are
  not recomputed (every layer recomputed, :func:`checkpoint_layers`: 49.4 CPU s, peak 1.40 GB).
- glibc keeps freed blocks for reuse, and a training step frees and re-allocates ~1 GB of activations of a
  different width every step, so the resident size ratchets up above what is live (0.66 GB of weights,
  gradients and AdamW states plus one step's activations grew to 2.3 GB over 240 steps).
  ``MALLOC_MMAP_THRESHOLD_=65536`` in the environment makes resident memory track what is live (12 steps:
  peak 1.15 GB instead of 1.60 GB) but faults every activation's pages in anew each step (+50% CPU time),
  so it is left to the user; :func:`release_free_memory` gives the freed heap back once, after training.
"""

from __future__ import annotations

import ctypes
import platform
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

RECOMPUTED = "rewardkit_recomputed_sdpa"  # the attention implementation name registered with transformers


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``getrusage`` ``ru_maxrss``: KiB on Linux, bytes
    on macOS). Benchmarks print it; a subprocess's own peak is read the same way inside it."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def release_free_memory() -> bool:
    """Give the pages of freed heap blocks back to the OS (glibc ``malloc_trim(0)``); True when applied.
    Cheap once, after a phase that freed a lot (training's activations); the next allocations fault their
    pages in again, so it is not for every step. Not applied off glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def recompute_in_backward(query: torch.Tensor, dropout: float) -> bool:
    """Whether an SDPA call should be recomputed in backward instead of keeping its intermediates: while
    gradients are recorded, on CPU, with dropout (the case where the math kernel stores (B, H, T, T))."""
    return torch.is_grad_enabled() and query.device.type == "cpu" and dropout > 0.0


def _recomputed_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention (query/key/value (B, H, T, D)) -> (B, T, H, D), with its intermediates
    recomputed in backward where :func:`recompute_in_backward` says so; the same numbers either way."""
    from torch.utils.checkpoint import checkpoint
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not recompute_in_backward(query, float(kwargs.get("dropout", 0.0) or 0.0)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return sdpa_attention_forward(module, q, k, v, mask, **kwargs)[0]

    # non-reentrant checkpointing restores the RNG state before recomputing: the same dropout masks
    return checkpoint(attend, query, key, value, attention_mask, use_reentrant=False), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(RECOMPUTED, _recomputed_sdpa)
    AttentionMaskInterface.register(RECOMPUTED, sdpa_mask)  # else transformers passes no padding mask at all


@contextmanager
def recomputed_attention(model: torch.nn.Module) -> Iterator[int]:
    """Within the block, every transformers model inside ``model`` that uses SDPA attention recomputes its
    attention in backward where :func:`recompute_in_backward` says so; outputs, gradients and the RNG stream
    are unchanged. Yields how many model configs were switched (0: nothing to do, e.g. eager attention);
    each is set back to ``sdpa`` on exit."""
    configs = {id(c): c for m in model.modules() if (c := getattr(m, "config", None)) is not None
               and getattr(c, "_attn_implementation", None) == "sdpa"}
    if configs:
        _register()
    for config in configs.values():
        config._attn_implementation = RECOMPUTED
    try:
        yield len(configs)
    finally:
        for config in configs.values():
            config._attn_implementation = "sdpa"


def checkpoint_layers(model: torch.nn.Module) -> int:
    """Turn on transformers' activation checkpointing (non-reentrant: the same dropout masks are replayed, so
    the same numbers) in every transformers model inside ``model`` that supports it; each layer's
    activations are then recomputed in backward. Returns how many models were switched."""
    switched = 0
    for module in model.modules():
        if not getattr(module, "supports_gradient_checkpointing", False):
            continue
        on = "is_activation_checkpointing" if hasattr(module, "is_activation_checkpointing") else "is_gradient_checkpointing"
        if not getattr(module, on):
            if hasattr(module, "activation_checkpointing_enable"):  # transformers >= 5.x
                module.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            switched += 1
    return switched
