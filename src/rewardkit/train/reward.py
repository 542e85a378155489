"""``rewardkit train rm``: the reward-model job -- a reward head on a backbone, a pairwise loss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.collate import MicroBatch, pad_sequences
from rewardkit.data.dataset import (
    LoadedExamples,
    file_fingerprint,
    load_examples,
    tokenize_examples,
    truncation_stats,
)
from rewardkit.errors import OptionError
from rewardkit.losses import LossOutput, PairRewards
from rewardkit.models.reward_model import RewardModel, build_reward_model, save_reward_model
from rewardkit.scoring import forward_head
from rewardkit.stats import pairwise_summary
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.evaluation import score_pairs_on_all_ranks
from rewardkit.train.job import Job, TrainResult, apply_lora, run_job
from rewardkit.train.loop import StepLoss

_SIDES = ("chosen", "rejected")
_TRAIN_COLUMNS = [f"{side}_{col}" for col in ("input_ids", "token_type_ids", "response_start") for side in _SIDES]


@dataclass(frozen=True)
class PreparedPairs:
    """A validated, tokenized preference file and what loading it counted."""

    path: str
    loaded: LoadedExamples
    tokenized: Any

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": file_fingerprint(self.path), "pairs": len(self.tokenized),
                **self.loaded.to_dict(), "truncation": truncation_stats(self.tokenized).to_dict()}


def prepare_pairs(path: str, loaded: LoadedExamples, rm: RewardModel) -> PreparedPairs:
    return PreparedPairs(path, loaded, tokenize_examples(loaded.dataset, rm.encoder))


def pair_rewards(model: Any, rows: dict[str, list[Any]], pad_id: int, device: torch.device, *,
                 use_margin: bool) -> PairRewards:
    """Chosen and rejected of ``rows`` in one forward, (2b, T) padded to the batch's longest -> the loss's
    typed inputs (rewards (b,) float32 each, margins (b,) where the data has them)."""
    b = len(rows["chosen_input_ids"])
    ids = rows["chosen_input_ids"] + rows["rejected_input_ids"]
    batch = pad_sequences(ids, rows["chosen_token_type_ids"] + rows["rejected_token_type_ids"], pad_id)
    starts = torch.tensor(rows["chosen_response_start"] + rows["rejected_response_start"], device=device)
    rewards = forward_head(model, {k: v.to(device) for k, v in batch.items()}, starts).reward.float()  # (2b,)
    margin = None
    if use_margin and any(m is not None for m in rows["margin"]):
        margin = torch.tensor([m or 0.0 for m in rows["margin"]], dtype=torch.float32, device=device)
    return PairRewards(rewards[:b], rewards[b:], margin)


def weighted_sums(out: LossOutput, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metric sums of one micro-batch: the loss's own per-example metrics (and the loss) weighted by the
    examples' weights (0 for fillers), plus ``examples``, their weighted count."""
    with torch.no_grad():
        sums = {name: (value.float() * weights).sum() for name, value in out.metrics.items()}
        sums["loss"] = (out.per_example.detach().float() * weights).sum()
        sums["examples"] = weights.sum()
    return sums


def make_step_loss(model: Any, columns: Any, pad_id: int, cfg: RewardTrainConfig) -> StepLoss:
    """The micro-batch loss of the ``pairs`` stream."""
    loss = cfg.loss.spec
    device = next(model.parameters()).device

    def step_loss(micro: dict[str, MicroBatch], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mb = micro["pairs"]
        rows = columns[mb.indices]
        inputs = pair_rewards(model, rows, pad_id, device, use_margin=getattr(cfg.loss.options, "use_margin", False))
        out = loss(inputs, cfg.loss.options)
        w = torch.tensor(mb.weights, dtype=torch.float32, device=device)
        sums = weighted_sums(out, w)
        real = float(sum(len(s) for s in rows["chosen_input_ids"] + rows["rejected_input_ids"]))
        width = max(len(s) for s in rows["chosen_input_ids"] + rows["rejected_input_ids"])
        sums["padding"] = torch.tensor(1.0 - real / (2 * len(mb.indices) * width)) * w.sum()
        return (out.per_example * w).sum() * scales["pairs"], sums

    return step_loss


def evaluate_pairs(accelerator: Any, model: Any, pad_id: int, tokenized: Any, *, max_tokens: int,
                   seed: int = 0) -> dict[str, float]:
    """Pairwise accuracy (95% bootstrap interval) and mean margin of ``model`` on tokenized pairs; every
    rank scores its shard and gets the same numbers (:func:`rewardkit.stats.pairwise_summary`)."""
    chosen, rejected = score_pairs_on_all_ranks(accelerator, model, pad_id, tokenized, max_tokens=max_tokens)
    return pairwise_summary(chosen, rejected, seed=seed)


def build_rm_job(cfg: RewardTrainConfig, accelerator: Any) -> Job:
    """Data (validated before the model is built), the reward model (+ LoRA), the loss and the evaluation."""
    with accelerator.main_process_first():
        train_rows = load_examples(cfg.data, kind="preference", skip_invalid=cfg.skip_invalid)
        eval_rows = load_examples(cfg.eval_data, kind="preference", skip_invalid=cfg.skip_invalid) \
            if cfg.eval_data else None
    rm = build_reward_model(cfg.model, max_length=cfg.max_length, head=cfg.head)
    if cfg.lora.r:
        rm.model = apply_lora(rm.model, cfg.lora)
    with accelerator.main_process_first():
        train = prepare_pairs(cfg.data, train_rows, rm)
        held_out = prepare_pairs(cfg.eval_data, eval_rows, rm) if cfg.eval_data and eval_rows else None
    columns = train.tokenized.select_columns([*_TRAIN_COLUMNS, "margin"])

    def make_evaluate(model: Any) -> Any:
        assert held_out is not None
        return lambda: evaluate_pairs(accelerator, model, rm.pad_token_id, held_out.tokenized,
                                      max_tokens=cfg.eval_batch_tokens)

    def save(net: Any, out: Path, metadata: dict[str, Any]) -> None:
        rm.net = net
        save_reward_model(rm, out, metadata)

    return Job("rm", rm.net, {"pairs": list(train.tokenized["length"])},
               lambda model: make_step_loss(model, columns, rm.pad_token_id, cfg),
               make_evaluate if held_out is not None else None, save,
               {"data": train.summary(), "eval_data": held_out.summary() if held_out else None}, unit="pairs")


def train_reward_model(cfg: RewardTrainConfig) -> TrainResult:
    """Train a reward model as configured and save it to ``cfg.out``: on preference pairs through the loop;
    on attribute data (rated responses) as ArmoRM or URM (:mod:`rewardkit.train.attributes`)."""
    from rewardkit.data.attributes import is_attribute_file

    if is_attribute_file(cfg.data):
        from rewardkit.train.attributes import train_attribute_model

        return train_attribute_model(cfg)
    if cfg.pairs or cfg.ensemble > 1 or cfg.attributes:
        raise OptionError("--pairs, --attributes and --ensemble need attribute data in --data (rated responses: "
                          "HelpSteer2, UltraFeedback or numeric columns); got preference pairs")
    return run_job(cfg, build_rm_job)
