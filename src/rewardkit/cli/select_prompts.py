"""``rewardkit data select-prompts``: Pre-PPO prompt selection, a thin call into
:mod:`rewardkit.infer.select_prompts`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import add_device_options, command
from rewardkit.infer.sampler import SamplingConfig

HELP = ("Pre-PPO prompt selection: --policy samples --samples responses to each prompt of --prompts, --reward "
        "scores them (any pointwise scorer), a prompt's difficulty is its mean reward, and the ceil(--keep x N) "
        "lowest-reward (hardest) prompts are selected. Merged with the original set means: every prompt is written "
        "once, the selected prompts first, then the rest, each block in input order. --curriculum puts math and "
        "code prompts before all others (category from a category / ability / data_source field, else a text "
        "heuristic: a ``` fence or words such as python, function, program, implement -> code; digits around an "
        "operator, $, or words such as solve, calculate, equation, prove -> math). Writes --out in --format "
        "(openrlhf: jsonl, prompt as chat messages + label when the row has an answer/label/ground_truth; verl: "
        "parquet with data_source, prompt, ability, reward_model {style: rule, ground_truth}, extra_info {index, "
        "split}; trl: jsonl prompt) and OUT.report.jsonl (per prompt: mean/min/max reward, selected, category, "
        "position)")


def add_command(dsub: Any) -> None:
    """Register ``select-prompts`` under ``rewardkit data``."""
    defaults = SamplingConfig()
    p = command(dsub, "select-prompts", HELP, _run)
    p.add_argument("--reward", required=True, help="pointwise scorer spec: a reward model folder, rm:DIR, "
                   "dpo:POLICY, verifier, hybrid:RM, length, ...")
    p.add_argument("--policy", required=True, help="causal LM that samples the responses (alias such as "
                   "smollm2-135m, or a folder)")
    p.add_argument("--prompts", required=True, help="prompts file (jsonl / json / parquet): rows with 'prompt' "
                   "(string or messages); other fields (answer, category, ...) are read")
    p.add_argument("--out", required=True, help="output file (.jsonl for openrlhf/trl, .parquet for verl)")
    p.add_argument("--keep", type=float, default=0.3, help="fraction of prompts selected as hard (0 < keep <= 1)")
    p.add_argument("--samples", type=int, default=4, help="responses sampled per prompt (K)")
    p.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="max tokens per response")
    p.add_argument("--temperature", type=float, default=defaults.temperature, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=defaults.top_p, help="nucleus filter")
    p.add_argument("--curriculum", action="store_true", help="math and code prompts first")
    p.add_argument("--format", default="openrlhf", choices=["openrlhf", "verl", "trl"], help="output format")
    p.add_argument("--prompts-per-batch", type=int, default=4, help="prompts decoded together")
    p.add_argument("--max-length", type=int, default=None, help="scorer's max tokens per (prompt, response)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (per prompt and sample)")
    add_device_options(p)


def _run(args: argparse.Namespace) -> int:
    from rewardkit.infer.select_prompts import SelectConfig, select_prompts_file
    from rewardkit.scoring import ScorerOptions

    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                              seed=args.seed)
    cfg = SelectConfig(keep=args.keep, samples=args.samples, curriculum=args.curriculum, format=args.format,
                       sampling=sampling, prompts_per_batch=args.prompts_per_batch)
    options = ScorerOptions(max_length=args.max_length, dtype=args.dtype, device=args.device, seed=args.seed)
    summary = select_prompts_file(reward=args.reward, policy=args.policy, prompts=args.prompts, out=args.out,
                                  cfg=cfg, options=options)
    print(json.dumps(summary, indent=2))
    return 0
