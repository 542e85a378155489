"""The one training loop: accumulation, clipping, schedule, eval, logging and checkpoints, written out.

It knows nothing about which model or loss it trains: :class:`LoopParts` carries the job's named data
streams (one or several, e.g. ``forget`` and ``retain``; the first one sets the epoch), a ``step_loss``
callable that maps one micro-batch of each stream to ``(weighted loss sum, metric sums)``, and an
``evaluate`` callable that every rank runs (it shards and gathers, so FSDP and ZeRO-3 work).
Gradient accumulation and data parallelism are exact: each micro-batch's loss is a *sum* over its
examples divided by the number of real examples of its stream in the whole global batch (× world size,
because DDP averages gradients over ranks), so any split of one global batch gives the same gradient.
Metric sums carry ``examples`` (the weighted count of the first stream) and are logged as means over it.
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
from rewardkit.errors import OptionError

# (one micro-batch per stream, per-stream scale world/n_real) -> (loss to backprop, metric sums incl. "examples")
StepLoss = Callable[[dict[str, MicroBatch], dict[str, float]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class LoopParts:
    """Everything the loop runs; built by the job (e.g. :func:`rewardkit.train.reward.train_reward_model`)."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    streams: dict[str, list[int]]    # stream name -> per-example token lengths (for length grouping)
    step_loss: StepLoss
    evaluate: Callable[[], dict[str, float]] | None  # run on every rank; returns the same metrics on each
    out_dir: Path
    unit: str = "examples"  # what one example of the first stream is called in the logs (pairs, sequences)


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
    """``examples_seen`` and ``train_seconds`` cover the whole run, resumed parts included."""

    steps: int
    examples_seen: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    final_eval: dict[str, float] = field(default_factory=dict)


def steps_per_epoch(n_pairs: int, global_batch: int) -> int:
    return max(1, math.ceil(n_pairs / global_batch))


def run_loop(parts: LoopParts, s: LoopSettings) -> LoopResult:
    acc, model = parts.accelerator, parts.model
    world, rank = acc.num_processes, acc.process_index
    primary = next(iter(parts.streams))
    per_epoch = steps_per_epoch(len(parts.streams[primary]), s.global_batch)
    state = _resume(parts, s) if s.resume else {"step": 0, "examples_seen": 0, "train_seconds": 0.0}
    start = int(state["step"])
    logger = _Logger(parts.out_dir / "logs", enabled=acc.is_main_process, resume_step=start if s.resume else None)
    bar = _progress(s.total_steps, start, acc.is_main_process)
    plans = {name: _EpochPlan(lengths, s) for name, lengths in parts.streams.items()}
    sums: dict[str, float] = {}
    seen, t0, t_log = int(state["examples_seen"]), time.perf_counter(), time.perf_counter()
    result = LoopResult(start, seen, float(state["train_seconds"]))
    model.train()
    for step in range(start, s.total_steps):
        batches = {name: plan.batch(step) for name, plan in plans.items()}  # this step's global batch per stream
        micro = {name: split_global_batch(b, world * s.grad_accum) for name, b in batches.items()}
        # loss = Σ_examples ℓ / n_real, times world (DDP averages ranks)
        scales = {name: world / len(b) for name, b in batches.items()}
        for m in range(s.grad_accum):
            sync = m == s.grad_accum - 1
            with nullcontext() if sync else acc.no_sync(model), acc.autocast():
                loss, metric_sums = parts.step_loss({n: mb[m * world + rank] for n, mb in micro.items()}, scales)
            acc.backward(loss)
            for name, value in metric_sums.items():
                sums[name] = sums.get(name, 0.0) + float(value)
        grad_norm = acc.clip_grad_norm_(model.parameters(), s.max_grad_norm) if s.max_grad_norm > 0 else None
        parts.optimizer.step()
        parts.scheduler.step()
        parts.optimizer.zero_grad(set_to_none=True)
        seen += len(batches[primary])
        done = step + 1
        bar.update(1)
        if done % s.logging_steps == 0 or done == s.total_steps:
            row = _reduce(acc, sums)
            now = time.perf_counter()
            row.update(step=done, epoch=round(done / per_epoch, 4), lr=parts.scheduler.get_last_lr()[0],
                       **{f"{parts.unit}_per_s": row.pop("examples", 0.0) / max(now - t_log, 1e-9)})
            if grad_norm is not None:
                row["grad_norm"] = float(grad_norm)
            logger.log("train", row)
            bar.set_postfix(loss=f"{row.get('loss', float('nan')):.4f}")
            result.history.append(row)
            sums, t_log = {}, now
        if parts.evaluate is not None and s.eval_steps and done % s.eval_steps == 0 and done < s.total_steps:
            logger.log("eval", {"step": done, **_evaluate(parts)})
        if s.save_steps and done % s.save_steps == 0 and done < s.total_steps:
            elapsed = result.train_seconds + time.perf_counter() - t0
            save_checkpoint(parts, done, s.save_total_limit, examples_seen=seen, train_seconds=elapsed)
    bar.close()
    result.steps, result.examples_seen = s.total_steps, seen
    result.train_seconds += time.perf_counter() - t0 if start < s.total_steps else 0.0
    if start < s.total_steps:
        save_checkpoint(parts, s.total_steps, s.save_total_limit, examples_seen=seen, train_seconds=result.train_seconds)
    if parts.evaluate is not None:
        result.final_eval = _evaluate(parts)
        logger.log("eval", {"step": s.total_steps, **result.final_eval})
    logger.close()
    return result


