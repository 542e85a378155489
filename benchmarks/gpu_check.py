"""One JSON object of what rewardkit does on an accelerator: device and dtype resolution, sequence
log-prob memory (chunked vs naive), a reward-model training run through the general job (bf16 autocast,
evaluation through the every-rank gather) and scoring (token-budget batches vs a fixed-batch loop), with
scores checked against plain transformers.

The model is a random decoder shaped like SmolLM2-135M (vocabulary 49,152, hidden 576, 30 layers) with
SmolLM2's tokenizer: throughput does not depend on the weights, and no model file needs to travel. Run it
through ``benchmarks/gpu_check.sh`` on the GPU machine; ``--small`` runs a tiny version anywhere (CPU).

    python benchmarks/gpu_check.py --tokenizer DIR [--small] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_json_main

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "reward", "model", "answer", "question", "helpful", "honest", "harmless", "short", "long", "list", "bullet", "code", "python", "math", "proof", "because", "therefore", "however", "example"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_pairs(path: Path, n: int, seed: int) -> Path:
    """Synthetic pairs whose chosen response is the one with more 'helpful' in it (learnable)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            prompt = _text(rng, rng.randint(8, 60))
            good = _text(rng, rng.randint(10, 200)) + " helpful helpful"
            bad = _text(rng, rng.randint(10, 200))
            f.write(json.dumps({"prompt": prompt, "chosen": " " + good, "rejected": " " + bad}) + "\n")
    return path


def build_model(tokenizer_dir: Path, out: Path, small: bool) -> Path:
    """A random Llama with the given tokenizer, saved as a causal LM folder (the RM backbone)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=128) if small else dict(
        hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, intermediate_size=1536)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True, **size)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def check_devices() -> dict[str, Any]:
    import torch

    from rewardkit.models.devices import resolve_device, resolve_dtype, resolve_precision

    info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "device_auto": str(resolve_device("auto")), "dtype_auto": str(resolve_dtype("auto")),
            "precision_auto": resolve_precision("auto")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def check_logps(device: str, small: bool) -> dict[str, Any]:
    """``benchmarks/logps_memory.py`` at vocabulary 49,152, length 512, batch 8, forward and backward."""
    script = Path(__file__).resolve().parent / "logps_memory.py"
    out = {}
    for backward in (False, True):
        cmd = [sys.executable, str(script), "--device", device, *(["--length", "64"] if small else [])]
        if backward:
            cmd.append("--backward")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out["train" if backward else "inference"] = json.loads(proc.stdout)
    return out


def check_training(model: Path, data: Path, held: Path, workdir: Path, small: bool) -> dict[str, Any]:
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    cfg = RewardTrainConfig(data=str(data), eval_data=str(held), model=str(model), out=str(workdir / "rm"),
                            max_length=512, batch_size=16, max_steps=4 if small else 40, lr=2e-5, warmup_ratio=0.1,
                            logging_steps=10, device="auto", precision="auto")
    t0 = time.perf_counter()
    result = train_reward_model(cfg)
    tr = result.metadata["training"]
    return {"steps": tr["steps"], "pairs_per_s": tr["pairs_per_s"], "precision": tr["precision"],
            "padding": result.metadata["metrics"]["train_last"].get("padding"),
            "held_out": result.metadata["metrics"]["eval"], "wall_s": time.perf_counter() - t0,
            "out": str(result.out_dir)}


def check_scoring(rm_dir: Path, data: Path) -> dict[str, Any]:
    """Token-budget scoring vs a fixed-batch loop in file order (the same model, fp32), and plain
    transformers on a few inputs."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from rewardkit.data.dataset import load_examples
    from rewardkit.models.reward_model import load_reward_model
    from rewardkit.scoring import score_encoded

    rm = load_reward_model(rm_dir, device="auto", dtype="float32")
    rows = load_examples(str(data)).dataset.select_columns(["prompt", "chosen", "rejected", "conversational"])[:]
    enc = [rm.encoder.encode(p, r, c) for side in ("chosen", "rejected")
           for p, r, c in zip(rows["prompt"], rows[side], rows["conversational"], strict=True)]
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    score_encoded(rm, enc[:64])  # warm-up
    sync()
    t0 = time.perf_counter()
    ours = score_encoded(rm, enc)
    sync()
    t_ours = time.perf_counter() - t0
    device = next(rm.model.parameters()).device
    t0 = time.perf_counter()
    fixed = np.zeros(len(enc), dtype=np.float32)
    with torch.inference_mode():
        for lo in range(0, len(enc), 32):
            from rewardkit.data.collate import pad_sequences

            batch = pad_sequences([e.input_ids for e in enc[lo:lo + 32]], None, rm.pad_token_id)
            fixed[lo:lo + 32] = rm.model(**{k: v.to(device) for k, v in batch.items()}).logits[:, 0].float().cpu().numpy()
    sync()
    t_fixed = time.perf_counter() - t0
    plain = AutoModelForSequenceClassification.from_pretrained(rm_dir, dtype=torch.float32).to(device).eval()
    with torch.inference_mode():
        ref = [plain(input_ids=torch.tensor([e.input_ids], device=device)).logits[0, 0].item() for e in enc[:16]]
    return {"sequences": len(enc), "token_budget_seq_per_s": len(enc) / t_ours, "fixed_batch32_seq_per_s": len(enc) / t_fixed,
            "ratio": t_fixed / t_ours, "max_abs_diff_vs_fixed": float(np.abs(ours - fixed).max()),
            "max_abs_diff_vs_plain_transformers": float(np.abs(ours[:16] - np.array(ref)).max())}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    report: dict[str, Any] = {"benchmark": "gpu_check", "devices": check_devices()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _section(report, "logps_memory", lambda: check_logps(device, args.small))
    model = build_model(args.tokenizer, workdir / "backbone", args.small)
    n = 64 if args.small else 1024
    data, held = write_pairs(workdir / "train.jsonl", n, 0), write_pairs(workdir / "held.jsonl", n // 4, 1)
    train = _section(report, "train_rm", lambda: check_training(model, data, held, workdir, args.small))
    if train is not None:
        _section(report, "score", lambda: check_scoring(Path(train["out"]), held))
    return report


def _section(report: dict[str, Any], name: str, fn: Any) -> Any:
    """Run one check; a failure is recorded (with its last traceback lines) and the others still run."""
    import traceback

    try:
        report[name] = fn()
    except Exception as e:  # one device call must bring back every figure it can
        report[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        return None
    return report[name]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", type=Path, required=True, help="folder with SmolLM2's tokenizer files")
    p.add_argument("--small", action="store_true", help="a tiny model and short run (CPU smoke test)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    return run_json_main(run, p.parse_args(), prefix="rk-gpu-")


if __name__ == "__main__":
    raise SystemExit(main())
