"""One scoring pass over all items of a benchmark: every distinct input scored once, cached, resumable.

Pointwise scorers: the distinct (prompt, response) pairs of all items (an RM-Bench item has 6, a
RewardBench 2 item 4 or more, an RMB best-of-N item up to 7) are scored longest first in chunks;
inside a chunk the scorer batches by token length. Judges: the distinct unordered response pairs of
every item (round-robin) are compared, and each response's score is its least-squares Bradley--Terry
strength (:func:`rewardkit.scorers.judge.round_robin_scores`). With a cache, each chunk is stored as
soon as it is scored, and a rerun scores only what is missing. A pointwise scorer's uncertainty and
objectives (:class:`~rewardkit.types.ScoreOutput`) are kept per response when every input has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.eval.benchmarks.base import Item
from rewardkit.eval.cache import ScoreCache, stable_hash
from rewardkit.scorers import is_pairwise, pointwise_function
from rewardkit.scorers.judge import round_robin_scores
from rewardkit.scorers.shards import Shard, score_sharded

CHUNK = 512  # inputs per stored chunk: a killed run loses at most this much work


@dataclass(frozen=True)
class ItemScores:
    """Per-item scores ``scores[k]`` (n_k,) float64 and truncation flags ``truncated[k]`` (n_k,) bool,
    with what the pass did: distinct inputs (responses, or comparisons for a judge), how many came from
    the cache, how many distinct inputs were truncated, and the wall time. ``uncertainty[k]`` (n_k,) float64
    and ``objectives[k]`` (n_k, K) float64 (columns ``objective_names``) when the scorer gave them for every
    input, else None; ``weights[k]`` (n_k, K) float64 likewise, a gated head's weights over the objectives."""

    scores: list[np.ndarray]
    truncated: list[np.ndarray]
    units: int
    cached: int
    truncated_units: int
    seconds: float
    uncertainty: list[np.ndarray] | None = None
    objectives: list[np.ndarray] | None = None
    objective_names: tuple[str, ...] = ()
    weights: list[np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"distinct_inputs": self.units, "from_cache": self.cached, "scored": self.units - self.cached,
                "truncated_inputs": self.truncated_units, "seconds": self.seconds,
                "inputs_per_s": (self.units - self.cached) / max(self.seconds, 1e-9)}


@dataclass(frozen=True)
class _Unit:
    prompt: tuple
    a: tuple
    b: tuple | None
    conversational: bool

    @property
    def size(self) -> int:
        texts = [*self.prompt, *self.a, *(self.b or ())]
        return sum(len(m["content"]) for m in texts)


