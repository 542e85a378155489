"""``rewardkit train prm``: a process reward model -- token classification at the step label tokens, on the
one loop.

Data: TRL stepwise rows (``prompt`` string or messages, ``completions`` = list of step strings, ``labels`` =
list of bools of the same length). Each row is encoded by :class:`rewardkit.models.prm.StepEncoder` (the
label of step k on the last token of its separator, -100 elsewhere). Loss (:func:`prm_loss`): cross-entropy
over the two classes (0 wrong, 1 right) at the labelled positions, averaged over each solution's kept steps,
then over solutions -- so each solution weighs the same and any split of a global batch gives the same
gradient (TRL averages over all labelled tokens of a batch instead). Evaluation on ``eval_data``: step
accuracy (P(right) >= 0.5 vs the label, over all kept steps) and ProcessBench first-error accuracy and F1
(:mod:`rewardkit.eval.first_error`), the gold first error being each row's first False label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rewardkit.data.collate import MicroBatch
from rewardkit.data.dataset import file_fingerprint
from rewardkit.data.formats import Message, is_blank
from rewardkit.data.io import DataError, Location, iter_records, no_records_error
from rewardkit.errors import InputError, OptionError
from rewardkit.eval.first_error import first_error_metrics, predicted_first_error
from rewardkit.losses import LossOutput
from rewardkit.models.prm import (
    ProcessRewardModel,
    StepEncoding,
    build_prm,
    save_prm,
    step_logits,
    step_probabilities,
)
from rewardkit.train.config import LoraSection, TrainConfig
from rewardkit.train.job import Job, TrainResult, run_job
from rewardkit.train.loop import StepLoss
from rewardkit.train.reward import weighted_sums


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class PrmTrainConfig(TrainConfig):
    """Process reward model training (``rewardkit train prm``)."""

    data: str = _f("", "training step file: TRL stepwise rows (prompt, completions = steps, labels = bools)")
    eval_data: str | None = _f(None, "held-out step file: step accuracy and first-error accuracy / F1")
    out: str = _f("runs/prm", "output folder: the HF token-classification model, rewardkit.json, logs/, checkpoints/")
    max_length: int = _f(512, "max tokens per (prompt, steps): the prompt keeps its end, whole steps are kept "
                         "from the first on (dropped steps counted)")
    batch_size: int = _f(16, "solutions per device per micro-batch")
    threshold: float = _f(0.5, "evaluation: a step is predicted wrong when P(right) < threshold")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.threshold < 1.0:
            raise OptionError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass(frozen=True)
class StepRow:
    """One validated stepwise row."""

    prompt: tuple[Message, ...]
    conversational: bool
    steps: tuple[str, ...]
    labels: tuple[bool, ...]


def parse_step_row(record: Mapping[str, Any], loc: Location) -> StepRow:
    """A TRL stepwise record -> :class:`StepRow`; a :class:`DataError` naming file:line and field otherwise."""
    prompt = record.get("prompt")
    if isinstance(prompt, str):
        messages, conv = ({"role": "user", "content": prompt},), False
    elif isinstance(prompt, list) and all(isinstance(m, Mapping) and isinstance(m.get("content"), str)
                                          and isinstance(m.get("role"), str) for m in prompt):
        messages, conv = tuple({"role": m["role"], "content": m["content"]} for m in prompt), True
    else:
        raise DataError(loc, "prompt", "expected a string or a list of {role, content} messages")
    steps = record.get("completions")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataError(loc, "completions", "expected a non-empty list of step strings")
    bad = next((i for i, s in enumerate(steps) if is_blank(s)), None)
    if bad is not None:
        raise DataError(loc, f"completions[{bad}]", "empty step")
    labels = record.get("labels")
    if labels is None:
        raise DataError(loc, "labels", "missing: label the steps first (e.g. `rewardkit data label-steps`)")
    if not isinstance(labels, list) or not all(isinstance(v, bool) or v in (0, 1) for v in labels):
        raise DataError(loc, "labels", "expected a list of booleans")
    if len(labels) != len(steps):
        raise DataError(loc, "labels", f"{len(labels)} labels for {len(steps)} completions (steps); they must match")
    return StepRow(messages, conv, tuple(steps), tuple(bool(v) for v in labels))


@dataclass(frozen=True)
class StepData:
    """A validated, encoded step file."""

    path: str
    rows: list[StepRow]
    encodings: list[StepEncoding]
    skipped: list[str]

    def summary(self) -> dict[str, Any]:
        steps = sum(e.steps_total for e in self.encodings)
        return {"path": self.path, "sha256": file_fingerprint(self.path), "solutions": len(self.rows),
                "steps": steps, "skipped_invalid": len(self.skipped), "invalid": self.skipped[:20],
                "truncation": {"solutions_truncated": sum(e.truncated for e in self.encodings),
                               "steps_dropped": sum(e.steps_dropped for e in self.encodings),
                               "first_steps_cut": sum(e.step_cut for e in self.encodings)}}

    def targets(self) -> list[list[int]]:
        """Labels (0/1) of each row's kept steps."""
        return [[int(v) for v in r.labels[: e.steps_kept]] for r, e in zip(self.rows, self.encodings, strict=True)]