class _EpochPlan:
    """One stream's global batches, regenerated (seeded) at each of its epochs: a stream shorter than the
    first one simply starts its next epoch sooner."""

    def __init__(self, lengths: list[int], s: LoopSettings) -> None:
        self.lengths, self.s = lengths, s
        self.per_epoch = steps_per_epoch(len(lengths), s.global_batch)
        self.epoch: int | None = None
        self.batches: list[list[int]] = []

    def batch(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            self.epoch, self.batches = epoch, length_grouped_batches(
                self.lengths, self.s.global_batch, seed=self.s.seed, epoch=epoch,
                group_by_length=self.s.group_by_length)
        return self.batches[k]


def _reduce(acc: Any, sums: dict[str, float]) -> dict[str, float]:
    """Sum metric sums over ranks; turn them into means over the real examples."""
    names = sorted(sums)
    totals = acc.reduce(torch.tensor([sums[n] for n in names], dtype=torch.float64), reduction="sum")
    total = dict(zip(names, totals.tolist(), strict=True))
    n = total.pop("examples", 0.0)
    return {**{k: v / max(n, 1.0) for k, v in total.items()}, "examples": n}


def _evaluate(parts: LoopParts) -> dict[str, float]:
    """Every rank evaluates (the job's ``evaluate`` shards the data and gathers the scores)."""
    assert parts.evaluate is not None
    parts.model.eval()
    metrics = parts.evaluate()
    parts.model.train()
    return metrics


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def save_checkpoint(parts: LoopParts, step: int, keep: int, *, examples_seen: int = 0,
                    train_seconds: float = 0.0) -> Path:
    """Atomically write a resumable checkpoint (model, optimizer, scheduler, RNG states, step and the run's
    bookkeeping) to ``OUT/checkpoints/step-N``: written to a temporary folder first, renamed when
    complete. Old checkpoints beyond ``keep`` are renamed away before they are deleted, so no half-deleted
    folder ever looks complete."""
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
        state = {"step": step, "examples_seen": examples_seen, "train_seconds": train_seconds}
        (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(root.glob("step-*"))[:-keep]:
            doomed = old.with_name(f".deleting-{old.name}")
            old.rename(doomed)  # atomic: from here on it is not a checkpoint
            shutil.rmtree(doomed, ignore_errors=True)
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


def _resume(parts: LoopParts, s: LoopSettings) -> dict[str, Any]:
    """Load the checkpoint; return its state (``step``, ``examples_seen``, ``train_seconds``)."""
    path = find_checkpoint(parts.out_dir, s.resume or "latest")
    parts.accelerator.load_state(str(path))
    state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    state.setdefault("examples_seen", 0)
    state.setdefault("train_seconds", 0.0)
    if int(state["step"]) > s.total_steps:
        raise OptionError(f"checkpoint {path} is at step {state['step']}, beyond the {s.total_steps} steps configured")
    return state


# ----------------------------------------------------------------------------- logging


class _Logger:
    """JSONL (``logs/metrics.jsonl``) and TensorBoard (``logs/tb``), main process only."""

    def __init__(self, log_dir: Path, *, enabled: bool, resume_step: int | None) -> None:
        """``resume_step``: the checkpoint's step when resuming; rows logged after it (before the run was
        killed) are dropped, so the resumed run's rows are not duplicated."""
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "metrics.jsonl"
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        self.jsonl = open(path, "a" if resume_step is not None else "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
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