def score_items(scorer: Any, items: Sequence[Item], *, cache: ScoreCache | None = None, chunk: int = CHUNK,
                desc: str = "score", shard: Shard | None = None) -> ItemScores:
    """Score every response of every item with ``scorer`` (pointwise or judge). With a ``shard`` of several
    processes (torchrun), each process scores its share of every chunk and all get every score."""
    shard = shard or Shard()
    t0 = time.perf_counter()
    pairwise = is_pairwise(scorer)
    units, index = _units(items, pairwise)
    keys = list(units)
    values = cache.get_many(keys) if cache is not None else {}
    extras = cache.get_extras(keys) if cache is not None else {}
    cached = len(values)
    missing = sorted((k for k in keys if k not in values), key=lambda k: -units[k].size)
    run = _compare_fn(scorer) if pairwise else _score_fn(scorer)
    chunk = max(1, chunk // 4) if pairwise else chunk  # a comparison costs 2 forwards of 2 responses
    from tqdm.auto import tqdm

    with tqdm(total=len(keys), initial=cached, desc=desc, unit="cmp" if pairwise else "seq",
              dynamic_ncols=True, leave=False, disable=not shard.is_main) as bar:
        for start in range(0, len(missing), chunk):
            part = missing[start : start + chunk]
            out = score_sharded(shard, len(part), lambda mine, part=part: run([units[part[k]] for k in mine],
                                                                              bar.update))
            rows = [(k, float(s), bool(t)) for k, s, t in zip(part, out.rewards, out.truncated, strict=True)]
            values.update({k: (s, t) for k, s, t in rows})
            new = {} if pairwise else _extras(out, part)
            extras.update(new)
            if cache is not None:
                cache.put_many(rows, new)
    scores, truncated = _assemble(items, index, values, pairwise)
    n_cut = sum(values[k][1] for k in keys)
    u, objectives, names, weights = (None, None, (), None) if pairwise else _assemble_extras(index, extras)
    return ItemScores(scores, truncated, len(keys), cached, int(n_cut), time.perf_counter() - t0, u, objectives, names,
                      weights)


def _extras(out: Any, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per key, what the output has beside the reward: ``{"u": U}``, ``{"o": {name: value}}`` and a gate's
    ``{"w": {name: weight}}``."""
    extras: dict[str, dict[str, Any]] = {}
    for j, k in enumerate(keys):
        e: dict[str, Any] = {}
        if out.uncertainty is not None:
            e["u"] = float(out.uncertainty[j])
        objectives = out.objectives_of(j)
        if objectives is not None:
            e["o"] = objectives
        weights = out.weights_of(j)
        if weights is not None:
            e["w"] = weights
        if e:
            extras[k] = e
    return extras


def _assemble_extras(index: list[Any], extras: dict[str, dict[str, Any]]
                     ) -> tuple[list[np.ndarray] | None, list[np.ndarray] | None, tuple[str, ...],
                                list[np.ndarray] | None]:
    """Per-item uncertainty, objectives and gating weights, each only when every input has it (same
    objective names)."""
    keys = [k for where in index for k in where]
    u = None
    if keys and all("u" in extras.get(k, {}) for k in keys):
        u = [np.array([extras[k]["u"] for k in where], dtype=np.float64) for where in index]
    names = tuple(extras.get(keys[0], {}).get("o", {})) if keys else ()
    if not names or any(tuple(extras.get(k, {}).get("o", {})) != names for k in keys):
        return u, None, (), None
    objectives = _columns(index, extras, "o", names)
    weights = _columns(index, extras, "w", names) if all("w" in extras[k] for k in keys) else None
    return u, objectives, names, weights


def _columns(index: list[Any], extras: dict[str, dict[str, Any]], field: str, names: tuple[str, ...]
             ) -> list[np.ndarray]:
    """Per item, the (n_k, K) float64 values of extras ``field`` (a {name: value} dict) in ``names`` order."""
    return [np.array([[extras[k][field][n] for n in names] for k in where], dtype=np.float64).reshape(-1, len(names))
            for where in index]


def _units(items: Sequence[Item], pairwise: bool) -> tuple[dict[str, _Unit], list[Any]]:
    """Distinct inputs by key, and per item where to find each response's (or pair's) input."""
    units: dict[str, _Unit] = {}
    index: list[Any] = []
    for it in items:
        if not pairwise:
            keys = []
            for r in it.responses:
                key = stable_hash([it.prompt, r, it.conversational])
                units.setdefault(key, _Unit(it.prompt, r, None, it.conversational))
                keys.append(key)
            index.append(keys)
            continue
        pairs = []
        for i in range(len(it.responses)):
            for j in range(i + 1, len(it.responses)):
                a, b = it.responses[i], it.responses[j]
                ha, hb = stable_hash(a), stable_hash(b)
                flip = hb < ha  # one canonical order per unordered pair, so (a, b) and (b, a) share a unit
                first, second = (b, a) if flip else (a, b)
                key = stable_hash([it.prompt, first, second, it.conversational])
                units.setdefault(key, _Unit(it.prompt, first, second, it.conversational))
                pairs.append((i, j, key, -1.0 if flip else 1.0))
        index.append(pairs)
    return units, index


def _score_fn(scorer: Any) -> Callable[[list[_Unit], Callable[[int], Any]], Any]:
    fn = pointwise_function(scorer)

    def run(batch: list[_Unit], progress: Callable[[int], Any]) -> Any:
        return fn([u.prompt for u in batch], [u.a for u in batch], [u.conversational for u in batch],
                  progress=progress)

    return run


def _compare_fn(scorer: Any) -> Callable[[list[_Unit], Callable[[int], Any]], Any]:
    def run(batch: list[_Unit], progress: Callable[[int], Any]) -> Any:
        out = scorer.compare([u.prompt for u in batch], [u.a for u in batch], [u.b for u in batch])
        progress(len(batch))
        return out

    return run


def _assemble(items: Sequence[Item], index: list[Any], values: dict[str, tuple[float, bool]], pairwise: bool
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    scores, truncated = [], []
    for it, where in zip(items, index, strict=True):
        n = len(it.responses)
        if not pairwise:
            scores.append(np.array([values[k][0] for k in where], dtype=np.float64))
            truncated.append(np.array([values[k][1] for k in where], dtype=bool))
            continue
        logodds = np.zeros((n, n), dtype=np.float64)
        cut = np.zeros(n, dtype=bool)
        for i, j, key, sign in where:
            value, was_cut = values[key]
            logodds[i, j], logodds[j, i] = sign * value, -sign * value
            cut[[i, j]] |= was_cut
        scores.append(round_robin_scores(logodds))
        truncated.append(cut)
    return scores, truncated
