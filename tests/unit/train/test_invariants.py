"""Settings that must train identically do: resume vs uninterrupted, accumulation vs a larger batch,
two processes vs one, and the saved folder vs plain transformers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from invariance import assert_same as _assert_same
from invariance import assert_trained as _assert_trained
from invariance import one_and_two_processes
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model
from tiny_models import tiny_bert, write_pairs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("inv")
    return tiny_bert(root / "bert"), write_pairs(root / "pairs.jsonl")


# Adam's first steps move every parameter by about lr·sign(g), so a gradient that is float noise (1e-9,
# different for a different summation order) would move by ±lr. A large epsilon makes the update ≈ lr·g,
# so these tests compare the gradients themselves; the resume test keeps the default epsilon.
SGD_LIKE = {"adam_epsilon": 1.0, "lr": 0.5}


def _train(backbone: Path, data: Path, out: Path, **kw: object) -> dict[str, torch.Tensor]:
    settings = {"max_steps": 4, "lr": 1e-3, "warmup_ratio": 0.0, "batch_size": 4, "max_length": 64,
                "logging_steps": 1, "seed": 3, **kw}
    train_reward_model(RewardTrainConfig(data=str(data), model=str(backbone), out=str(out), **settings))
    return load_file(out / "model.safetensors")






def test_resume_continues_to_the_same_result(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, data = setup
    # Dropout on: the checkpoint must restore RNG state too, not only weights and optimizer.
    drop = tiny_bert(tmp_path / "bert-dropout", dropout=0.1)
    full = _train(drop, data, tmp_path / "full", save_steps=2)
    _assert_trained(full, drop)
    resumed_out = tmp_path / "resumed"
    (resumed_out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-0000002", resumed_out / "checkpoints" / "step-0000002")
    resumed = _train(drop, data, resumed_out, save_steps=2, resume="latest")
    _assert_same(full, resumed, atol=1e-6)
    log = (resumed_out / "logs" / "metrics.jsonl").read_text().splitlines()
    assert [eval(line.replace("null", "None"))["step"] for line in log if '"train"' in line] == [3, 4]


def test_grad_accumulation_matches_one_large_batch(setup: tuple[Path, Path], tmp_path: Path) -> None:
    backbone, data = setup
    big = _train(backbone, data, tmp_path / "b4", batch_size=4, grad_accum=1, **SGD_LIKE)
    accum = _train(backbone, data, tmp_path / "b1x4", batch_size=1, grad_accum=4, **SGD_LIKE)
    _assert_trained(big, backbone)
    _assert_same(big, accum)


def test_ragged_last_batch_counts_every_pair_once(setup: tuple[Path, Path], tmp_path: Path) -> None:
    # 12 pairs in global batches of 5 -> steps of 5, 5 and 2 pairs. With 5 micro-batches per step, the
    # last step splits 2 pairs into 5 parts: 3 are weight-0 fillers that must not count.
    backbone, data = setup
    one = _train(backbone, data, tmp_path / "b5", batch_size=5, grad_accum=1, max_steps=3, **SGD_LIKE)
    five = _train(backbone, data, tmp_path / "b1x5", batch_size=1, grad_accum=5, max_steps=3, **SGD_LIKE)
    _assert_trained(one, backbone)
    _assert_same(one, five)


def test_two_processes_match_one(setup: tuple[Path, Path], tmp_path: Path) -> None:
    backbone, data = setup
    args = ["train", "rm", "--data", str(data), "--model", str(backbone), "--max-steps", "3", "--lr", "0.5",
            "--adam-epsilon", "1.0", "--warmup-ratio", "0", "--max-length", "64", "--seed", "3", "--logging-steps", "1"]
    one, two = one_and_two_processes(args, tmp_path, 29517)
    _assert_trained(one, backbone)
    _assert_same(one, two)
    import json

    meta = json.loads((tmp_path / "two" / "rewardkit.json").read_text())
    assert meta["training"]["processes"] == 2 and meta["training"]["global_batch"] == 4
