"""``rewardkit generate``: the command line of :func:`rewardkit.infer.generate.generate_file`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import (
    add_device_options,
    add_pessimism_option,
    add_sandbox_options,
    command,
    sandbox_limits,
)
from rewardkit.infer.generate import METHODS, GenerateConfig, generate_file
from rewardkit.infer.sampler import SamplingConfig


def add_commands(sub: Any) -> None:
    d = GenerateConfig(policy="", reward="", prompts="", out="")
    p = command(sub, "generate", "inference-time alignment: sample from a causal LM and keep the best response "
                 "by any scorer, with Best-of-N or Speculative Rejection (which scores partial responses "
                 "and stops the weak ones early); writes one jsonl row per prompt with its compute", _run_generate)
    p.add_argument("--policy", required=True, help="causal LM: an offline alias (smollm2-135m), folder or hub name")
    p.add_argument("--reward", required=True, help="scorer: a reward model folder or rm:PATH; verifier (checks "
                   "the prompts file's constraints/answer/tests) or verifier:FILE; hybrid:RM (verifier where an "
                   "item is checkable, RM elsewhere); direction:RM#name=w,...; length (a dummy)")
    p.add_argument("--prompts", required=True, help="jsonl with 'prompt' (messages or a string) per row; other "
                   "fields (prompt_id, constraints, answer, tests) are kept in the output")
    p.add_argument("--out", required=True, help="output jsonl, one row per prompt")
    p.add_argument("--method", choices=METHODS, default="bon", help="bon: Best-of-N; speculative: Speculative Rejection")
    p.add_argument("--n", type=int, default=d.n, help="samples per prompt (speculative: samples it starts with)")
    p.add_argument("--alpha", default=d.alpha, help="speculative: share of the pool rejected at each decision "
                   "point, in [0, 1) (the official code's README uses 0.5); or 'adaptive' / 'adaptive:LOW,HIGH' "
                   "(default 0.3,0.9): alpha = LOW + (HIGH - LOW) * max(0, rank correlation of the partial scores "
                   "with the previous scoring's), the first decision compared with a probe halfway to it")
    p.add_argument("--chunk", type=int, default=d.chunk, help="speculative: tokens between decision points")
    p.add_argument("--token-budget", type=int, default=None, help="speculative: instead of --chunk, decide when "
                   "running samples x context length reaches this many KV-cache tokens")
    p.add_argument("--direction", default=None, help="weights over a multi-output RM's objectives, e.g. "
                   "helpfulness=0.9,verbosity=-0.4 (normalised to a unit vector)")
    add_pessimism_option(p)
    _add_sampling(p)
    p.add_argument("--keep-all", action="store_true", help="also write every candidate with its score")
    p.add_argument("--prompts-per-batch", type=int, default=d.prompts_per_batch, help="prompts decoded together (left-padded); "
                   "each brings its n samples")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT prompts")
    add_device_options(p)
    p.add_argument("--max-length", type=int, default=None, help="override the reward model's max tokens per input")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    add_sandbox_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    d = SamplingConfig()
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="tokens per response at most")
    p.add_argument("--temperature", type=float, default=d.temperature, help="0 means greedy")
    p.add_argument("--top-p", type=float, default=d.top_p, help="nucleus sampling mass (1 = off)")
    p.add_argument("--top-k", type=int, default=d.top_k, help="keep the k most likely tokens (0 = off); 50 as in "
                   "the Speculative Rejection code and transformers' generate")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable); the text is cut before it")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (each prompt's sample i has its own generator)")


def _run_generate(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, stop=tuple(args.stop), seed=args.seed)
    cfg = GenerateConfig(
        policy=args.policy, reward=args.reward, prompts=args.prompts, out=args.out, method=args.method, n=args.n,
        alpha=args.alpha, chunk=args.chunk, token_budget=args.token_budget, sampling=sampling,
        direction=args.direction, keep_all=args.keep_all, prompts_per_batch=args.prompts_per_batch,
        limit=args.limit, dtype=args.dtype, device=args.device, max_length=args.max_length,
        sandbox=sandbox_limits(args), progress=not args.no_progress, pessimism=args.pessimism)
    summary = generate_file(cfg)
    print(json.dumps(summary, indent=2))
    print(f"wrote {summary['prompts']} rows to {cfg.out}")
    return 0
