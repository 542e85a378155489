"""``rewardkit train policy`` / ``train sft``: a causal LM trained on the one loop.

The loss's input type decides the data and the step: a ``PreferenceLogps`` loss (dpo, ipo, simpo, ...)
trains on preference pairs -- chosen and rejected in one right-padded (2b, T) forward, the response
tokens' log-probs summed by :func:`~rewardkit.models.causal_lm.sequence_logps`, the reference's beside
them --; a ``ResponseLogps`` loss (sft) trains on prompt/completion rows, or on the chosen side of pairs.

The reference (``reference``, default the starting model) is either run once before training over the
training and evaluation data, its log-probs stored as columns ``ref_chosen``/``ref_rejected`` of the
tokenized data and the model freed (``precompute``), or kept and run each step without gradients
(``live``). The saved folder is a plain ``AutoModelForCausalLM`` (LoRA merged) with its tokenizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.chat import PairEncoder
from rewardkit.data.collate import MicroBatch
from rewardkit.data.dataset import file_fingerprint, load_examples, tokenize_examples, truncation_stats
from rewardkit.errors import MissingInputError
from rewardkit.losses import LossOutput, PreferenceLogps, ResponseLogps
from rewardkit.losses.policy import REFERENCE_LOSSES
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.causal_lm import (
    ensure_distinct_pad,
    response_mask_from_starts,
    right_pad,
    sequence_logps,
)
from rewardkit.stats import pairwise_summary
from rewardkit.train.config import PolicyTrainConfig
from rewardkit.train.evaluation import shard_plan
from rewardkit.train.job import Job, TrainResult, apply_lora, run_job
from rewardkit.train.loop import StepLoss
from rewardkit.train.reward import weighted_sums

_SIDES = ("chosen", "rejected")


class PolicyNet(torch.nn.Module):
    """A causal LM (optionally wrapped by peft) whose forward returns the summed log-probs of the marked
    response tokens, so the accelerator's wrapper (DDP, FSDP) sees every forward."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) int64 ids, (B, T) 0/1 mask, (B, T) bool response mask -> (sums (B,) float32, counts (B,))."""
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        out = sequence_logps(base, input_ids, attention_mask, response_mask)
        return out.sums, out.counts


def load_policy_lm(name: str, *, disable_dropout: bool = True) -> tuple[Any, Any]:
    """(model in fp32, tokenizer) of the causal LM ``name`` for training, with the one pad rule."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_backbone(name)
    if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
        raise MissingInputError(f"{name}: no such model folder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ensure_distinct_pad(tokenizer, model)
    if disable_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        for key in ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "attn_pdrop", "embd_pdrop"):
            if isinstance(getattr(model.config, key, None), float):
                setattr(model.config, key, 0.0)
    return model, tokenizer


def batch_logps(net: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int], pad_id: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``seqs`` (B, T) and score tokens from each ``starts[i]`` on: (sums (B,) float32, counts (B,))."""
    input_ids, mask = right_pad(seqs, pad_id, device)
    return net(input_ids, mask, response_mask_from_starts(mask, starts))


@torch.no_grad()
def logps_on_all_ranks(accelerator: Any, net: Any, pad_id: int, seqs: Sequence[Sequence[int]],
                       starts: Sequence[int], *, max_tokens: int) -> np.ndarray:
    """Summed response log-probs (N,) float64 of every sequence, in input order, the same on every rank:
    each rank scores its shard (:func:`~rewardkit.train.evaluation.shard_plan`), then one gather."""
    world, rank = accelerator.num_processes, accelerator.process_index
    plan = shard_plan([len(s) for s in seqs], world, max_tokens=max_tokens)
    mine = plan.items[rank] if len(plan.items) else np.zeros(0, dtype=np.int64)
    local = torch.zeros(len(mine), dtype=torch.float32, device=accelerator.device)
    for lo, hi in plan.batches:
        idx = mine[lo:hi].tolist()
        with accelerator.autocast():
            sums, _ = batch_logps(net, [seqs[i] for i in idx], [starts[i] for i in idx], pad_id, accelerator.device)
        local[lo:hi] = sums.float()
    gathered = accelerator.gather(local).cpu().numpy() if world > 1 else local.cpu().numpy()
    out = np.zeros(len(seqs), dtype=np.float64)
    out[plan.items.reshape(-1)] = gathered
    return out


