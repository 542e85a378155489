"""``rewardkit quickstart``: the embedded default, end to end, offline."""

from __future__ import annotations

import argparse
from typing import Any

from rewardkit.cli.common import command


def add_commands(sub: Any) -> None:
    p = command(sub, "quickstart", "the embedded default end to end, offline: train a MiniLM reward model on the "
                "shipped ifeval-lite preferences, evaluate it against baselines, rerank held-out candidates", _run)
    p.add_argument("--out", default="runs/quickstart", help="output folder")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs over the shipped train split")
    p.add_argument("--model", default="minilm", help="backbone to train")
    p.add_argument("--max-steps", type=int, default=-1, help="cap on optimizer steps (for a very quick look)")


def _run(args: argparse.Namespace) -> int:
    from rewardkit.quickstart import run_quickstart

    run_quickstart(out=args.out, epochs=args.epochs, model=args.model, max_steps=args.max_steps)
    return 0
