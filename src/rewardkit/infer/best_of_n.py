"""Best-of-N: sample ``n`` responses per prompt, score them all, return the best.

The ``n`` samples of a prompt are one batch of a :class:`~rewardkit.infer.sampler.Rollout` (the prompt
is prefilled once and its KV cache shared); ``prompts_per_batch`` > 1 decodes several prompts together
(left-padded) — useful for small ``n``. Any scorer works (:mod:`rewardkit.scoring`): each prompt's
responses are scored in one call, ties go to the lower sample index.

Shared with :mod:`rewardkit.infer.speculative`: the result types and the batch driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.infer.accounting import Compute, MeteredScorer, apportion, since
from rewardkit.infer.sampler import Policy, Rollout, SamplingConfig

PromptLike = Sequence[Message] | str


@dataclass(frozen=True)
class Candidate:
    """One sample with its score. For Speculative Rejection a ``pruned`` candidate's score is the
    partial-response score it was pruned on."""

    index: int
    text: str
    score: float
    n_tokens: int
    finish: str


@dataclass(frozen=True)
class Round:
    """One Speculative Rejection decision point of one prompt: tokens generated so far by the longest
    sample, the pool size (finished kept + running), how many of the pool were kept, and the rejection
    rate used (fixed, or adaptive)."""

    generated: int
    pool: int
    kept: int
    running_kept: int
    alpha: float = 0.0


@dataclass(frozen=True)
class PromptResult:
    """The outcome for one prompt: the best response, every candidate, the cost, and SpR's rounds."""

    prompt_index: int
    best: Candidate
    candidates: tuple[Candidate, ...]
    compute: Compute
    rounds: tuple[Round, ...] = ()


def as_messages(prompt: PromptLike) -> tuple[list[Message], bool]:
    """``(messages, conversational)``: a plain string becomes one user turn, not conversational."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}], False
    return [dict(m) for m in prompt], True


def best_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """Highest score; ties (and NaN-free equal scores) go to the lower sample index."""
    eligible = [c for c in candidates if c.finish != "pruned"] or list(candidates)
    scores = np.array([c.score for c in eligible], dtype=np.float64)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return eligible[int(np.argmax(scores))]


BatchFn = Callable[[Rollout, list[list[Message]], list[bool], MeteredScorer],
                   tuple[list[tuple[Candidate, ...]], list[Compute], list[tuple[Round, ...]]]]


def run_batches(
    policy: Policy, scorer: Any, prompts: Sequence[PromptLike], *, n: int, sampling: SamplingConfig,
    batch_fn: BatchFn, prompts_per_batch: int = 1, prompt_keys: Sequence[str] | None = None,
    progress: bool = False, desc: str = "generate",
) -> list[PromptResult]:
    """Cut ``prompts`` into batches, build one rollout per batch, let ``batch_fn`` decode and score it,
    and attach each prompt's compute (its own token counts; shared seconds apportioned by forward tokens)."""
    from tqdm.auto import tqdm

    if prompts_per_batch < 1:
        raise OptionError(f"prompts_per_batch must be >= 1, got {prompts_per_batch}")
    keys = list(prompt_keys) if prompt_keys is not None else [str(i) for i in range(len(prompts))]
    meter = scorer if isinstance(scorer, MeteredScorer) else MeteredScorer(scorer)
    results: list[PromptResult] = []
    with tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress, dynamic_ncols=True) as bar:
        for lo, hi in _spans(len(prompts), prompts_per_batch):
            msgs, convs = zip(*(as_messages(p) for p in prompts[lo:hi]), strict=True)
            t0, scored0 = time.perf_counter(), meter.snapshot()
            rollout = Rollout(policy, [policy.encode_prompt(m) for m in msgs], n, sampling, prompt_keys=keys[lo:hi])
            cands, costs, rounds = batch_fn(rollout, list(msgs), list(convs), meter)
            wall = time.perf_counter() - t0
            scorer_s = since(scored0, meter.snapshot()).scorer_s
            shared = Compute(policy_s=wall - scorer_s, scorer_s=scorer_s, wall_s=wall)
            times = apportion(shared, [c.policy_forward_tokens for c in costs])
            for j, (c, cost, r, tm) in enumerate(zip(cands, costs, rounds, times, strict=True)):
                timed = replace(cost, policy_s=tm.policy_s, scorer_s=tm.scorer_s, wall_s=tm.wall_s)
                results.append(PromptResult(lo + j, best_candidate(c), c, timed, r))
            bar.update(hi - lo)
    return results


def _spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, size):
        yield lo, min(lo + size, total)


def prompt_tokens(rollout: Rollout, p: int) -> Compute:
    """Token counts of prompt ``p`` of ``rollout``: tokens it generated, and tokens the policy read for
    it (its prompt once, plus every sampled token that was fed back — the last token of a sample that
    ended at EOS / a stop string / the length limit never is)."""
    rows = [rollout.samples[g] for g in rollout.rows_of(p)]
    generated = sum(len(s.token_ids) for s in rows)
    fed = sum(len(s.token_ids) - (1 if s.finish in ("eos", "stop", "length") else 0) for s in rows)
    return Compute(generated_tokens=generated, policy_forward_tokens=rollout.prompt_lengths[p] + fed)


def _bon_batch(
    rollout: Rollout, prompts: list[list[Message]], convs: list[bool], meter: MeteredScorer,
) -> tuple[list[tuple[Candidate, ...]], list[Compute], list[tuple[Round, ...]]]:
    """Decode every sample to the end, then score each prompt's ``n`` responses in one call."""
    rollout.advance(rollout.cfg.max_new_tokens)
    cands, costs = [], []
    for p, (prompt, conv) in enumerate(zip(prompts, convs, strict=True)):
        before = meter.snapshot()
        samples = [rollout.result(g) for g in rollout.rows_of(p)]
        scores = meter.score(prompt, [s.text for s in samples], conv)
        cands.append(tuple(Candidate(s.index, s.text, float(x), s.n_tokens, s.finish)
                           for s, x in zip(samples, scores, strict=True)))
        costs.append(prompt_tokens(rollout, p) + since(before, meter.snapshot()))
    return cands, costs, [()] * len(prompts)


def best_of_n(
    policy: Policy, scorer: Any, prompts: Sequence[PromptLike], *, n: int, sampling: SamplingConfig,
    prompts_per_batch: int = 1, prompt_keys: Sequence[str] | None = None, progress: bool = False,
) -> list[PromptResult]:
    """Best-of-``n`` for each prompt (messages or plain text) with any scorer; one result per prompt.

    ``prompt_keys`` (default: the prompt's position) seed each prompt's samples, so sample ``i`` of a
    prompt is the same whatever ``n`` and batch: Best-of-4's samples are the first 4 of Best-of-32's.
    """
    if n < 1:
        raise OptionError(f"n must be >= 1, got {n}")
    return run_batches(policy, scorer, prompts, n=n, sampling=sampling, batch_fn=_bon_batch,
                       prompts_per_batch=prompts_per_batch, prompt_keys=prompt_keys, progress=progress,
                       desc=f"best-of-{n}")
