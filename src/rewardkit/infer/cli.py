"""``rewardkit generate``: any causal LM plus any scorer as an aligned sampler (plugged into :mod:`rewardkit.cli`).

:func:`generate_file` is the library call behind it: read a prompts jsonl, run Best-of-N or Speculative
Rejection, write one row per prompt (the best response, its score, every input field kept, and what it
cost), and return a summary that the command prints as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.infer.accounting import total
from rewardkit.infer.best_of_n import PromptResult, best_of_n
from rewardkit.infer.sampler import SamplingConfig, load_policy
from rewardkit.verify.sandbox import SandboxLimits
from rewardkit.infer.speculative import SpeculativeConfig, speculative_rejection

METHODS = ("bon", "speculative")


@dataclass(frozen=True)
class GenerateConfig:
    """One ``rewardkit generate`` run (every field is a command-line option)."""

    policy: str
    reward: str
    prompts: str
    out: str
    method: str = "bon"
    n: int = 16
    alpha: float | None = None
    chunk: int | None = 16
    token_budget: int | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    direction: str | None = None
    keep_all: bool = False
    prompts_per_batch: int = 1
    limit: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    max_length: int | None = None
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method == "speculative" and self.alpha is None:
            raise ValueError("--method speculative needs --alpha (the share rejected at each decision point, in [0, 1))")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


def read_prompts(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a prompts jsonl: each needs ``prompt`` (a list of messages or a string)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            prompt = row.get("prompt") if isinstance(row, dict) else None
            valid = isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in prompt))
            if not valid:
                raise ValueError(f"{path}:{lineno}: prompt: expected a string or a non-empty list of "
                                 "{role, content} messages")
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise ValueError(f"{path}: no prompts")
    return rows


def build_scorer(spec: str, *, items: str, direction: str | None = None, max_length: int | None = None,
                 device: str = "cpu", sandbox: SandboxLimits | None = None) -> Any:
    """The scorer for ``--reward spec``: ``verifier`` / ``hybrid:RM`` check against ``items`` (the prompts
    file) unless a file is named (``verifier:FILE``); ``--direction`` turns a reward model into ``direction``."""
    from rewardkit.scorers import is_pairwise, parse_spec
    from rewardkit.scorers.direction import DirectionScorer
    from rewardkit.scorers.hybrid import HybridScorer
    from rewardkit.scorers.verifier import VerifierScorer
    from rewardkit.scoring import load_scorer

    kind, path = parse_spec(spec)
    if direction is not None:
        if kind not in ("rm", "direction"):
            raise ValueError(f"--direction needs a multi-output reward model, not a {kind!r} scorer")
        return DirectionScorer(path, direction=direction, max_length=max_length, device=device)
    if kind == "verifier":
        return VerifierScorer(items=items if path == "verifier" else path, sandbox=sandbox)
    if kind == "hybrid":
        return HybridScorer(path, items=items, sandbox=sandbox, max_length=max_length, device=device)
    if kind in ("rm", "direction"):
        return load_scorer(spec, max_length=max_length, device=device)
    scorer = load_scorer(spec)
    if is_pairwise(scorer):
        raise ValueError(f"{spec!r} compares pairs of responses; generate needs a pointwise scorer")
    return scorer


def generate_file(cfg: GenerateConfig) -> dict[str, Any]:
    """Run ``cfg``; write ``cfg.out`` (one row per prompt, atomically) and return the summary."""
    rows = read_prompts(cfg.prompts, cfg.limit)
    scorer = build_scorer(cfg.reward, items=cfg.prompts, direction=cfg.direction, max_length=cfg.max_length,
                          device=cfg.device, sandbox=cfg.sandbox)
    policy = load_policy(cfg.policy, dtype=cfg.dtype, device=cfg.device)
    prompts = [r["prompt"] for r in rows]
    keys = [str(r.get("prompt_id", i)) for i, r in enumerate(rows)]
    common = {"n": cfg.n, "sampling": cfg.sampling, "prompts_per_batch": cfg.prompts_per_batch,
              "prompt_keys": keys, "progress": cfg.progress}
    if cfg.method == "bon":
        results = best_of_n(policy, scorer, prompts, **common)
    else:
        assert cfg.alpha is not None
        spec = SpeculativeConfig(cfg.alpha, chunk=None if cfg.token_budget else cfg.chunk, token_budget=cfg.token_budget)
        results = speculative_rejection(policy, scorer, prompts, config=spec, **common)
    _write_rows(Path(cfg.out), [_row(cfg, row, res) for row, res in zip(rows, results, strict=True)])
    return summarize(cfg, results)


def _row(cfg: GenerateConfig, row: dict[str, Any], res: PromptResult) -> dict[str, Any]:
    out = {**row, "response": res.best.text, "score": res.best.score, "finish": res.best.finish,
           "n_tokens": res.best.n_tokens, "sample_index": res.best.index, "method": cfg.method, "n": cfg.n,
           "compute": res.compute.to_dict()}
    if cfg.method == "speculative":
        out["alpha"] = cfg.alpha
        out["rounds"] = [asdict(r) for r in res.rounds]
    if cfg.keep_all:
        out["candidates"] = [asdict(c) for c in res.candidates]
    return out


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def summarize(cfg: GenerateConfig, results: list[PromptResult]) -> dict[str, Any]:
    """Mean best score and the total compute of a run, with per-prompt means."""
    spent = total([r.compute for r in results])
    k = max(len(results), 1)
    return {"out": cfg.out, "method": cfg.method, "n": cfg.n, "alpha": cfg.alpha, "policy": cfg.policy,
            "reward": cfg.reward, "prompts": len(results),
            "mean_score": sum(r.best.score for r in results) / k,
            "compute": spent.to_dict(),
            "per_prompt": {"generated_tokens": spent.generated_tokens / k, "wall_s": round(spent.wall_s / k, 4)}}


# ----------------------------------------------------------------------------- command line


def add_commands(sub: Any) -> None:
    from rewardkit.cli import _command

    p = _command(sub, "generate", "inference-time alignment: sample from a causal LM and keep the best response "
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
    p.add_argument("--n", type=int, default=16, help="samples per prompt (speculative: samples it starts with)")
    p.add_argument("--alpha", type=float, default=None, help="speculative: share of the pool rejected at each "
                   "decision point, in [0, 1) (required; the paper's README uses 0.5)")
    p.add_argument("--chunk", type=int, default=16, help="speculative: tokens between decision points")
    p.add_argument("--token-budget", type=int, default=None, help="speculative: instead of --chunk, decide when "
                   "running samples x context length reaches this many KV-cache tokens")
    p.add_argument("--direction", default=None, help="weights over a multi-output RM's objectives, e.g. "
                   "helpfulness=0.9,verbosity=-0.4 (normalised to a unit vector)")
    _add_sampling(p)
    p.add_argument("--keep-all", action="store_true", help="also write every candidate with its score")
    p.add_argument("--prompts-per-batch", type=int, default=1, help="prompts decoded together (left-padded); "
                   "each brings its n samples")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT prompts")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="policy dtype")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--max-length", type=int, default=None, help="override the reward model's max tokens per input")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--sandbox-timeout", type=float, default=10.0, help="python checks: wall seconds per run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    d = SamplingConfig()
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="tokens per response at most")
    p.add_argument("--temperature", type=float, default=d.temperature, help="0 means greedy")
    p.add_argument("--top-p", type=float, default=d.top_p, help="nucleus sampling mass (1 = off)")
    p.add_argument("--top-k", type=int, default=50, help="keep the k most likely tokens (0 = off); 50 as in the "
                   "Speculative Rejection code")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable); the text is cut before it")
    p.add_argument("--seed", type=int, default=0, help="seed (each prompt's sample i has its own generator)")


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
        sandbox=SandboxLimits(wall_s=args.sandbox_timeout), progress=not args.no_progress)
    summary = generate_file(cfg)
    print(json.dumps(summary, indent=2))
    print(f"wrote {summary['prompts']} rows to {cfg.out}")
    return 0
