"""Evaluation during training, on every rank: each rank scores a shard, the scores are gathered.

Under FSDP or ZeRO-3 every forward is a collective, so all ranks must run the same number of forwards
with the same batch sizes. :func:`shard_plan` deals the length-sorted items round-robin to the ranks and
cuts every rank's share at the same positions, so rank r's j-th batch has exactly as many rows as every
other rank's j-th batch (a rank short of items repeats one; the repeat is dropped after the gather).

The sequences come from a :class:`SequenceSource`: Python lists (:class:`ListSequences`), or a tokenized
Arrow dataset of pairs (:class:`PairSides`), whose token ids are read one batch at a time, so evaluating a
large held-out file holds only its lengths and scores, never all its token ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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


def shard_plan(lengths: Sequence[int] | np.ndarray, world: int, *, max_tokens: int,
               max_batch: int = DEFAULT_MAX_BATCH) -> ShardPlan:
    """Deal N items (longest first; ties in input order) to ``world`` ranks and cut positions into batches
    of at most ``max_tokens`` padded tokens (the longest item at a position bounds the batch that starts there)."""
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    order = np.argsort(-lengths, kind="stable")
    m = -(-len(order) // world)
    padded = np.concatenate([order, np.full(m * world - len(order), order[-1] if len(order) else 0, np.int64)])
    items = padded.reshape(m, world).T.copy()
    batches, start = [], 0
    while start < m:
        longest = int(lengths[items[:, start]].max())
        size = max(1, min(max_batch, max_tokens // max(longest, 1), m - start))
        batches.append((start, start + size))
        start += size
    return ShardPlan(items, batches)


class SequenceSource(Protocol):
    """N tokenized sequences to score: their lengths up front, their token ids a batch at a time."""

    def lengths(self) -> np.ndarray:
        """(N,) int64 tokens per sequence."""
        ...

    def fetch(self, idx: Sequence[int]) -> tuple[list[list[int]], list[list[int]] | None, list[int] | None]:
        """Sequences ``idx``: their input ids, token type ids (None: none) and response starts (None: none)."""
        ...


@dataclass(frozen=True)
class ListSequences:
    """Sequences held in Python lists (``token_type_ids`` may hold empty lists: decoders)."""

    input_ids: Sequence[Sequence[int]]
    token_type_ids: Sequence[Sequence[int]] | None = None
    response_starts: Sequence[int] | None = None

    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.input_ids], dtype=np.int64)

    def fetch(self, idx: Sequence[int]) -> tuple[list[list[int]], list[list[int]] | None, list[int] | None]:
        types = None if self.token_type_ids is None else [list(self.token_type_ids[i]) for i in idx]
        starts = None if self.response_starts is None else [int(self.response_starts[i]) for i in idx]
        return [list(self.input_ids[i]) for i in idx], types, starts


class PairSides:
    """The 2N sequences of N tokenized pairs (:func:`~rewardkit.data.dataset.tokenize_examples`): item i < N
    is pair i's chosen side, item N + i its rejected side, read from the Arrow dataset per batch."""

    def __init__(self, tokenized: Any) -> None:
        self.n = len(tokenized)
        self._sides = [tokenized.select_columns([f"{s}_input_ids", f"{s}_token_type_ids", f"{s}_response_start"])
                       for s in ("chosen", "rejected")]

    def lengths(self, *, batch: int = 65_536) -> np.ndarray:
        import pyarrow.compute as pc

        parts = [pc.list_value_length(t[f"{side}_input_ids"]).to_numpy(zero_copy_only=False).astype(np.int64)
                 for side, ds in zip(("chosen", "rejected"), self._sides, strict=True)
                 for t in ds.with_format("arrow").iter(batch_size=batch)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def fetch(self, idx: Sequence[int]) -> tuple[list[list[int]], list[list[int]] | None, list[int] | None]:
        idx = np.asarray(idx, dtype=np.int64)
        ids: list[list[int]] = [[] for _ in idx]
        types: list[list[int]] = [[] for _ in idx]
        starts = [0] * len(idx)
        for side, (name, ds) in enumerate(zip(("chosen", "rejected"), self._sides, strict=True)):
            where = np.flatnonzero(idx // self.n == side) if self.n else np.zeros(0, dtype=np.int64)
            if not len(where):
                continue
            rows = ds[(idx[where] - side * self.n).tolist()]  # only these rows' token ids
            for j, k in enumerate(where):
                ids[k] = rows[f"{name}_input_ids"][j]
                types[k] = rows[f"{name}_token_type_ids"][j]
                starts[k] = rows[f"{name}_response_start"][j]
        return ids, types, starts


@torch.no_grad()
def score_source_on_all_ranks(accelerator: Any, net: Any, pad_id: int, source: SequenceSource, *, max_tokens: int,
                              reward: Callable[[Any], torch.Tensor] | None = None) -> np.ndarray:
    """Rewards (N,) float32 of every sequence of ``source``, in its order, the same array on every rank.

    ``net`` is the (wrapped) training model; each rank fetches and runs only its shard's batches, then one
    gather. ``reward`` maps the head's output to the (B,) reward (default: its ``reward``)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    lengths = source.lengths()
    plan = shard_plan(lengths, world, max_tokens=max_tokens)
    device = accelerator.device
    mine = plan.items[rank] if len(plan.items) else np.zeros(0, dtype=np.int64)
    local = torch.zeros(len(mine), dtype=torch.float32, device=device)
    for lo, hi in plan.batches:
        ids, types, starts = source.fetch(mine[lo:hi].tolist())
        batch = {k: v.to(device) for k, v in pad_sequences(ids, types, pad_id).items()}
        response_starts = None if starts is None else torch.tensor(starts, device=device)
        out = forward_head(net, batch, response_starts)
        local[lo:hi] = (reward(out) if reward is not None else out.reward).float()
    gathered = accelerator.gather(local).cpu().numpy() if world > 1 else local.cpu().numpy()
    scores = np.zeros(len(lengths), dtype=np.float32)
    scores[plan.items.reshape(-1)] = gathered  # rank-major, as gather concatenates; repeats write the same value
    return scores


def score_on_all_ranks(
    accelerator: Any, net: Any, pad_id: int, input_ids: Sequence[Sequence[int]],
    token_type_ids: Sequence[Sequence[int]] | None = None, response_starts: Sequence[int] | None = None, *,
    max_tokens: int, reward: Callable[[Any], torch.Tensor] | None = None,
) -> np.ndarray:
    """Rewards (N,) float32 of sequences held in lists, in input order, the same array on every rank
    (:func:`score_source_on_all_ranks` over :class:`ListSequences`)."""
    return score_source_on_all_ranks(accelerator, net, pad_id, ListSequences(input_ids, token_type_ids, response_starts),
                                     max_tokens=max_tokens, reward=reward)


def score_pairs_on_all_ranks(accelerator: Any, net: Any, pad_id: int, tokenized: Any, *, max_tokens: int,
                             reward: Callable[[Any], torch.Tensor] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rewards of the chosen (N,) and rejected (N,) float32 sides of N tokenized pairs, read from the Arrow
    dataset a batch at a time; the same on every rank."""
    scores = score_source_on_all_ranks(accelerator, net, pad_id, PairSides(tokenized), max_tokens=max_tokens,
                                       reward=reward)
    n = len(tokenized)
    return scores[:n], scores[n:]
