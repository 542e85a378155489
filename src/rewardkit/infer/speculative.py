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
pool, also when several prompts share a batch (``prompts_per_batch``: their rows decode together, and the
token budget counts every running row of the batch, so decision points are shared while the rejections
are not).

**Adaptive rejection rate** (:class:`AdaptiveAlpha`; the official repository lists it as future work —
this rule is rewardkit's own). Reject more when the partial scores have proved to predict later scores,
less when they have not. At each decision point of a prompt,

    α_k = low + (high − low) · max(0, ρ_k),

where ``ρ_k`` is the Spearman rank correlation between the samples' scores now and at the previous
scoring (the samples that were running then and still have a score now: running, or finished since).
The first decision has no previous scoring, so an adaptive run scores a *probe* halfway through the
first segment (nothing is rejected there; it costs one scorer call per prompt; a one-token first
segment has no probe). Where ``ρ`` cannot be computed (fewer than 3 samples, or all scores tied) the
last rate is kept (``low`` at the start). The correlation is taken over the survivors of the last
decision only, a range-restricted sample, so it reads lower than over the whole pool: the rule leans
towards keeping more.
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
class AdaptiveAlpha:
    """An adaptive rejection rate in ``[low, high]``, set at each decision point from the rank correlation
    of successive partial scores (see the module docstring): ``α = low + (high − low)·max(0, ρ)``."""

    low: float = 0.3
    high: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high < 1.0:
            raise OptionError(f"adaptive alpha needs 0 <= low <= high < 1, got low={self.low}, high={self.high}")

    def rate(self, rho: float | None, last: float) -> float:
        """The rate for a decision with rank correlation ``rho`` (None: unknown, keep ``last``)."""
        if rho is None:
            return last
        return self.low + (self.high - self.low) * max(0.0, rho)

    def __str__(self) -> str:
        return f"adaptive:{self.low:g},{self.high:g}"


Alpha = float | AdaptiveAlpha


def parse_alpha(value: str | float | AdaptiveAlpha) -> Alpha:
    """``0.5`` → 0.5; ``adaptive`` → :class:`AdaptiveAlpha` with its defaults; ``adaptive:LOW,HIGH`` → those
    bounds. Ranges are checked by the config that uses the value."""
    if isinstance(value, AdaptiveAlpha | float | int):
        return float(value) if not isinstance(value, AdaptiveAlpha) else value
    text = value.strip()
    if text == "adaptive":
        return AdaptiveAlpha()
    try:
        if text.startswith("adaptive:"):
            low, high = (float(x) for x in text.removeprefix("adaptive:").split(","))
            return AdaptiveAlpha(low, high)
        return float(text)
    except ValueError:
        raise OptionError(f"alpha must be a number in [0, 1), 'adaptive' or 'adaptive:LOW,HIGH', got {value!r}") from None


def alpha_label(alpha: Alpha) -> float | str:
    """A JSON-friendly form of a rate: the number, or ``adaptive:LOW,HIGH``."""
    return str(alpha) if isinstance(alpha, AdaptiveAlpha) else float(alpha)


@dataclass(frozen=True)
class SpeculativeConfig:
    """``alpha`` ∈ [0, 1): the share of the pool rejected at each decision point, or an
    :class:`AdaptiveAlpha`. Decision points come every ``chunk`` generated tokens, or (``chunk = None``)
    from ``token_budget``: KV-cache tokens (running rows of the batch × context length) allowed before the
    next decision."""

    alpha: Alpha
    chunk: int | None = 16
    token_budget: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.alpha, AdaptiveAlpha) and not 0.0 <= self.alpha < 1.0:
            raise OptionError(f"alpha must be in [0, 1), got {self.alpha}")
        if (self.chunk is None) == (self.token_budget is None):
            raise OptionError("give exactly one of chunk and token_budget")
        if self.chunk is not None and self.chunk < 1:
            raise OptionError(f"chunk must be >= 1, got {self.chunk}")
        if self.token_budget is not None and self.token_budget < 1:
            raise OptionError(f"token_budget must be >= 1, got {self.token_budget}")

    @property
    def adaptive(self) -> AdaptiveAlpha | None:
        return self.alpha if isinstance(self.alpha, AdaptiveAlpha) else None


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


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's ρ of paired scores (:func:`scipy.stats.spearmanr`, average ranks for ties; NaN ranks
    lowest); None for fewer than 3 pairs or when either side is all tied."""
    from scipy.stats import spearmanr

    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores against {len(b)}")
    x, y = [_finite(v) for v in a], [_finite(v) for v in b]
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


class _PromptPool:
    """The bookkeeping of one prompt: final scores of finished samples, the finished ones still in the
    pool, the last partial score of each running sample, the current rejection rate, the scores of the
    last scoring (for the adaptive rate) and the decision rounds."""

    def __init__(self, alpha: Alpha) -> None:
        self.alpha = alpha
        self.rate = alpha.low if isinstance(alpha, AdaptiveAlpha) else alpha
        self.final: dict[int, float] = {}
        self.in_pool: set[int] = set()
        self.partial: dict[int, float] = {}
        self.previous: dict[int, float] = {}
        self.rounds: list[Round] = []

    def probe(self, rollout: Rollout, p: int, prompt: list[Message], conv: bool, meter: MeteredScorer) -> None:
        """Score this prompt's running samples without rejecting any (the adaptive rate's first reference)."""
        running = [g for g in rollout.running if rollout.samples[g].prompt == p]
        if running:
            self.previous = dict(zip(running, meter.score(prompt, [rollout.text(g) for g in running], conv).tolist(),
                                     strict=True))

    def decide(self, rollout: Rollout, p: int, prompt: list[Message], conv: bool, meter: MeteredScorer) -> list[int]:
        """Score this prompt's new finished and running samples; return the running ones to keep."""
        running = [g for g in rollout.running if rollout.samples[g].prompt == p]
        newly = [g for g in rollout.rows_of(p)
                 if rollout.samples[g].finish not in (None, "pruned") and g not in self.final]
        if not running and not newly:
            return []
        scores = meter.score(prompt, [rollout.text(g) for g in newly + running], conv).tolist()
        now = dict(zip(newly + running, scores, strict=True))
        self.final.update({g: now[g] for g in newly})
        self.in_pool.update(newly)
        self.partial.update({g: now[g] for g in running})
        if not running:
            return []
        self.rate = self._next_rate(now)
        self.previous = {g: now[g] for g in running}
        pool = {g: self.final[g] for g in self.in_pool} | {g: self.partial[g] for g in running}
        keep = set(survivors(pool, self.rate))
        self.in_pool &= keep
        kept_running = [g for g in running if g in keep]
        self.rounds.append(Round(max(len(rollout.samples[g].token_ids) for g in running), len(pool), len(keep),
                                 len(kept_running), self.rate))
        return kept_running

    def _next_rate(self, now: Mapping[int, float]) -> float:
        """The fixed α, or the adaptive rate from the rank correlation of the previous scoring and ``now``."""
        if not isinstance(self.alpha, AdaptiveAlpha):
            return self.alpha
        common = [g for g in self.previous if g in now]
        rho = rank_correlation([self.previous[g] for g in common], [now[g] for g in common])
        return self.alpha.rate(rho, self.rate)

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
        pools = [_PromptPool(cfg.alpha) for _ in prompts]
        scored = [Compute() for _ in prompts]

        def each_prompt(action: str) -> list[int]:
            """Run ``probe`` or ``decide`` for every prompt of the batch, charging each its scorer cost."""
            keep: list[int] = []
            for p, (prompt, conv) in enumerate(zip(prompts, convs, strict=True)):
                before = meter.snapshot()
                if action == "probe":
                    pools[p].probe(rollout, p, prompt, conv, meter)
                else:
                    keep += pools[p].decide(rollout, p, prompt, conv, meter)
                scored[p] = scored[p] + since(before, meter.snapshot())
            return keep

        first = True
        while not rollout.done:
            remaining = rollout.cfg.max_new_tokens - rollout.max_generated()
            steps = next_segment(cfg, running=len(rollout.running), context_length=rollout.context_length(),
                                 remaining=remaining)
            if first and cfg.adaptive is not None and steps >= 2:
                rollout.advance(steps // 2)
                each_prompt("probe")
                steps -= steps // 2
            first = False
            rollout.advance(steps)
            keep = each_prompt("decide")
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
                       desc=f"speculative α={alpha_label(config.alpha)}")
