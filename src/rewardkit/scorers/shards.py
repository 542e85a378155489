"""Scoring across processes: under ``torchrun`` / ``accelerate launch`` each process scores a strided shard of
the items and the outputs are gathered back into input order, identical to one process.

``current_shard()`` reads the launcher's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and sets up
the process group through accelerate's :class:`~accelerate.PartialState` (gloo on CPU, NCCL on GPUs); with
one process it is ``Shard(0, 1)`` and nothing is initialised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rewardkit.types import ScoreOutput


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` scoring processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def positions(self, n: int) -> np.ndarray:
        """(n_shard,) int64: the items this process scores, every ``world``-th from ``rank`` (so each shard gets
        a similar mix of lengths)."""
        return np.arange(self.rank, n, self.world, dtype=np.int64)

    def device(self, spec: str) -> str:
        """``auto`` under several processes on GPUs is this process's own GPU; anything else is unchanged."""
        if self.world > 1 and spec == "auto":
            import torch

            if torch.cuda.is_available():
                return f"cuda:{self.local_rank}"
        return spec


def current_shard(device: str = "auto") -> Shard:
    """The launcher's shard; with ``WORLD_SIZE`` > 1 the process group is initialised (once) -- on CPU when
    ``device`` is cpu or there is no GPU (accelerate must be told, or it sees one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    return Shard(state.process_index, state.num_processes, state.local_process_index)


def score_sharded(shard: Shard, n: int, score: Callable[[np.ndarray], ScoreOutput]) -> ScoreOutput:
    """Score items ``0..n-1`` across processes: ``score(positions)`` scores this shard's items (in the order
    given); every process gets the full (n,) output in input order."""
    mine = shard.positions(n)
    out = score(mine)
    if shard.world == 1:
        return out
    from accelerate.utils import gather_object

    return merge_shards(gather_object([(mine, out)]), n)  # one (positions, output) per rank, in rank order


def merge_shards(parts: Sequence[tuple[np.ndarray, ScoreOutput]], n: int) -> ScoreOutput:
    """Every process's (positions, output) -> the (n,) output in input order."""
    parts = [(pos, o) for pos, o in parts if len(pos)] or list(parts[:1])  # a rank with no items adds nothing
    order = np.concatenate([pos for pos, _ in parts])
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"the shards cover {len(order)} positions, not each of 0..{n - 1} once")
    merged = ScoreOutput.concat([o for _, o in parts])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n, dtype=np.int64)
    return merged.select(inverse)
