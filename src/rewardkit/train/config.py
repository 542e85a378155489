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

from rewardkit.errors import OptionError
from rewardkit.losses import LOSSES, AttributeTargets, PairRewards, PreferenceLogps, ResponseLogps
from rewardkit.losses.unlearning import UNLEARNING_LOSSES
from rewardkit.models.heads import HeadConfig


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


class LossSection:
    """``loss``: the registered loss's ``name`` and its own config dataclass (``options``), e.g.
    ``LossSection(name="bt", center_coef=0.01)``. Settings are validated by that loss's config class;
    attribute access reads them (``cfg.loss.center_coef``)."""

    default_name = "bt"

    def __init__(self, name: str | None = None, **options: Any) -> None:
        from rewardkit.losses import LOSSES

        self.name = name or self.default_name
        if self.name not in LOSSES:
            raise OptionError(f"loss.name: unknown loss {self.name!r}; known: {LOSSES.names()}")
        self.spec = LOSSES.get(self.name)
        known = {f.name for f in dataclasses.fields(self.spec.config)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(f"loss: unknown setting(s) {unknown} for loss {self.name!r}; known: {sorted(known)}")
        self.options = self.spec.config(**options)

    @classmethod
    def field_hints(cls, raw: dict[str, Any] | None) -> dict[str, Any]:
        """The settings this section accepts (``name`` plus the named loss's config fields), typed."""
        from rewardkit.losses import LOSSES

        name = (raw or {}).get("name") or cls.default_name
        hints = {"name": str}
        if name in LOSSES:
            hints.update(_hints(LOSSES.get(name).config))
        return hints

    def __getattr__(self, item: str) -> Any:
        if item in ("options", "spec", "name"):
            raise AttributeError(item)
        return getattr(self.options, item)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LossSection) and (self.name, self.options) == (other.name, other.options)

    def __repr__(self) -> str:
        return f"LossSection(name={self.name!r}, {self.options!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self.options)}


@dataclass
class LoraSection:
    r: int = _f(0, "LoRA rank; 0 trains all weights. The saved model is always merged, head included")
    alpha: int = _f(16, "LoRA alpha")
    dropout: float = _f(0.05, "LoRA dropout")
    target_modules: str = _f("all-linear", "modules to adapt (peft syntax, comma-separated or 'all-linear')")

    def __post_init__(self) -> None:
        if self.r < 0:
            raise OptionError(f"lora.r must be >= 0, got {self.r}")


