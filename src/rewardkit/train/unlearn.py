"""``rewardkit train unlearn``: remove a forget set from a causal LM on the one loop (METHODS §7).

Two data streams: ``forget`` (first: it sets the epoch) and ``retain`` (only when the loss's config says
``retain`` is ``nll`` or ``kl``). Each optimizer step sees one global batch of each; the loss is

    total = forget_coef · mean_forget(L_f) + retain_coef · mean_retain(L_r)

each mean taken by the loop's per-stream scale (a stream's sum over its real examples of the global
batch, so accumulation and processes never change it). The forget loss's input type decides its inputs:

- ``ForgetLogps`` (ga, grad_diff, npo, simnpo): Σ_t log π over each forget answer's tokens, and the
  reference's (npo) from columns precomputed before training or a live no-grad forward;
- ``TemplateProbs`` (flat): per-token probabilities of a refusal template answer and of the forget answer
  to the same question (one template per row, a seeded choice from ``--templates``);
- ``PreferenceLogps`` (idk): DPO with the refusal as chosen and the forget answer as rejected.

The retain term is ``retain_nll`` (``ResponseLogps``) or ``retain_kl`` (``RetainKL``: Σ_t KL(π_ref‖π_θ)
over the answer tokens, chunked by :func:`~rewardkit.models.causal_lm.sequence_kl`; it needs the whole
next-token distribution of the reference, so the reference stays in memory). The policy's pieces are
those of ``train policy`` (:mod:`rewardkit.train.policy`); the saved folder is a plain
``AutoModelForCausalLM`` (LoRA merged) + ``rewardkit.json``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from rewardkit.data.chat import PairEncoder
from rewardkit.data.collate import MicroBatch
from rewardkit.data.dataset import file_fingerprint
from rewardkit.errors import InputError, OptionError
from rewardkit.losses import (
    LOSSES,
    ForgetLogps,
    LossOutput,
    PreferenceLogps,
    ResponseLogps,
    RetainKL,
    TemplateProbs,
)
from rewardkit.losses.unlearning import REFERENCE_UNLEARN_LOSSES, RETAIN_LOSSES
from rewardkit.models.causal_lm import response_mask_from_starts, right_pad, sequence_kl, sequence_logps
from rewardkit.train.config import LossSection, TrainConfig
from rewardkit.train.job import Job, TrainResult, apply_lora, run_job
from rewardkit.train.loop import StepLoss
from rewardkit.train.policy import (
    PolicyNet,
    _reference_net,
    load_policy_lm,
    logps_on_all_ranks,
    policy_inputs,
    response_counts,
    save_policy,
)
from rewardkit.train.reward import weighted_sums


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


FORGET_INPUTS = (ForgetLogps, TemplateProbs, PreferenceLogps)


def unlearning_losses() -> list[str]:
    """Registered forget losses: their config has ``forget_coef`` and ``retain`` and they take one of
    :data:`FORGET_INPUTS`."""
    out = []
    for name in LOSSES.names():
        spec = LOSSES.get(name)
        fields = {f.name for f in dataclasses.fields(spec.config)}
        if spec.inputs in FORGET_INPUTS and {"forget_coef", "retain", "retain_coef"} <= fields:
            out.append(name)
    return out


class UnlearnLossSection(LossSection):
    """``loss`` of ``rewardkit train unlearn``: a registered forget loss (ga, grad_diff, npo, simnpo, flat,
    idk) with its own settings, ``forget_coef``, ``retain`` (none|nll|kl) and ``retain_coef`` included."""

    default_name = "npo"


@dataclass
class UnlearnTrainConfig(TrainConfig):
    """Unlearning (``rewardkit train unlearn``): a causal LM trained to forget ``forget`` (TRL
    prompt-completion rows, TOFU or MUSE files; :func:`rewardkit.data.unlearning.read_unlearning_rows`)
    while a retain term keeps ``retain``. Defaults follow open-unlearning's TOFU runs (lr 1e-5, β per loss)."""

    forget: str = _f("", "forget set: rows whose answers the model should no longer give (the first stream)")
    retain: str | None = _f(None, "retain set: rows to keep (the second stream); required when loss.retain is "
                            "nll or kl")
    data: str = _f("", "same as --forget")
    model: str = _f("smollm2-135m", "causal LM to unlearn from: alias (smollm2-135m), local path or hub name")
    out: str = _f("runs/unlearn", "output folder: the HF causal LM (LoRA merged), rewardkit.json, logs/, checkpoints/")
    max_length: int = _f(512, "max tokens per (question, answer); longer inputs are truncated (keep-response policy)")
    batch_size: int = _f(4, "forget (and retain) rows per device per micro-batch")
    lr: float = _f(1e-5, "peak learning rate (AdamW); 1e-5 as open-unlearning's TOFU runs, ~1e-4 with LoRA")
    warmup_ratio: float = _f(0.1, "fraction of steps of linear warmup")
    eval_batch_tokens: int = _f(8192, "padded-token budget per evaluation (and reference) batch")
    templates: str | None = _f(None, "refusal templates for flat and idk (jsonl of {\"text\": ...} or strings, or "
                               "one per line); default: rewardkit's shipped list")
    loss: UnlearnLossSection = field(default_factory=UnlearnLossSection, metadata={"help": "loss settings"})
    reference: str | None = _f(None, "reference model for npo, idk and loss.retain=kl (alias, path or hub name); "
                               "default: the starting --model itself")
    reference_mode: Literal["precompute", "live"] = _f(
        "precompute", "precompute: the reference's forget log-probs computed once before training (the model is "
        "then freed, unless loss.retain=kl needs it); live: kept and run each step without gradients")
    disable_dropout: bool = _f(True, "turn the model's dropout off: the policy and the reference agree at step 0")

    def __post_init__(self) -> None:
        if self.forget and self.data and self.forget != self.data:
            raise OptionError(f"--forget {self.forget} and --data {self.data} differ; give one of them")
        self.forget = self.data = self.forget or self.data
        super().__post_init__()
        if isinstance(self.loss, dict):
            self.loss = UnlearnLossSection(**self.loss)
        if self.loss.name not in unlearning_losses():
            raise OptionError(f"loss.name: {self.loss.name!r} is not an unlearning loss; known: "
                              f"{', '.join(unlearning_losses())}")
        if self.reference_mode not in ("precompute", "live"):
            raise OptionError(f"reference_mode must be precompute or live, got {self.reference_mode!r}")
        if self.eval_data:
            raise OptionError("train unlearn evaluates on --forget and --retain; --eval-data is not used")
        kind = self.retain_kind
        if kind not in RETAIN_LOSSES:
            raise OptionError(f"loss.retain must be none, nll or kl, got {kind!r}")
        if kind != "none" and not self.retain:
            raise OptionError(f"loss {self.loss.name!r} trains with a retain term (loss.retain={kind}): give "
                              "--retain FILE, or --set loss.retain=none to forget without one")

    @property
    def retain_kind(self) -> str:
        return str(self.loss.options.retain)

    @property
    def needs_reference(self) -> bool:
        return self.loss.name in REFERENCE_UNLEARN_LOSSES or self.retain_kind == "kl"


