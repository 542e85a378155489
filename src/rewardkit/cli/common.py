"""What every subcommand shares: registering a command, device and dtype options, config-field flags."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_BUG = 1


def command(sub: Any, name: str, help: str, handler: Callable[[argparse.Namespace], int],
            formatter: type[argparse.HelpFormatter] = argparse.ArgumentDefaultsHelpFormatter, **kwargs: Any) -> Any:
    """Add subcommand ``name`` that runs ``handler(args)``; ``help`` is plain text (``%`` allowed)."""
    # argparse %-formats help strings (not descriptions): "95% interval" must reach it as "95%% interval"
    p = sub.add_parser(name, help=help.replace("%", "%%"), description=help, formatter_class=formatter, **kwargs)
    p.set_defaults(handler=handler)
    return p


def add_device_options(p: argparse.ArgumentParser, *, dtype: bool = True) -> None:
    """``--device auto`` and ``--dtype auto``, resolved in one place (:mod:`rewardkit.models.devices`)."""
    from rewardkit.models.devices import DTYPE_CHOICES

    p.add_argument("--device", default="auto", help="torch device: auto (cuda, else mps, else cpu), cpu, cuda, cuda:1")
    if dtype:
        p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                       help="model weights' dtype: auto = bfloat16 on a GPU with native bf16, else float32")


def add_sandbox_options(p: argparse.ArgumentParser) -> None:
    """``--sandbox-timeout`` and ``--unsafe-no-sandbox`` for commands whose scorers may run model-written code."""
    from rewardkit.verify.sandbox import SandboxLimits

    p.add_argument("--sandbox-timeout", type=float, default=SandboxLimits().wall_s,
                   help="python checks (verifier 'tests'): wall seconds per run")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run model-written code WITHOUT the bubblewrap sandbox (limits only; a warning on every "
                   "run) where bubblewrap or user namespaces are missing. Only for code you trust")


PESSIMISM_HELP = ("reward r − k·U with the scorer's uncertainty U (AdvPO's lower bound; resists over-optimisation). "
                  "Needs a model with uncertainty: `rewardkit uncertainty fit` or a gaussian head. 0 = off")


def add_pessimism_option(p: argparse.ArgumentParser) -> None:
    """``--pessimism k`` (:attr:`rewardkit.scoring.ScorerOptions.pessimism`)."""
    p.add_argument("--pessimism", type=float, default=0.0, metavar="K", help=PESSIMISM_HELP)


def sandbox_limits(args: argparse.Namespace) -> Any:
    from rewardkit.verify.sandbox import SandboxLimits

    return SandboxLimits(wall_s=args.sandbox_timeout, allow_unsandboxed=args.unsafe_no_sandbox)


def add_config_flags(p: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flag`` per top-level field of the config dataclass ``cls`` (sections go through ``--set``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) or _is_section(hints[f.name]):
            continue
        _add_field_flag(p, f, hints[f.name])
    p.epilog = "nested settings (via --set): " + ", ".join(nested_help(cls))


def _is_section(hint: Any) -> bool:
    """A settings section that is not a dataclass (e.g. the loss: a name and that loss's own settings),
    set through ``--set section.key=value``, never through one flag."""
    return isinstance(hint, type) and hint not in (str, int, float, bool)


def _add_field_flag(p: argparse.ArgumentParser, f: dataclasses.Field[Any], hint: Any) -> None:
    flag = "--" + f.name.replace("_", "-")
    helptext = f.metadata.get("help", "").replace("%", "%%")
    if hint is bool:
        p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                       help=f"{helptext} (default: {f.default})")
        return
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0] if base[0] in (int, float) else str
    choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
    p.add_argument(flag, dest=f.name, type=kind, default=None, choices=choices,
                   help=f"{helptext} (default: {f.default})")


def nested_help(cls: type) -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            out += [f"{f.name}.{g.name} ({g.metadata.get('help', '')}; default {_default(g)})"
                    for g in dataclasses.fields(hint)]
    return out


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def config_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The flags of :func:`add_config_flags` that were given, by field name."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
