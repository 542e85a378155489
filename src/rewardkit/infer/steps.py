"""AdaptiveStep step splitting and Monte-Carlo step labels (``rewardkit data steps`` / ``data label-steps``).

**Splitting** (AdaptiveStep, Liu et al. 2025; ``METHODS.md`` §6). The policy reads every solution with
teacher forcing; ``c_t = p(y_t | x, y_<t)`` is the probability of each response token. One *global*
threshold τ is the ``quantile`` (default 2%) of all response-token probabilities in the file, and every token
with ``c_t < τ`` is a breaking point. Which side of the breaking token the boundary falls on: AdaptiveStep's
token-level value-guided decoding scores ``question + prefix + token + " ки"`` -- the placeholder right
*after* the low-confidence token -- so here too a step **ends with** its low-confidence token and the next
step starts after it (the PRM then judges the uncertain choice that was just made). A boundary is always
between two tokens, at the character where the decoded prefix ends; steps are the exact text spans of the
response (their concatenation is the response). ``newline`` (the baseline, as TRL's stepwise data): one step
per non-empty line, without its ``"\\n"``.

**Labelling** (hard estimation as Math-Shepherd and AdaptiveStep). For step ``k`` the policy samples
``rollouts`` completions from the prompt + the solution up to the end of step ``k``; step ``k`` is right
when any rollout reaches the gold answer (``estimate = "soft"`` also keeps the fraction). The last step needs
no rollouts: the written solution is complete, so its own final answer is checked (``last_step = "check"``).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.formats import Message
from rewardkit.data.io import DataError, Location, atomic_write_json, atomic_writer, read_records
from rewardkit.errors import OptionError
from rewardkit.infer.sampler import Policy, Rollout, Sample, SamplingConfig
from rewardkit.models.causal_lm import response_mask_from_starts, right_pad, sequence_logps

SPLITS = ("confidence", "newline")
ESTIMATES = ("hard", "soft")
LAST_STEP = ("check", "rollout")
SEPARATOR = "\n"  # the step separator of TRL stepwise rows (and of the PRM input)

Prompt = Sequence[Message] | str
Checker = Callable[[str], bool]  # full solution text -> final answer right?


# ------------------------------------------------------------------------------------------ pure maths


def global_threshold(probs: Sequence[np.ndarray], q: float) -> float:
    """The ``q``-quantile τ of every token probability of every solution (numpy's linear interpolation).

    ``probs``: one (T_i,) float array per solution. Raises when there is no token at all."""
    if not 0.0 <= q <= 1.0:
        raise OptionError(f"quantile must be in [0, 1], got {q}")
    flat = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in probs]) if probs else np.zeros(0)
    if flat.size == 0:
        raise OptionError("no response tokens to take a quantile of")
    return float(np.quantile(flat, q))


def boundaries_from_probs(probs: np.ndarray | Sequence[float], threshold: float) -> list[int]:
    """Token indices ``i`` after which a step ends: ``probs[i] < threshold`` (strictly), the last token
    excepted (the response ends there anyway). ``probs``: (T,) float. E.g. ``[.9, .1, .8, .05, .7]`` with
    τ = 0.2 gives ``[1, 3]``: steps are tokens 0-1, 2-3 and 4."""
    p = np.asarray(probs, dtype=np.float64)
    return [int(i) for i in np.flatnonzero(p[:-1] < threshold)]


def labels_from_rollouts(correct: np.ndarray | Sequence[Sequence[bool]], estimate: str = "hard") -> np.ndarray:
    """Step labels from rollout outcomes. ``correct``: (K, R) bool, rollout ``r`` from step ``k`` reached the
    gold answer. ``hard``: (K,) bool, any rollout right; ``soft``: (K,) float64, the fraction right."""
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2 or c.shape[1] == 0:
        raise OptionError(f"correct must be (K, R) with R >= 1, got shape {c.shape}")
    if estimate == "hard":
        return c.any(axis=1)
    if estimate == "soft":
        return c.mean(axis=1)
    raise OptionError(f"estimate must be one of {ESTIMATES}, got {estimate!r}")


def newline_steps(response: str) -> list[str]:
    """The baseline split: the non-empty lines of ``response`` (each without its ``"\\n"``)."""
    return [line for line in response.split("\n") if line.strip()]


def spans(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` cut at the character offsets ``cuts`` (increasing, inside (0, len)); ``"".join`` gives ``text``."""
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


def char_cuts(decode: Callable[[list[int]], str], ids: Sequence[int], text: str,
              boundaries: Sequence[int]) -> tuple[list[int], int]:
    """Character offsets in ``text`` of the token boundaries after ``boundaries`` (token indices into
    ``ids``, the tokens of ``text``): the length of the decoded prefix ``ids[:i + 1]``. A boundary whose
    decoded prefix is not a prefix of ``text`` (a token that ends inside a multi-byte character), that
    does not advance, or that would close a step of only whitespace (a low-confidence "\\n": a PRM cannot
    score an empty step, so the whitespace joins the next step) is skipped. Returns ``(cuts, skipped)``."""
    cuts: list[int] = []
    skipped = 0
    for i in boundaries:
        prefix = decode(list(ids[: i + 1]))
        at = len(prefix)
        start = cuts[-1] if cuts else 0
        if text.startswith(prefix) and start < at < len(text) and text[start:at].strip():
            cuts.append(at)
        else:
            skipped += 1
    if cuts and not text[cuts[-1]:].strip():  # a whitespace-only last step joins the one before
        cuts.pop()
        skipped += 1
    return cuts, skipped


def step_prefixes(steps: Sequence[str], split: str | None) -> list[str]:
    """The solution text up to the end of each step: exact spans (``confidence``) are concatenated; other
    steps (``newline``, TRL stepwise rows) are each followed by the separator ``"\\n"``."""
    joiner = "" if split == "confidence" else SEPARATOR
    tail = "" if split == "confidence" else SEPARATOR
    return [joiner.join(steps[: k + 1]) + tail for k in range(len(steps))]


# ------------------------------------------------------------------------------------------ splitting


@dataclass(frozen=True)
class SplitConfig:
    """How ``data steps`` splits: ``split`` (confidence | newline), the global ``quantile`` of token
    probabilities, solutions per forward pass, and ``max_length`` (prompt + response tokens read; the
    tokens past it get no probability and stay in the last step)."""

    split: str = "confidence"
    quantile: float = 0.02  # AdaptiveStep's 2% quantile
    batch_size: int = 8
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise OptionError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not 0.0 < self.quantile < 1.0:
            raise OptionError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.batch_size < 1:
            raise OptionError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 2:
            raise OptionError(f"max_length must be >= 2, got {self.max_length}")


@dataclass(frozen=True)
class SplitResult:
    """Steps per solution, the threshold τ (None for newline), boundaries skipped because they fell inside
    a character, and solutions whose response was cut by ``max_length`` (their tail is not split)."""

    steps: list[list[str]]
    threshold: float | None
    skipped_boundaries: int = 0
    truncated: int = 0


def encode_response(policy: Policy, response: str) -> list[int]:
    return list(policy.tokenizer(response, add_special_tokens=False)["input_ids"])


@torch.inference_mode()
def response_token_probs(policy: Policy, prompts: Sequence[Prompt], responses: Sequence[str], *,
                         batch_size: int = 8, max_length: int | None = None) -> list[np.ndarray]:
    """``p(y_t | x, y_<t)`` of every response token under ``policy`` (teacher forcing; the prompt as
    :meth:`Policy.encode_prompt` writes it, the chat template for messages). One (T_i,) float32 array per
    solution, ``T_i`` = response tokens read (fewer than the response's when ``max_length`` cuts it)."""
    out: list[np.ndarray] = []
    for lo in range(0, len(prompts), batch_size):
        seqs, starts = [], []
        for prompt, response in zip(prompts[lo: lo + batch_size], responses[lo: lo + batch_size], strict=True):
            p_ids = policy.encode_prompt(prompt)
            ids = (p_ids + encode_response(policy, response))[: max_length]
            seqs.append(ids)
            starts.append(len(p_ids))
        input_ids, mask = right_pad(seqs, policy.pad_id, policy.device)  # (B, T) each
        scored = response_mask_from_starts(mask, starts)  # (B, T)
        logps = sequence_logps(policy.model, input_ids, mask, scored).tokens  # (B, T) float32, 0 off the response
        for b, (ids, start) in enumerate(zip(seqs, starts, strict=True)):
            out.append(logps[b, start: len(ids)].exp().cpu().numpy())
    return out


def split_solutions(policy: Policy | None, prompts: Sequence[Prompt], responses: Sequence[str],
                    cfg: SplitConfig, *, probs_fn: Callable[..., list[np.ndarray]] | None = None) -> SplitResult:
    """Split every response: newline (no model needed) or confidence (two passes: probabilities of every
    token, then the global threshold and the cuts). ``probs_fn`` replaces :func:`response_token_probs`
    (tests script it)."""
    if cfg.split == "newline":
        return SplitResult([newline_steps(r) for r in responses], None)
    if policy is None:
        raise OptionError("confidence splitting needs a policy")
    probs = (probs_fn or response_token_probs)(policy, prompts, responses, batch_size=cfg.batch_size,
                                              max_length=cfg.max_length)
    tau = global_threshold(probs, cfg.quantile)
    steps, skipped, truncated = [], 0, 0
    for response, p in zip(responses, probs, strict=True):
        ids = encode_response(policy, response)
        truncated += len(p) < len(ids)
        cuts, n_skipped = char_cuts(policy.decode, ids, response, boundaries_from_probs(p, tau))
        steps.append(spans(response, cuts))
        skipped += n_skipped
    return SplitResult(steps, tau, skipped, truncated)


def steps_summary(result: SplitResult, cfg: SplitConfig) -> dict[str, Any]:
    """Steps per solution (mean, median, min, max), the threshold and the counters, for the sidecar."""
    counts = [len(s) for s in result.steps]
    return {"split": cfg.split, "quantile": cfg.quantile if cfg.split == "confidence" else None,
            "threshold": result.threshold, "solutions": len(counts), "steps": sum(counts),
            "steps_per_solution": {"mean": statistics.fmean(counts) if counts else 0.0,
                                   "median": statistics.median(counts) if counts else 0.0,
                                   "min": min(counts, default=0), "max": max(counts, default=0)},
            "skipped_boundaries": result.skipped_boundaries, "truncated_solutions": result.truncated}


# ------------------------------------------------------------------------------------------ labelling


@dataclass(frozen=True)
class LabelConfig:
    """How ``data label-steps`` labels: ``rollouts`` per step, ``hard``/``soft`` estimate, how the last step
    is labelled (``check`` the written answer, or ``rollout`` like the others), and the sampling settings
    (``sampling.seed`` seeds every rollout; ``prefixes_per_batch`` steps decoded together)."""

    rollouts: int = 8
    estimate: str = "hard"
    last_step: str = "check"
    prefixes_per_batch: int = 4
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        if self.rollouts < 1:
            raise OptionError(f"rollouts must be >= 1, got {self.rollouts}")
        if self.estimate not in ESTIMATES:
            raise OptionError(f"estimate must be one of {ESTIMATES}, got {self.estimate!r}")
        if self.last_step not in LAST_STEP:
            raise OptionError(f"last_step must be one of {LAST_STEP}, got {self.last_step!r}")
        if self.prefixes_per_batch < 1:
            raise OptionError(f"prefixes_per_batch must be >= 1, got {self.prefixes_per_batch}")


@dataclass(frozen=True)
class StepLabels:
    """One solution's labels: ``labels`` (K,) hard, ``scores`` (K,) the fraction of rollouts right (the
    checked last step: 1.0 or 0.0), ``rollout_tokens`` generated, and ``rolled`` how many steps had rollouts."""

    labels: list[bool]
    scores: list[float]
    rollout_tokens: int
    rolled: int


Sampler = Callable[[Policy, Sequence[list[int]], int, SamplingConfig, Sequence[str]], list[list[Sample]]]


def sample_prefixes(policy: Policy, prefixes: Sequence[list[int]], n: int, cfg: SamplingConfig,
                    keys: Sequence[str]) -> list[list[Sample]]:
    """``n`` samples continuing each token prefix, decoded together (one KV cache, seeded by ``keys``)."""
    rollout = Rollout(policy, prefixes, n, cfg, prompt_keys=keys)
    rollout.advance(cfg.max_new_tokens)
    return [[rollout.result(g) for g in rollout.rows_of(p)] for p in range(len(prefixes))]


def label_solution(policy: Policy, prompt: Prompt, steps: Sequence[str], *, split: str | None, check: Checker,
                   cfg: LabelConfig, key: str, sampler: Sampler = sample_prefixes) -> StepLabels:
    """Monte-Carlo labels of one solution's steps (see the module docstring). Rollout ``r`` from step ``k``
    is right when ``check(prefix_k + its text)``; ``key`` seeds the rollouts (``key/k``)."""
    prefixes = step_prefixes(steps, split)
    rolled = len(steps) - (cfg.last_step == "check")
    prompt_ids = policy.encode_prompt(prompt)
    correct: list[list[bool]] = []
    tokens = 0
    for lo in range(0, rolled, cfg.prefixes_per_batch):
        ks = range(lo, min(lo + cfg.prefixes_per_batch, rolled))
        ids = [prompt_ids + encode_response(policy, prefixes[k]) for k in ks]
        samples = sampler(policy, ids, cfg.rollouts, cfg.sampling, [f"{key}/{k}" for k in ks])
        for k, row in zip(ks, samples, strict=True):
            correct.append([check(prefixes[k] + s.text) for s in row])
            tokens += sum(s.n_tokens for s in row)
    scores = [float(x) for x in labels_from_rollouts(correct, "soft")] if correct else []
    if cfg.last_step == "check":
        scores.append(1.0 if check(prefixes[-1]) else 0.0)
    return StepLabels([s > 0 for s in scores], scores, tokens, rolled)


def labels_summary(results: Sequence[StepLabels], cfg: LabelConfig) -> dict[str, Any]:
    """Labelling cost (rollout tokens, total and per solution / per step) and label rates, for the sidecar."""
    n_steps = sum(len(r.labels) for r in results)
    rolled = sum(r.rolled for r in results)
    tokens = sum(r.rollout_tokens for r in results)
    positive = sum(sum(r.labels) for r in results)
    return {"solutions": len(results), "steps": n_steps, "steps_rolled_out": rolled, "rollouts": cfg.rollouts,
            "estimate": cfg.estimate, "last_step": cfg.last_step, "seed": cfg.sampling.seed,
            "max_new_tokens": cfg.sampling.max_new_tokens, "rollout_tokens": tokens,
            "rollout_tokens_per_solution": tokens / len(results) if results else 0.0,
            "rollout_tokens_per_step": tokens / rolled if rolled else 0.0,
            "positive_rate": positive / n_steps if n_steps else 0.0,
            "solutions_all_positive": sum(all(r.labels) for r in results)}


# ------------------------------------------------------------------------------------------ files

CARRIED = ("answer", "id", "meta")  # fields of an input row that a step row keeps


def _prompt_of(loc: Location, row: dict[str, Any]) -> Prompt:
    prompt = row.get("prompt")
    valid = (isinstance(prompt, str) and prompt != "") or (isinstance(prompt, list) and prompt and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt))
    if not valid:
        raise DataError(loc, "prompt", "expected a non-empty string or a non-empty list of {role, content} messages")
    return prompt


