"""``rewardkit train ...``: every training job shares the loop and the common options of ``train rm``
(``--model --out --max-steps --epochs --batch-size --grad-accum --lr --max-length --config --set
--skip-invalid --resume ...``: one flag per field of :class:`rewardkit.train.config.TrainConfig`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rewardkit.cli.common import add_config_flags, command, config_values


def add_commands(sub: Any) -> None:
    from rewardkit.train.config import RewardTrainConfig

    train = sub.add_parser("train", help="train reward models (and, through the same loop, other jobs)")
    tsub = train.add_subparsers(title="train commands", metavar="COMMAND")
    add_train_command(tsub, "rm", "train a reward model (Bradley-Terry by default; scalar, multi-objective or "
                      "gaussian head); writes a standard AutoModelForSequenceClassification folder + rewardkit.json",
                      RewardTrainConfig, _run_train_rm)


def add_train_command(tsub: Any, name: str, help: str, cls: type, run: Callable[[Any], int]) -> argparse.ArgumentParser:
    """A ``train NAME`` subcommand for the job config ``cls``: ``--config``, ``--set`` and one flag per field."""

    def handler(args: argparse.Namespace) -> int:
        from rewardkit.errors import OptionError
        from rewardkit.train.config import load_config

        cfg = load_config(cls, args.config, config_values(args, cls), args.overrides)
        if not cfg.data:
            raise OptionError("--data is required (or set `data:` in --config)")
        return run(cfg)

    p = command(tsub, name, help, handler, argparse.HelpFormatter)
    p.add_argument("--config", help="YAML file of settings (flags and --set override it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set lr=1e-5 --set loss.center_coef=0.01 --set lora.r=8 "
                   "--set head.kind=multi --set head.objectives=a,b")
    add_config_flags(p, cls)
    return p


def _run_train_rm(cfg: Any) -> int:
    from rewardkit.train.reward import train_reward_model

    result = train_reward_model(cfg)
    metrics = result.metadata["metrics"]["eval"]
    training = result.metadata["training"]
    print(f"trained {training['steps']} steps at {training['pairs_per_s']:.1f} pairs/s ({training['precision']})")
    if metrics:
        print(f"held-out accuracy {metrics['accuracy']:.3f} [{metrics['accuracy_ci95_low']:.3f}, "
              f"{metrics['accuracy_ci95_high']:.3f}], mean margin {metrics['margin']:.3f}")
    print(f"wrote reward model to {result.out_dir} (logs: {result.out_dir / 'logs'})")
    return 0
