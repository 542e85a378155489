"""RewardTrainConfig: validation naming the field, YAML loading, typed --set overrides, priority order."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from rewardkit.train.config import LoraSection, LossSection, RewardTrainConfig, apply_overrides, load_config


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_are_valid() -> None:
    cfg = RewardTrainConfig()
    assert (cfg.model, cfg.max_length, cfg.batch_size, cfg.lr, cfg.scheduler) == ("minilm", 512, 16, 5e-5, "cosine")
    assert cfg.loss == LossSection(name="bt", center_coef=0.0, use_margin=True)
    assert cfg.lora == LoraSection()
    assert cfg.lora.r == 0


def test_every_field_has_a_help_string() -> None:
    from rewardkit.losses.preference import BTConfig
    from rewardkit.models.heads import HeadConfig

    for cls in (RewardTrainConfig, BTConfig, LoraSection, HeadConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name}"


def test_sections_given_as_dicts_are_built() -> None:
    cfg = RewardTrainConfig(loss={"center_coef": 0.01}, lora={"r": 8})
    assert cfg.loss == LossSection(center_coef=0.01)
    assert cfg.lora == LoraSection(r=8)


def test_to_dict_round_trips() -> None:
    cfg = RewardTrainConfig(data="d.jsonl", lr=1e-4, loss=LossSection(center_coef=0.5), eval_data="e.jsonl")
    d = cfg.to_dict()
    assert d["loss"] == {"name": "bt", "center_coef": 0.5, "use_margin": True}
    assert RewardTrainConfig(**d) == cfg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 7}, "max_length must be >= 8, got 7"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"grad_accum": 0}, "grad_accum must be >= 1, got 0"),
        ({"logging_steps": 0}, "logging_steps must be >= 1, got 0"),
        ({"save_total_limit": 0}, "save_total_limit must be >= 1, got 0"),
        ({"epochs": 0.0, "max_steps": -1}, "set epochs > 0 or max_steps > 0"),
        ({"warmup_ratio": 1.0}, r"warmup_ratio must be in \[0, 1\), got 1.0"),
        ({"warmup_ratio": -0.1}, r"warmup_ratio must be in \[0, 1\), got -0.1"),
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"scheduler": "step"}, r"scheduler must be one of \['cosine', 'linear', 'constant'\], got 'step'"),
        ({"precision": "fp16"}, r"precision must be one of \['auto', 'bf16', 'fp32'\], got 'fp16'"),
        ({"loss": {"name": "nope"}}, "loss.name: unknown loss 'nope'; known: .*'bt'"),
        ({"loss": {"center_coef": -0.1}}, "loss.center_coef must be >= 0, got -0.1"),
        ({"lora": {"r": -1}}, "lora.r must be >= 0, got -1"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardTrainConfig(**kwargs)


def test_max_steps_alone_is_enough() -> None:
    assert RewardTrainConfig(epochs=0, max_steps=10).max_steps == 10


# ----------------------------------------------------------------------------- YAML


def test_yaml_with_nested_loss_section(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
data: prefs.jsonl
model: smollm2-135m
batch_size: 4
lr: 0.0001
group_by_length: false
eval_data: null
loss:
  center_coef: 0.01
  use_margin: false
lora:
  r: 8
  target_modules: q_proj,v_proj
""")
    cfg = load_config(RewardTrainConfig, path, {}, [])
    assert (cfg.data, cfg.model, cfg.batch_size, cfg.lr, cfg.group_by_length, cfg.eval_data) == (
        "prefs.jsonl", "smollm2-135m", 4, 1e-4, False, None)
    assert cfg.loss == LossSection(name="bt", center_coef=0.01, use_margin=False)
    assert cfg.lora == LoraSection(r=8, target_modules="q_proj,v_proj")


def test_empty_yaml_gives_defaults(tmp_path: Path) -> None:
    assert load_config(RewardTrainConfig, write_yaml(tmp_path, "# nothing\n"), {}, []) == RewardTrainConfig()


def test_yaml_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "- lr: 1\n")
    with pytest.raises(ValueError, match="expected a mapping of settings at the top level"):
        load_config(RewardTrainConfig, path, {}, [])


def test_yaml_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "data: x\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['learning_rate'\]; known: \["):
        load_config(RewardTrainConfig, path, {}, [])


def test_yaml_unknown_nested_key_is_a_clear_error(tmp_path: Path) -> None:
    """A typo inside a section must be a ValueError naming it (the CLI turns ValueError into exit 2),
    not a TypeError from the dataclass constructor (a traceback)."""
    path = write_yaml(tmp_path, "loss:\n  centre_coef: 0.1\n")
    with pytest.raises(ValueError, match="centre_coef"):
        load_config(RewardTrainConfig, path, {}, [])


def test_yaml_scientific_notation_is_a_number(tmp_path: Path) -> None:
    """``lr: 1e-5`` is how people write learning rates, but YAML 1.1 (PyYAML) reads it as the *string*
    '1e-5'; the config must still come out with the float (or fail with a ValueError naming the field)."""
    path = write_yaml(tmp_path, "lr: 1e-5\nloss:\n  center_coef: 1e-3\n")
    cfg = load_config(RewardTrainConfig, path, {}, [])
    assert cfg.lr == 1e-5
    assert cfg.loss.center_coef == 1e-3