def _strings(loc: Location, row: dict[str, Any], name: str) -> list[str]:
    value = row[name]
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise DataError(loc, name, "expected a non-empty list of strings")
    return value


def solution_of(loc: Location, row: dict[str, Any]) -> tuple[Prompt, str]:
    """``(prompt, response)`` of a solution row: ``response`` or ``completion`` (a string, or assistant
    messages whose contents are joined), else ``steps`` / ``completions`` (lists of strings) joined by "\\n"."""
    prompt = _prompt_of(loc, row)
    for name in ("response", "completion"):
        value = row.get(name)
        if isinstance(value, list) and value and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                     for m in value):
            value = "".join(m["content"] for m in value)
        if name in row:
            if not isinstance(value, str) or not value.strip():
                raise DataError(loc, name, "expected a non-empty string (or a list of {role, content} messages)")
            return prompt, value
    for name in ("steps", "completions"):
        if name in row:
            text = SEPARATOR.join(_strings(loc, row, name))
            if not text.strip():
                raise DataError(loc, name, "every step is empty")
            return prompt, text
    raise DataError(loc, "response", "no response: expected 'response', 'completion', 'steps' or 'completions'")


@dataclass(frozen=True)
class StepRow:
    """A stepwise row to label: where it is, the row itself, its prompt and steps, and the gold answer."""

    loc: Location
    row: dict[str, Any]
    prompt: Prompt
    steps: list[str]
    answer: str


