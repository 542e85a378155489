"""Evaluation throughput: ``rewardkit eval --benchmark pairs`` vs the ``rewardbench`` package, on one RM.

Both evaluate the same MiniLM Bradley--Terry reward model (trained here on the first ``--train-rows``
HH-RLHF pairs unless ``--model`` is given) on the same held-out HH-RLHF pairs, written once in
reward-bench's local-JSON format (``{"chosen": [messages], "rejected": [messages]}``, the whole
conversation each), which rewardkit reads too. Same max length (512), fp32, CPU, torch threads.

- rewardkit: ``rewardkit eval --model RM --data pairs.jsonl --benchmark pairs`` (its own defaults: a
  16,384-token budget, length-sorted batches, each prompt tokenized once);
- rewardbench (PyPI, its own CLI and pipeline, run in its own virtualenv because it pins
  ``transformers==4.51``): ``rewardbench --model RM --dataset pairs.jsonl --load_json --chat_template tulu
  --batch_size 8 --max_length 512 --force_truncation --not_quantized --torch_dtype float32``. Its
  pipeline hard-codes ``.to("cuda")``; on a CPU machine a two-line shim maps that call to the CPU and
  times the pipeline calls; nothing else is changed.

Runs alternate (rewardbench, rewardkit, ...) ``--repeats`` times; each side keeps its best time (other
users' work on a shared machine only ever adds time). Reported: items/s of each (end to end per
process, and scoring only: tokenization + forward passes), their ratio, and per-item agreement of the
two systems' decisions and scores. Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import OFFLINE_ENV as _COMMON_OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
DEFAULT_RB_PYTHON = ROOT.parent / ".venv-rewardbench" / "bin" / "python"
OFFLINE_ENV = {**_COMMON_OFFLINE_ENV, "WANDB_MODE": "disabled"}
RB_SETUP = (f"python -m venv {DEFAULT_RB_PYTHON.parents[1]} && {DEFAULT_RB_PYTHON.parent}/pip install "
            f"torch==2.13.0 && {DEFAULT_RB_PYTHON.parent}/pip install rewardbench==0.1.4 \"setuptools<81\"")

SHIM = r'''
import json, sys, time
import torch, transformers
_to = transformers.BatchEncoding.to
def _cpu_to(self, device, *a, **k):  # reward-bench's pipeline calls .to("cuda") unconditionally
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"
    return _to(self, device, *a, **k)
transformers.BatchEncoding.to = _cpu_to
from rewardbench.models.pipeline import RewardBenchPipeline
_call = RewardBenchPipeline.__call__
T = {"pipeline_seconds": 0.0, "pipeline_calls": 0, "sequences": 0}
def _timed(self, samples, **kw):
    t = time.perf_counter()
    out = _call(self, samples, **kw)
    T["pipeline_seconds"] += time.perf_counter() - t
    T["pipeline_calls"] += 1
    T["sequences"] += len(samples)
    return out
RewardBenchPipeline.__call__ = _timed
from rewardbench.rewardbench import main
timing_path, sys.argv = sys.argv[1], ["rewardbench", *sys.argv[2:]]
torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
main()
T["torch"], T["transformers"] = torch.__version__, transformers.__version__
json.dump(T, open(timing_path, "w"))
'''


def log(message: str) -> None:
    print(f"[eval_throughput] {message}", file=sys.stderr, flush=True)


def prepare_data(work: Path, train_rows: int, eval_rows: int) -> tuple[Path, Path, list[int]]:
    """Train file (raw HH lines) and the held-out pairs in reward-bench's JSON format; invalid rows dropped."""
    from rewardkit.data.formats import DataError, Location, parse_record

    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    train, held, dropped, unshaped = [], [], [], []
    for i, line in enumerate(lines[: train_rows + eval_rows]):
        try:
            ex = parse_record(json.loads(line), Location(str(DATA), line=i + 1))
        except DataError:
            dropped.append(i + 1)
            continue
        if i < train_rows:
            train.append(line)
        elif _rewardbench_shaped(ex):
            held.append({"chosen": [*ex.prompt, *ex.chosen], "rejected": [*ex.prompt, *ex.rejected]})
        else:
            unshaped.append(i + 1)
    (work / "train.jsonl").write_text("".join(train), encoding="utf-8")
    (work / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held), encoding="utf-8")
    return work / "train.jsonl", work / "pairs.jsonl", {"invalid": dropped, "not_rewardbench_shaped": unshaped}


