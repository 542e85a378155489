"""Training's memory savers change no number: the same weights with recomputed attention (always on) and with
activation checkpointing, on a BERT with dropout (where recomputing must replay the same masks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoConfig

from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model
from tiny_models import tiny_bert, write_pairs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("memory")
    return tiny_bert(root / "bert", dropout=0.1), write_pairs(root / "pairs.jsonl")


def _train(setup: tuple[Path, Path], out: Path, **kw: object) -> bytes:
    backbone, data = setup
    train_reward_model(RewardTrainConfig(data=str(data), model=str(backbone), out=str(out), batch_size=4,
                                         max_length=64, lr=1e-3, warmup_ratio=0.0, max_steps=3, device="cpu",
                                         precision="fp32", **kw))  # type: ignore[arg-type]
    return (out / "model.safetensors").read_bytes()


def test_activation_checkpointing_trains_the_same_weights(setup: tuple[Path, Path], tmp_path: Path) -> None:
    default = _train(setup, tmp_path / "default")
    assert _train(setup, tmp_path / "ckpt", activation_checkpointing=True) == default
    # the saved config names plain SDPA attention, whatever ran during training
    assert AutoConfig.from_pretrained(tmp_path / "ckpt")._attn_implementation in (None, "sdpa")
