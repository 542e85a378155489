"""The ``rewardkit`` command line: one subcommand per job, each a thin call into the library.

Exit codes: 0 success; 2 bad input or usage (the message names the file, line and field); 1 other failures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

EXIT_BAD_INPUT = 2

EPILOG = """examples:
  rewardkit quickstart --out runs/quickstart
  rewardkit data check prefs.jsonl --tokenizer minilm --max-length 512
  rewardkit data convert hh.jsonl.gz prefs.jsonl
  rewardkit data synth --task ifeval-lite --n 40 --out data/ifeval
  rewardkit train rm --data prefs.jsonl --model minilm --out runs/rm --set loss.center_coef=0.01
  rewardkit score --model runs/rm --data prefs.jsonl --out scored.jsonl
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every expected failure becomes one clear line, not a traceback
        from rewardkit.data.formats import DataError, DataValidationError
        from rewardkit.models.backbones import BackboneNotFoundError

        if isinstance(e, DataValidationError | DataError | FileNotFoundError | ValueError | KeyError
                      | BackboneNotFoundError | IsADirectoryError | json.JSONDecodeError):
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


def _quiet_libraries() -> None:
    """Keep our own progress bars and messages; silence library chatter that says nothing to users
    (dataset-cache progress, "sequence longer than max length" -- we truncate by a stated policy)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rewardkit", description="Train, benchmark, serve and use reward models for LLM alignment.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from rewardkit import __version__

    parser.add_argument("--version", action="version", version=f"rewardkit {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_quickstart(sub)
    _add_data(sub)
    _add_train(sub)
    _add_score(sub)
    for target in PLUGGED_COMMANDS:
        _plug(sub, target)
    return parser


# Subcommands that live beside their feature: "module:function", where function(sub) adds the parser.
PLUGGED_COMMANDS = (
    "rewardkit.eval.cli:add_commands", "rewardkit.serve.cli:add_commands", "rewardkit.infer.cli:add_commands",
)


def _plug(sub: Any, target: str) -> None:
    import importlib

    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:  # that feature is not part of this build
            return
        raise
    getattr(mod, attr)(sub)


def _command(sub: Any, name: str, help: str, handler: Callable[[argparse.Namespace], int],
             formatter: type[argparse.HelpFormatter] = argparse.ArgumentDefaultsHelpFormatter) -> Any:
    # argparse %-formats help strings (not descriptions): "95% interval" must reach it as "95%% interval"
    p = sub.add_parser(name, help=help.replace("%", "%%"), description=help, formatter_class=formatter)
    p.set_defaults(handler=handler)
    return p


# ----------------------------------------------------------------------------- quickstart


def _add_quickstart(sub: Any) -> None:
    p = _command(sub, "quickstart", "the embedded default end to end, offline: train a MiniLM reward model on the "
                 "shipped ifeval-lite preferences, evaluate it against baselines, rerank held-out candidates",
                 _run_quickstart)
    p.add_argument("--out", default="runs/quickstart", help="output folder")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs over the shipped train split")
    p.add_argument("--model", default="minilm", help="backbone to train")
    p.add_argument("--max-steps", type=int, default=-1, help="cap on optimizer steps (for a very quick look)")


def _run_quickstart(args: argparse.Namespace) -> int:
    from rewardkit.quickstart import run_quickstart

    run_quickstart(out=args.out, epochs=args.epochs, model=args.model, max_steps=args.max_steps)
    return 0


# ----------------------------------------------------------------------------- data


def _add_data(sub: Any) -> None:
    data = sub.add_parser("data", help="check, convert and synthesize preference data")
    dsub = data.add_subparsers(title="data commands", metavar="COMMAND")
    p = _command(dsub, "check", "validate a preference file: counts by format, every bad record (file:line: field: "
                 "problem), token lengths and how many pairs MAX_LENGTH would truncate", _run_check)
    p.add_argument("file", help="jsonl / json / parquet (optionally .gz) or a datasets folder")
    p.add_argument("--tokenizer", default="minilm", help="backbone whose tokenizer measures lengths ('none' to skip)")
    p.add_argument("--max-length", type=int, default=512, help="max tokens per (prompt, response)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = _command(dsub, "convert", "convert any supported format to canonical TRL-style jsonl (conversational rows as "
                 "messages, plain rows as strings; margin and every other field kept)", _run_convert)
    p.add_argument("input", help="input file or datasets folder")
    p.add_argument("output", help="output .jsonl")
    p = _command(dsub, "synth", "generate verifiable preference data with gold rewards (prompts with checkable "
                 "instructions, responses from an instruct model plus controlled edits)", _run_synth)
    p.add_argument("--task", default="ifeval-lite", help="synthetic task name")
    p.add_argument("--n", type=int, default=40, help="number of prompts")
    p.add_argument("--out", required=True, help="output folder (train.jsonl, test.jsonl, candidates.jsonl, manifest.json)")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--model", default="smollm2-135m", help="instruct model that writes the responses")
    p.add_argument("--samples-per-prompt", type=int, default=4, help="sampled responses per prompt (before edits)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="max new tokens per sampled response")


def _run_check(args: argparse.Namespace) -> int:
    from rewardkit.data.check import check_file

    tokenizer = None if args.tokenizer.lower() == "none" else args.tokenizer
    report = check_file(args.file, tokenizer=tokenizer, max_length=args.max_length)
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


def _run_convert(args: argparse.Namespace) -> int:
    from rewardkit.data.convert import convert_file

    result = convert_file(args.input, args.output)
    print(f"wrote {result.written} records to {args.output} (formats: {result.formats})")
    return 0


def _run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rewardkit.synth import synthesize

    result = synthesize(task=args.task, n_prompts=args.n, out_dir=Path(args.out), seed=args.seed, model=args.model,
                        samples_per_prompt=args.samples_per_prompt, max_new_tokens=args.max_new_tokens)
    print(result)
    print(f"wrote {args.out}")
    return 0


# ----------------------------------------------------------------------------- train


def _add_train(sub: Any) -> None:
    from rewardkit.train.config import RewardTrainConfig

    train = sub.add_parser("train", help="train reward models")
    tsub = train.add_subparsers(title="train commands", metavar="COMMAND")
    p = _command(tsub, "rm", "train a Bradley-Terry reward model; writes a standard AutoModelForSequenceClassification "
                 "folder + rewardkit.json", _run_train_rm, argparse.HelpFormatter)
    p.add_argument("--config", help="YAML file of settings (flags and --set override it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set lr=1e-5 --set loss.center_coef=0.01 --set lora.r=8")
    for f in dataclasses.fields(RewardTrainConfig):
        if dataclasses.is_dataclass(typing.get_type_hints(RewardTrainConfig)[f.name]):
            continue
        _add_field_flag(p, f, typing.get_type_hints(RewardTrainConfig)[f.name])
    p.epilog = "nested settings (via --set): " + ", ".join(_nested_help(RewardTrainConfig))


def _add_field_flag(p: argparse.ArgumentParser, f: dataclasses.Field[Any], hint: Any) -> None:
    flag = "--" + f.name.replace("_", "-")
    helptext = f.metadata.get("help", "")
    if hint is bool:
        p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                       help=f"{helptext} (default: {f.default})")
        return
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0] if base[0] in (int, float) else str
    choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
    p.add_argument(flag, dest=f.name, type=kind, default=None, choices=choices,
                   help=f"{helptext} (default: {f.default})")


def _nested_help(cls: type) -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            out += [f"{f.name}.{g.name} ({g.metadata.get('help', '')}; default {g.default})"
                    for g in dataclasses.fields(hint)]
    return out


def _run_train_rm(args: argparse.Namespace) -> int:
    from rewardkit.train.config import RewardTrainConfig, load_config
    from rewardkit.train.reward import train_reward_model

    values = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(RewardTrainConfig)}
    cfg = load_config(RewardTrainConfig, args.config, values, args.overrides)
    if not cfg.data:
        raise ValueError("--data is required (or set `data:` in --config)")
    result = train_reward_model(cfg)
    metrics = result.metadata["metrics"]["eval"]
    training = result.metadata["training"]
    print(f"trained {training['steps']} steps at {training['pairs_per_s']:.1f} pairs/s ({training['precision']})")
    if metrics:
        print(f"held-out accuracy {metrics['accuracy']:.3f} [{metrics['accuracy_ci95_low']:.3f}, "
              f"{metrics['accuracy_ci95_high']:.3f}], mean margin {metrics['margin']:.3f}")
    print(f"wrote reward model to {result.out_dir} (logs: {result.out_dir / 'logs'})")
    return 0


# ----------------------------------------------------------------------------- score


def _add_score(sub: Any) -> None:
    p = _command(sub, "score", "score a file of pairs (any supported format) or prompt/completion rows with a reward "
                 "model; output keeps input order and every field, adding chosen_score/rejected_score or score",
                 _run_score)
    p.add_argument("--model", required=True, help="reward model folder (rewardkit or any HF sequence-classification RM)")
    p.add_argument("--data", required=True, help="input file or datasets folder")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--batch-tokens", type=int, default=16_384, help="padded-token budget per batch (sorted by length)")
    p.add_argument("--max-length", type=int, default=None, help="override the model's max length")
    p.add_argument("--skip-invalid", action="store_true",
                   help="write invalid records back with an 'error' field instead of stopping")


def _run_score(args: argparse.Namespace) -> int:
    from rewardkit.scoring import score_file

    r = score_file(args.model, args.data, args.out, max_tokens=args.batch_tokens, max_length=args.max_length,
                   skip_invalid=args.skip_invalid)
    print(f"scored {r.pairs} pairs and {r.completions} completions ({r.sequences} sequences, "
          f"{r.sequences_per_s:.1f} seq/s); {r.truncated_sequences} records truncated; {r.invalid} invalid")
    print(f"wrote {r.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
