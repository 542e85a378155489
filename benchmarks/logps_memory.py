"""Peak memory of sequence log-probabilities: rewardkit's chunked ``sequence_logps`` vs the naive full
``log_softmax`` gather, at vocabulary 49,152 (SmolLM2's), length 512, batch 8, in one run.

Each method runs in its own fresh process (so one's peak cannot hide the other's) on a random 2-layer
Llama with SmolLM2's vocabulary; the response is the second half of every sequence. On CPU the figure
is the process's peak resident memory above what it held once the model and inputs were built
(``ru_maxrss``); on CUDA it is ``torch.cuda.max_memory_allocated`` above the same point. Both results are
compared to each other (max |Δ| of the per-sequence sums) to show the saving changes nothing.

    python benchmarks/logps_memory.py [--device cpu|cuda] [--vocab 49152 --length 512 --batch 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_json_main


def measure(method: str, vocab: int, length: int, batch: int, hidden: int, device: str, grad: bool) -> dict[str, Any]:
    """Run one method in this process and report its peak memory above the baseline."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rewardkit.models.causal_lm import naive_sequence_logps, response_mask_from_starts, sequence_logps

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=2 * hidden, max_position_embeddings=length)
    model = LlamaForCausalLM(cfg).to(device)
    ids = torch.randint(0, vocab, (batch, length), device=device)
    mask = torch.ones_like(ids)
    response = response_mask_from_starts(mask, [length // 2] * batch)
    fn = sequence_logps if method == "rewardkit" else naive_sequence_logps
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    t0 = time.perf_counter()
    with torch.set_grad_enabled(grad):
        out = fn(model, ids, mask, response)
        if grad:
            out.sums.sum().backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"method": method, "peak_mb": peak / 2**20, "seconds": time.perf_counter() - t0,
            "sums": out.sums.detach().float().cpu().tolist()}


def _rss_bytes() -> int:
    """Current resident memory (Linux: /proc/self/statm)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results = {}
    for method in ("naive", "rewardkit"):
        cmd = [sys.executable, __file__, "--child", method, "--vocab", str(args.vocab), "--length", str(args.length),
               "--batch", str(args.batch), "--hidden", str(args.hidden), "--device", args.device]
        if args.backward:
            cmd.append("--backward")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    diff = max(abs(a - b) for a, b in zip(results["naive"].pop("sums"), results["rewardkit"].pop("sums"), strict=True))
    return {"benchmark": "logps_memory", "device": args.device, "vocab": args.vocab, "length": args.length,
            "batch": args.batch, "backward": args.backward,
            "logits_fp32_mb": args.batch * args.length * args.vocab * 4 / 2**20,
            "naive": results["naive"], "rewardkit": results["rewardkit"],
            "peak_ratio_rewardkit_over_naive": results["rewardkit"]["peak_mb"] / max(results["naive"]["peak_mb"], 1e-9),
            "max_abs_diff_of_sums": diff}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=49_152)
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64, help="model width (the logits dominate memory either way)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backward", action="store_true", help="also run the backward pass (training)")
    p.add_argument("--child", choices=["naive", "rewardkit"], help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.vocab, args.length, args.batch, args.hidden, args.device,
                                 args.backward)))
        return 0
    return run_json_main(run, args, prefix="rk-logps-")


if __name__ == "__main__":
    raise SystemExit(main())
