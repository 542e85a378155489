"""Evaluation during training, on every rank: each rank scores a shard, the scores are gathered.

Under FSDP or ZeRO-3 every forward is a collective, so all ranks must run the same number of forwards
with the same batch sizes. :func:`shard_plan` deals the length-sorted items round-robin to the ranks and
cuts every rank's share at the same positions, so rank r's j-th batch has exactly as many rows as every
other rank's j-th batch (a rank short of items repeats one; the repeat is dropped after the gather).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardkit.data.collate import pad_sequences
from rewardkit.scoring import DEFAULT_MAX_BATCH, forward_head


@dataclass(frozen=True)
class ShardPlan:
    """``items``: (world, m) int64, the item each rank scores at each of its m positions (round-robin over
    the length-sorted items, the last rows padded with a repeat); ``batches``: [start, end) position
    ranges, the same for every rank."""

    items: np.ndarray
    batches: list[tuple[int, int]]


def shard_plan(lengths: Sequence[int], world: int, *, max_tokens: int, max_batch: int = DEFAULT_MAX_BATCH) -> ShardPlan:
    """Deal N items (longest first) to ``world`` ranks and cut positions into batches of at most
    ``max_tokens`` padded tokens (the longest item at a position bounds the batch that starts there)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    m = -(-len(order) // world) if order else 0
    padded = order + [order[-1]] * (m * world - len(order)) if order else []
    items = np.array(padded, dtype=np.int64).reshape(m, world).T if m else np.zeros((world, 0), dtype=np.int64)
    batches, start = [], 0
    while start < m:
        longest = max(lengths[i] for i in items[:, start])
        size = max(1, min(max_batch, max_tokens // max(longest, 1), m - start))
        batches.append((start, start + size))
        start += size
    return ShardPlan(items, batches)


@torch.no_grad()
def score_on_all_ranks(
    accelerator: Any, net: Any, pad_id: int, input_ids: Sequence[Sequence[int]],
    token_type_ids: Sequence[Sequence[int]] | None = None, response_starts: Sequence[int] | None = None, *,
    max_tokens: int, reward: Callable[[Any], torch.Tensor] | None = None,
) -> np.ndarray:
    """Rewards (N,) float32 of every sequence, in input order, the same array on every rank.

    ``net`` is the (wrapped) training model; each rank runs only its shard's forwards, then one gather."""
    world, rank = accelerator.num_processes, accelerator.process_index
    plan = shard_plan([len(s) for s in input_ids], world, max_tokens=max_tokens)
    device = accelerator.device
    mine = plan.items[rank] if len(plan.items) else np.zeros(0, dtype=np.int64)
    local = torch.zeros(len(mine), dtype=torch.float32, device=device)
    for lo, hi in plan.batches:
        idx = mine[lo:hi].tolist()
        types = [token_type_ids[i] for i in idx] if token_type_ids is not None else None
        batch = {k: v.to(device) for k, v in pad_sequences([input_ids[i] for i in idx], types, pad_id).items()}
        starts = None if response_starts is None else torch.tensor([response_starts[i] for i in idx], device=device)
        out = forward_head(net, batch, starts)
        local[lo:hi] = (reward(out) if reward is not None else out.reward).float()
    gathered = accelerator.gather(local).cpu().numpy() if world > 1 else local.cpu().numpy()
    scores = np.zeros(len(input_ids), dtype=np.float32)
    flat_items = plan.items.reshape(-1)  # rank-major, as gather concatenates
    scores[flat_items] = gathered  # repeats write the same value twice
    return scores
