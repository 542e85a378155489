"""What the invariance tests of every training job share: weight comparisons, the logged rows, and one
command run in this process and again as two torchrun processes (each with half the batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-5) -> None:
    """Two state dicts with the same keys, every tensor within ``atol``."""
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"weights differ by {worst}"


def assert_trained(a: dict[str, torch.Tensor], start: Path) -> None:
    """``a`` moved away from the model it started from (so equal runs are not equal by doing nothing)."""
    init = load_file(start / "model.safetensors")
    assert max((a[k] - init[k]).abs().max().item() for k in init) > 1e-4


def logged_rows(out: Path, split: str = "train") -> list[dict[str, Any]]:
    """The ``split`` rows of a run's ``logs/metrics.jsonl``."""
    rows = map(json.loads, (out / "logs" / "metrics.jsonl").read_text().splitlines())
    return [r for r in rows if r["split"] == split]


def one_and_two_processes(args: Sequence[str], tmp_path: Path, port: int, *, batch: int = 4
                          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run ``rewardkit ARGS`` here with ``--batch-size batch`` into ``tmp_path/one`` and under torchrun as two
    processes with half of it each into ``tmp_path/two``; return both saved state dicts."""
    from rewardkit.cli import main

    assert main([*args, "--batch-size", str(batch), "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "rewardkit.cli", *args, "--batch-size", str(batch // 2), "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
