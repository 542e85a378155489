"""``rewardkit train prm``: train a process reward model (a reward per step) on TRL stepwise rows.

Hooked into ``rewardkit train`` by :func:`add_command` (called from :mod:`rewardkit.cli.train`); shares the
option block of every training command (``--model --data --out --epochs --lr --batch-size --max-length
--set lora.r=8 --seed --resume ...``).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = ("train a process reward model (PRM): token classification at each step's label token (the last token "
        "of the '\\n' after the step; TRL PRMTrainer's layout), 2 classes (0 wrong, 1 right), on TRL stepwise rows "
        "(prompt, completions = steps, labels = bools); on the one loop (accumulation, resume, eval, logs). "
        "Writes a plain AutoModelForTokenClassification folder + rewardkit.json, usable as the scorer prm:DIR")
EPILOG = """examples:
  rewardkit data synth --task mused --out data/mused
  rewardkit train prm --model minilm --data data/mused/stepwise.jsonl --out runs/prm --max-steps 200
  rewardkit score --model prm:runs/prm#agg=min --data pairs.jsonl --out scores.jsonl
  rewardkit eval --benchmark first-error --model prm:runs/prm --data data/mused/first_error.jsonl --out runs/fe
"""


def add_command(tsub: Any) -> argparse.ArgumentParser:
    """Add ``train prm`` to the ``rewardkit train`` subparsers."""
    from rewardkit.cli.train import add_train_command
    from rewardkit.train.prm import PrmTrainConfig

    p = add_train_command(tsub, "prm", HELP, PrmTrainConfig, run_train_prm)
    p.epilog = EPILOG + "\n" + (p.epilog or "")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


def run_train_prm(cfg: Any) -> int:
    from rewardkit.train.prm import train_prm

    result = train_prm(cfg)
    meta = result.metadata
    training = meta["training"]
    print(f"trained {training['steps']} steps at {training['solutions_per_s']:.1f} solutions/s ({training['precision']})")
    trunc = meta["data"]["truncation"]
    if trunc["steps_dropped"] or trunc["first_steps_cut"]:
        print(f"truncation: {trunc['solutions_truncated']} solutions cut, {trunc['steps_dropped']} steps dropped, "
              f"{trunc['first_steps_cut']} first steps cut (raise --max-length)")
    metrics = meta.get("metrics", {}).get("eval")
    if metrics:
        print(f"held-out step accuracy {metrics['step_accuracy']:.3f} ({metrics['steps']:.0f} steps); first error: "
              f"accuracy on erroneous {metrics['error_accuracy']:.3f}, on correct {metrics['correct_accuracy']:.3f}, "
              f"F1 {metrics['f1']:.3f}")
    print(f"wrote process reward model to {result.out_dir} (logs: {result.out_dir / 'logs'}); score with "
          f"prm:{result.out_dir}")
    return 0
