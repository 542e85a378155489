"""A general training job on the one loop: every ``rewardkit train`` subcommand is a :class:`Job`.

A job names its data streams (one or several, e.g. ``forget`` + ``retain``), the module it trains, how a
micro-batch of each stream becomes a loss (typed inputs, a registered loss), how it evaluates (on every
rank), and how it saves. :func:`run_job` does the rest, the same for all jobs: accelerator and precision,
seeding, AdamW and the schedule, ``config.yaml``, the loop, the metadata and the final save.

To add a job: write ``build_<name>_job(cfg, accelerator) -> Job`` and a ``TrainConfig`` subclass with its
own sections, then a ``train <name>`` command that calls ``run_job(cfg, build_<name>_job)``.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardkit import __version__
from rewardkit.errors import InputError
from rewardkit.models.devices import resolve_device, resolve_precision
from rewardkit.models.memory import checkpoint_layers, recomputed_attention, release_free_memory
from rewardkit.train.config import LoraSection, TrainConfig
from rewardkit.train.loop import LoopParts, LoopResult, LoopSettings, StepLoss, run_loop, steps_per_epoch


@dataclass
class Job:
    """What a training job plugs into the loop.

    ``model``: the module to optimise (e.g. backbone + head); ``streams``: name -> per-example token
    lengths (the first stream sets the epoch); ``make_step_loss(prepared_model)`` and
    ``make_evaluate(prepared_model)`` are called once with the accelerator-wrapped model;
    ``save(unwrapped_model, out_dir, metadata)`` writes the result on the main process; ``unit`` names
    one example of the first stream in logs and metadata (``pairs``, ``sequences``)."""

    kind: str
    model: torch.nn.Module
    streams: dict[str, list[int]]
    make_step_loss: Callable[[Any], StepLoss]
    make_evaluate: Callable[[Any], Callable[[], dict[str, float]]] | None
    save: Callable[[Any, Path, dict[str, Any]], None]
    data_summary: dict[str, Any] = field(default_factory=dict)
    unit: str = "pairs"


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    metadata: dict[str, Any]


def build_accelerator(precision: str, device: str = "auto") -> Any:
    """A fresh ``Accelerator`` for this run. Calling it again in the same process with other settings
    works (a notebook or a sweep trains several models): accelerate's process-wide state is reset first,
    keeping only the distributed set-up. Without a GPU it must be told ``cpu=True``, or under ``torchrun``
    each CPU process silently trains alone; that case is refused rather than run."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    # accelerate keeps the mixed precision in a process-wide singleton and refuses a second, different
    # one ("AcceleratorState has already been initialized and cannot be changed"); each run sets its own.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    cpu = resolve_device(device).type == "cpu"
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(f"launched as {launched} processes but accelerate set up {accelerator.num_processes}")
    return accelerator


def apply_lora(model: Any, lora: LoraSection, task_type: str = "SEQ_CLS") -> Any:
    """Wrap ``model`` with LoRA adapters (peft); the head of a sequence classifier stays trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets: str | list[str] = lora.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(task_type=getattr(TaskType, task_type), r=lora.r, lora_alpha=lora.alpha,
                        lora_dropout=lora.dropout, target_modules=targets)
    return get_peft_model(model, config)


def run_job(cfg: TrainConfig, build: Callable[[Any, Any], Job]) -> TrainResult:
    """Train ``build(cfg, accelerator)``'s job as configured and save it to ``cfg.out``."""
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    precision = resolve_precision(cfg.precision, cfg.device)
    accelerator = build_accelerator(precision, cfg.device)
    set_seed(cfg.seed)
    job = build(cfg, accelerator)
    primary = next(iter(job.streams))
    if not job.streams[primary]:
        raise InputError(f"{cfg.data}: no valid examples to train on")
    global_batch = cfg.batch_size * accelerator.num_processes * cfg.grad_accum
    per_epoch = steps_per_epoch(len(job.streams[primary]), global_batch)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * per_epoch))
    params = [p for p in job.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    scheduler = get_scheduler("constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler, optimizer,
                              num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
    model, optimizer = accelerator.prepare(job.model, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # not prepare(): that would step it once per process
    out = Path(cfg.out)
    if accelerator.is_main_process:  # the exact settings, reusable with --config (e.g. to --resume)
        import yaml

        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    evaluate = job.make_evaluate(model) if job.make_evaluate is not None else None
    parts = LoopParts(accelerator, model, optimizer, scheduler, job.streams, job.make_step_loss(model), evaluate, out,
                      job.unit)
    settings = LoopSettings(global_batch, cfg.grad_accum, total, cfg.seed, cfg.group_by_length, cfg.max_grad_norm,
                            cfg.logging_steps, cfg.eval_steps, cfg.save_steps, cfg.save_total_limit, cfg.resume)
    if cfg.activation_checkpointing:
        checkpoint_layers(job.model)
    # same numbers; on CPU no (B, H, T, T) kept for backward (with activation checkpointing: nothing to add)
    with nullcontext() if cfg.activation_checkpointing else recomputed_attention(job.model):
        result = run_loop(parts, settings)
    release_free_memory()  # the freed activations' heap pages, back to the OS before saving and scoring
    metadata = _metadata(cfg, job, result, accelerator.num_processes, precision, global_batch)
    if accelerator.is_main_process:
        job.save(accelerator.unwrap_model(model), out, metadata)
    accelerator.wait_for_everyone()
    return TrainResult(out, metadata)


def _metadata(cfg: TrainConfig, job: Job, result: LoopResult, processes: int, precision: str,
              global_batch: int) -> dict[str, Any]:
    unit = job.unit
    return {
        "rewardkit_version": __version__, "job": job.kind, "backbone": cfg.model, "config": cfg.to_dict(),
        **job.data_summary,
        "metrics": {"eval": result.final_eval, "train_last": result.history[-1] if result.history else {}},
        "training": {"steps": result.steps, f"{unit}_seen": result.examples_seen, "seconds": result.train_seconds,
                     f"{unit}_per_s": result.examples_seen / max(result.train_seconds, 1e-9),
                     "processes": processes, "precision": precision, "global_batch": global_batch},
        "versions": {"torch": torch.__version__, "transformers": _version("transformers"),
                     "python": platform.python_version()},
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