def read_step_rows(path: str, *, skip_invalid: bool = False) -> tuple[list[StepRow], list[str]]:
    """Read and validate a stepwise file: (rows, messages of the skipped invalid rows); without
    ``skip_invalid`` the first invalid row stops the run."""
    rows, skipped = [], []
    for loc, record in iter_records(path):
        try:
            if isinstance(record, DataError):
                raise record
            rows.append(parse_step_row(record, loc))
        except DataError as e:
            if not skip_invalid:
                raise
            skipped.append(str(e))
    if not rows:
        raise no_records_error(path, "valid stepwise rows")
    return rows, skipped


def encode_step_rows(path: str, read: tuple[list[StepRow], list[str]], prm: ProcessRewardModel) -> StepData:
    rows, skipped = read
    return StepData(path, rows, [prm.encoder.encode(r.prompt, r.steps, r.conversational) for r in rows], skipped)


def load_step_file(path: str, prm: ProcessRewardModel, *, skip_invalid: bool = False) -> StepData:
    """Read, validate and encode a stepwise file."""
    return encode_step_rows(path, read_step_rows(path, skip_invalid=skip_invalid), prm)


def prm_loss(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, n_rows: int) -> LossOutput:
    """Step cross-entropy. ``logits`` (S, 2) float at the S labelled positions of a batch, ``targets`` (S,)
    int64 in {0, 1}, ``rows`` (S,) int64 the solution of each step -> per-solution mean CE (B,) and its
    step accuracy (B,) as a metric (solutions without steps get 0)."""
    ce = F.cross_entropy(logits.float(), targets, reduction="none")  # (S,)
    ones = torch.ones_like(ce)
    counts = torch.zeros(n_rows, device=ce.device).index_add_(0, rows, ones).clamp_min(1.0)  # (B,)
    per_example = torch.zeros(n_rows, device=ce.device).index_add_(0, rows, ce) / counts
    correct = (logits.detach().argmax(-1) == targets).float()
    accuracy = torch.zeros(n_rows, device=ce.device).index_add_(0, rows, correct) / counts
    return LossOutput(per_example.mean(), per_example, {"step_accuracy": accuracy})