@dataclass
class TrainConfig:
    """What every ``rewardkit train`` job shares: data, model, output, optimisation, schedule, precision,
    evaluation, logging, checkpoints and LoRA. Each job adds its own sections (``loss``, ``head``, ...)."""

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
    activation_checkpointing: bool = _f(False, "recompute each layer's activations in backward instead of keeping "
                                        "them: far less memory, ~20-30% more time, the same numbers")
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
    device: str = _f("auto", "torch device: auto (cuda, else mps, else cpu), cpu, cuda; under accelerate/torchrun "
                     "each process takes its own")
    lora: LoraSection = field(default_factory=LoraSection, metadata={"help": "LoRA settings"})

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSection(**self.lora)
        positive = {"max_length": 8, "batch_size": 1, "grad_accum": 1, "logging_steps": 1, "save_total_limit": 1}
        for name, low in positive.items():
            if getattr(self, name) < low:
                raise OptionError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise OptionError("set epochs > 0 or max_steps > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise OptionError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr <= 0:
            raise OptionError(f"lr must be > 0, got {self.lr}")
        for name in ("scheduler", "precision"):
            allowed = typing.get_args(_hints(type(self))[name])
            if getattr(self, name) not in allowed:
                raise OptionError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


@dataclass
class ArmoSection:
    """``armo``: ArmoRM's stage 1 (ridge per objective) and verbosity debiasing, for ``--head multi`` on
    attribute data (METHODS §2)."""

    ridge_alphas: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4],
                                      metadata={"help": "ridge penalties tried per objective (comma-separated)"})
    val_fraction: float = _f(0.2, "share of each objective's labelled rows held out to choose the penalty")
    split_seed: int = _f(42, "seed of the train/validation split (ArmoRM: 42)")
    verbosity: str = _f("verbosity", "objective to debias the others against (Spearman rule); '' disables")
    corr_threshold: float = _f(0.03, "debiasing: first penalty λ with Spearman(r_i − λ r_verb, r_verb) ≤ this")

    def __post_init__(self) -> None:
        if not self.ridge_alphas or any(a <= 0 for a in self.ridge_alphas):
            raise OptionError(f"armo.ridge_alphas must be positive, got {self.ridge_alphas}")
        if not 0 <= self.val_fraction < 1:
            raise OptionError(f"armo.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class UrmSection:
    """``urm``: the gaussian head's attribute regression (URM, METHODS §5)."""

    loss: str = _f("gaussian_nll", "attribute loss: gaussian_nll (mean and std) or attribute_mse (mean only)")
    init: Literal["ridge", "random"] = _f(
        "ridge", "start of the means: ridge (stage 1's closed form, penalties from armo.*; each ensemble member "
        "on its own bootstrap sample of the rows) or random (normal, urm.init_std)")
    init_std: float = _f(0.02, "std of the random init of the objective layer (urm.init=random)")

    def __post_init__(self) -> None:
        if self.init not in ("ridge", "random"):
            raise OptionError(f"urm.init must be ridge or random, got {self.init!r}")
        if self.loss not in LOSSES or LOSSES.get(self.loss).inputs is not AttributeTargets:
            raise OptionError(f"urm.loss: {self.loss!r} is not an attribute loss (gaussian_nll, attribute_mse)")


@dataclass
class RewardTrainConfig(TrainConfig):
    """Reward-model training (``rewardkit train rm``): a reward head on a backbone, a pairwise loss; on
    attribute data (``--data`` of rated responses) an ArmoRM (``--head multi``) or URM (``--head gaussian``)
    model on the frozen backbone."""

    attributes: str | None = _f(None, "attribute data: the objective columns to use, comma-separated "
                                "(default: detected, e.g. HelpSteer2's five)")
    pairs: str | None = _f(None, "attribute data: preference pairs that train the gating network (stage 2)")
    reference_data: str | None = _f(None, "multi head: preference pairs whose rewards set the verbosity penalties "
                                    "(default: --pairs, else the attribute data)")
    ensemble: int = _f(1, "gaussian head: train this many members (seeds seed..seed+K-1, each on a bootstrap "
                       "start) into OUT/members/; scored as one model: mean reward, std as uncertainty (URME)")
    loss: LossSection = field(default_factory=LossSection, metadata={"help": "loss settings"})
    head: HeadConfig = field(default_factory=HeadConfig, metadata={"help": "reward head settings"})
    armo: ArmoSection = field(default_factory=ArmoSection, metadata={"help": "ArmoRM settings"})
    urm: UrmSection = field(default_factory=UrmSection, metadata={"help": "URM settings"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.loss, dict):
            self.loss = LossSection(**self.loss)
        if isinstance(self.head, dict):
            self.head = HeadConfig.from_dict(self.head)
        if isinstance(self.armo, dict):
            self.armo = ArmoSection(**self.armo)
        if isinstance(self.urm, dict):
            self.urm = UrmSection(**self.urm)
        if self.ensemble < 1:
            raise OptionError(f"ensemble must be >= 1, got {self.ensemble}")
        if self.loss.spec.inputs is not PairRewards:
            raise OptionError(f"loss.name: {self.loss.name!r} is not a reward-model loss (it takes "
                              f"{self.loss.spec.inputs.__name__}, not PairRewards)")


class PolicyLossSection(LossSection):
    """``loss`` of a policy job: a registered loss on policy log-probabilities (``PreferenceLogps``: dpo, ipo,
    simpo, ...; ``ResponseLogps``: sft). Reward-model losses (``bt``, ...) are refused by the config."""

    default_name = "dpo"


class SftLossSection(PolicyLossSection):
    """``loss`` of ``rewardkit train sft``: ``sft`` by default."""

    default_name = "sft"


POLICY_LOSS_INPUTS = (PreferenceLogps, ResponseLogps)


@dataclass
class PolicyTrainConfig(TrainConfig):
    """Policy training (``rewardkit train policy`` / ``train sft``): a causal LM trained on preference pairs
    with a DPO-family loss against a reference model, or on responses with a supervised loss. The loss's
    input type decides the data: ``PreferenceLogps`` -> preference pairs; ``ResponseLogps`` -> prompt /
    completion rows, or the chosen side of pairs. Defaults follow TRL's DPO (lr 1e-6 for full fine-tuning;
    raise it to ~5e-5 with LoRA)."""

    model: str = _f("smollm2-135m", "causal LM to train: alias (smollm2-135m), local path or hub name")
    out: str = _f("runs/policy", "output folder: the HF causal LM (LoRA merged), rewardkit.json, logs/, checkpoints/")
    max_length: int = _f(1024, "max tokens per (prompt, response); longer inputs are truncated (keep-response policy)")
    batch_size: int = _f(4, "pairs (or sequences) per device per micro-batch")
    lr: float = _f(1e-6, "peak learning rate (AdamW); 1e-6 suits full fine-tuning, ~5e-5 LoRA")
    warmup_ratio: float = _f(0.1, "fraction of steps of linear warmup")
    eval_batch_tokens: int = _f(8192, "padded-token budget per evaluation (and reference) batch")
    loss: PolicyLossSection = field(default_factory=PolicyLossSection, metadata={"help": "loss settings"})
    reference: str | None = _f(None, "reference model for the loss and the implicit reward (alias, path or hub "
                               "name); default: the starting --model itself; unused by sft and simpo")
    reference_mode: Literal["precompute", "live"] = _f(
        "precompute", "precompute: reference log-probs computed once before training and stored with the data "
        "(the reference model is then freed); live: kept in memory and run each step without gradients")
    disable_dropout: bool = _f(True, "turn the model's dropout off (as TRL's DPO does): the policy's and the "
                               "reference's log-probs then agree at step 0")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.loss, dict):
            self.loss = type(self).loss_section()(**self.loss)
        if self.loss.spec.inputs not in POLICY_LOSS_INPUTS:
            raise OptionError(f"loss.name: {self.loss.name!r} is not a policy loss (it takes "
                              f"{self.loss.spec.inputs.__name__}, not PreferenceLogps or ResponseLogps); "
                              "reward-model losses belong to `rewardkit train rm`")
        if self.loss.name in UNLEARNING_LOSSES:
            raise OptionError(f"loss.name: {self.loss.name!r} is an unlearning loss; it belongs to "
                              "`rewardkit train unlearn`")
        if self.reference_mode not in ("precompute", "live"):
            raise OptionError(f"reference_mode must be precompute or live, got {self.reference_mode!r}")

    @classmethod
    def loss_section(cls) -> type:
        return typing.get_type_hints(cls)["loss"]


@dataclass
class SftTrainConfig(PolicyTrainConfig):
    """Supervised fine-tuning (``rewardkit train sft``): the policy job with loss ``sft`` by default."""

    out: str = _f("runs/sft", "output folder: the HF causal LM (LoRA merged), rewardkit.json, logs/, checkpoints/")
    lr: float = _f(1e-5, "peak learning rate (AdamW); 1e-5 suits full fine-tuning, ~1e-4 LoRA")
    loss: SftLossSection = field(default_factory=SftLossSection, metadata={"help": "loss settings"})


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(hint: Any) -> bool:
    """A nested section: a dataclass, or a class whose fields depend on its content (``field_hints``)."""
    return dataclasses.is_dataclass(hint) or hasattr(hint, "field_hints")


def _section_hints(section: type, raw: dict[str, Any] | None) -> dict[str, Any]:
    return section.field_hints(raw) if hasattr(section, "field_hints") else _hints(section)


def _coerce_section(raw: dict[str, Any], section: type, where: str) -> dict[str, Any]:
    hints = _section_hints(section, raw)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise OptionError(f"{where}: unknown setting(s) {unknown}; known: {sorted(hints)}")
    return {k: _convert(v, hints[k], k) if isinstance(v, str) and hints[k] is not str else v
            for k, v in raw.items()}


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
    if origin is list:  # comma-separated: "a,b" -> ["a", "b"]; "0.5,0.5" -> [0.5, 0.5]
        return [_convert(v.strip(), args[0], key) for v in value.split(",") if v.strip()]
    if annotation is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"--set {key}: expected true/false, got {value!r}")
    try:
        return annotation(value) if annotation in (int, float, str) else value
    except ValueError:
        raise OptionError(f"--set {key}: expected {annotation.__name__}, got {value!r}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str], cls: type) -> dict[str, Any]:
    """Apply ``key=value`` / ``section.key=value`` strings to a raw config dict, typed by ``cls``."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise OptionError(f"--set expects key=value, got {item!r}")
        section, dot, leaf = key.partition(".")
        hints = _hints(cls)
        if section not in hints:
            raise OptionError(f"--set {key}: unknown setting; known: {sorted(hints)}")
        if not dot and _is_section(hints[section]):
            first = next(iter(_section_hints(hints[section], None)))
            raise OptionError(f"--set {key}: '{section}' is a section; set one of its fields, e.g. "
                              f"--set {section}.{first}=...")
        if dot:
            sub_hints = _section_hints(hints[section], out.get(section))
            if leaf not in sub_hints:
                raise OptionError(f"--set {key}: unknown setting; known in {section}: {sorted(sub_hints)}")
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
            raise OptionError(f"{yaml_path}: expected a mapping of settings at the top level")
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
        raise OptionError(f"{where}: unknown setting(s) {unknown}; known: {sorted(hints)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        hint = hints[key]
        if _is_section(hint) and not isinstance(value, hint):
            if not isinstance(value, dict):
                raise OptionError(f"{where}: '{key}' is a section; give it a mapping of its settings")
            out[key] = _coerce_section(value, hint, f"{where}: {key}")
        elif isinstance(value, str) and hint is not str:
            out[key] = _convert(value, hint, key)
        else:
            out[key] = value
    return out
