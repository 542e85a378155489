"""``rewardkit train ...``: every training job shares the loop and the common options of ``train rm``
(``--model --out --max-steps --epochs --batch-size --grad-accum --lr --max-length --config --set
--skip-invalid --resume ...``: one flag per field of :class:`rewardkit.train.config.TrainConfig`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rewardkit.cli.common import add_config_flags, command, config_values, nested_help


def add_commands(sub: Any) -> None:
    from rewardkit.train.config import RewardTrainConfig

    train = sub.add_parser("train", help="train reward models (and, through the same loop, other jobs)")
    tsub = train.add_subparsers(title="train commands", metavar="COMMAND")
    rm = add_train_command(
        tsub, "rm", "train a reward model (Bradley-Terry by default; scalar, multi-objective or gaussian head); "
        "on attribute data (HelpSteer2, UltraFeedback, numeric columns) an ArmoRM (--head multi) or URM "
        "(--head gaussian, --ensemble K) model on the frozen backbone; writes a standard "
        "AutoModelForSequenceClassification folder + rewardkit.json", RewardTrainConfig, _run_train_rm)
    rm.add_argument("--head", action=_HeadKind, dest="overrides", metavar="KIND",
                    help="reward head: scalar (default), multi (named objectives; ArmoRM on attribute data), "
                    "gaussian (mean and std per objective; URM); same as --set head.kind=KIND")
    _add_policy_commands(tsub)
    _add_unlearn_command(tsub)
    _add_ssrm_command(tsub)
    from rewardkit.cli.train_prm import add_command as add_prm_command  # train prm: its own module
    add_prm_command(tsub)
    from rewardkit.cli.train_judge import add_command as add_judge_command  # train judge (Con-J)
    add_judge_command(tsub)


def _add_policy_commands(tsub: Any) -> None:
    from rewardkit.train.config import PolicyTrainConfig, SftTrainConfig

    policy = add_train_command(
        tsub, "policy", "train a causal LM on preference pairs with a DPO-family loss against a reference model "
        "(default: the starting model; its log-probs precomputed once), or with sft on responses; writes a "
        "standard AutoModelForCausalLM folder (LoRA merged) + rewardkit.json", PolicyTrainConfig, _run_train_policy)
    policy.add_argument("--loss", action=_LossName, dest="overrides", metavar="NAME",
                        help=f"policy loss: {', '.join(_policy_losses())} (default dpo); its settings via "
                        "--set loss.KEY=VALUE, e.g. --set loss.beta=0.1; same as --set loss.name=NAME")
    add_train_command(
        tsub, "sft", "supervised fine-tuning of a causal LM (the policy job with loss sft) on prompt/completion "
        "rows, or on the chosen side of preference pairs; writes a standard AutoModelForCausalLM folder",
        SftTrainConfig, _run_train_policy)
    from rewardkit.cli.rsf import add_rsf_command

    add_rsf_command(tsub)


def _policy_losses() -> list[str]:
    from rewardkit.losses import LOSSES
    from rewardkit.losses.unlearning import UNLEARNING_LOSSES
    from rewardkit.train.config import POLICY_LOSS_INPUTS

    return [n for n in LOSSES.names() if LOSSES.get(n).inputs in POLICY_LOSS_INPUTS and n not in UNLEARNING_LOSSES]


class _LossName(argparse.Action):
    """``--loss NAME`` puts ``loss.name=NAME`` before the ``--set`` overrides (so ``loss.*`` settings are
    checked against that loss, wherever the flag stands)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        overrides = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [f"loss.name={values}", *overrides])


