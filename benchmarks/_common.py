"""What the benchmark scripts share: the offline environment and the JSON-printing main."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_json_main(run: Callable[[Any, Path], dict[str, Any]], args: Any, *, prefix: str) -> int:
    """Run ``run(args, workdir)`` offline with library output on stderr, then print its report as JSON
    on stdout (and write it to ``args.out`` when given). ``args.workdir`` None means a temporary folder."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(sys.stderr):  # libraries print progress to stdout; keep it clean JSON
            report = run(args, workdir)
    report["wall_seconds"] = time.perf_counter() - t0
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-empty line of a jsonl file (``.gz`` read compressed) as a dict."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` as jsonl (folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def run_rewardkit(*argv: str, threads: int) -> None:
    """Run ``rewardkit ARGV`` (the command installed beside this Python) offline with ``threads`` torch
    threads; raise with the end of its stderr on failure."""
    import subprocess

    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [str(Path(sys.executable).parent / "rewardkit"), *argv]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
