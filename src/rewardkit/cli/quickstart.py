"""``rewardkit quickstart``: the embedded default, end to end, offline."""

from __future__ import annotations

import argparse
from typing import Any

from rewardkit.cli.common import command


def add_commands(sub: Any) -> None:
    p = command(sub, "quickstart", "the embedded default end to end, offline: train a MiniLM reward model on the "
                "shipped ifeval-lite preferences, evaluate it against baselines, rerank held-out candidates; prints the time "
                "and peak resident memory it took (also in summary.json: resources)", _run)
    p.add_argument("--out", default="runs/quickstart", help="output folder")
    p.add_argument("--epochs", type=float, default=None,
                   help="training epochs over the shipped train split (default: 2, what MiniLM needs to learn to "
                   "read the instructions on counterfactual twin pairs)")
    p.add_argument("--model", default="minilm", help="backbone to train")
    p.add_argument("--max-steps", type=int, default=-1, help="cap on optimizer steps (for a very quick look)")
    p.add_argument("--response-only", action="store_true",
                   help="also train the response-only shortcut baseline (the same model with every prompt hidden; "
                   "doubles the time; without it the summary still bounds every prompt-blind scorer exactly)")
    p.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute each layer's activations in backward: less peak memory, ~20-30%% more training "
                   "time, the same results")


def _run(args: argparse.Namespace) -> int:
    from rewardkit.quickstart import run_quickstart

    run_quickstart(out=args.out, epochs=args.epochs, model=args.model, max_steps=args.max_steps,
                   response_only=args.response_only, activation_checkpointing=args.activation_checkpointing)
    return 0