def response_counts(seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> np.ndarray:
    """Scored tokens per sequence (N,): from ``max(start, 1)`` (nothing predicts the first token) to the end."""
    return np.array([max(len(s) - max(st, 1), 0) for s, st in zip(seqs, starts, strict=True)], dtype=np.float64)


@dataclass
class PolicyData:
    """A validated, tokenized file: ``tokenized`` has ``chosen_*``/``rejected_*`` columns (and, once the
    reference is precomputed, ``ref_chosen``/``ref_rejected``)."""

    path: str
    loaded: Any
    tokenized: Any

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": file_fingerprint(self.path), "examples": len(self.tokenized),
                **self.loaded.to_dict(), "truncation": truncation_stats(self.tokenized).to_dict()}

    def sides(self, paired: bool) -> tuple[str, ...]:
        return _SIDES if paired else ("chosen",)

    def column(self, side: str) -> tuple[list[list[int]], list[int]]:
        """(input ids, response starts) of one side, as lists."""
        cols = self.tokenized.select_columns([f"{side}_input_ids", f"{side}_response_start"])[:]
        return cols[f"{side}_input_ids"], cols[f"{side}_response_start"]


def _load(path: str, cfg: PolicyTrainConfig, encoder: PairEncoder, paired: bool) -> PolicyData:
    loaded = load_examples(path, kind="preference" if paired else "any", skip_invalid=cfg.skip_invalid)
    return PolicyData(path, loaded, tokenize_examples(loaded.dataset, encoder))


def precompute_reference(accelerator: Any, ref: PolicyNet, pad_id: int, data: PolicyData, paired: bool,
                         max_tokens: int) -> None:
    """Add the reference's summed response log-probs as columns ``ref_<side>`` of ``data.tokenized``."""
    for side in data.sides(paired):
        seqs, starts = data.column(side)
        values = logps_on_all_ranks(accelerator, ref, pad_id, seqs, starts, max_tokens=max_tokens)
        data.tokenized = data.tokenized.add_column(f"ref_{side}", values.tolist())


def policy_inputs(model: Any, ref: Any, rows: dict[str, list[Any]], pad_id: int, device: torch.device, *,
                  paired: bool, with_reference: bool) -> PreferenceLogps | ResponseLogps:
    """The loss's typed inputs for ``rows``: chosen and rejected in one (2b, T) forward (pairs), or the
    chosen side alone (sft); the reference's from the precomputed columns or a no-grad forward of ``ref``."""
    b = len(rows["chosen_input_ids"])
    if not paired:
        sums, counts = batch_logps(model, rows["chosen_input_ids"], rows["chosen_response_start"], pad_id, device)
        return ResponseLogps(sums.float(), counts.float())
    seqs = rows["chosen_input_ids"] + rows["rejected_input_ids"]
    starts = rows["chosen_response_start"] + rows["rejected_response_start"]
    sums, counts = batch_logps(model, seqs, starts, pad_id, device)  # (2b,), (2b,)
    ref_c = ref_r = None
    if with_reference and ref is not None:
        with torch.no_grad():
            ref_sums, _ = batch_logps(ref, seqs, starts, pad_id, device)
        ref_c, ref_r = ref_sums[:b].float(), ref_sums[b:].float()
    elif with_reference:
        ref_c = torch.tensor(rows["ref_chosen"], dtype=torch.float32, device=device)
        ref_r = torch.tensor(rows["ref_rejected"], dtype=torch.float32, device=device)
    return PreferenceLogps(sums[:b].float(), sums[b:].float(), counts[:b].float(), counts[b:].float(), ref_c, ref_r)


