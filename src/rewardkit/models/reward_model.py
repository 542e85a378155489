"""Build, save and load reward models as standard ``AutoModelForSequenceClassification`` folders.

A saved reward model is an ordinary Hugging Face folder (safetensors weights with the reward head,
config, tokenizer) that TRL, OpenRLHF and reward-bench load unchanged, plus ``rewardkit.json`` with
what plain transformers cannot know: the input format, max length and truncation policy, the
training config, a fingerprint of the data and the final metrics, and the reward head
(:mod:`rewardkit.models.heads`): its kind, objective names and the formula of the scalar reward, with any
weights plain transformers cannot express in ``head.safetensors``.

Two failure modes of other tools are ruled out here:
- *pad == EOS*: if the tokenizer has no pad token, or its pad token is its EOS, a distinct pad token is
  chosen (the UNK token if it is not EOS, else a new ``<|pad|>`` with resized embeddings), so the
  model's own "last non-pad token" pooling lands on the real last token of every sequence.
- *lost heads*: LoRA adapters are merged before saving and the head is saved as a normal module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.chat import TRUNCATION_POLICY, InputFormat, PairEncoder, input_format_for
from rewardkit.data.io import atomic_write_json, make_readable
from rewardkit.errors import OptionError
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.causal_lm import ensure_distinct_pad
from rewardkit.models.devices import resolve_device, resolve_dtype
from rewardkit.models.features import generation_prompt_length
from rewardkit.models.heads import HeadConfig, HeadOutput, RewardHead, build_head, run_head
from rewardkit.models.uncertainty import LastLayerUncertainty, capture_features, pooled_features

METADATA_FILE = "rewardkit.json"
HEAD_FILE = "head.safetensors"
FORMAT_VERSION = "rewardkit-rm/1"
DEFAULT_MAX_LENGTH = 512


class RewardNet(torch.nn.Module):
    """Backbone and head as one module (what training wraps in DDP/FSDP and optimises):
    ``forward(batch, response_starts)`` -> :class:`~rewardkit.models.heads.HeadOutput`.

    ``uncertainty``: an optional fitted last-layer uncertainty (:mod:`rewardkit.models.uncertainty`, set by
    ``attach_uncertainty``); when present, the same forward also returns ``U`` (N,) in ``uncertainty`` (it
    replaces a gaussian head's own), read from the output layer's input: the backbone runs once."""

    def __init__(self, backbone: Any, head: RewardHead, uncertainty: LastLayerUncertainty | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.uncertainty = uncertainty

    def forward(self, batch: dict[str, torch.Tensor], response_starts: torch.Tensor | None = None) -> HeadOutput:
        if self.uncertainty is None:
            return run_head(self.backbone, self.head, batch, response_starts=response_starts)
        with capture_features(self.backbone) as seen:
            out = run_head(self.backbone, self.head, batch, response_starts=response_starts)
        phi = pooled_features(seen[-1], batch["attention_mask"], self.head.cfg.pooling)  # (N, H)
        return dataclasses.replace(out, uncertainty=self.uncertainty(phi))


@dataclass
class RewardModel:
    """A loaded reward model: backbone and head (``net``; the backbone is a standard HF model, in eval
    mode when loaded), its tokenizer, an encoder that builds its inputs exactly as in training, and the
    metadata of ``rewardkit.json`` (empty for plain HF RMs)."""

    net: RewardNet
    tokenizer: Any
    encoder: PairEncoder
    metadata: dict[str, Any]
    name: str

    @property
    def model(self) -> Any:
        """The HF ``AutoModelForSequenceClassification`` backbone (K outputs = the objectives)."""
        return self.net.backbone

    @model.setter
    def model(self, value: Any) -> None:
        self.net.backbone = value

    @property
    def head(self) -> RewardHead:
        return self.net.head

    @property
    def objectives(self) -> list[str]:
        return list(self.head.cfg.objectives)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def build_reward_model(backbone: str, *, max_length: int | None = None, head: HeadConfig | None = None
                       ) -> RewardModel:
    """A new reward model: ``backbone`` (alias, path or hub name) with a fresh head of ``K`` outputs, fp32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cfg = head or HeadConfig()
    path = resolve_backbone(backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    labels = dict(enumerate(cfg.objectives))
    model = AutoModelForSequenceClassification.from_pretrained(
        path, id2label=labels, label2id={v: k for k, v in labels.items()}, ignore_mismatched_sizes=True,
        dtype=torch.float32)
    ensure_distinct_pad(tokenizer, model)
    fmt = input_format_for(tokenizer, model.config.model_type)
    cfg.pooling = "first" if fmt == "text_pair" else "last"
    cfg.prompt_offset = generation_prompt_length(tokenizer) if fmt == "chat" else 0  # gate before the assistant header
    length = max_length or _default_max_length(tokenizer)
    net = RewardNet(model, build_head(cfg, model.config.hidden_size))
    return RewardModel(net, tokenizer, PairEncoder(tokenizer, fmt, length), {"backbone": backbone}, backbone)


def build_encoder(backbone: str, max_length: int) -> PairEncoder:
    """The encoder a reward model on ``backbone`` would use (its tokenizer, input format and the pad
    rule), without loading any weights: for measuring token lengths (``rewardkit data check``)."""
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_backbone(backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_distinct_pad(tokenizer)
    return PairEncoder(tokenizer, input_format_for(tokenizer, AutoConfig.from_pretrained(path).model_type), max_length)


def _default_max_length(tokenizer: Any) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else DEFAULT_MAX_LENGTH


def save_reward_model(rm: RewardModel, out_dir: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Write ``rm`` as a standard HF folder + ``rewardkit.json``. LoRA is merged first. The metadata
    file is written last and atomically, so its presence marks a complete folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = rm.model
    if hasattr(model, "merge_and_unload"):  # peft: fold adapters into the weights, keep the head
        model = model.merge_and_unload()
    model.config.pad_token_id = rm.tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    rm.tokenizer.save_pretrained(out)
    extras = {k: v.detach().float().cpu().contiguous() for k, v in rm.head.state_dict().items()}
    if extras:
        from safetensors.torch import save_file

        save_file(extras, str(out / HEAD_FILE))
        make_readable(out / HEAD_FILE)  # safetensors writes 0600; a model folder is readable like any output
    for weights in out.glob("*.safetensors"):
        make_readable(weights)
    meta = {
        "format": FORMAT_VERSION,
        "input_format": rm.encoder.input_format,
        "max_length": rm.encoder.max_length,
        "truncation_policy": TRUNCATION_POLICY,
        "objectives": rm.objectives,
        "head": {**rm.head.cfg.to_dict(), "reward_formula": rm.head.formula(),
                 "extras_file": HEAD_FILE if extras else None},
        **metadata,
    }
    write_json_atomic(out / METADATA_FILE, meta)
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` atomically with ordinary permissions (:func:`rewardkit.data.io.atomic_write_json`)."""
    atomic_write_json(path, obj, default=str)


def load_reward_model(
    path: str | os.PathLike[str], *, max_length: int | None = None, dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> RewardModel:
    """Load a rewardkit RM folder, or any HF sequence-classification RM (path or hub name), in eval mode.

    An ensemble folder (``rewardkit.json`` with ``ensemble``) loads as one model whose ``net`` is a
    :class:`~rewardkit.models.ensemble.EnsembleNet` (mean reward, the members' std as uncertainty).
    For a rewardkit folder the input format, max length and head come from ``rewardkit.json``
    (``max_length`` overrides it); for other RMs they are inferred from the tokenizer and model type, and
    a model with K > 1 outputs gets a ``multi`` head with equal weights over its ``id2label`` objectives.
    ``dtype``/``device`` accept ``auto`` (see :mod:`rewardkit.models.devices`).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    name = str(path)
    resolved = resolve_backbone(name)
    meta_path = Path(resolved) / METADATA_FILE
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    if "ensemble" in meta:  # URME: members/0..K-1, scored as one (mean reward, std as uncertainty)
        from rewardkit.models.ensemble import load_ensemble

        return load_ensemble(Path(resolved), meta, name, max_length=max_length, dtype=dtype, device=device)
    where = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(resolved)
    model = AutoModelForSequenceClassification.from_pretrained(resolved, dtype=resolve_dtype(dtype, where))
    model = model.to(where).eval()
    ensure_distinct_pad(tokenizer, model)
    fmt: InputFormat = meta.get("input_format") or input_format_for(tokenizer, model.config.model_type)
    head = _load_head(Path(resolved), meta, model, fmt).to(where).eval()
    length = max_length or meta.get("max_length") or _default_max_length(tokenizer)
    return RewardModel(RewardNet(model, head), tokenizer, PairEncoder(tokenizer, fmt, int(length)), meta, name)


def _load_head(folder: Path, meta: dict[str, Any], model: Any, fmt: InputFormat) -> RewardHead:
    """The head described in ``rewardkit.json`` (with its saved weights), or the head a plain HF model implies."""
    k = int(model.config.num_labels)
    raw = meta.get("head")
    if raw is None:
        names = meta.get("objectives") or [str((model.config.id2label or {}).get(i, f"objective_{i}"))
                                           for i in range(k)]
        raw = {"kind": "scalar" if k == 1 else "multi", "objectives": ["reward"] if k == 1 else list(names)}
        raw["pooling"] = "first" if fmt == "text_pair" else "last"
    cfg = HeadConfig.from_dict(raw)
    if cfg.num_objectives != k:
        raise OptionError(f"{folder}: rewardkit.json names {cfg.num_objectives} objectives but the model has {k} outputs")
    head = build_head(cfg, model.config.hidden_size)
    extras = folder / HEAD_FILE
    if raw.get("extras_file") and extras.exists():
        from safetensors.torch import load_file

        head.load_state_dict(load_file(str(extras)))
    elif raw.get("extras_file"):
        raise FileNotFoundError(f"{folder}: rewardkit.json names {HEAD_FILE}, which is missing")
    return head
