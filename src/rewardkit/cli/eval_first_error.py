"""``rewardkit eval --benchmark first-error``: ProcessBench's first-wrong-step accuracy and F1 of a PRM.

Reached from ``rewardkit eval`` (:func:`rewardkit.cli.eval.run_eval_command` hands over when
``--benchmark first-error``); it reads ``--model`` (one ``prm:DIR`` scorer), ``--data``, ``--out``,
``--threshold``, ``--max-length``, ``--batch-tokens``, ``--device``, ``--dtype``, ``--seed``, ``--n-boot``
and ``--limit``; the other ``eval`` options do not apply (refused when set).
"""

from __future__ import annotations

import argparse
from typing import Any

from rewardkit.errors import OptionError

_UNUSED = {"split": None, "cache": None, "ref_model": None, "ref_free": None, "skip_invalid": False,
           "judge_single_order": False}


def run_first_error_command(args: argparse.Namespace) -> int:
    from rewardkit.eval.first_error import evaluate_first_error, read_first_error_rows, write_first_error
    from rewardkit.scoring import ScorerOptions, build_scorer

    if len(args.models) != 1:
        raise OptionError(f"--benchmark first-error evaluates one PRM at a time; got {len(args.models)} --model")
    unused = [f"--{k.replace('_', '-')}" for k, default in _UNUSED.items() if getattr(args, k, default) != default]
    if unused:
        raise OptionError(f"--benchmark first-error does not use {', '.join(unused)}")
    rows = read_first_error_rows(args.data, limit=args.limit)
    scorer = build_scorer(args.models[0], ScorerOptions(max_length=args.max_length, dtype=args.dtype,
                                                        device=args.device, batch_tokens=args.batch_tokens))
    result, items = evaluate_first_error(scorer, rows, threshold=args.threshold, n_boot=args.n_boot, seed=args.seed,
                                         model=args.models[0], data=args.data)
    out = write_first_error(args.out, result, items)
    print_first_error(result)
    print(f"wrote {out / 'results.json'}, {out / 'items.jsonl'}")
    return 0


def print_first_error(result: Any) -> None:
    """One line per metric (value [95% interval], n), then one per group (generator / task)."""
    m = result.metrics
    print(f"first-error (ProcessBench rules, threshold {result.threshold:g}): {result.items} items from {result.data}, "
          f"model {result.model}")
    print(f"  accuracy on erroneous samples  {m.error_accuracy}  n={m.error_accuracy.n}")
    print(f"  accuracy on correct samples    {m.correct_accuracy}  n={m.correct_accuracy.n}")
    print(f"  F1 (harmonic mean)             {m.f1}")
    for name, g in result.groups.items():
        print(f"  {name}: F1 {g['f1']['value']:.3f} (erroneous {g['error_accuracy']['value']:.3f}, correct "
              f"{g['correct_accuracy']['value']:.3f}; {g['items']} items)")
    if result.steps_unscored:
        print(f"  note: {result.steps_unscored} steps of {result.items_truncated} items did not fit the max length "
              "and count as predicted right (raise --max-length)")