def make_step_loss(model: Any, ref: Any, columns: Any, pad_id: int, cfg: PolicyTrainConfig, *, paired: bool,
                   with_reference: bool) -> StepLoss:
    """The micro-batch loss of the first stream (``pairs`` or ``sequences``)."""
    loss = cfg.loss.spec
    device = next(model.parameters()).device
    stream = "pairs" if paired else "sequences"

    def step_loss(micro: dict[str, MicroBatch], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mb = micro[stream]
        rows = columns[mb.indices]
        inputs = policy_inputs(model, ref, rows, pad_id, device, paired=paired, with_reference=with_reference)
        out: LossOutput = loss(inputs, cfg.loss.options)
        w = torch.tensor(mb.weights, dtype=torch.float32, device=device)
        sums = weighted_sums(out, w)
        with torch.no_grad():
            if isinstance(inputs, PreferenceLogps):
                sums.setdefault("logps_chosen", (inputs.policy_chosen.detach() * w).sum())
                sums.setdefault("logps_rejected", (inputs.policy_rejected.detach() * w).sum())
            else:
                sums.setdefault("logps", (inputs.policy.detach() * w).sum())
        return (out.per_example * w).sum() * scales[stream], sums

    return step_loss


def implicit_rewards(policy: np.ndarray, ref: np.ndarray | None, counts: np.ndarray, beta: float) -> np.ndarray:
    """β·(log π − log π_ref) per response (N,), or β·(log π)/|y| without a reference (SimPO's reward)."""
    if ref is None:
        return beta * policy / np.maximum(counts, 1)
    return beta * (policy - ref)


def evaluate_policy(accelerator: Any, model: Any, ref: Any, pad_id: int, data: PolicyData, cfg: PolicyTrainConfig,
                    *, paired: bool, with_reference: bool) -> dict[str, float]:
    """Held-out metrics, the same on every rank. Pairs: implicit-reward accuracy with its 95% bootstrap
    interval, mean margin, mean chosen and rejected log-probs. Sequences: token-level NLL and perplexity."""
    kw = {"max_tokens": cfg.eval_batch_tokens}
    if not paired:
        seqs, starts = data.column("chosen")
        logps = logps_on_all_ranks(accelerator, model, pad_id, seqs, starts, **kw)
        nll = float(-logps.sum() / max(response_counts(seqs, starts).sum(), 1.0))
        return {"nll": nll, "perplexity": math.exp(min(nll, 700.0)), "sequences": float(len(seqs))}
    beta = float(getattr(cfg.loss.options, "beta", 1.0))
    rewards, logps = {}, {}
    for side in _SIDES:
        seqs, starts = data.column(side)
        logps[side] = logps_on_all_ranks(accelerator, model, pad_id, seqs, starts, **kw)
        ref_side = None
        if with_reference:
            ref_side = np.asarray(data.tokenized[f"ref_{side}"], dtype=np.float64) if ref is None else \
                logps_on_all_ranks(accelerator, ref, pad_id, seqs, starts, **kw)
        rewards[side] = implicit_rewards(logps[side], ref_side, response_counts(seqs, starts), beta)
    summary = pairwise_summary(rewards["chosen"], rewards["rejected"], seed=cfg.seed)
    return {**summary, "logps_chosen": float(np.mean(logps["chosen"])),
            "logps_rejected": float(np.mean(logps["rejected"]))}


def save_policy(net: PolicyNet, tokenizer: Any, out: Path, metadata: dict[str, Any]) -> None:
    """A plain ``AutoModelForCausalLM`` folder (LoRA merged into the weights), its tokenizer and
    ``rewardkit.json``."""
    lm = net.lm
    if hasattr(lm, "merge_and_unload"):
        lm = lm.merge_and_unload()
    lm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "rewardkit.json").write_text(json.dumps(metadata, indent=2, default=str), encoding="utf-8")


