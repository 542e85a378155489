"""Typed, validated training configs: loadable from YAML and overridable with ``--set key=value``.

Every field has a help string (``field(metadata={"help": ...})``) that ``rewardkit train rm --help``
prints. Method-specific knobs live in their own small dataclasses (``loss``, ``lora``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class LossSection:
    name: str = _f("bt", "registered loss name (see `rewardkit.losses.LOSSES`)")
    center_coef: float = _f(0.0, "reward-centering weight c in c·(r_c + r_r)²; 0 disables")
    use_margin: bool = _f(True, "use the data's optional `margin` column as the BT margin")

    def __post_init__(self) -> None:
        from rewardkit.losses import LOSSES

        if self.name not in LOSSES:
            raise ValueError(f"loss.name: unknown loss {self.name!r}; known: {LOSSES.names()}")
        if self.center_coef < 0:
            raise ValueError(f"loss.center_coef must be >= 0, got {self.center_coef}")


@dataclass
class LoraSection:
    r: int = _f(0, "LoRA rank; 0 trains all weights. The saved model is always merged, head included")
    alpha: int = _f(16, "LoRA alpha")
    dropout: float = _f(0.05, "LoRA dropout")
    target_modules: str = _f("all-linear", "modules to adapt (peft syntax, comma-separated or 'all-linear')")

    def __post_init__(self) -> None:
        if self.r < 0:
            raise ValueError(f"lora.r must be >= 0, got {self.r}")


@dataclass
class RewardTrainConfig:
    """Bradley--Terry reward-model training."""

    data: str = _f("", "training preference file (jsonl/json/parquet/datasets folder, any supported format)")
    model: str = _f("minilm", "backbone: alias (minilm, smollm2-135m), local path or hub name")
    out: str = _f("runs/rm", "output folder: the HF model, rewardkit.json, logs/, checkpoints/")
    eval_data: str | None = _f(None, "held-out preference file for periodic and final evaluation")
    max_length: int = _f(512, "max tokens per (prompt, response); longer inputs are truncated (keep-response policy)")
    batch_size: int = _f(16, "pairs per device per micro-batch")
    grad_accum: int = _f(1, "micro-batches per optimizer step (global batch = batch_size × processes × grad_accum)")
    epochs: float = _f(1.0, "passes over the training data (fractions allowed)")
    max_steps: int = _f(-1, "stop after this many optimizer steps (overrides epochs when > 0)")
    lr: float = _f(5e-5, "peak learning rate (AdamW)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.999, "AdamW beta2")
    adam_epsilon: float = _f(1e-8, "AdamW epsilon")
    warmup_ratio: float = _f(0.05, "fraction of steps of linear warmup")
    scheduler: Literal["cosine", "linear", "constant"] = _f("cosine", "learning-rate decay after warmup")
    max_grad_norm: float = _f(1.0, "gradient clipping norm; 0 disables")
    precision: Literal["auto", "bf16", "fp32"] = _f("auto", "auto: bf16 autocast where the hardware supports it, else fp32")
    seed: int = _f(42, "seed for data order, head init and dropout")
    group_by_length: bool = _f(True, "batch pairs of similar length together (less padding)")
    eval_steps: int = _f(0, "evaluate every N steps (0: only at the end)")
    eval_batch_tokens: int = _f(16_384, "padded-token budget per evaluation batch")
    logging_steps: int = _f(10, "log training metrics every N steps")
    save_steps: int = _f(0, "write a resumable checkpoint every N steps (0: only at the end of training)")
    save_total_limit: int = _f(2, "keep at most this many checkpoints")
    skip_invalid: bool = _f(False, "leave out records that fail validation (counted and listed) instead of stopping")
    resume: str | None = _f(None, "checkpoint folder to resume from, or 'latest' (in OUT/checkpoints)")
    loss: LossSection = field(default_factory=LossSection, metadata={"help": "loss settings"})
    lora: LoraSection = field(default_factory=LoraSection, metadata={"help": "LoRA settings"})

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):
            self.loss = LossSection(**self.loss)
        if isinstance(self.lora, dict):
            self.lora = LoraSection(**self.lora)
        positive = {"max_length": 8, "batch_size": 1, "grad_accum": 1, "logging_steps": 1, "save_total_limit": 1}
        for name, low in positive.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("scheduler", "precision"):
            allowed = typing.get_args(_hints(type(self))[name])
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: str, annotation: Any, key: str) -> Any:
    """Parse a ``--set`` string into the field's type."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null", ""):
            return None
        return _convert(value, args[0], key)
    if origin is Literal:
        return value
    if annotation is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true/false, got {value!r}")
    try:
        return annotation(value) if annotation in (int, float, str) else value
    except ValueError:
        raise ValueError(f"--set {key}: expected {annotation.__name__}, got {value!r}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str], cls: type) -> dict[str, Any]:
    """Apply ``key=value`` / ``section.key=value`` strings to a raw config dict, typed by ``cls``."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        section, dot, leaf = key.partition(".")
        hints = _hints(cls)
        if section not in hints:
            raise ValueError(f"--set {key}: unknown setting; known: {sorted(hints)}")
        if not dot and dataclasses.is_dataclass(hints[section]):
            raise ValueError(f"--set {key}: '{section}' is a section; set one of its fields, e.g. "
                             f"--set {section}.{dataclasses.fields(hints[section])[0].name}=...")
        if dot:
            sub_hints = _hints(hints[section])
            if leaf not in sub_hints:
                raise ValueError(f"--set {key}: unknown setting; known in {section}: {sorted(sub_hints)}")
            out.setdefault(section, {})[leaf] = _convert(value, sub_hints[leaf], key)
        else:
            out[key] = _convert(value, hints[key], key)
    return out


def load_config(cls: type, yaml_path: str | None, values: dict[str, Any], overrides: list[str]) -> Any:
    """Build ``cls`` from (lowest to highest priority) defaults, a YAML file, explicit ``values`` and
    ``--set`` overrides; unknown keys are errors."""
    raw: dict[str, Any] = {}
    if yaml_path:
        loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{yaml_path}: expected a mapping of settings at the top level")
        raw.update(loaded)
        raw = _coerce(raw, cls, yaml_path)
    raw.update({k: v for k, v in values.items() if v is not None})
    raw = apply_overrides(raw, overrides, cls)
    return cls(**_coerce(raw, cls, "settings"))


def _coerce(raw: dict[str, Any], cls: type, where: str) -> dict[str, Any]:
    """Check keys against ``cls``'s fields (sections too) and convert strings to the field types
    (YAML reads ``1e-5`` as a string)."""
    hints = _hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; known: {sorted(hints)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: '{key}' is a section; give it a mapping of its settings")
            out[key] = _coerce(value, hint, f"{where}: {key}")
        elif isinstance(value, str) and hint is not str:
            out[key] = _convert(value, hint, key)
        else:
            out[key] = value
    return out