def test_saved_config_yaml_reloads_to_the_same_config(tmp_path: Path) -> None:
    """``train rm`` saves ``yaml.safe_dump(cfg.to_dict())``; it must load back with --config unchanged."""
    cfg = RewardTrainConfig(data="d.jsonl", lr=3e-5, adam_epsilon=1e-8, eval_data=None, resume="latest",
                            loss=LossSection(center_coef=1e-3), lora=LoraSection(r=4, dropout=0.1))
    path = write_yaml(tmp_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert load_config(RewardTrainConfig, path, {}, []) == cfg


# ----------------------------------------------------------------------------- --set


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("batch_size=8", "batch_size", 8),
        ("max_steps=-1", "max_steps", -1),
        ("lr=1e-5", "lr", 1e-5),
        ("epochs=2", "epochs", 2.0),
        ("group_by_length=false", "group_by_length", False),
        ("group_by_length=0", "group_by_length", False),
        ("skip_invalid=yes", "skip_invalid", True),
        ("skip_invalid=TRUE", "skip_invalid", True),
        ("eval_data=none", "eval_data", None),
        ("eval_data=null", "eval_data", None),
        ("eval_data=", "eval_data", None),
        ("eval_data=held.jsonl", "eval_data", "held.jsonl"),
        ("resume=latest", "resume", "latest"),
        ("scheduler=linear", "scheduler", "linear"),
        ("precision=bf16", "precision", "bf16"),
        ("model=a=b", "model", "a=b"),  # only the first '=' splits
    ],
)
def test_set_converts_to_the_field_type(override: str, field: str, expected: Any) -> None:
    cfg = load_config(RewardTrainConfig, None, {}, [override])
    value = getattr(cfg, field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "section", "field", "expected"),
    [
        ("loss.center_coef=0.01", "loss", "center_coef", 0.01),
        ("loss.use_margin=off", "loss", "use_margin", False),
        ("loss.name=bt", "loss", "name", "bt"),
        ("lora.r=8", "lora", "r", 8),
        ("lora.dropout=0", "lora", "dropout", 0.0),
    ],
)
def test_set_nested(override: str, section: str, field: str, expected: Any) -> None:
    cfg = load_config(RewardTrainConfig, None, {}, [override])
    value = getattr(getattr(cfg, section), field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("nosuchkey=1", r"--set nosuchkey: unknown setting; known: \[.*'batch_size'"),
        ("loss.nosuch=1", r"--set loss.nosuch: unknown setting; known in loss: \['center_coef', 'name', 'use_margin'\]"),
        ("batch_size=eight", "--set batch_size: expected int, got 'eight'"),
        ("batch_size=1.5", "--set batch_size: expected int, got '1.5'"),
        ("lr=fast", "--set lr: expected float, got 'fast'"),
        ("group_by_length=maybe", "--set group_by_length: expected true/false, got 'maybe'"),
        ("lora.r=x", "--set lora.r: expected int, got 'x'"),
        ("lr", "--set expects key=value, got 'lr'"),
        ("scheduler=step", "scheduler must be one of"),  # a Literal is checked by the config itself
    ],
)
def test_set_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(RewardTrainConfig, None, {}, [override])


def test_apply_overrides_does_not_modify_its_input() -> None:
    raw = {"lr": 0.1, "loss": {"center_coef": 0.5}}
    out = apply_overrides(raw, ["loss.center_coef=0.2", "batch_size=4"], RewardTrainConfig)
    assert out == {"lr": 0.1, "loss": {"center_coef": 0.2}, "batch_size": 4}
    assert raw == {"lr": 0.1, "loss": {"center_coef": 0.5}}


def test_unknown_explicit_value_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['nosuch'\]"):
        load_config(RewardTrainConfig, None, {"nosuch": 1}, [])


def test_priority_defaults_yaml_values_set(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
lr: 0.0001
batch_size: 4
seed: 7
warmup_ratio: 0.2
loss:
  center_coef: 0.1
  use_margin: false
""")
    values = {"lr": 0.0002, "batch_size": 8, "seed": None, "model": None}  # None: flag not given
    cfg = load_config(RewardTrainConfig, path, values, ["lr=0.0003", "loss.center_coef=0.2"])
    assert cfg.lr == 0.0003  # --set beats explicit values and YAML
    assert cfg.batch_size == 8  # explicit value beats YAML
    assert cfg.seed == 7  # YAML beats the default; a None value does not override it
    assert cfg.warmup_ratio == 0.2  # YAML beats the default
    assert cfg.model == "minilm"  # default
    assert cfg.loss == LossSection(center_coef=0.2, use_margin=False)  # --set merges into the YAML section
    assert cfg.max_length == 512  # untouched default


def test_set_applies_in_order() -> None:
    assert load_config(RewardTrainConfig, None, {}, ["lr=0.1", "lr=0.2"]).lr == 0.2


def test_set_a_whole_section_is_rejected() -> None:
    """``--set loss=bt`` (mistaking the section for the loss name) must fail naming the section, not leave
    the string 'bt' in ``cfg.loss`` to crash training later with an AttributeError."""
    with pytest.raises(ValueError, match="loss"):
        load_config(RewardTrainConfig, None, {}, ["loss=bt"])
