"""The one training loop: accumulation, clipping, schedule, eval, logging and checkpoints, written out.

It knows nothing about which model or loss it trains: :class:`LoopParts` carries a ``step_loss``
callable that maps a micro-batch to ``(weighted loss sum, metric sums)``, and an ``evaluate`` callable.
Gradient accumulation and data parallelism are exact: each micro-batch's loss is a *sum* over its pairs
divided by the number of real pairs in the whole global batch (× world size, because DDP averages
gradients over ranks), so any split of one global batch gives the same gradient.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.collate import MicroBatch, length_grouped_batches, split_global_batch

StepLoss = Callable[[MicroBatch, float], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class LoopParts:
    """Everything the loop runs; built by the job (e.g. :func:`rewardkit.train.reward.train_reward_model`)."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    lengths: list[int]               # per training pair, for length grouping
    step_loss: StepLoss              # (micro-batch, 1/n_real·world) -> (loss to backprop, metric sums)
    evaluate: Callable[[], dict[str, float]] | None
    out_dir: Path


@dataclass
class LoopSettings:
    global_batch: int
    grad_accum: int
    total_steps: int
    seed: int
    group_by_length: bool = True
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    eval_steps: int = 0
    save_steps: int = 0
    save_total_limit: int = 2
    resume: str | None = None


@dataclass
class LoopResult:
    steps: int
    pairs_seen: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    final_eval: dict[str, float] = field(default_factory=dict)


def steps_per_epoch(n_pairs: int, global_batch: int) -> int:
    return max(1, math.ceil(n_pairs / global_batch))


def run_loop(parts: LoopParts, s: LoopSettings) -> LoopResult:
    acc, model = parts.accelerator, parts.model
    world, rank = acc.num_processes, acc.process_index
    per_epoch = steps_per_epoch(len(parts.lengths), s.global_batch)
    start = _resume(parts, s) if s.resume else 0
    logger = _Logger(parts.out_dir / "logs", enabled=acc.is_main_process, resumed=start > 0)
    bar = _progress(s.total_steps, start, acc.is_main_process)
    epoch_batches: tuple[int, list[list[int]]] | None = None
    sums: dict[str, float] = {}
    pairs_seen, t0, t_log = 0, time.perf_counter(), time.perf_counter()
    result = LoopResult(start, 0, 0.0)
    model.train()
    for step in range(start, s.total_steps):
        epoch, k = divmod(step, per_epoch)
        if epoch_batches is None or epoch_batches[0] != epoch:
            epoch_batches = (epoch, length_grouped_batches(
                parts.lengths, s.global_batch, seed=s.seed, epoch=epoch, group_by_length=s.group_by_length))
        global_batch = epoch_batches[1][k]
        micro = split_global_batch(global_batch, world * s.grad_accum)
        scale = world / len(global_batch)  # loss = Σ_pairs ℓ / n_real, times world (DDP averages ranks)
        for m in range(s.grad_accum):
            sync = m == s.grad_accum - 1
            with nullcontext() if sync else acc.no_sync(model), acc.autocast():
                loss, metric_sums = parts.step_loss(micro[m * world + rank], scale)
            acc.backward(loss)
            for name, value in metric_sums.items():
                sums[name] = sums.get(name, 0.0) + float(value)
        grad_norm = acc.clip_grad_norm_(model.parameters(), s.max_grad_norm) if s.max_grad_norm > 0 else None
        parts.optimizer.step()
        parts.scheduler.step()
        parts.optimizer.zero_grad(set_to_none=True)
        pairs_seen += len(global_batch)
        done = step + 1
        bar.update(1)
        if done % s.logging_steps == 0 or done == s.total_steps:
            row = _reduce(acc, sums)
            now = time.perf_counter()
            row.update(step=done, epoch=round(done / per_epoch, 4), lr=parts.scheduler.get_last_lr()[0],
                       pairs_per_s=row.pop("pairs", 0.0) / max(now - t_log, 1e-9))
            if grad_norm is not None:
                row["grad_norm"] = float(grad_norm)
            logger.log("train", row)
            bar.set_postfix(loss=f"{row.get('loss', float('nan')):.4f}", acc=f"{row.get('accuracy', 0):.3f}")
            result.history.append(row)
            sums, t_log = {}, now
        if parts.evaluate is not None and s.eval_steps and done % s.eval_steps == 0 and done < s.total_steps:
            logger.log("eval", {"step": done, **_evaluate(parts)})
        if s.save_steps and done % s.save_steps == 0 and done < s.total_steps:
            save_checkpoint(parts, done, s.save_total_limit)
    bar.close()
    result.steps, result.pairs_seen = s.total_steps, pairs_seen
    result.train_seconds = time.perf_counter() - t0
    save_checkpoint(parts, s.total_steps, s.save_total_limit)
    if parts.evaluate is not None:
        result.final_eval = _evaluate(parts)
        logger.log("eval", {"step": s.total_steps, **result.final_eval})
    logger.close()
    return result


