"""Pre-PPO prompt selection (Shen et al. 2025, METHODS §9b) as a library call.

For each of N prompts the policy samples K responses and a pointwise scorer scores them; a prompt's
difficulty is its **mean reward** (lower = harder). The ``k = ceil(keep · N)`` lowest-reward prompts are
*selected* (ties: the earlier prompt first). **Merged** with the original set means, here: every prompt
is written exactly once, the selected (hard) prompts first, then the rest, each block in input order.
With ``curriculum`` the math and code prompts come before all others (METHODS §9b: "math and coding
prompts in the early phase"), the hard-first order holding inside each of the two groups.

A prompt's category is its ``category``, ``ability`` or ``data_source`` field (the first present) when
that names math or code, else the :func:`guess_category` heuristic on its text.

Output formats (:data:`FORMATS`): ``openrlhf`` (jsonl: ``prompt`` as chat messages, ``label`` when the
row has an answer -- OpenRLHF's ``--input_key prompt --label_key label --apply_chat_template``), ``verl``
(parquet: ``data_source``, ``prompt`` [messages], ``ability``, ``reward_model {style: rule,
ground_truth}``, ``extra_info {index, split}``), ``trl`` (jsonl: ``prompt`` as given, a string or
messages). Beside it ``OUT.report.jsonl``: one row per input prompt (its mean, min and max reward,
whether it was selected, its category and output position).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.io import atomic_writer
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.infer.best_of_n import as_messages
from rewardkit.infer.generate import read_prompts
from rewardkit.infer.sampler import Policy, Rollout, SamplingConfig
from rewardkit.scoring import ScorerOptions, build_scorer, is_pairwise
from rewardkit.types import ScoreOutput

FORMATS = ("openrlhf", "verl", "trl")
CATEGORY_FIELDS = ("category", "ability", "data_source")
ANSWER_FIELDS = ("answer", "label", "ground_truth")
EARLY = ("math", "code")  # curriculum: these categories first

_CODE = re.compile(r"```|\b(python|javascript|java|c\+\+|rust|sql|function|program|code|script|implement|"
                   r"algorithm|compile|def|class|regex|bash)\b", re.IGNORECASE)
_MATH = re.compile(r"\d\s*[-+*/^=<>]\s*\d|\$|\\frac|\b(solve|calculate|compute|equation|integral|derivative|"
                   r"prove|theorem|probability|sum|product|remainder|divisible|prime|digits?|math)\b", re.IGNORECASE)

Sampler = Callable[[Sequence[list[dict[str, str]]], int], list[list[str]]]
"""``sampler(prompts as messages (P), k) -> [prompt][sample] response texts``."""


@dataclass(frozen=True)
class SelectConfig:
    """One ``rewardkit data select-prompts`` run (each field a command-line option)."""

    keep: float = 0.3
    samples: int = 4
    curriculum: bool = False
    format: str = "openrlhf"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    prompts_per_batch: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.keep <= 1.0:
            raise OptionError(f"--keep must be in (0, 1], got {self.keep}")
        if self.samples < 1:
            raise OptionError(f"--samples must be >= 1, got {self.samples}")
        if self.format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.prompts_per_batch < 1:
            raise OptionError(f"prompts_per_batch must be >= 1, got {self.prompts_per_batch}")


@dataclass(frozen=True)
class PromptStats:
    """One prompt's rewards over its K samples and where it ends up."""

    index: int
    mean: float
    min: float
    max: float
    category: str
    selected: bool
    position: int  # its place in the output (0-based)


# ------------------------------------------------------------------------------------ pure selection


def guess_category(text: str) -> str:
    """``code`` if the text shows code (a ``` fence, or words such as python / function / program /
    implement / algorithm / def), else ``math`` if it shows maths (digits around an operator, ``$``,
    ``\\frac``, or words such as solve / calculate / equation / prove / probability / prime), else ``other``."""
    if _CODE.search(text):
        return "code"
    if _MATH.search(text):
        return "math"
    return "other"


