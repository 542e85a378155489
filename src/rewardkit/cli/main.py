"""The ``rewardkit`` command line: one subcommand per job, each a thin call into the library.

Exit codes: 0 success; 2 bad input or usage (:class:`rewardkit.errors.InputError`: the message names the
file, line and field); 1 anything else -- a bug in rewardkit, shown with its traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from rewardkit.cli.common import EXIT_BAD_INPUT, EXIT_BUG

EPILOG = """examples:
  rewardkit quickstart --out runs/quickstart
  rewardkit data check prefs.jsonl --tokenizer minilm --max-length 512
  rewardkit data convert hh.jsonl.gz prefs.jsonl
  rewardkit data synth --task ifeval-lite --n 40 --out data/ifeval
  rewardkit train rm --data prefs.jsonl --model minilm --out runs/rm --set loss.center_coef=0.01
  rewardkit train rm --data prefs.jsonl --model minilm --head multi --set head.objectives=helpful,concise --out runs/mo
  rewardkit score --model runs/rm --data prefs.jsonl --out scored.jsonl
  rewardkit score --model verifier --data prompts_with_constraints.jsonl --out scored.jsonl
  rewardkit eval --model runs/rm --data prefs.jsonl --out runs/eval
  rewardkit eval unlearn --model runs/unlearn --forget forget.jsonl --retain retain.jsonl --out runs/eval-unlearn
  rewardkit uncertainty fit --model runs/rm --data prefs.jsonl
  rewardkit score --model runs/rm --data prefs.jsonl --out scored.jsonl --pessimism 1
  rewardkit generate --policy smollm2-135m --reward runs/rm --prompts prompts.jsonl --n 8 --out best.jsonl
  rewardkit average --base sft/ --tuned dpo/ --groups 3 --alphas 0.4,0.2,0.1 --out runs/avg
  rewardkit data curate prefs.jsonl --out runs/curated --dedup exact,near --decontaminate bench.jsonl
  rewardkit train ssrm --labeled l.jsonl --unlabeled u.jsonl --model minilm --rounds 3 --out runs/ssrm
  rewardkit data synth --task mused --n 200 --depth 2-4 --out data/mused
  rewardkit data steps --policy smollm2-135m --data data/mused/train.jsonl --split confidence --out steps.jsonl
  rewardkit data label-steps --policy smollm2-135m --data steps.jsonl --rollouts 8 --out labeled.jsonl
  rewardkit train prm --model minilm --data data/mused/stepwise.jsonl --out runs/prm
  rewardkit eval --benchmark first-error --model prm:runs/prm --data data/mused/first_error.jsonl --out runs/fe
  rewardkit train judge --model smollm2-135m --data prefs.jsonl --out runs/conj
  rewardkit data select-prompts --reward runs/rm --policy smollm2-135m --prompts p.jsonl --keep 0.3 --out rl.jsonl
  rewardkit serve --model runs/rm --port 8000
"""

# Commands, each "module:function" where function(subparsers) adds its parser. All live in this package
# except serve's, which sits beside the server.
COMMANDS = (
    "rewardkit.cli.quickstart:add_commands", "rewardkit.cli.data:add_commands", "rewardkit.cli.train:add_commands",
    "rewardkit.cli.score:add_commands", "rewardkit.cli.eval:add_commands", "rewardkit.serve.cli:add_commands",
    "rewardkit.cli.generate:add_commands", "rewardkit.cli.uncertainty:add_commands",
    "rewardkit.cli.average:add_commands",
)


# Sub-subcommands with a parser of their own, reached by their first two words: `rewardkit eval unlearn`
# measures a causal LM and shares none of `rewardkit eval`'s (reward model) options.
ROUTES = {("eval", "unlearn"): "rewardkit.cli.eval_unlearn:build_parser"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    route = ROUTES.get(tuple(argv[:2]))
    parser = _load_attr(route)() if route else build_parser()
    args = parser.parse_args(argv[2:] if route else argv)
    _quiet_libraries()
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_BAD_INPUT
    return run_handler(args)


def run_handler(args: argparse.Namespace) -> int:
    """Run a command: an input error is one line and exit 2; anything else is a bug, with its traceback."""
    from rewardkit.errors import InputError

    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        # a path the user named: say which, no traceback
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        traceback.print_exc()
        print("rewardkit: this is a bug, not a problem with your input; please report it with the traceback above",
              file=sys.stderr)
        return EXIT_BUG


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
    from rewardkit import __version__

    parser = argparse.ArgumentParser(
        prog="rewardkit", description="Train, benchmark, serve and use reward models for LLM alignment.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rewardkit {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for target in COMMANDS:
        _plug(sub, target)
    return parser


def _plug(sub: Any, target: str) -> None:
    _load_attr(target)(sub)


def _load_attr(target: str) -> Any:
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


if __name__ == "__main__":
    raise SystemExit(main())