def read_step_rows(path: str, limit: int | None = None) -> list[StepRow]:
    """The TRL stepwise rows of ``path`` with a gold ``answer`` (a string or a number); errors name the
    file, line and field."""
    out = []
    for loc, row in read_records(path, limit=limit, what="step rows"):
        prompt = _prompt_of(loc, row)
        if "completions" not in row:
            raise DataError(loc, "completions", "missing: expected the list of step strings")
        steps = _strings(loc, row, "completions")
        answer = row.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, str | int | float) or str(answer).strip() == "":
            raise DataError(loc, "answer", "expected the gold final answer (a non-empty string or a number)")
        out.append(StepRow(loc, row, prompt, steps, str(answer)))
    return out


def write_jsonl(path: str, rows: Sequence[dict[str, Any]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def sidecar(path: str) -> Path:
    """``STEPS.jsonl`` -> ``STEPS.summary.json`` (beside the output)."""
    p = Path(path)
    return p.with_name((p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name) + ".summary.json")


def steps_file(policy: Policy | None, data: str, out: str, cfg: SplitConfig, *, limit: int | None = None,
               ) -> dict[str, Any]:
    """``data steps``: split every solution of ``data``, write TRL stepwise rows (``labels`` None) to ``out``
    and the summary to its sidecar; returns the summary."""
    records = read_records(data, limit=limit, what="solutions")
    solutions = [solution_of(loc, row) for loc, row in records]
    result = split_solutions(policy, [p for p, _ in solutions], [r for _, r in solutions], cfg)
    rows = []
    for (_, row), (prompt, _), steps in zip(records, solutions, result.steps, strict=True):
        rows.append({"prompt": prompt, "completions": steps, "labels": None,
                     **{k: row[k] for k in CARRIED if k in row}, "split": cfg.split, "threshold": result.threshold})
    write_jsonl(out, rows)
    summary = {"data": data, "out": out, "policy": getattr(policy, "name", None), **steps_summary(result, cfg)}
    atomic_write_json(sidecar(out), summary)
    return summary


def label_steps_file(policy: Policy, data: str, out: str, cfg: LabelConfig, *,
                     checker_for: Callable[[StepRow], Checker], limit: int | None = None,
                     sampler: Sampler = sample_prefixes) -> dict[str, Any]:
    """``data label-steps``: label every row of ``data`` (checker from ``checker_for(row)``), write the
    rows with ``labels`` (and ``label_scores`` for the soft estimate, ``rollout_tokens``) to ``out`` and the
    summary to its sidecar; returns the summary. Every row's checker is built before any sampling, so a
    row no checker fits fails fast."""
    rows = read_step_rows(data, limit)
    checkers = [checker_for(r) for r in rows]
    results, written = [], []
    for i, (r, check) in enumerate(zip(rows, checkers, strict=True)):
        key = str(r.row.get("id", i))
        res = label_solution(policy, r.prompt, r.steps, split=r.row.get("split"), check=check, cfg=cfg, key=key,
                             sampler=sampler)
        results.append(res)
        extra = {"label_scores": res.scores} if cfg.estimate == "soft" else {}
        written.append({**r.row, "labels": res.labels, **extra, "rollout_tokens": res.rollout_tokens})
    write_jsonl(out, written)
    summary = {"data": data, "out": out, "policy": policy.name, **labels_summary(results, cfg)}
    atomic_write_json(sidecar(out), summary)
    return summary
