"""Build, save and load scalar reward models as standard ``AutoModelForSequenceClassification`` folders.

A saved reward model is an ordinary Hugging Face folder (safetensors weights with the reward head,
config, tokenizer) that TRL, OpenRLHF and reward-bench load unchanged, plus ``rewardkit.json`` with
what plain transformers cannot know: the input format, max length and truncation policy, the
training config, a fingerprint of the data and the final metrics.

Two failure modes of other tools are ruled out here:
- *pad == EOS*: if the tokenizer has no pad token, or its pad token is its EOS, a distinct pad token is
  chosen (the UNK token if it is not EOS, else a new ``<|pad|>`` with resized embeddings), so the
  model's own "last non-pad token" pooling lands on the real last token of every sequence.
- *lost heads*: LoRA adapters are merged before saving and the head is saved as a normal module.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.chat import TRUNCATION_POLICY, InputFormat, PairEncoder, input_format_for
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.causal_lm import ensure_distinct_pad

METADATA_FILE = "rewardkit.json"
FORMAT_VERSION = "rewardkit-rm/1"
DEFAULT_MAX_LENGTH = 512


@dataclass
class RewardModel:
    """A loaded reward model: the HF model (eval mode), its tokenizer, an encoder that builds its
    inputs exactly as in training, and the metadata of ``rewardkit.json`` (empty for plain HF RMs)."""

    model: Any
    tokenizer: Any
    encoder: PairEncoder
    metadata: dict[str, Any]
    name: str

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def build_reward_model(backbone: str, *, max_length: int | None = None) -> RewardModel:
    """A new reward model: ``backbone`` (alias, path or hub name) with a fresh 1-output head, fp32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_backbone(backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    ensure_distinct_pad(tokenizer, model)
    fmt = input_format_for(tokenizer, model.config.model_type)
    length = max_length or _default_max_length(tokenizer)
    return RewardModel(model, tokenizer, PairEncoder(tokenizer, fmt, length), {"backbone": backbone}, backbone)


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
    meta = {
        "format": FORMAT_VERSION,
        "input_format": rm.encoder.input_format,
        "max_length": rm.encoder.max_length,
        "truncation_policy": TRUNCATION_POLICY,
        "objectives": ["reward"],
        **metadata,
    }
    write_json_atomic(out / METADATA_FILE, meta)
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace`` (never a half-written file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
    os.replace(tmp, path)


def load_reward_model(
    path: str | os.PathLike[str], *, max_length: int | None = None, dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> RewardModel:
    """Load a rewardkit RM folder, or any HF sequence-classification RM (path or hub name), in eval mode.

    For a rewardkit folder the input format and max length come from ``rewardkit.json`` (``max_length``
    overrides it); for other RMs they are inferred from the tokenizer and model type.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    name = str(path)
    resolved = resolve_backbone(name)
    meta_path = Path(resolved) / METADATA_FILE
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    tokenizer = AutoTokenizer.from_pretrained(resolved)
    model = AutoModelForSequenceClassification.from_pretrained(resolved, dtype=dtype).to(device).eval()
    if model.config.num_labels != 1 and not meta.get("objectives"):
        raise ValueError(f"{name}: expected a reward model with one output, got num_labels={model.config.num_labels}")
    ensure_distinct_pad(tokenizer, model)
    fmt: InputFormat = meta.get("input_format") or input_format_for(tokenizer, model.config.model_type)
    length = max_length or meta.get("max_length") or _default_max_length(tokenizer)
    return RewardModel(model, tokenizer, PairEncoder(tokenizer, fmt, int(length)), meta, name)