class _HeadKind(argparse.Action):
    """``--head KIND`` appends ``head.kind=KIND`` to the ``--set`` overrides."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        overrides = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*overrides, f"head.kind={values}"])


def add_train_command(tsub: Any, name: str, help: str, cls: type, run: Callable[[Any], int]) -> argparse.ArgumentParser:
    """A ``train NAME`` subcommand for the job config ``cls``: ``--config``, ``--set`` and one flag per field."""

    def handler(args: argparse.Namespace) -> int:
        from rewardkit.errors import OptionError

        cfg = parse_train_config(args, cls)
        if not cfg.data:
            raise OptionError("--data is required (or set `data:` in --config)")
        return run(cfg)

    p = command(tsub, name, help, handler, argparse.HelpFormatter)
    add_train_options(p, cls)
    return p


def add_train_options(p: argparse.ArgumentParser, cls: type) -> None:
    """The option block every training command shares: ``--config``, ``--set`` and one flag per field of ``cls``."""
    p.add_argument("--config", help="YAML file of settings (flags and --set override it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set lr=1e-5 --set loss.center_coef=0.01 --set lora.r=8 "
                   "--set head.kind=multi --set head.objectives=a,b")
    add_config_flags(p, cls)


def parse_train_config(args: argparse.Namespace, cls: type) -> Any:
    """``cls`` from the options of :func:`add_train_options`: defaults < --config < flags < --set."""
    from rewardkit.train.config import load_config

    return load_config(cls, args.config, config_values(args, cls), args.overrides)


def _run_train_rm(cfg: Any) -> int:
    from rewardkit.train.reward import train_reward_model

    result = train_reward_model(cfg)
    saved = result.out_dir / "rewardkit.json"  # what the job added on saving (stage-1 fits, reload check)
    meta = {**result.metadata, **(json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {})}
    metrics = meta.get("metrics", {}).get("eval")
    training = meta.get("training")
    if training:
        unit = next(k.removesuffix("_per_s") for k in training if k.endswith("_per_s"))
        print(f"trained {training['steps']} steps at {training[f'{unit}_per_s']:.1f} {unit}/s ({training['precision']})")
    if "armo" in meta:
        ridge = ", ".join(f"{k} α={v['alpha']:g}" for k, v in meta["armo"]["ridge"].items())
        print(f"stage 1 ridge per objective: {ridge}")
        if meta["armo"].get("verbosity_penalties"):
            print("verbosity penalties: " + ", ".join(f"{k}={v:g}" for k, v in meta["armo"]["verbosity_penalties"].items()))
    if "ensemble" in meta:
        print(f"ensemble of {len(meta['ensemble']['members'])} members in {result.out_dir}/members")
    if "reload_check" in meta:
        print(f"reloaded scalar vs training's: max |diff| {meta['reload_check']['max_abs_diff']:.2e}")
    if metrics:
        print(f"held-out accuracy {metrics['accuracy']:.3f} [{metrics['accuracy_ci95_low']:.3f}, "
              f"{metrics['accuracy_ci95_high']:.3f}], mean margin {metrics['margin']:.3f}")
    logs = result.out_dir / ("members/*/logs" if "ensemble" in meta else "logs")
    print(f"wrote reward model to {result.out_dir} (logs: {logs})")
    return 0


def _run_train_policy(cfg: Any) -> int:
    from rewardkit.train.policy import train_policy

    result = train_policy(cfg)
    meta = result.metadata
    training = meta["training"]
    unit = "pairs" if meta["job"] == "policy" else "sequences"
    tokens = training[f"{unit}_per_s"] * meta.get("tokens_per_example", 0.0)
    print(f"trained {training['steps']} steps ({cfg.loss.name}) at {training[f'{unit}_per_s']:.1f} {unit}/s, "
          f"{tokens:.0f} tokens/s ({training['precision']})")
    metrics = meta.get("metrics", {}).get("eval")
    if metrics and "accuracy" in metrics:
        print(f"held-out implicit-reward accuracy {metrics['accuracy']:.3f} [{metrics['accuracy_ci95_low']:.3f}, "
              f"{metrics['accuracy_ci95_high']:.3f}], mean margin {metrics['margin']:.3f}, log-probs chosen "
              f"{metrics['logps_chosen']:.2f} / rejected {metrics['logps_rejected']:.2f}")
    elif metrics:
        print(f"held-out NLL {metrics['nll']:.4f} per token (perplexity {metrics['perplexity']:.2f})")
    print(f"wrote causal LM to {result.out_dir} (logs: {result.out_dir / 'logs'})")
    return 0


def _add_unlearn_command(tsub: Any) -> None:
    from rewardkit.train.unlearn import UnlearnTrainConfig, unlearning_losses

    p = add_train_command(
        tsub, "unlearn", "unlearn a forget set from a causal LM (GA, GradDiff, NPO, SimNPO, FLAT, IdkDPO) with an "
        "optional retain term (NLL or KL to the reference) on the one loop: streams forget and retain; writes a "
        "standard AutoModelForCausalLM folder (LoRA merged) + rewardkit.json", UnlearnTrainConfig, _run_train_unlearn)
    p.add_argument("--loss", action=_LossName, dest="overrides", metavar="NAME",
                   help=f"unlearning loss: {', '.join(unlearning_losses())} (default npo); its settings via --set "
                   "loss.KEY=VALUE, e.g. --set loss.beta=0.1 --set loss.retain=kl --set loss.retain_coef=1; same "
                   "as --set loss.name=NAME")

    def handler(args: argparse.Namespace) -> int:
        from rewardkit.errors import OptionError

        cfg = parse_train_config(args, UnlearnTrainConfig)
        if not cfg.forget:
            raise OptionError("--forget is required (or set `forget:` in --config)")
        return _run_train_unlearn(cfg)

    p.set_defaults(handler=handler)


def _run_train_unlearn(cfg: Any) -> int:
    from rewardkit.train.unlearn import train_unlearn

    result = train_unlearn(cfg)
    meta = result.metadata
    training = meta["training"]
    retain = f" + {cfg.loss.options.retain_coef:g}·retain_{cfg.retain_kind}" if cfg.retain_kind != "none" else ""
    print(f"trained {training['steps']} steps ({cfg.loss.options.forget_coef:g}·{cfg.loss.name}{retain}) at "
          f"{training['sequences_per_s']:.1f} forget rows/s ({training['precision']})")
    metrics = meta.get("metrics", {}).get("eval") or {}
    if metrics:
        line = f"forget answer prob {metrics['forget_answer_prob']:.4f} (NLL {metrics['forget_nll']:.3f})"
        if "retain_answer_prob" in metrics:
            line += f", retain answer prob {metrics['retain_answer_prob']:.4f} (NLL {metrics['retain_nll']:.3f})"
        print(line)
    print(f"wrote causal LM to {result.out_dir} (logs: {result.out_dir / 'logs'})")
    return 0


def _add_ssrm_command(tsub: Any) -> None:
    from rewardkit.train.ssrm import SSRM_UNUSED, SsrmTrainConfig

    def handler(args: argparse.Namespace) -> int:
        return _run_train_ssrm(parse_train_config(args, SsrmTrainConfig))

    p = command(
        tsub, "ssrm", "semi-supervised reward modelling (SSRM): train a reward model on --labeled pairs (round 0), "
        "then each round pseudo-label every --unlabeled pair with the last model, keep those with max(p, 1-p) > "
        "--threshold oriented by the model's choice (chosen/rejected swapped where it prefers the second), and "
        "retrain on labelled + kept pairs; every `train rm` option applies to each round. Writes the last round's "
        "reward model to --out, ssrm.json (per round: pairs kept, swapped, pseudo-label accuracy when U's order "
        "is known, held-out accuracy) and rounds/round-T/ (model, pseudo.jsonl, train.jsonl)",
        handler, argparse.HelpFormatter, conflict_handler="resolve")
    add_train_options(p, SsrmTrainConfig)
    p.add_argument("--labeled", "--data", dest="data", default=None, metavar="FILE",
                   help="labelled preference pairs L (any supported format); same as --data")
    for action in p._actions:  # attribute-data and resume settings of `train rm` do not apply (refused if set)
        if action.dest in SSRM_UNUSED:
            action.help = argparse.SUPPRESS
    p.epilog = ("nested settings (via --set): loss.name (a reward-model loss, default bt) and its settings "
                "loss.KEY=VALUE; " + ", ".join(n for n in nested_help(SsrmTrainConfig) if n.startswith("lora.")))


def _run_train_ssrm(cfg: Any) -> int:
    from rewardkit.train.ssrm import describe_round, train_ssrm

    result = train_ssrm(cfg, on_round=lambda record: print(describe_round(record), flush=True))
    print(f"wrote reward model (round {cfg.rounds}) to {result.out_dir}; per-round report "
          f"{result.out_dir / 'ssrm.json'}, rounds in {result.out_dir / 'rounds'}")
    return 0