def _reduce(acc: Any, sums: dict[str, float]) -> dict[str, float]:
    """Sum metric sums over ranks; turn them into means over real pairs."""
    names = sorted(sums)
    totals = acc.reduce(torch.tensor([sums[n] for n in names], dtype=torch.float64), reduction="sum")
    total = dict(zip(names, totals.tolist(), strict=True))
    n = total.pop("pairs", 0.0)
    return {**{k: v / max(n, 1.0) for k, v in total.items()}, "pairs": n}


def _evaluate(parts: LoopParts) -> dict[str, float]:
    acc = parts.accelerator
    metrics: dict[str, float] = {}
    if acc.is_main_process and parts.evaluate is not None:
        parts.model.eval()
        metrics = parts.evaluate()
        parts.model.train()
    acc.wait_for_everyone()
    return metrics


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def save_checkpoint(parts: LoopParts, step: int, keep: int) -> Path:
    """Atomically write a resumable checkpoint (model, optimizer, scheduler, RNG states, step) to
    ``OUT/checkpoints/step-N``: written to a temporary folder first, renamed when complete."""
    acc = parts.accelerator
    root = checkpoint_dir(parts.out_dir)
    final, tmp = root / f"step-{step:07d}", root / f".tmp-step-{step:07d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step}), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(root.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def find_checkpoint(out_dir: Path, spec: str) -> Path:
    """``spec`` is a checkpoint folder or ``latest`` (the newest complete one under ``OUT/checkpoints``)."""
    if spec != "latest":
        path = Path(spec)
    else:
        found = sorted(checkpoint_dir(out_dir).glob("step-*"))
        if not found:
            raise FileNotFoundError(f"--resume latest: no checkpoint in {checkpoint_dir(out_dir)}")
        path = found[-1]
    if not (path / "trainer_state.json").exists():
        raise FileNotFoundError(f"--resume {spec}: {path} is not a complete rewardkit checkpoint")
    return path


def _resume(parts: LoopParts, s: LoopSettings) -> int:
    path = find_checkpoint(parts.out_dir, s.resume or "latest")
    parts.accelerator.load_state(str(path))
    step = int(json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))["step"])
    if step > s.total_steps:
        raise ValueError(f"checkpoint {path} is at step {step}, beyond the {s.total_steps} steps configured")
    return step


# ----------------------------------------------------------------------------- logging


class _Logger:
    """JSONL (``logs/metrics.jsonl``) and TensorBoard (``logs/tb``), main process only."""

    def __init__(self, log_dir: Path, *, enabled: bool, resumed: bool) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        log_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(log_dir / "metrics.jsonl", "a" if resumed else "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(log_dir / "tb"))
        except ImportError:  # tensorboard is a dependency, but never fail a run over logging
            self.tb = None

    def log(self, split: str, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"split": split, **row}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float):
                    self.tb.add_scalar(f"{split}/{key}", value, int(row["step"]))

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            if self.tb is not None:
                self.tb.close()


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step", dynamic_ncols=True)