# ----------------------------------------------------------------------------- the model


class UnlearnNet(PolicyNet):
    """The policy (optionally LoRA-wrapped); every training forward goes through the accelerator's wrapper.

    Default: ``(sums (B,), counts (B,))`` of the response log-probs, as :class:`PolicyNet` (so
    ``batch_logps``/``logps_on_all_ranks`` work on it). ``per_token=True`` adds the per-token log-probs
    (B, T) float32; ``kl_ref=REF`` returns ``(Σ_t KL(π_ref‖π_θ) (B,), counts (B,))`` instead."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor, *,
                per_token: bool = False, kl_ref: Any = None) -> tuple[torch.Tensor, ...]:
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        if kl_ref is not None:
            ref = kl_ref.lm.get_base_model() if hasattr(kl_ref.lm, "get_base_model") else kl_ref.lm
            kl = sequence_kl(base, ref, input_ids, attention_mask, response_mask)
            return kl.sums, kl.counts
        out = sequence_logps(base, input_ids, attention_mask, response_mask)
        return (out.sums, out.counts, out.tokens) if per_token else (out.sums, out.counts)


# ----------------------------------------------------------------------------- data


@dataclass
class Seqs:
    """Tokenized (question, answer) sequences: ``ids`` and where each answer starts."""

    ids: list[list[int]]
    starts: list[int]

    def take(self, idx: Sequence[int]) -> tuple[list[list[int]], list[int]]:
        return [self.ids[i] for i in idx], [self.starts[i] for i in idx]


@dataclass
class UnlearnSet:
    """One file's rows, tokenized: ``answers`` (question + its answer) and, for flat and idk, ``templates``
    (question + its refusal); ``ref`` the reference's precomputed answer/template log-prob sums (N,)."""

    path: str
    rows: list[Any]
    answers: Seqs
    templates: Seqs | None = None
    ref: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": file_fingerprint(self.path), "examples": len(self.rows)}