def row_category(row: dict[str, Any]) -> str:
    """``math`` / ``code`` when the first of the row's ``category`` / ``ability`` / ``data_source`` fields
    names it (``gsm8k`` and ``MATH`` count as math, ``code_contests`` as code), that field's value when it
    names neither, else :func:`guess_category` on the prompt's text."""
    for name in CATEGORY_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            low = value.lower()
            if "math" in low or "gsm" in low or "aime" in low:
                return "math"
            if "code" in low or "coding" in low or "program" in low:
                return "code"
            return low
    messages, _ = as_messages(row["prompt"])
    return guess_category("\n".join(m["content"] for m in messages))


def select_hardest(means: np.ndarray, keep: float) -> np.ndarray:
    """Bool mask (N,): the ``ceil(keep · N)`` prompts of lowest mean reward (``means`` (N,) float);
    ties go to the earlier prompt (a stable sort)."""
    k = min(len(means), math.ceil(keep * len(means) - 1e-9))
    mask = np.zeros(len(means), dtype=bool)
    mask[np.argsort(means, kind="stable")[:k]] = True
    return mask


def merged_order(selected: np.ndarray, categories: Sequence[str], curriculum: bool) -> list[int]:
    """Output order of the N prompts: selected first, then the rest, each in input order; with
    ``curriculum`` the math and code prompts (in that merged order) before every other prompt."""
    order = sorted(range(len(selected)), key=lambda i: (not selected[i], i))
    if curriculum:
        order = sorted(order, key=lambda i: categories[i] not in EARLY)  # stable: keeps the merged order
    return order


def prompt_stats(rewards: np.ndarray, categories: Sequence[str], cfg: SelectConfig) -> tuple[list[int], list[PromptStats]]:
    """``rewards`` (N, K) float -> (output order, per-prompt stats in input order)."""
    means = rewards.mean(axis=1)
    selected = select_hardest(means, cfg.keep)
    order = merged_order(selected, categories, cfg.curriculum)
    position = {i: p for p, i in enumerate(order)}
    stats = [PromptStats(i, float(means[i]), float(rewards[i].min()), float(rewards[i].max()), categories[i],
                         bool(selected[i]), position[i]) for i in range(len(means))]
    return order, stats


# ------------------------------------------------------------------------------------ output rows


def row_answer(row: dict[str, Any]) -> str | None:
    """The row's reference answer: ``answer``, ``label`` or ``ground_truth`` (first present), or a verl
    row's ``reward_model.ground_truth``; None when it has none."""
    for name in ANSWER_FIELDS:
        if row.get(name) is not None:
            value = row[name]
            return value if isinstance(value, str) else json.dumps(value)
    rm = row.get("reward_model")
    if isinstance(rm, dict) and rm.get("ground_truth") is not None:
        return str(rm["ground_truth"])
    return None


def format_row(row: dict[str, Any], index: int, category: str, fmt: str) -> dict[str, Any]:
    """One output row in ``fmt`` for input row ``index``."""
    messages, _ = as_messages(row["prompt"])
    answer = row_answer(row)
    if fmt == "trl":
        return {"prompt": row["prompt"]}
    if fmt == "openrlhf":
        out: dict[str, Any] = {"prompt": messages}
        if answer is not None:
            out["label"] = answer
        return out
    source = row.get("data_source")
    return {"data_source": source if isinstance(source, str) else "rewardkit", "prompt": messages,
            "ability": category, "reward_model": {"style": "rule", "ground_truth": answer or ""},
            "extra_info": {"index": index, "split": "train"}}