def _reference_net(cfg: PolicyTrainConfig, accelerator: Any, tokenizer: Any) -> PolicyNet:
    name = cfg.reference or cfg.model
    lm, ref_tok = load_policy_lm(name, disable_dropout=True)
    if ref_tok.get_vocab() != tokenizer.get_vocab():
        from rewardkit.errors import OptionError

        raise OptionError(f"reference {name!r}: its tokenizer differs from the policy's ({cfg.model!r})")
    net = PolicyNet(lm).to(accelerator.device).eval()
    net.requires_grad_(False)
    return net


def build_policy_job(cfg: PolicyTrainConfig, accelerator: Any) -> Job:
    """Data (validated before the model is built), the policy (+ LoRA), the reference (precomputed or
    live), the loss and the evaluation."""
    paired = cfg.loss.spec.inputs is PreferenceLogps
    with_reference = paired and cfg.loss.name in REFERENCE_LOSSES  # simpo: none
    lm, tokenizer = load_policy_lm(cfg.model, disable_dropout=cfg.disable_dropout)
    encoder = PairEncoder(tokenizer, "chat" if getattr(tokenizer, "chat_template", None) else "concat", cfg.max_length)
    with accelerator.main_process_first():
        train = _load(cfg.data, cfg, encoder, paired)
        held_out = _load(cfg.eval_data, cfg, encoder, paired) if cfg.eval_data else None
    ref = _reference_net(cfg, accelerator, tokenizer) if with_reference else None
    if ref is not None and cfg.reference_mode == "precompute":
        for data in (train, held_out):
            if data is not None:
                precompute_reference(accelerator, ref, tokenizer.pad_token_id, data, paired, cfg.eval_batch_tokens)
        ref = None  # freed: training reads the columns
    if cfg.lora.r:
        lm = apply_lora(lm, cfg.lora, task_type="CAUSAL_LM")
    net = PolicyNet(lm)
    names = [f"{s}_{c}" for s in train.sides(paired) for c in ("input_ids", "response_start")]
    if with_reference and ref is None:
        names += [f"ref_{s}" for s in _SIDES]
    columns = train.tokenized.select_columns(names)
    pad = tokenizer.pad_token_id
    unit = "pairs" if paired else "sequences"
    lengths = [sum(len(x) for x in row) for row in zip(*(train.column(s)[0] for s in train.sides(paired)), strict=True)]

    def make_evaluate(model: Any) -> Any:
        assert held_out is not None
        return lambda: evaluate_policy(accelerator, model, ref, pad, held_out, cfg, paired=paired,
                                       with_reference=with_reference)

    def save(unwrapped: Any, out: Path, metadata: dict[str, Any]) -> None:
        save_policy(unwrapped, tokenizer, out, {**metadata, "policy": policy_metadata(cfg, with_reference)})

    summary = {"data": train.summary(), "eval_data": held_out.summary() if held_out else None,
               "tokens_per_example": float(np.mean(lengths)) if lengths else 0.0}
    return Job("policy" if paired else "sft", net, {unit: list(train.tokenized["length"])},
               lambda model: make_step_loss(model, ref, columns, pad, cfg, paired=paired, with_reference=with_reference),
               make_evaluate if held_out is not None else None, save, summary, unit=unit)


def policy_metadata(cfg: PolicyTrainConfig, with_reference: bool) -> dict[str, Any]:
    """What ``rewardkit.json`` says about the loss and the reference."""
    return {"loss": cfg.loss.to_dict(), "beta": getattr(cfg.loss.options, "beta", None),
            "reference": (cfg.reference or cfg.model) if with_reference else None,
            "reference_mode": cfg.reference_mode if with_reference else None,
            "reference_logps": ("precomputed once before training, fp32 weights, under the run's autocast"
                                if cfg.reference_mode == "precompute" else "computed each step without gradients")
            if with_reference else None,
            "lora_merged": bool(cfg.lora.r)}


def train_policy(cfg: PolicyTrainConfig) -> TrainResult:
    """Train a policy as configured and save it to ``cfg.out`` (a plain ``AutoModelForCausalLM`` folder)."""
    return run_job(cfg, build_policy_job)
