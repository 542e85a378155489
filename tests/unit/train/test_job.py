"""The training job: callable again in one process with other settings, honest records after a resume,
and evaluation on every rank through one gather (the shard plan)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.evaluation import shard_plan
from rewardkit.train.reward import train_reward_model
from tiny_models import PAIRS, tiny_bert, write_pairs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("job")
    return tiny_bert(root / "bert"), write_pairs(root / "pairs.jsonl")


def _cfg(setup: tuple[Path, Path], out: Path, **kw: object) -> RewardTrainConfig:
    backbone, data = setup
    base = {"data": str(data), "model": str(backbone), "out": str(out), "batch_size": 4, "max_length": 64,
            "lr": 1e-3, "warmup_ratio": 0.0, "logging_steps": 1, "device": "cpu"}
    return RewardTrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_train_twice_in_one_process_with_different_precisions(setup: tuple[Path, Path], tmp_path: Path) -> None:
    first = train_reward_model(_cfg(setup, tmp_path / "fp32", max_steps=1, precision="fp32"))
    second = train_reward_model(_cfg(setup, tmp_path / "bf16", max_steps=1, precision="bf16"))
    third = train_reward_model(_cfg(setup, tmp_path / "fp32-again", max_steps=1, precision="fp32"))
    assert [r.metadata["training"]["precision"] for r in (first, second, third)] == ["fp32", "bf16", "fp32"]
    # the same settings give the same weights whatever ran before in this process
    a = (tmp_path / "fp32" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "fp32-again" / "model.safetensors").read_bytes()


def _train_rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "train"]


def test_resume_keeps_the_records_right(setup: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    n_pairs = len(PAIRS)  # 12 pairs, batch 4: 3 steps per epoch
    done = train_reward_model(_cfg(setup, out, max_steps=4, save_steps=2, save_total_limit=3))
    assert done.metadata["training"]["pairs_seen"] == 4 * 4
    weights = (out / "model.safetensors").read_bytes()
    # simulate a kill after step 4 was logged but before its checkpoint: drop the final checkpoint
    shutil.rmtree(out / "checkpoints" / "step-0000004")
    resumed = train_reward_model(_cfg(setup, out, max_steps=4, save_steps=2, save_total_limit=3, resume="latest"))
    steps = [r["step"] for r in _train_rows(out)]
    assert steps == [1, 2, 3, 4]  # steps 3 and 4 logged once, not twice
    assert resumed.metadata["training"]["pairs_seen"] == 4 * 4  # the whole run, not the resumed part
    assert (out / "model.safetensors").read_bytes() == weights
    # resuming a finished run changes nothing and keeps an honest rate
    again = train_reward_model(_cfg(setup, out, max_steps=4, save_steps=2, save_total_limit=3, resume="latest"))
    assert again.metadata["training"]["pairs_seen"] == 16 and again.metadata["training"]["pairs_per_s"] > 0
    assert [r["step"] for r in _train_rows(out)] == [1, 2, 3, 4]
    assert n_pairs == 12


def test_pruned_checkpoints_never_look_complete(setup: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "prune"
    train_reward_model(_cfg(setup, out, max_steps=4, save_steps=1, save_total_limit=2))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["step-0000003", "step-0000004"]
    assert all((out / "checkpoints" / n / "trainer_state.json").exists() for n in names)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shard_plan_gives_every_rank_the_same_batches(world: int) -> None:
    lengths = [5, 40, 12, 33, 7, 7, 90, 1, 64, 20]
    plan = shard_plan(lengths, world, max_tokens=100)
    m = plan.items.shape[1]
    assert plan.items.shape == (world, -(-len(lengths) // world))
    assert sorted(set(plan.items.reshape(-1).tolist())) == list(range(len(lengths)))  # every item scored
    assert plan.batches[0][0] == 0 and plan.batches[-1][1] == m
    for lo, hi in plan.batches:  # the same cut for every rank, within the token budget
        assert (hi - lo) * max(lengths[i] for i in plan.items[:, lo:hi].reshape(-1)) <= 100 or hi - lo == 1
    # longest first, dealt round-robin: rank r's first item is the r-th longest
    order = np.argsort([-x for x in lengths], kind="stable")
    assert plan.items[:, 0].tolist() == order[:world].tolist()
