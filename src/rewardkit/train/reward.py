"""``rewardkit train rm``: build data, model, optimizer and schedule, run the loop, save a standard RM."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit import __version__
from rewardkit.data.collate import MicroBatch, pad_sequences
from rewardkit.data.dataset import (
    LoadedExamples,
    file_fingerprint,
    load_examples,
    tokenize_examples,
    truncation_stats,
)
from rewardkit.eval.stats import bootstrap_mean, pairwise_correct
from rewardkit.losses import LOSSES
from rewardkit.models.reward_model import RewardModel, build_reward_model, save_reward_model
from rewardkit.scoring import forward_rewards, score_token_ids
from rewardkit.train.config import LoraSection, RewardTrainConfig
from rewardkit.train.loop import LoopParts, LoopSettings, run_loop, steps_per_epoch

_TRAIN_COLUMNS = ["chosen_input_ids", "rejected_input_ids", "chosen_token_type_ids", "rejected_token_type_ids",
                  "margin"]


@dataclass(frozen=True)
class PreparedPairs:
    """A validated, tokenized preference file and what loading it counted."""

    path: str
    loaded: LoadedExamples
    tokenized: Any

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": file_fingerprint(self.path), "pairs": len(self.tokenized),
                **self.loaded.to_dict(), "truncation": truncation_stats(self.tokenized).to_dict()}


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    metadata: dict[str, Any]


def prepare_pairs(path: str, loaded: LoadedExamples, rm: RewardModel) -> PreparedPairs:
    return PreparedPairs(path, loaded, tokenize_examples(loaded.dataset, rm.encoder))


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``bf16`` on CUDA with bf16 or a CPU with native bf16 (AVX-512 BF16 / AMX), else ``fp32``.
    (Without native support, bf16 matmuls on CPU are hundreds of times slower than fp32.)"""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16" if native else "fp32"


def build_accelerator(precision: str) -> Any:
    """An ``Accelerator`` for this machine. Without a GPU it must be told ``cpu=True``, or under
    ``torchrun`` each CPU process silently trains alone; that case is refused rather than run."""
    import os

    from accelerate import Accelerator

    has_gpu = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=not has_gpu)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(f"launched as {launched} processes but accelerate set up {accelerator.num_processes}")
    return accelerator


def apply_lora(model: Any, lora: LoraSection) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    targets: str | list[str] = lora.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets)
    return get_peft_model(model, config)


