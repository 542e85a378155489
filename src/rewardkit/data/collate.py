"""Batching: length-grouped training batches, token-budget scoring batches, and padding.

Training batches are formed *globally* (one optimizer step = one global batch of pairs) and then split
into ``world_size × grad_accum`` micro-batches, so 1 process × batch 8 and 2 processes × batch 4 (or
accumulation 2 × batch 4) see the same pairs in every step and give the same gradients. A final global
batch too small to give every micro-batch a pair is filled with weight-0 copies: they cost a forward
but count for nothing, so no pair is dropped and none counts twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MicroBatch:
    """Indices of the pairs in one micro-batch and their loss weights (1, or 0 for fillers)."""

    indices: list[int]
    weights: list[float]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool = True,
    mega_batch_mult: int = 50,
) -> list[list[int]]:
    """Shuffle indices (seeded by ``seed`` and ``epoch``); with ``group_by_length``, sort each mega-batch of
    ``mega_batch_mult × batch_size`` by length, cut it into batches, and shuffle the batch order, so
    each batch holds similar lengths (little padding) while the epoch stays random."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * mega_batch_mult
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def split_global_batch(batch: Sequence[int], n_parts: int) -> list[MicroBatch]:
    """Split one global batch into ``n_parts`` contiguous near-equal micro-batches (part ``k`` goes to
    accumulation step ``k // world_size`` on rank ``k % world_size``). Parts that would be empty get one
    weight-0 filler so every rank runs the same number of forwards."""
    n = len(batch)
    out = []
    for k in range(n_parts):
        lo, hi = k * n // n_parts, (k + 1) * n // n_parts
        if hi > lo:
            out.append(MicroBatch(list(batch[lo:hi]), [1.0] * (hi - lo)))
        else:
            out.append(MicroBatch([batch[min(lo, n - 1)]], [0.0]))
    return out


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices sorted by decreasing length, cut into batches whose padded size ``B × max_len`` stays
    within ``max_tokens`` (at least one sequence per batch). Used for scoring."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and ((len(current) + 1) * longest > max_tokens or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_sequences(
    sequences: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence: ``input_ids`` (N, T) long, ``attention_mask`` (N, T) long and,
    for encoders, ``token_type_ids`` (N, T) long."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if token_types is not None and any(len(t) for t in token_types):
        types = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, t in enumerate(token_types):
            types[row, : len(t)] = torch.tensor(t, dtype=torch.long)
        out["token_type_ids"] = types
    return out
