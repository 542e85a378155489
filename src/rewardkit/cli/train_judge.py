"""``rewardkit train judge``: Con-J generative-judge training (:mod:`rewardkit.train.judge`).

Hooked into ``rewardkit train`` by :func:`add_command`; shares the option block of every training command
(``--model --data --out --max-steps --lr --batch-size --max-length --set lora.r=8 ...``) plus the sampling
options of the judgments.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = ("Con-J: train a generative judge with DPO on its own contrastive judgments. For each preference pair "
        "of --data, in both orders (chosen as Response A, then as B), --samples judgments are sampled from --model "
        "(a rationale, then a final line 'Better: A' or 'Better: B'): positive if the verdict names the labelled "
        "better response, negative if the other, unknown if it has none. Hint-driven sampling adds one rationale "
        "told the true better response and one told the wrong one. Pairs per judge prompt: up to 3 (positive, "
        "negative), 1 (positive, unknown), 1 (hint-positive, hint-negative) or a fallback (positive, unknown). "
        "They are written to OUT/judgments.jsonl (counts in OUT/judgments.json) and trained with the DPO job of "
        "`train policy` (beta 0.1). OUT is a causal LM folder whose rewardkit.json says kind judge, rationale "
        "true: use it as the scorer judge:OUT (a greedy rationale, then the A/B logits after 'Better:'; `score` "
        "writes the rationales as judge_rationale)")
EPILOG = """examples:
  rewardkit train judge --model smollm2-135m --data pairs.jsonl --out runs/judge --samples 8 --max-steps 100
  rewardkit score --model judge:runs/judge --data pairs.jsonl --out judged.jsonl
"""


class _Beta(argparse.Action):
    """``--beta B`` appends ``loss.beta=B`` to the ``--set`` overrides."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        overrides = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*overrides, f"loss.beta={values}"])


def add_command(tsub: Any) -> argparse.ArgumentParser:
    """Add ``train judge`` to the ``rewardkit train`` subparsers."""
    from rewardkit.cli.train import add_train_command
    from rewardkit.train.judge import JudgeTrainConfig

    p = add_train_command(tsub, "judge", HELP, JudgeTrainConfig, run_train_judge)
    p.add_argument("--beta", action=_Beta, dest="overrides", metavar="B",
                   help="DPO beta (default 0.1, Con-J's); same as --set loss.beta=B")
    p.epilog = EPILOG + "\n" + (p.epilog or "")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


def run_train_judge(cfg: Any) -> int:
    from rewardkit.train.judge import train_judge

    result = train_judge(cfg)
    meta = result.metadata
    counts = meta["judgments"]
    pairs = ", ".join(f"{k} {v}" for k, v in counts["pairs"].items())
    print(f"judgments: {counts['positive']} positive, {counts['negative']} negative, {counts['unknown']} unknown "
          f"over {counts['judge_prompts']} judge prompts; pairs: {pairs} ({counts['rows']} rows)")
    training = meta["training"]
    print(f"trained {training['steps']} DPO steps at {training['pairs_per_s']:.1f} pairs/s ({training['precision']})")
    print(f"wrote judge to {result.out_dir} (use judge:{result.out_dir}; judgments in "
          f"{result.out_dir / 'judgments.jsonl'})")
    return 0
