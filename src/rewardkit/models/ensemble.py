"""Ensembles of reward models (URME, METHODS §5): K members in one folder, scored as one model.

Folder layout: ``OUT/members/0 .. K−1`` are ordinary rewardkit folders (each loads in plain transformers as
``AutoModelForSequenceClassification``); ``OUT/rewardkit.json`` has ``"ensemble": {"members": [...]}``.
Loading ``OUT`` (:func:`~rewardkit.models.reward_model.load_reward_model`) gives a model whose ``net`` is an
:class:`EnsembleNet`: the same forward contract as :class:`~rewardkit.models.reward_model.RewardNet`, so
every scorer works unchanged, with

- ``reward`` (N,) = the members' mean reward, ``objectives`` (N, K) = their mean objectives;
- ``uncertainty`` (N,) = the members' disagreement: the standard deviation of their rewards
  (population form, ``sqrt(mean_m (r_m − r̄)²)``; for two members ``|r₁ − r₂| / 2``).

Members must share the tokenizer and input format (they do when trained by ``--ensemble K``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.models.heads import HeadOutput, RewardHead
from rewardkit.models.reward_model import METADATA_FILE, RewardModel, RewardNet, write_json_atomic

MEMBERS_DIR = "members"


def ensemble_outputs(outputs: Sequence[HeadOutput]) -> HeadOutput:
    """Combine the members' outputs for the same N items: mean reward, objectives and gating weights, std of
    the rewards."""
    rewards = torch.stack([o.reward.float() for o in outputs])  # (M, N)
    mean = rewards.mean(0)
    std = ((rewards - mean) ** 2).mean(0).sqrt()
    objectives = None
    if all(o.objectives is not None for o in outputs):
        objectives = torch.stack([o.objectives.float() for o in outputs]).mean(0)  # type: ignore[union-attr]
    weights = None
    if all(o.weights is not None for o in outputs):
        weights = torch.stack([o.weights.float() for o in outputs]).mean(0)  # type: ignore[union-attr]
    return HeadOutput(mean, objectives, None, std, weights)


class EnsembleNet(RewardNet):
    """M member :class:`RewardNet` s as one: ``forward(batch, response_starts)`` -> the combined
    :class:`HeadOutput` (:func:`ensemble_outputs`). ``backbone`` and ``head`` are the first member's (for
    its objective names and config)."""

    def __init__(self, members: Sequence[RewardNet]) -> None:
        torch.nn.Module.__init__(self)  # not RewardNet.__init__: the members hold the backbones and heads
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = torch.nn.ModuleList(members)
        # RewardNet's optional last-layer uncertainty: an ensemble's uncertainty is its members' disagreement
        self.uncertainty = None

    @property
    def backbone(self) -> torch.nn.Module:  # type: ignore[override]
        return self.members[0].backbone

    @property
    def head(self) -> RewardHead:  # type: ignore[override]
        return self.members[0].head

    def forward(self, batch: dict[str, torch.Tensor], response_starts: torch.Tensor | None = None) -> HeadOutput:
        if self.uncertainty is not None:
            raise UnsupportedError("a last-layer uncertainty is attached to an ensemble, whose uncertainty is its "
                                   "members' disagreement; fit it on one member folder (members/i) instead")
        return ensemble_outputs([m(batch, response_starts) for m in self.members])


def load_ensemble(folder: Path, meta: dict[str, Any], name: str, **load: Any) -> RewardModel:
    """The ensemble described by ``folder/rewardkit.json`` (``load`` are :func:`load_reward_model`'s options)."""
    from rewardkit.models.reward_model import load_reward_model

    paths = meta["ensemble"].get("members") or []
    if not paths:
        raise OptionError(f"{folder}: rewardkit.json names an ensemble without members")
    members = [load_reward_model(folder / p, **load) for p in paths]
    first = members[0]
    for p, m in zip(paths[1:], members[1:], strict=True):
        if m.objectives != first.objectives or m.encoder.input_format != first.encoder.input_format:
            raise OptionError(f"{folder}: member {p} has other objectives or input format than {paths[0]}")
    return RewardModel(EnsembleNet([m.net for m in members]), first.tokenizer, first.encoder, meta, name)


def write_ensemble(out: Path, members: Sequence[str], metadata: dict[str, Any]) -> Path:
    """``out/rewardkit.json`` for an ensemble of the member folders ``members`` (relative to ``out``): the
    first member's input format, objectives and head, plus ``ensemble`` and ``metadata``."""
    first = json.loads((out / members[0] / METADATA_FILE).read_text(encoding="utf-8"))
    keep = ("format", "input_format", "max_length", "truncation_policy", "objectives", "head")
    meta = {**{k: first[k] for k in keep if k in first},
            "ensemble": {"members": list(members), "reward": "mean of the members' rewards",
                         "uncertainty": "std of the members' rewards (population)"},
            **metadata}
    write_json_atomic(out / METADATA_FILE, meta)
    return out
