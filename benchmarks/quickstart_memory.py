"""Where the quickstart's resident memory goes, and what recomputed attention saves (issue 16, item 3).

Two parts, each printed in one JSON object:

- ``steps``: N MiniLM training steps (16 sequences of random width 40-170, half padded, as the quickstart's
  batches of 8 pairs), with transformers' SDPA attention, with
  :func:`rewardkit.models.memory.recomputed_attention` (the default in training) and with every layer
  checkpointed (``--activation-checkpointing``), each in its own subprocess: peak RSS (``ru_maxrss``),
  RSS after the last step, CPU seconds of the steps, and whether the losses are equal bit for bit. Set
  ``MALLOC_MMAP_THRESHOLD_=65536`` in the environment to see resident memory track what is live (and what
  the page faults cost).
- ``quickstart``: the quickstart in this process, with its resident memory at each phase boundary and the
  highest value sampled every 0.1 s within each phase; its accuracy, to compare runs.

    python benchmarks/quickstart_memory.py --parts steps --steps 12 --threads 1
    python benchmarks/quickstart_memory.py --parts quickstart --threads 1 --workdir runs/qs_memory
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import run_json_main

STEP_SCRIPT = r"""
import json, random, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from contextlib import nullcontext
from transformers import AutoModelForSequenceClassification
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.memory import checkpoint_layers, peak_rss_mb, recomputed_attention
torch.manual_seed(0); random.seed(0)
m = AutoModelForSequenceClassification.from_pretrained(resolve_backbone("minilm"), num_labels=1).train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
if sys.argv[1] == "layers":
    checkpoint_layers(m)
cpu, losses = 0.0, []
with recomputed_attention(m) if sys.argv[1] == "recomputed" else nullcontext():
    for _ in range(int(sys.argv[2])):
        w = random.randint(40, 170)
        ids = torch.randint(1000, 30000, (16, w)); mask = torch.ones_like(ids)
        for r in range(16):
            mask[r, random.randint(w // 2, w):] = 0
        t = time.process_time()
        loss = m(input_ids=ids, attention_mask=mask).logits.float().pow(2).mean()
        loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
        cpu += time.process_time() - t; losses.append(loss.item())
rss = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "end_rss_mb": round(rss, 1), "cpu_seconds": round(cpu, 1),
                  "losses": losses}))
"""


def run_steps(steps: int, threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attention in ("sdpa", "recomputed", "layers"):
        proc = subprocess.run([sys.executable, "-c", STEP_SCRIPT, attention, str(steps), str(threads)],
                              capture_output=True, text=True, check=True)
        out[attention] = json.loads(proc.stdout.strip().splitlines()[-1])
    plain = out["sdpa"].pop("losses")
    out["losses_equal"] = {k: out[k].pop("losses") == plain for k in ("recomputed", "layers")}
    return out


def _status_mb() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


class PhaseMeter:
    """RSS at phase boundaries (functions wrapped by name) and the highest RSS sampled within each phase."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.peaks: dict[str, float] = {}
        self.phase = "start"
        self.t0 = time.perf_counter()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            rss = _status_mb()["VmRSS"]
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(0.1)

    def mark(self, name: str) -> None:
        self.events.append({"t": round(time.perf_counter() - self.t0, 1), "event": name, **_status_mb()})
        self.phase = name

    def wrap(self, module: str, attr: str, *also: str) -> None:
        """Wrap ``module.attr``, and the same function where modules ``also`` imported it by name."""
        mod = importlib.import_module(module)
        fn = getattr(mod, attr)

        @functools.wraps(fn)
        def wrapped(*a: Any, **k: Any) -> Any:
            self.mark(f"> {attr}")
            try:
                return fn(*a, **k)
            finally:
                self.mark(f"< {attr}")

        for name in (module, *also):
            setattr(importlib.import_module(name), attr, wrapped)


def run_quickstart_phases(workdir: Path, max_steps: int = -1) -> dict[str, Any]:
    meter = PhaseMeter()
    import rewardkit.quickstart as qs

    meter.wrap("rewardkit.models.reward_model", "build_reward_model", "rewardkit.train.reward")
    meter.wrap("rewardkit.models.reward_model", "load_reward_model", "rewardkit.scoring")
    meter.wrap("rewardkit.train.loop", "run_loop", "rewardkit.train.job")
    meter.wrap("rewardkit.train.loop", "save_checkpoint")
    meter.wrap("rewardkit.train.reward", "prepare_pairs")
    for name in ("train_reward_model", "score_file", "_rerank", "_print_summary"):
        meter.wrap("rewardkit.quickstart", name)
    meter.mark("run_quickstart")
    summary = qs.run_quickstart(out=str(workdir / "quickstart"), max_steps=max_steps).summary
    meter.mark("end")
    return {"accuracy": summary["pairwise"]["accuracy"], "rerank_rm_pick_gold": summary["rerank"]["rm_pick_gold"],
            "resources": summary["resources"], "phase_peaks_mb": meter.peaks, "events": meter.events}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"threads": args.threads}
    if "steps" in args.parts:
        report["steps"] = {"n": args.steps, **run_steps(args.steps, args.threads)}
    if "quickstart" in args.parts:
        report["quickstart"] = run_quickstart_phases(workdir, args.max_steps)
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="steps,quickstart", help="comma-separated: steps, quickstart")
    p.add_argument("--steps", type=int, default=12, help="training steps per attention variant (steps part)")
    p.add_argument("--max-steps", type=int, default=-1, help="quickstart part: cap on training steps (a smoke run)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--workdir", type=Path, default=None, help="where the quickstart writes (default: a temp folder)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args()
    args.parts = {s.strip() for s in args.parts.split(",") if s.strip()}
    return run_json_main(run, args, prefix="rk_qs_memory_")


if __name__ == "__main__":
    sys.exit(main())