def make_step_loss(model: Any, columns: Any, pad_id: int, cfg: RewardTrainConfig) -> Callable[..., Any]:
    """The micro-batch loss: chosen and rejected in one forward, (2b, T) padded to the batch's longest."""
    loss_fn = LOSSES.get(cfg.loss.name)
    device = next(model.parameters()).device

    def step_loss(mb: MicroBatch, scale: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rows = columns[mb.indices]
        b = len(mb.indices)
        ids = rows["chosen_input_ids"] + rows["rejected_input_ids"]
        batch = pad_sequences(ids, rows["chosen_token_type_ids"] + rows["rejected_token_type_ids"], pad_id)
        rewards = forward_rewards(model, {k: v.to(device) for k, v in batch.items()}).float()  # (2b,)
        chosen, rejected = rewards[:b], rewards[b:]
        margin = None
        if cfg.loss.use_margin and any(m is not None for m in rows["margin"]):
            margin = torch.tensor([m or 0.0 for m in rows["margin"]], dtype=torch.float32, device=device)
        out = loss_fn(chosen, rejected, margin=margin, center_coef=cfg.loss.center_coef)
        w = torch.tensor(mb.weights, dtype=torch.float32, device=device)
        with torch.no_grad():
            gap = (chosen - rejected).detach()
            real = float(sum(len(s) for s in ids))
            sums = {"loss": (out.per_example.detach() * w).sum(), "accuracy": ((gap > 0).float() * w).sum(),
                    "margin": (gap * w).sum(), "pairs": w.sum(),
                    "padding": torch.tensor(1.0 - real / batch["input_ids"].numel()) * w.sum()}
        return (out.per_example * w).sum() * scale, sums

    return step_loss


def evaluate_pairs(model: Any, pad_id: int, tokenized: Any, *, max_tokens: int, seed: int = 0) -> dict[str, float]:
    """Pairwise accuracy (95% bootstrap interval) and mean margin of ``model`` on tokenized pairs."""
    cols = tokenized.select_columns(_TRAIN_COLUMNS[:4])[:]  # dict of lists
    n = len(tokenized)
    ids = cols["chosen_input_ids"] + cols["rejected_input_ids"]
    types = cols["chosen_token_type_ids"] + cols["rejected_token_type_ids"]
    scores = score_token_ids(model, pad_id, ids, types, max_tokens=max_tokens)
    chosen, rejected = scores[:n], scores[n:]
    acc = bootstrap_mean(pairwise_correct(chosen, rejected), seed=seed)
    return {"accuracy": acc.value, "accuracy_ci95_low": acc.low, "accuracy_ci95_high": acc.high,
            "margin": float(np.mean(chosen - rejected)), "pairs": float(n)}


def train_reward_model(cfg: RewardTrainConfig) -> TrainResult:
    """Train a Bradley--Terry reward model as configured and save it to ``cfg.out``."""
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    precision = resolve_precision(cfg.precision)
    accelerator = build_accelerator(precision)
    with accelerator.main_process_first():  # validate the data before spending time on the model
        train_rows = load_examples(cfg.data, kind="preference", skip_invalid=cfg.skip_invalid)
        eval_rows = load_examples(cfg.eval_data, kind="preference", skip_invalid=cfg.skip_invalid) \
            if cfg.eval_data else None
    if len(train_rows.dataset) == 0:
        raise ValueError(f"{cfg.data}: no valid preference pairs to train on")
    set_seed(cfg.seed)
    rm = build_reward_model(cfg.model, max_length=cfg.max_length)
    if cfg.lora.r:
        rm.model = apply_lora(rm.model, cfg.lora)
    with accelerator.main_process_first():
        train = prepare_pairs(cfg.data, train_rows, rm)
        held_out = prepare_pairs(cfg.eval_data, eval_rows, rm) if cfg.eval_data and eval_rows else None
    global_batch = cfg.batch_size * accelerator.num_processes * cfg.grad_accum
    per_epoch = steps_per_epoch(len(train.tokenized), global_batch)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * per_epoch))
    params = [p for p in rm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    scheduler = get_scheduler("constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler, optimizer,
                              num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
    model, optimizer = accelerator.prepare(rm.model, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # not prepare(): that would step it once per process
    columns = train.tokenized.select_columns(_TRAIN_COLUMNS)
    evaluate = None
    if held_out is not None:
        def evaluate() -> dict[str, float]:
            return evaluate_pairs(accelerator.unwrap_model(model), rm.pad_token_id, held_out.tokenized,
                                  max_tokens=cfg.eval_batch_tokens)
    out = Path(cfg.out)
    if accelerator.is_main_process:  # the exact settings, reusable with --config (e.g. to --resume)
        import yaml

        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    parts = LoopParts(accelerator, model, optimizer, scheduler, list(train.tokenized["length"]),
                      make_step_loss(model, columns, rm.pad_token_id, cfg), evaluate, out)
    settings = LoopSettings(global_batch, cfg.grad_accum, total, cfg.seed, cfg.group_by_length, cfg.max_grad_norm,
                            cfg.logging_steps, cfg.eval_steps, cfg.save_steps, cfg.save_total_limit, cfg.resume)
    result = run_loop(parts, settings)
    metadata = {
        "rewardkit_version": __version__, "backbone": cfg.model, "config": cfg.to_dict(),
        "data": train.summary(), "eval_data": held_out.summary() if held_out else None,
        "metrics": {"eval": result.final_eval, "train_last": result.history[-1] if result.history else {}},
        "training": {"steps": result.steps, "pairs_seen": result.pairs_seen, "seconds": result.train_seconds,
                     "pairs_per_s": result.pairs_seen / max(result.train_seconds, 1e-9),
                     "processes": accelerator.num_processes, "precision": precision, "global_batch": global_batch},
        "versions": {"torch": torch.__version__, "transformers": _version("transformers"),
                     "python": platform.python_version()},
    }
    if accelerator.is_main_process:
        rm.model = accelerator.unwrap_model(model)
        save_reward_model(rm, out, metadata)
    accelerator.wait_for_everyone()
    return TrainResult(out, metadata)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
