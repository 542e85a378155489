"""``rewardkit data steps`` (AdaptiveStep / newline step splitting) and ``rewardkit data label-steps``
(Monte-Carlo step labels): thin calls into :mod:`rewardkit.infer.steps`.

The answer checkers live here because they join two sibling layers: the sampler (``infer``) and the task
verifiers (``synth``: mused, two-hop) plus math-verify (``verify``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import add_device_options, command
from rewardkit.infer.sampler import SamplingConfig

TASKS = ("auto", "mused", "two-hop", "math")
MATH_TASKS = ("math", "math-champ")

STEPS_HELP = ("split solutions into steps for a process reward model: --split confidence (AdaptiveStep: a step "
              "ends at every token whose probability under --policy is below the global --quantile of all "
              "response-token probabilities of the file) or --split newline (one step per non-empty line, as TRL). "
              "Writes TRL stepwise rows (prompt, completions, labels=None, answer/id/meta kept, split, threshold) "
              "and OUT.summary.json (steps per solution, threshold)")
LABEL_HELP = ("label each step of TRL stepwise rows by Monte-Carlo rollouts: --rollouts completions sampled by "
              "--policy from the prompt + the solution up to the end of the step; the step is right when any "
              "rollout reaches the row's gold 'answer' (hard estimate; --estimate soft also writes the fraction "
              "as label_scores). The last step is labelled by checking the written answer (--last-step check). "
              "Writes the rows with labels and rollout_tokens, and OUT.summary.json (labelling cost in rollout "
              "tokens)")


def add_commands(dsub: Any) -> None:
    """Register ``steps`` and ``label-steps`` under ``rewardkit data``."""
    p = command(dsub, "steps", STEPS_HELP, _run_steps)
    p.add_argument("--policy", default=None,
                   help="causal LM that reads the solutions (offline alias such as smollm2-135m, or a folder); "
                   "needed for --split confidence")
    p.add_argument("--data", required=True,
                   help="solutions: rows with a prompt (string or messages) and 'response' or 'completion' "
                   "(string or assistant messages), or 'steps' / 'completions' (lists of strings, joined by "
                   "newlines), e.g. data synth's train.jsonl or stepwise.jsonl")
    p.add_argument("--out", required=True, help="output .jsonl of TRL stepwise rows")
    p.add_argument("--split", default="confidence", choices=["confidence", "newline"], help="how to split")
    p.add_argument("--quantile", type=float, default=0.02,
                   help="confidence: the global quantile of token probabilities below which a token ends a step "
                   "(AdaptiveStep uses 2%%)")
    p.add_argument("--max-length", type=int, default=None,
                   help="confidence: prompt + response tokens read per solution (the rest is not split)")
    p.add_argument("--batch-size", type=int, default=8, help="confidence: solutions per forward pass")
    p.add_argument("--limit", type=int, default=None, help="first N rows only")
    add_device_options(p)

    p = command(dsub, "label-steps", LABEL_HELP, _run_label)
    p.add_argument("--policy", required=True, help="causal LM that samples the rollouts (alias or folder)")
    p.add_argument("--data", required=True,
                   help="TRL stepwise rows (prompt, completions) with the gold 'answer', e.g. from data steps")
    p.add_argument("--out", required=True, help="output .jsonl (the rows with labels)")
    p.add_argument("--rollouts", type=int, default=8, help="completions sampled from each step's prefix")
    p.add_argument("--max-new-tokens", type=int, default=256, help="max tokens per rollout")
    p.add_argument("--temperature", type=float, default=1.0, help="rollout sampling temperature")
    p.add_argument("--top-p", type=float, default=1.0, help="rollout nucleus filter")
    p.add_argument("--top-k", type=int, default=SamplingConfig().top_k, help="rollout top-k filter (0: off)")
    p.add_argument("--task", default="auto", choices=TASKS,
                   help="answer checker: mused, two-hop (the synth verifiers' answer comparison), math "
                   "(math-verify); auto: from each row's meta.task (or task) field")
    p.add_argument("--estimate", default="hard", choices=["hard", "soft"],
                   help="hard: a step is right when any rollout is right; soft: also the fraction (label_scores)")
    p.add_argument("--last-step", default="check", choices=["check", "rollout"],
                   help="label the last step by checking the written final answer (no rollouts), or by rollouts")
    p.add_argument("--prefixes-per-batch", type=int, default=4, help="step prefixes decoded together")
    p.add_argument("--seed", type=int, default=0, help="seed of every rollout (per row id and step)")
    p.add_argument("--limit", type=int, default=None, help="first N rows only")
    add_device_options(p)


def _run_steps(args: argparse.Namespace) -> int:
    from rewardkit.errors import OptionError
    from rewardkit.infer.sampler import load_policy
    from rewardkit.infer.steps import SplitConfig, steps_file

    cfg = SplitConfig(split=args.split, quantile=args.quantile, batch_size=args.batch_size, max_length=args.max_length)
    if cfg.split == "confidence" and not args.policy:
        raise OptionError("--split confidence needs --policy (the model whose token probabilities split the steps)")
    policy = load_policy(args.policy, dtype=args.dtype, device=args.device) if cfg.split == "confidence" else None
    summary = steps_file(policy, args.data, args.out, cfg, limit=args.limit)
    print(json.dumps(summary, indent=2))
    return 0


def _run_label(args: argparse.Namespace) -> int:
    from rewardkit.infer.sampler import load_policy
    from rewardkit.infer.steps import LabelConfig, label_steps_file

    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, seed=args.seed)
    cfg = LabelConfig(rollouts=args.rollouts, estimate=args.estimate, last_step=args.last_step,
                      prefixes_per_batch=args.prefixes_per_batch, sampling=sampling)
    policy = load_policy(args.policy, dtype=args.dtype, device=args.device)
    summary = label_steps_file(policy, args.data, args.out, cfg, checker_for=lambda r: checker_for(r, args.task),
                               limit=args.limit)
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------------------------------ checkers


def row_task(row: Any, task: str) -> str:
    """The checker a row gets: ``task`` unless ``auto``, else the row's ``meta.task`` (or ``task``) field;
    ``math-champ`` is checked as math. A row without a known task raises (file:line, field)."""
    from rewardkit.data.io import DataError

    if task != "auto":
        return task
    meta = row.row.get("meta")
    found = meta.get("task") if isinstance(meta, dict) else None
    found = found or row.row.get("task")
    if found in MATH_TASKS:
        return "math"
    if found in ("mused", "two-hop"):
        return str(found)
    raise DataError(row.loc, "meta", f"--task auto needs meta.task (or task) in {('mused', 'two-hop', *MATH_TASKS)},"
                    f" got {found!r}; pass --task")


def checker_for(row: Any, task: str) -> Any:
    """``text -> bool``: does the full solution text (prefix + rollout) reach ``row.answer``?"""
    kind, gold = row_task(row, task), row.answer
    if kind == "mused":
        from rewardkit.synth.mused import answer_matches
        from rewardkit.synth.steps import final_answer, split_steps

        return lambda text: answer_matches(final_answer(split_steps(text)), gold)
    if kind == "two-hop":
        from rewardkit.synth.two_hop import check_solution

        meta = row.row.get("meta")
        premises = meta.get("premises", []) if isinstance(meta, dict) else []
        return lambda text: check_solution(premises, gold, text).answer_correct
    from rewardkit.verify.math_answers import math_reward

    return lambda text: math_reward(text, gold) == 1.0