def encode(encoder: PairEncoder, rows: Sequence[Any], answers: Sequence[str]) -> Seqs:
    """Each row's question (its prompt messages) with ``answers[i]`` as the assistant turn."""
    ids, starts = [], []
    for row, answer in zip(rows, answers, strict=True):
        enc = encoder.encode(list(row.prompt), [{"role": "assistant", "content": answer}], True)
        ids.append(list(enc.input_ids))
        starts.append(int(enc.response_start))
    return Seqs(ids, starts)


def pick_templates(templates: Sequence[str], n: int, seed: int) -> list[str]:
    """A refusal per row: row i's is a seeded choice of its own (the same whatever the number of rows)."""
    return [templates[random.Random(seed * 1_000_003 + i).randrange(len(templates))] for i in range(n)]


def read_templates(path: str | None) -> list[str]:
    """Refusal templates: the shipped list, or ``path`` (jsonl of strings or ``{"text": ...}``, or plain lines)."""
    from rewardkit.data.unlearning import refusal_templates

    if path is None:
        return list(refusal_templates())
    import json

    p = Path(path)
    if not p.exists():
        raise InputError(f"--templates {path}: no such file")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix in (".jsonl", ".json"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not JSON ({e.msg})") from None
            value = value.get("text") if isinstance(value, dict) else value
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{path}:{n}: expected a string or {{\"text\": ...}}")
            out.append(value)
        else:
            out.append(line.strip())
    if not out:
        raise InputError(f"--templates {path}: no templates")
    return out


def load_set(path: str, encoder: PairEncoder, templates: Sequence[str] | None, seed: int) -> UnlearnSet:
    from rewardkit.data.unlearning import read_unlearning_rows

    rows = read_unlearning_rows(path)
    if not rows:
        raise InputError(f"{path}: no rows")
    out = UnlearnSet(path, rows, encode(encoder, rows, [r.answer for r in rows]))
    if templates is not None:
        out.templates = encode(encoder, rows, pick_templates(templates, len(rows), seed))
    return out


# ----------------------------------------------------------------------------- inputs of one micro-batch


def answer_probs(tokens: torch.Tensor, response: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-aligned per-token probabilities of each row's scored tokens: ``tokens`` (B, T) log-probs,
    ``response`` (B, T) bool -> (probs (B, L) float32, mask (B, L) bool), L the longest answer."""
    scored = response.clone()
    scored[:, 0] = False  # nothing predicts the first token
    rows = [tokens[i][scored[i]].exp() for i in range(tokens.shape[0])]
    probs = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, L)
    lengths = torch.tensor([len(r) for r in rows], device=tokens.device)
    mask = torch.arange(probs.shape[1], device=tokens.device)[None, :] < lengths[:, None]
    return probs.float(), mask


def template_probs(model: Any, data: UnlearnSet, idx: Sequence[int], pad_id: int,
                   device: torch.device) -> TemplateProbs:
    """FLAT's inputs: templates and forget answers of rows ``idx`` in one (2b, T) forward."""
    assert data.templates is not None
    t_ids, t_starts = data.templates.take(idx)
    f_ids, f_starts = data.answers.take(idx)
    ids, mask = right_pad(t_ids + f_ids, pad_id, device)
    response = response_mask_from_starts(mask, t_starts + f_starts)
    _, _, tokens = model(ids, mask, response, per_token=True)
    b = len(idx)
    te, te_mask = answer_probs(tokens[:b], response[:b])
    tf, tf_mask = answer_probs(tokens[b:], response[b:])
    return TemplateProbs(te, te_mask, tf, tf_mask)


def forget_inputs(model: Any, ref: Any, data: UnlearnSet, idx: Sequence[int], pad_id: int, device: torch.device,
                  cfg: UnlearnTrainConfig) -> ForgetLogps | TemplateProbs | PreferenceLogps:
    """The forget loss's typed inputs for rows ``idx`` (reference: ``ref`` live, else the precomputed columns)."""
    kind = cfg.loss.spec.inputs
    with_ref = cfg.loss.name in REFERENCE_UNLEARN_LOSSES
    if kind is TemplateProbs:
        return template_probs(model, data, idx, pad_id, device)
    if kind is PreferenceLogps:
        assert data.templates is not None
        (c_ids, c_st), (r_ids, r_st) = data.templates.take(idx), data.answers.take(idx)
        rows: dict[str, list[Any]] = {"chosen_input_ids": c_ids, "chosen_response_start": c_st,
                                      "rejected_input_ids": r_ids, "rejected_response_start": r_st}
        if with_ref and ref is None:
            rows["ref_chosen"] = data.ref["templates"][list(idx)].tolist()
            rows["ref_rejected"] = data.ref["answers"][list(idx)].tolist()
        return policy_inputs(model, ref, rows, pad_id, device, paired=True, with_reference=with_ref)
    seqs, starts = data.answers.take(idx)
    ids, mask = right_pad(seqs, pad_id, device)
    sums, counts = model(ids, mask, response_mask_from_starts(mask, starts))
    ref_sums = None
    if with_ref and ref is not None:
        with torch.no_grad():
            ref_sums, _ = ref(ids, mask, response_mask_from_starts(mask, starts))
    elif with_ref:
        ref_sums = torch.tensor(data.ref["answers"][list(idx)], dtype=torch.float32, device=device)
    return ForgetLogps(sums.float(), counts.float(), None if ref_sums is None else ref_sums.float())


def retain_inputs(model: Any, ref: Any, data: UnlearnSet, idx: Sequence[int], pad_id: int, device: torch.device,
                  kind: str) -> ResponseLogps | RetainKL:
    """``retain_nll``'s ``ResponseLogps`` or ``retain_kl``'s ``RetainKL`` for retain rows ``idx``."""
    seqs, starts = data.answers.take(idx)
    ids, mask = right_pad(seqs, pad_id, device)
    response = response_mask_from_starts(mask, starts)
    if kind == "kl":
        kl, counts = model(ids, mask, response, kl_ref=ref)
        return RetainKL(kl.float(), counts.float())
    sums, counts = model(ids, mask, response)
    return ResponseLogps(sums.float(), counts.float())


def make_step_loss(model: Any, forget_ref: Any, kl_ref: Any, forget: UnlearnSet, retain: UnlearnSet | None,
                   pad_id: int, cfg: UnlearnTrainConfig) -> StepLoss:
    """γ·Σ_forget L_f·scale_forget + α·Σ_retain L_r·scale_retain; logs ``loss`` (the total), ``forget_loss``,
    ``retain_loss`` and the forget loss's own metrics, as means over each stream's examples. ``forget_ref``:
    the live reference of npo/idk (None: precomputed columns); ``kl_ref``: the retain KL's reference."""
    spec, opts = cfg.loss.spec, cfg.loss.options
    retain_name = RETAIN_LOSSES[cfg.retain_kind]
    retain_spec = LOSSES.get(retain_name) if retain is not None and retain_name else None
    device = next(model.parameters()).device

    def step_loss(micro: dict[str, MicroBatch], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mb = micro["forget"]
        w = torch.tensor(mb.weights, dtype=torch.float32, device=device)
        out: LossOutput = spec(forget_inputs(model, forget_ref, forget, mb.indices, pad_id, device, cfg), opts)
        total = opts.forget_coef * (out.per_example * w).sum() * scales["forget"]
        sums = weighted_sums(out, w)
        sums["forget_loss"] = sums["loss"]
        sums["loss"] = opts.forget_coef * sums["loss"]
        if retain is not None and retain_spec is not None:
            rb = micro["retain"]
            wr = torch.tensor(rb.weights, dtype=torch.float32, device=device)
            r_out: LossOutput = retain_spec(retain_inputs(model, kl_ref, retain, rb.indices, pad_id, device,
                                                          cfg.retain_kind))
            r_sum = (r_out.per_example * wr).sum()
            total = total + opts.retain_coef * r_sum * scales["retain"]
            # logged as a mean over the forget examples: rescaled so it reads as the retain mean
            r_logged = r_sum.detach() * (scales["retain"] / scales["forget"])
            sums["retain_loss"] = r_logged
            sums["loss"] = sums["loss"] + opts.retain_coef * r_logged
        return total, sums

    return step_loss


# ----------------------------------------------------------------------------- evaluation


def answer_metrics(accelerator: Any, model: Any, pad_id: int, data: UnlearnSet, max_tokens: int) -> tuple[float, float]:
    """(mean over rows of exp(mean token log-prob of the answer), token-level NLL of the answers), the same
    on every rank (sharded like ``logps_on_all_ranks``)."""
    sums = logps_on_all_ranks(accelerator, model, pad_id, data.answers.ids, data.answers.starts, max_tokens=max_tokens)
    counts = response_counts(data.answers.ids, data.answers.starts)
    prob = float(np.mean(np.exp(sums / np.maximum(counts, 1.0))))
    return prob, float(-sums.sum() / max(counts.sum(), 1.0))


def evaluate_unlearning(accelerator: Any, model: Any, pad_id: int, forget: UnlearnSet, retain: UnlearnSet | None,
                        max_tokens: int) -> dict[str, float]:
    """``forget_answer_prob``, ``forget_nll`` and, with a retain set, ``retain_answer_prob``, ``retain_nll``."""
    out: dict[str, float] = {}
    for name, data in (("forget", forget), ("retain", retain)):
        if data is not None:
            prob, nll = answer_metrics(accelerator, model, pad_id, data, max_tokens)
            out[f"{name}_answer_prob"], out[f"{name}_nll"] = prob, nll
    return out


# ----------------------------------------------------------------------------- the job


def _precompute(accelerator: Any, ref: Any, pad_id: int, data: UnlearnSet, max_tokens: int) -> None:
    """The reference's summed log-probs of the answers (and templates) as ``data.ref`` columns."""
    for name in ("answers", "templates"):
        seqs = getattr(data, name)
        if seqs is not None:
            data.ref[name] = logps_on_all_ranks(accelerator, ref, pad_id, seqs.ids, seqs.starts, max_tokens=max_tokens)


def build_unlearn_job(cfg: UnlearnTrainConfig, accelerator: Any) -> Job:
    """Data (read and validated before the models load), the policy (+ LoRA), the reference (precomputed,
    live, or kept for the retain KL), the two streams, the loss and the evaluation."""
    uses_templates = cfg.loss.spec.inputs in (TemplateProbs, PreferenceLogps)
    templates = read_templates(cfg.templates) if uses_templates else None
    lm, tokenizer = load_policy_lm(cfg.model, disable_dropout=cfg.disable_dropout)
    encoder = PairEncoder(tokenizer, "chat" if getattr(tokenizer, "chat_template", None) else "concat", cfg.max_length)
    with accelerator.main_process_first():
        forget = load_set(cfg.forget, encoder, templates, cfg.seed)
        retain = load_set(cfg.retain, encoder, None, cfg.seed) if cfg.retain else None
    pad = tokenizer.pad_token_id
    ref = None
    if cfg.needs_reference:
        ref = UnlearnNet(_reference_net(cfg, accelerator, tokenizer).lm).eval()
        ref.requires_grad_(False)
        if cfg.reference_mode == "precompute" and cfg.loss.name in REFERENCE_UNLEARN_LOSSES:
            _precompute(accelerator, ref, pad, forget, cfg.eval_batch_tokens)
        if cfg.reference_mode == "precompute" and cfg.retain_kind != "kl":
            ref = None  # freed: training reads the columns
    if cfg.lora.r:
        lm = apply_lora(lm, cfg.lora, task_type="CAUSAL_LM")
    net = UnlearnNet(lm)
    forget_ref = ref if cfg.reference_mode == "live" else None
    streams = {"forget": [len(s) for s in forget.answers.ids]}
    use_retain = retain is not None and cfg.retain_kind != "none"
    if use_retain:
        assert retain is not None
        streams["retain"] = [len(s) for s in retain.answers.ids]

    def step(model: Any) -> StepLoss:
        return make_step_loss(model, forget_ref, ref, forget, retain if use_retain else None, pad, cfg)

    def make_evaluate(model: Any) -> Any:
        return lambda: evaluate_unlearning(accelerator, model, pad, forget, retain, cfg.eval_batch_tokens)

    def save(unwrapped: Any, out: Path, metadata: dict[str, Any]) -> None:
        save_policy(unwrapped, tokenizer, out, {**metadata, "unlearn": unlearn_metadata(cfg, forget, retain)})

    summary = {"forget": forget.summary(), "retain": retain.summary() if retain else None,
               "tokens_per_example": float(np.mean(streams["forget"]))}
    return Job("unlearn", net, streams, step, make_evaluate, save, summary, unit="sequences")


def unlearn_metadata(cfg: UnlearnTrainConfig, forget: UnlearnSet, retain: UnlearnSet | None) -> dict[str, Any]:
    """What ``rewardkit.json`` says about the loss, the data and the reference."""
    return {"loss": cfg.loss.to_dict(), "retain_term": cfg.retain_kind,
            "forget": forget.summary(), "retain": retain.summary() if retain else None,
            "templates": (cfg.templates or "rewardkit shipped refusals") if forget.templates is not None else None,
            "reference": (cfg.reference or cfg.model) if cfg.needs_reference else None,
            "reference_mode": cfg.reference_mode if cfg.needs_reference else None,
            "lora_merged": bool(cfg.lora.r), "eval_metrics": ["forget_answer_prob", "forget_nll",
                                                              "retain_answer_prob", "retain_nll"],
            "answer_prob": "mean over rows of exp(mean token log-prob of the answer)"}


def train_unlearn(cfg: UnlearnTrainConfig) -> TrainResult:
    """Unlearn as configured and save to ``cfg.out`` (a plain ``AutoModelForCausalLM`` folder)."""
    return run_job(cfg, build_unlearn_job)
