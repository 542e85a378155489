"""Speculative Rejection (Sun et al., NeurIPS 2024): Best-of-N that stops the weak samples early.

Partial-response rewards correlate with final rewards, so (METHODS §1, as in the official code):

1. start all ``n`` samples of a prompt (one prefill, shared KV cache);
2. at each decision point — every ``chunk`` tokens, or, with a ``token_budget``, as far as the KV cache
   of the running rows fits (``budget // running − context length`` more tokens, so later segments get
   longer as the batch shrinks) — score every partial response (text so far, cut at stop strings) and
   every response that finished since the last decision point;
3. pool = finished responses kept from earlier rounds ∪ running ones; keep the top
   ``⌈(1 − α)·|pool|⌉`` by score (ties to the lower sample index); only running survivors continue,
   their KV cache rows selected out of the batch (never re-encoded);
4. repeat until nothing runs; return the highest-scoring finished response.

Finished responses are scored on their full text, so one that was dropped from the pool still has its
final score and stays eligible as the answer (it costs nothing and can only raise the returned
reward). ``α = 0`` keeps everything and equals Best-of-N (with extra scoring). Each prompt has its own
pool, also when several prompts share a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.infer.accounting import Compute, MeteredScorer, since
from rewardkit.infer.best_of_n import Candidate, PromptLike, PromptResult, Round, prompt_tokens, run_batches
from rewardkit.infer.sampler import Policy, Rollout, SamplingConfig


@dataclass(frozen=True)
class SpeculativeConfig:
    """``alpha`` ∈ [0, 1): the share of the pool rejected at each decision point. Decision points come
    every ``chunk`` generated tokens, or (``chunk = None``) from ``token_budget``: KV-cache tokens
    (running rows × context length) allowed before the next decision."""

    alpha: float
    chunk: int | None = 16
    token_budget: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise OptionError(f"alpha must be in [0, 1), got {self.alpha}")
        if (self.chunk is None) == (self.token_budget is None):
            raise OptionError("give exactly one of chunk and token_budget")
        if self.chunk is not None and self.chunk < 1:
            raise OptionError(f"chunk must be >= 1, got {self.chunk}")
        if self.token_budget is not None and self.token_budget < 1:
            raise OptionError(f"token_budget must be >= 1, got {self.token_budget}")


def next_segment(cfg: SpeculativeConfig, *, running: int, context_length: int, remaining: int) -> int:
    """Decode steps before the next decision point: ``chunk``, or what the token budget leaves for the
    running rows (``token_budget // running − context_length``); at least 1, at most ``remaining``."""
    if cfg.chunk is not None:
        steps = cfg.chunk
    else:
        assert cfg.token_budget is not None
        steps = cfg.token_budget // max(running, 1) - context_length
    return max(1, min(steps, remaining))


def survivors(pool: Mapping[int, float], alpha: float) -> list[int]:
    """The top ``⌈(1 − α)·|pool|⌉`` ids of ``pool`` (id → score) by score, ties to the lower id."""
    keep = math.ceil((1.0 - alpha) * len(pool) - 1e-9)
    ranked = sorted(pool, key=lambda g: (-_finite(pool[g]), g))
    return ranked[:keep]


def _finite(x: float) -> float:
    return -math.inf if math.isnan(x) else x


class _PromptPool:
    """The bookkeeping of one prompt: final scores of finished samples, the finished ones still in the
    pool, the last partial score of each running sample, and the decision rounds."""

    def __init__(self) -> None:
        self.final: dict[int, float] = {}
        self.in_pool: set[int] = set()
        self.partial: dict[int, float] = {}
        self.rounds: list[Round] = []

    def decide(self, rollout: Rollout, p: int, prompt: list[Message], conv: bool, meter: MeteredScorer,
               alpha: float) -> list[int]:
        """Score this prompt's new finished and running samples; return the running ones to keep."""
        running = [g for g in rollout.running if rollout.samples[g].prompt == p]
        newly = [g for g in rollout.rows_of(p)
                 if rollout.samples[g].finish not in (None, "pruned") and g not in self.final]
        if not running and not newly:
            return []
        scores = meter.score(prompt, [rollout.text(g) for g in newly + running], conv).tolist()
        self.final.update(zip(newly, scores[: len(newly)], strict=True))
        self.in_pool.update(newly)
        self.partial.update(zip(running, scores[len(newly):], strict=True))
        if not running:
            return []
        pool = {g: self.final[g] for g in self.in_pool} | {g: self.partial[g] for g in running}
        keep = set(survivors(pool, alpha))
        self.in_pool &= keep
        kept_running = [g for g in running if g in keep]
        self.rounds.append(Round(max(len(rollout.samples[g].token_ids) for g in running), len(pool), len(keep),
                                 len(kept_running)))
        return kept_running

    def candidates(self, rollout: Rollout, p: int) -> tuple[Candidate, ...]:
        out = []
        for g in rollout.rows_of(p):
            s = rollout.samples[g]
            score = self.final.get(g, self.partial.get(g, float("nan")))
            out.append(Candidate(s.index, rollout.text(g), float(score), len(s.token_ids), s.finish or "running"))
        return tuple(out)


def _speculative_batch(cfg: SpeculativeConfig) -> Any:
    def run(
        rollout: Rollout, prompts: list[list[Message]], convs: list[bool], meter: MeteredScorer,
    ) -> tuple[list[tuple[Candidate, ...]], list[Compute], list[tuple[Round, ...]]]:
        pools = [_PromptPool() for _ in prompts]
        scored = [Compute() for _ in prompts]
        while not rollout.done:
            remaining = rollout.cfg.max_new_tokens - rollout.max_generated()
            rollout.advance(next_segment(cfg, running=len(rollout.running),
                                         context_length=rollout.context_length(), remaining=remaining))
            keep: list[int] = []
            for p, (prompt, conv) in enumerate(zip(prompts, convs, strict=True)):
                before = meter.snapshot()
                keep += pools[p].decide(rollout, p, prompt, conv, meter, cfg.alpha)
                scored[p] = scored[p] + since(before, meter.snapshot())
            if not rollout.done:
                rollout.keep(keep)
        cands = [pool.candidates(rollout, p) for p, pool in enumerate(pools)]
        costs = [prompt_tokens(rollout, p) + scored[p] for p in range(len(prompts))]
        return cands, costs, [tuple(pool.rounds) for pool in pools]

    return run


def speculative_rejection(
    policy: Policy, scorer: Any, prompts: Sequence[PromptLike], *, n: int, config: SpeculativeConfig,
    sampling: SamplingConfig, prompts_per_batch: int = 1, prompt_keys: Sequence[str] | None = None,
    progress: bool = False,
) -> list[PromptResult]:
    """Speculative Rejection with ``n`` initial samples per prompt and any scorer; one result per prompt.

    Seeding is per sample (as in :func:`~rewardkit.infer.best_of_n.best_of_n`), so a surviving sample
    has the same tokens as sample ``i`` of Best-of-``n`` with the same seed and prompt keys.
    """
    if n < 1:
        raise OptionError(f"n must be >= 1, got {n}")
    return run_batches(policy, scorer, prompts, n=n, sampling=sampling, batch_fn=_speculative_batch(config),
                       prompts_per_batch=prompts_per_batch, prompt_keys=prompt_keys, progress=progress,
                       desc=f"speculative α={config.alpha:g}")
