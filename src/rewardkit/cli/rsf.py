"""``rewardkit train rsf``: the command line of :func:`rewardkit.train.rsf.run_rsf`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import add_pessimism_option, command


def add_rsf_command(tsub: Any) -> argparse.ArgumentParser:
    from rewardkit.train.rsf import RSFConfig

    d = RSFConfig(policy="", reward="", prompts="", out="")
    p = command(tsub, "rsf", "rejection-sampling fine-tuning: sample K responses per prompt from the policy, keep "
                "the best by any scorer, fine-tune on the picks (sft loss, the one training loop), repeat; with "
                "--direction the preference vector is written into the system prompt, as DPA does. Logs each "
                "policy's mean reward (and --gold reward) to OUT/rsf.json", _run_rsf)
    p.add_argument("--policy", required=True, help="causal LM to start from: alias (smollm2-135m), folder or hub name")
    p.add_argument("--reward", required=True, help="scorer that picks the best sample: rm:DIR or a reward model "
                   "folder, verifier, hybrid:RM, direction:RM (with --direction), length")
    p.add_argument("--prompts", required=True, help="jsonl with 'prompt' per row (messages or a string); a "
                   "verifier checks its rows' constraints/answer/tests")
    p.add_argument("--out", required=True, help="output folder: rsf.json, iter_<i>/picks.jsonl, iter_<i>/model")
    p.add_argument("--k", type=int, default=d.k, help="samples per prompt; the best is kept")
    p.add_argument("--iterations", type=int, default=d.iterations, help="rounds of sample -> pick -> fine-tune")
    p.add_argument("--gold", default=None, help="a second scorer logged beside --reward (e.g. verifier on "
                   "ifeval-lite prompts), never used to pick")
    p.add_argument("--direction", default=None, help="weights over a multi-output RM's objectives, e.g. "
                   "helpfulness=0.9,verbosity=-0.4: the reward becomes direction:RM and the vector is written "
                   "into the system prompt")
    p.add_argument("--no-system-prompt", dest="system_prompt", action="store_false",
                   help="with --direction: do not write the preference vector into the system prompt")
    add_pessimism_option(p)
    p.add_argument("--max-new-tokens", type=int, default=d.sampling.max_new_tokens, help="tokens per sample at most")
    p.add_argument("--temperature", type=float, default=d.sampling.temperature, help="sampling temperature")
    p.add_argument("--top-k", type=int, default=d.sampling.top_k, help="keep the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=d.sampling.top_p, help="nucleus mass (1 = off)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of sampling (iteration i adds 1000·i) and training")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT prompts")
    p.add_argument("--prompts-per-batch", type=int, default=d.prompts_per_batch, help="prompts decoded together")
    p.add_argument("--epochs", type=float, default=d.epochs, help="fine-tuning epochs over each iteration's picks")
    p.add_argument("--lr", type=float, default=d.lr, help="fine-tuning learning rate")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="fine-tuning micro-batch")
    p.add_argument("--max-length", type=int, default=d.max_length, help="fine-tuning max tokens per example")
    p.add_argument("--lora-r", type=int, default=d.lora_r, help="LoRA rank for fine-tuning (0: all weights); merged")
    p.add_argument("--set", dest="sft", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of the fine-tuning job (train sft), e.g. --set warmup_ratio=0")
    p.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _run_rsf(args: argparse.Namespace) -> int:
    import torch

    from rewardkit.infer.sampler import SamplingConfig
    from rewardkit.train.rsf import RSFConfig, run_rsf

    if args.threads:
        torch.set_num_threads(args.threads)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)
    cfg = RSFConfig(policy=args.policy, reward=args.reward, prompts=args.prompts, out=args.out, k=args.k,
                    iterations=args.iterations, gold=args.gold, direction=args.direction,
                    system_prompt=args.system_prompt, sampling=sampling, limit=args.limit,
                    prompts_per_batch=args.prompts_per_batch, sft=tuple(args.sft), epochs=args.epochs, lr=args.lr,
                    batch_size=args.batch_size, max_length=args.max_length, lora_r=args.lora_r, device=args.device,
                    pessimism=args.pessimism, seed=args.seed, progress=not args.no_progress)
    log = run_rsf(cfg)
    for row in log["iterations"]:
        gold = f", gold {row['gold_samples']['value']:.3f} (picks {row['gold_picks']['value']:.3f})" \
            if "gold_samples" in row else ""
        print(f"policy {row['iteration']}: reward {row['reward_samples']['value']:.3f} "
              f"(picks {row['reward_picks']['value']:.3f}){gold}")
    print(json.dumps({"final_policy": log["final_policy"], "log": f"{args.out}/rsf.json"}))
    return 0