def write_output(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    """jsonl (openrlhf, trl) or parquet (verl), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "verl":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_writer(path, binary=True) as f:
            pq.write_table(pa.Table.from_pylist(rows), f)
        return
    with atomic_writer(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------ sampling and scoring


def policy_sampler(policy: Policy, sampling: SamplingConfig, prompts_per_batch: int = 4, *, salt: str = "") -> Sampler:
    """A :data:`Sampler` over ``policy``: ``k`` samples per prompt, ``prompts_per_batch`` prompts decoded
    together; sample ``i`` of prompt ``p`` is seeded from (seed, salt + p, i)."""

    def sampler(prompts: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
        out: list[list[str]] = []
        for lo in range(0, len(prompts), prompts_per_batch):
            batch = prompts[lo:lo + prompts_per_batch]
            rollout = Rollout(policy, [policy.encode_prompt(p) for p in batch], k, sampling,
                              prompt_keys=[f"{salt}{lo + j}" for j in range(len(batch))])
            rollout.advance(sampling.max_new_tokens)
            out += [[rollout.text(g) for g in rollout.rows_of(j)] for j in range(len(batch))]
        return out

    return sampler


def sample_rewards(rows: list[dict[str, Any]], sampler: Sampler, score: Callable[..., ScoreOutput], k: int
                   ) -> np.ndarray:
    """Rewards (N, K) float64 of ``k`` sampled responses to each row's prompt, scored in one call."""
    converted = [as_messages(r["prompt"]) for r in rows]
    texts = sampler([m for m, _ in converted], k)
    if len(texts) != len(rows) or any(len(t) != k for t in texts):
        raise RuntimeError(f"the sampler returned {[len(t) for t in texts]} responses, expected {k} for each "
                           f"of {len(rows)} prompts")
    prompts = [converted[i][0] for i in range(len(rows)) for _ in range(k)]
    conv = [converted[i][1] for i in range(len(rows)) for _ in range(k)]
    responses = [[{"role": "assistant", "content": t}] for row in texts for t in row]
    out = score(prompts, responses, conv)
    rewards = np.asarray(out.rewards, dtype=np.float64).reshape(len(rows), k)
    if not np.isfinite(rewards).all():
        raise RuntimeError("the scorer returned non-finite rewards")
    return rewards


def select_prompts(rows: list[dict[str, Any]], sampler: Sampler, score: Callable[..., ScoreOutput],
                   cfg: SelectConfig) -> tuple[list[dict[str, Any]], list[PromptStats]]:
    """(output rows in ``cfg.format``, in the merged order; per-prompt stats in input order)."""
    rewards = sample_rewards(rows, sampler, score, cfg.samples)
    categories = [row_category(r) for r in rows]
    order, stats = prompt_stats(rewards, categories, cfg)
    return [format_row(rows[i], i, categories[i], cfg.format) for i in order], stats


def select_prompts_file(*, reward: str, policy: str, prompts: str, out: str, cfg: SelectConfig,
                        options: ScorerOptions | None = None, sampler: Sampler | None = None) -> dict[str, Any]:
    """Read ``prompts``, select, write ``out`` and ``out.report.jsonl``; return a summary. ``sampler``
    replaces the policy (tests)."""
    from rewardkit.infer.sampler import load_policy
    from rewardkit.scorers import pointwise_function

    rows = read_prompts(prompts)
    opts = options or ScorerOptions()
    scorer = build_scorer(reward, replace(opts, items=prompts))
    if is_pairwise(scorer):
        raise UnsupportedError(f"{reward!r} compares pairs of responses; select-prompts needs a pointwise scorer")
    if sampler is None:
        sampler = policy_sampler(load_policy(policy, dtype=opts.dtype, device=opts.device), cfg.sampling,
                                 cfg.prompts_per_batch)
    written, stats = select_prompts(rows, sampler, pointwise_function(scorer), cfg)
    write_output(Path(out), written, cfg.format)
    report = Path(f"{out}.report.jsonl")
    with atomic_writer(report) as f:
        for s in stats:
            f.write(json.dumps(s.__dict__) + "\n")
    selected = [s for s in stats if s.selected]
    return {"out": out, "report": str(report), "format": cfg.format, "prompts": len(rows),
            "selected": len(selected), "samples_per_prompt": cfg.samples, "curriculum": cfg.curriculum,
            "mean_reward_all": float(np.mean([s.mean for s in stats])),
            "mean_reward_selected": float(np.mean([s.mean for s in selected])),
            "categories": {c: sum(s.category == c for s in stats) for c in sorted({s.category for s in stats})}}
