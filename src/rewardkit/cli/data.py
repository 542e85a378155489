"""``rewardkit data check | convert | synth`` (and ``curate``, in :mod:`rewardkit.cli.curate`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rewardkit.cli.common import EXIT_BAD_INPUT, command
from rewardkit.cli.curate import add_command as add_curate_command
from rewardkit.cli.select_prompts import add_command as add_select_prompts_command
from rewardkit.cli.steps import add_commands as add_steps_commands

FACTS_DEFAULT_PEOPLE = 40  # rewardkit data synth --task fictitious-facts without --n
FORGET_FRACTION = 0.1
# options of `data synth` that only --task ifeval-lite uses, with their defaults
IFEVAL_ONLY: dict[str, Any] = {"model": "smollm2-135m", "samples_per_prompt": 6, "max_new_tokens": 64,
                               "samples_file": None}
STEP_TASKS_DEFAULT_N = 1000  # rewardkit data synth --task mused | two-hop without --n
# every task-specific option of `data synth`: its default, and the tasks that take it (others refuse it, exit 2)
SYNTH_OPTIONS: dict[str, tuple[Any, tuple[str, ...]]] = {
    **{flag: (default, ("ifeval-lite",)) for flag, default in IFEVAL_ONLY.items()},
    "forget_fraction": (FORGET_FRACTION, ("fictitious-facts",)),
    "depth": (None, ("mused",)),
    "distractors": (None, ("mused", "two-hop")),
    "n": (None, ("ifeval-lite", "fictitious-facts", "mused", "two-hop")),
}


def add_commands(sub: Any) -> None:
    data = sub.add_parser("data", help="check, convert and synthesize preference data")
    dsub = data.add_subparsers(title="data commands", metavar="COMMAND")
    p = command(dsub, "check", "validate a preference or attribute file (rated responses: HelpSteer2, UltraFeedback, "
                 "numeric columns): counts by format, every bad record (file:line: field: problem), token lengths "
                 "and how many records MAX_LENGTH would truncate", _run_check)
    p.add_argument("file", help="jsonl / json / parquet (optionally .gz) or a datasets folder")
    p.add_argument("--tokenizer", default="minilm", help="backbone whose tokenizer measures lengths ('none' to skip)")
    p.add_argument("--max-length", type=int, default=512, help="max tokens per (prompt, response)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = command(dsub, "convert", "convert any supported format to canonical TRL-style jsonl (conversational rows as "
                 "messages, plain rows as strings; margin and every other field kept)", _run_convert)
    p.add_argument("input", help="input file or datasets folder")
    p.add_argument("output", help="output .jsonl")
    p = command(dsub, "synth", "generate verifiable preference data with gold rewards (prompts with checkable "
                 "instructions, responses from an instruct model plus controlled edits)", _run_synth)
    p.add_argument("--task", default="ifeval-lite",
                   help="synthetic task name: ifeval-lite (verifiable preference pairs) or fictitious-facts (an "
                   "unlearning set of invented people: forget.jsonl, retain.jsonl, all.jsonl, general.jsonl, "
                   "manifest.json; no model needed, instant); step-level tasks with gold proofs and step "
                   "verifiers (train.jsonl, test.jsonl, stepwise.jsonl in TRL's stepwise format, "
                   "first_error.jsonl ProcessBench-style, manifest.json; instant): mused (multi-step deduction "
                   "from modus ponens, syllogism, contraposition, disjunctive syllogism; --depth, "
                   "--distractors), two-hop (\"A's X is B\", \"B's Y is C\", \"Who is A's X's Y?\"; "
                   "--distractors), math-champ (the 270 CHAMP problems and 540 model solutions with "
                   "first-wrong-step labels from the champ-dataset package)")
    p.add_argument("--n", type=int, default=None,
                   help="ifeval-lite: number of prompts, two per family (unset: 320, which remakes the shipped set: "
                   "about 25-50 minutes on 2 CPU cores; --n 40 for a quick look); fictitious-facts: number of "
                   f"invented people, 10 facts each (unset: {FACTS_DEFAULT_PEOPLE}); mused, two-hop: number of "
                   f"problems (unset: {STEP_TASKS_DEFAULT_N}); not for math-champ")
    p.add_argument("--depth", default=None,
                   help="mused only: proof steps per problem, MIN-MAX or one number, 1-6 (unset: 1-6, uniform)")
    p.add_argument("--distractors", type=int, default=None,
                   help="mused, two-hop only: distracting premises per problem, exactly K (unset: 0; mused up "
                   "to 12, two-hop up to 16)")
    p.add_argument("--forget-fraction", type=float, default=FORGET_FRACTION,
                   help="fictitious-facts only: share of the people (at least one, never all) whose facts go to "
                   "forget.jsonl")
    p.add_argument("--out", required=True,
                   help="output folder (ifeval-lite: train.jsonl, test.jsonl, candidates.jsonl, "
                   "objectives_{train,test}.jsonl.gz, manifest.json with the shortcut audit, samples.jsonl; "
                   "fictitious-facts: forget.jsonl, retain.jsonl, all.jsonl, general.jsonl, manifest.json; "
                   "mused, two-hop, math-champ: train.jsonl, test.jsonl, stepwise.jsonl, first_error.jsonl, "
                   "manifest.json)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed (ifeval-lite: of the prompts, every sample, the edits, twins and split; "
                   "fictitious-facts: of the names, facts, wrong answers and the split; mused, two-hop: of the "
                   "problems, corruptions and split; math-champ: of the split only)")
    p.add_argument("--model", default=IFEVAL_ONLY["model"],
                   help="ifeval-lite only: instruct model that writes the responses")
    p.add_argument("--samples-per-prompt", type=int, default=IFEVAL_ONLY["samples_per_prompt"],
                   help="ifeval-lite only: sampled responses per prompt (before edits)")
    p.add_argument("--max-new-tokens", type=int, default=IFEVAL_ONLY["max_new_tokens"],
                   help="ifeval-lite only: max new tokens per sampled response")
    p.add_argument("--samples-file", default=IFEVAL_ONLY["samples_file"],
                   help="ifeval-lite only: samples.jsonl of an earlier run with the same prompts and sampling "
                   "settings: remake the edits, twins and split from it without sampling again")
    add_curate_command(dsub)
    add_steps_commands(dsub)
    add_select_prompts_command(dsub)


def _run_check(args: argparse.Namespace) -> int:
    from rewardkit.data.check import check_file

    tokenizer = None if args.tokenizer.lower() == "none" else args.tokenizer
    encoder = None
    if tokenizer is not None:
        from rewardkit.models.reward_model import build_encoder

        encoder = build_encoder(tokenizer, args.max_length)
    report = check_file(args.file, encoder=encoder, tokenizer=tokenizer, max_length=args.max_length)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_check(report.to_dict())
    return 0 if report.ok else EXIT_BAD_INPUT


def _print_check(r: dict[str, Any]) -> None:
    print(f"{r['path']}: {r['records']} records, {r['valid']} valid, {r['invalid']} invalid")
    for fmt, n in sorted(r["formats"].items()):
        print(f"  format {fmt}: {n}")
    for e in r["errors"]:
        print(f"  error: {e}", file=sys.stderr)
    if r["invalid"] > len(r["errors"]):
        print(f"  ... and {r['invalid'] - len(r['errors'])} more errors", file=sys.stderr)
    if r["token_lengths"]:
        t = r["token_lengths"]
        print(f"  tokens per sequence ({r['tokenizer']}): mean {t['mean']:.0f}, p50 {t['p50']:.0f}, "
              f"p90 {t['p90']:.0f}, p99 {t['p99']:.0f}, max {t['max']}")
        tr = r["truncation"]
        print(f"  max length {r['max_length']}: {tr['pairs_truncated']} records would be truncated "
              f"({tr['truncated_sequences']} of {tr['sequences']} sequences; {tr['response_cut_sequences']} with "
              f"the response cut); nothing is dropped")
        if tr.get("sequences_partly_tokenized"):
            print(f"  {tr['sequences_partly_tokenized']} very long texts were tokenized only where truncation "
                  "keeps them: their lengths and dropped-token counts are lower bounds")


def _run_convert(args: argparse.Namespace) -> int:
    from rewardkit.data.convert import convert_file

    result = convert_file(args.input, args.output)
    print(f"wrote {result.written} records to {args.output} (formats: {result.formats})")
    return 0


def _refuse_other_tasks_options(args: argparse.Namespace) -> None:
    from rewardkit.errors import OptionError

    for flag, (default, tasks) in SYNTH_OPTIONS.items():
        if args.task not in tasks and getattr(args, flag) != default:
            raise OptionError(f"--{flag.replace('_', '-')} applies to --task {', '.join(tasks)} only")


def _run_step_task(args: argparse.Namespace) -> Any:
    from pathlib import Path

    n = STEP_TASKS_DEFAULT_N if args.n is None else args.n
    distractors = 0 if args.distractors is None else args.distractors
    if args.task == "mused":
        from rewardkit.synth.mused import parse_depth, write_mused

        depth = parse_depth("1-6" if args.depth is None else args.depth)
        return write_mused(Path(args.out), n, depth=depth, distractors=distractors, seed=args.seed)
    if args.task == "two-hop":
        from rewardkit.synth.two_hop import write_two_hop

        return write_two_hop(Path(args.out), n, distractors=distractors, seed=args.seed)
    from rewardkit.synth.champ import write_champ

    return write_champ(Path(args.out), seed=args.seed)


def _run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    _refuse_other_tasks_options(args)
    if args.task in ("mused", "two-hop", "math-champ"):
        print(_run_step_task(args))
        print(f"wrote {args.out}")
        return 0
    if args.task == "fictitious-facts":
        from rewardkit.synth.facts import write_fictitious_facts

        facts = write_fictitious_facts(Path(args.out), FACTS_DEFAULT_PEOPLE if args.n is None else args.n,
                                       forget_fraction=args.forget_fraction, seed=args.seed)
        print(facts)
        print(f"wrote {args.out}")
        return 0
    from rewardkit.synth import synthesize

    n_prompts = 320 if args.n is None else args.n
    result = synthesize(task=args.task, n_prompts=n_prompts, out_dir=Path(args.out), seed=args.seed,
                        model=args.model,
                        samples_per_prompt=args.samples_per_prompt, max_new_tokens=args.max_new_tokens,
                        samples_file=Path(args.samples_file) if args.samples_file else None)
    print(result)
    print(f"wrote {args.out}")
    return 0