def _rewardbench_shaped(ex: Any) -> bool:
    """reward-bench takes ``chosen[:-1]`` as the prompt of BOTH sides and numbers turns user/assistant by
    position, so only pairs that differ in one final assistant turn after alternating turns ending with
    the user mean the same thing to both tools."""
    roles = [m["role"] for m in ex.prompt]
    alternating = all(r == ("user" if k % 2 == 0 else "assistant") for k, r in enumerate(roles))
    return bool(roles) and roles[-1] == "user" and alternating and len(ex.chosen) == len(ex.rejected) == 1


def train_rm(work: Path, train: Path, steps: int, threads: int) -> Path:
    import torch

    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    torch.set_num_threads(threads)
    out = work / "rm"
    cfg = RewardTrainConfig(data=str(train), model="minilm", out=str(out), max_length=256, batch_size=16,
                            max_steps=steps, lr=1e-4, precision="fp32", skip_invalid=True, logging_steps=50)
    train_reward_model(cfg)
    return out


def run_rewardkit(work: Path, model: Path, pairs: Path, threads: int, k: int) -> dict[str, Any]:
    out = work / f"rk_out_{k}"
    cmd = [sys.executable, "-m", "rewardkit.cli", "eval", "--model", str(model), "--data", str(pairs),
           "--benchmark", "pairs", "--out", str(out), "--max-length", "512", "--no-report"]
    t0 = time.perf_counter()
    with open(work / f"rk_log_{k}.txt", "w") as logf:
        subprocess.run(cmd, check=True, env=_env(threads), stdout=logf, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    res = json.loads((out / "results.json").read_text())
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    scores = np.array([next(iter(r["models"].values()))["scores"] for r in rows])  # (N, 2)
    return {"wall_seconds": wall, "scoring_seconds": res["models"][0]["scoring"]["seconds"], "scores": scores,
            "accuracy": res["models"][0]["metrics"][0]["value"], "items": len(rows),
            "truncated_items": res["models"][0]["truncated_items"]}


def run_rewardbench(work: Path, model: Path, pairs: Path, threads: int, k: int, rb_python: Path,
                    batch_size: int) -> dict[str, Any]:
    out = work / f"rb_out_{k}"
    shim, timing = work / "rb_shim.py", work / f"rb_timing_{k}.json"
    shim.write_text(SHIM)
    args = ["--model", model.name, "--dataset", str(pairs), "--load_json", "--chat_template", "tulu",
            "--batch_size", str(batch_size), "--max_length", "512", "--force_truncation", "--not_quantized",
            "--torch_dtype", "float32", "--output_dir", f"{out}/"]
    t0 = time.perf_counter()
    with open(work / f"rb_log_{k}.txt", "w") as logf:
        proc = subprocess.run([str(rb_python), str(shim), str(timing), *args], env=_env(threads), cwd=model.parent,
                              stdout=logf, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (work / f"rb_log_{k}.txt").read_text()[-3000:]
        raise SystemExit(f"rewardbench failed (exit {proc.returncode}); end of its log:\n{tail}")
    rows = [json.loads(line) for line in (out / f"{model.name}_outputs.jsonl").read_text().splitlines()]
    scores = np.array([[r["scores_chosen"], r["scores_rejected"]] for r in rows], dtype=np.float64)
    t = json.loads(timing.read_text())
    return {"wall_seconds": wall, "scoring_seconds": t["pipeline_seconds"], "scores": scores,
            "accuracy": float(np.mean(scores[:, 0] > scores[:, 1])), "items": len(rows),
            "texts": [(r["text_chosen"], r["text_rejected"]) for r in rows], "versions": t}


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Per-item agreement of two systems' (N, 2) chosen/rejected scores."""
    from rewardkit.eval.analysis import spearman

    da, db = a[:, 0] - a[:, 1], b[:, 0] - b[:, 1]
    return {"same_decision": float(np.mean((da > 0) == (db > 0))),
            "margin_spearman": spearman(da, db), "score_pearson": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
            "max_abs_score_diff": float(np.max(np.abs(a - b)))}


def same_text_check(model: Path, texts: list[tuple[str, str]], rb_scores: np.ndarray) -> dict[str, Any]:
    """rewardkit's scorer on reward-bench's exact input texts (tokenized as reward-bench does: one sequence,
    truncated from the left to 512): isolates the input format from the batching/padding."""
    from rewardkit.models.reward_model import load_reward_model
    from rewardkit.scoring import score_token_ids

    rm = load_reward_model(str(model), max_length=512)
    rm.tokenizer.truncation_side = "left"
    flat = [t for pair in texts for t in pair]
    enc = rm.tokenizer(flat, truncation=True, max_length=512)
    types = enc.get("token_type_ids")
    ours = score_token_ids(rm.model, rm.pad_token_id, enc["input_ids"], types).reshape(-1, 2).astype(np.float64)
    return {**agreement(ours, rb_scores), "note": "rewardkit right-pads with exact masks; reward-bench left-pads"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="RM folder (default: train a MiniLM RM here)")
    p.add_argument("--train-rows", type=int, default=1500)
    p.add_argument("--train-steps", type=int, default=60, help="optimizer steps of the default RM (batch 16)")
    p.add_argument("--eval-rows", type=int, default=812)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--rb-batch-size", type=int, default=8, help="reward-bench's --batch_size (its CLI default)")
    p.add_argument("--rewardbench-python", default=os.environ.get("REWARDBENCH_PYTHON", str(DEFAULT_RB_PYTHON)))
    p.add_argument("--workdir", default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    rb_python = Path(args.rewardbench_python)
    if not rb_python.exists():
        raise SystemExit(f"no reward-bench virtualenv at {rb_python}; create it with:\n  {RB_SETUP}")
    os.environ.update(OFFLINE_ENV)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eval_throughput_"))
    work.mkdir(parents=True, exist_ok=True)
    train, pairs, dropped = prepare_data(work, args.train_rows, args.eval_rows)
    model = Path(args.model).resolve() if args.model else None
    if model is None:
        log(f"training a MiniLM RM for {args.train_steps} steps on {train}")
        model = train_rm(work, train, args.train_steps, args.threads)
    rk, rb, loads = [], [], []
    for k in range(args.repeats):
        loads.append(os.getloadavg()[0])
        log(f"run {k + 1}/{args.repeats}: rewardbench")
        rb.append(run_rewardbench(work, model, pairs, args.threads, k, rb_python, args.rb_batch_size))
        log(f"run {k + 1}/{args.repeats}: rewardkit")
        rk.append(run_rewardkit(work, model, pairs, args.threads, k))
    return report(args, work, model, dropped, rk, rb, loads)


def report(args: Any, work: Path, model: Path, dropped: dict[str, list[int]], rk: list[dict], rb: list[dict],
           loads: list[float]) -> dict[str, Any]:
    n = rk[0]["items"]

    def side(runs: list[dict]) -> dict[str, Any]:
        wall, score = min(r["wall_seconds"] for r in runs), min(r["scoring_seconds"] for r in runs)
        return {"items_per_s_scoring": n / score, "items_per_s_end_to_end": n / wall, "scoring_seconds": score,
                "wall_seconds": wall, "scoring_seconds_all_runs": [r["scoring_seconds"] for r in runs],
                "wall_seconds_all_runs": [r["wall_seconds"] for r in runs], "accuracy": runs[0]["accuracy"]}

    out = {
        "benchmark": "eval_throughput", "items": n, "sequences": 2 * n,
        "rewardkit": {**side(rk), "truncated_items": rk[0]["truncated_items"]},
        "rewardbench": {**side(rb), "versions": {k: rb[0]["versions"][k] for k in ("torch", "transformers")}},
        "agreement": agreement(rk[0]["scores"], rb[0]["scores"]),
        "same_text_agreement": same_text_check(model, rb[0]["texts"], rb[0]["scores"]),
        "rewardkit_repeat_max_abs_diff": float(max(np.max(np.abs(r["scores"] - rk[0]["scores"])) for r in rk)),
        "rewardbench_repeat_max_abs_diff": float(max(np.max(np.abs(r["scores"] - rb[0]["scores"])) for r in rb)),
        "settings": {"model": str(model), "train_rows": args.train_rows, "eval_rows": args.eval_rows,
                     "rows_dropped_for_both": dropped, "max_length": 512, "dtype": "float32",
                     "threads": args.threads, "repeats": args.repeats, "rewardbench_batch_size": args.rb_batch_size,
                     "rewardbench_chat_template": "tulu", "rewardkit_batch_tokens": 16384, "workdir": str(work)},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average_1min": loads},
    }
    for key in ("items_per_s_scoring", "items_per_s_end_to_end"):
        out[f"ratio_{key}"] = out["rewardkit"][key] / out["rewardbench"][key]
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