def make_step_loss(model: Any, data: StepData, pad_id: int) -> StepLoss:
    """The micro-batch loss of the ``solutions`` stream."""
    targets = data.targets()

    def step_loss(micro: dict[str, MicroBatch], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mb = micro["solutions"]
        encs = [data.encodings[i] for i in mb.indices]
        logits, rows = step_logits(model, [e.input_ids for e in encs], [e.label_positions for e in encs], pad_id)
        y = torch.tensor([t for i in mb.indices for t in targets[i]], dtype=torch.long, device=logits.device)
        out = prm_loss(logits, y, rows, len(mb.indices))
        w = torch.tensor(mb.weights, dtype=torch.float32, device=logits.device)
        sums = weighted_sums(out, w)
        return (out.per_example * w).sum() * scales["solutions"], sums

    return step_loss


def evaluate_steps(model: Any, pad_id: int, data: StepData, *, threshold: float, max_tokens: int,
                   seed: int = 0) -> dict[str, float]:
    """Step accuracy over all kept steps, and first-error accuracy on erroneous / correct solutions and their
    F1 (ProcessBench's rules; steps that did not fit count as predicted right). Every rank computes the whole
    file (the same forwards on each rank, so FSDP's collectives line up)."""
    probs = step_probabilities(model, pad_id, data.encodings, max_tokens=max_tokens)
    targets = data.targets()
    flat_p = np.concatenate([p for p in probs if len(p)]) if any(len(p) for p in probs) else np.zeros(0)
    flat_y = np.array([t for ts in targets for t in ts], dtype=np.int64)
    gold = np.array([next((i for i, v in enumerate(r.labels) if not v), -1) for r in data.rows], dtype=np.int64)
    pred = np.array([predicted_first_error(p, threshold) for p in probs], dtype=np.int64)
    fe = first_error_metrics(pred, gold, n_boot=0, seed=seed)
    return {"step_accuracy": float(((flat_p >= threshold) == (flat_y == 1)).mean()) if len(flat_y) else float("nan"),
            "steps": float(len(flat_y)), "error_accuracy": fe.error_accuracy.value,
            "correct_accuracy": fe.correct_accuracy.value, "f1": fe.f1.value}


def apply_token_lora(model: Any, lora: LoraSection) -> Any:
    """LoRA adapters on a token classifier; its head (``classifier`` / ``score``) is trained in full, never
    adapted (peft's ``all-linear`` would otherwise also wrap the head it keeps trainable)."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets: str | list[str] = lora.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(task_type=TaskType.TOKEN_CLS, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets, exclude_modules=list(_HEADS), modules_to_save=list(_HEADS))
    return get_peft_model(model, config)


_HEADS = ("classifier", "score")  # the token-classification head's name in BERT-like and decoder models


def build_prm_job(cfg: PrmTrainConfig, accelerator: Any) -> Job:
    """Data (validated before the head is trained), the PRM (+ LoRA), the loss and the evaluation."""
    with accelerator.main_process_first():
        train_rows = read_step_rows(cfg.data, skip_invalid=cfg.skip_invalid)
        eval_rows = read_step_rows(cfg.eval_data, skip_invalid=cfg.skip_invalid) if cfg.eval_data else None
    prm = build_prm(cfg.model, max_length=cfg.max_length)
    train = encode_step_rows(cfg.data, train_rows, prm)
    held_out = encode_step_rows(cfg.eval_data, eval_rows, prm) if cfg.eval_data and eval_rows else None
    if cfg.lora.r:
        prm.model = apply_token_lora(prm.model, cfg.lora)
    pad = prm.pad_token_id

    def make_evaluate(model: Any) -> Any:
        assert held_out is not None
        return lambda: evaluate_steps(model, pad, held_out, threshold=cfg.threshold,
                                      max_tokens=cfg.eval_batch_tokens, seed=cfg.seed)

    def save(net: Any, out: Path, metadata: dict[str, Any]) -> None:
        prm.model = net
        save_prm(prm, out, metadata)

    summary = {"data": train.summary(), "eval_data": held_out.summary() if held_out else None}
    return Job("prm", prm.model, {"solutions": [len(e.input_ids) for e in train.encodings]},
               lambda model: make_step_loss(model, train, pad),
               make_evaluate if held_out is not None else None, save, summary, unit="solutions")


def train_prm(cfg: PrmTrainConfig) -> TrainResult:
    """Train a PRM as configured and save it to ``cfg.out`` (a plain ``AutoModelForTokenClassification``)."""
    if not cfg.data:
        raise InputError("--data is required (a stepwise file)")
    return run_job(cfg, build_prm_job)
