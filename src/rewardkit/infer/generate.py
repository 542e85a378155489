"""``rewardkit generate`` as a library call: any causal LM plus any scorer as an aligned sampler.

:func:`generate_file` is the library call behind it: read a prompts jsonl, run Best-of-N or Speculative
Rejection, write one row per prompt (the best response, its score, every input field kept, and what it
cost), and return a summary that the command prints as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data.io import DataError, atomic_writer, read_records
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.infer.accounting import total
from rewardkit.infer.best_of_n import PromptResult, best_of_n
from rewardkit.infer.sampler import SamplingConfig, load_policy
from rewardkit.infer.speculative import (
    AdaptiveAlpha,
    Alpha,
    SpeculativeConfig,
    alpha_label,
    parse_alpha,
    speculative_rejection,
)
from rewardkit.scoring import ScorerOptions, build_scorer, is_pairwise, parse_spec
from rewardkit.verify.sandbox import SandboxLimits

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
    alpha: Alpha | str = 0.5  # the official Speculative Rejection README's value; "adaptive[:LOW,HIGH]" too
    chunk: int | None = 16
    token_budget: int | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    direction: str | None = None
    keep_all: bool = False
    prompts_per_batch: int = 1
    limit: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    max_length: int | None = None
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    progress: bool = True
    pessimism: float = 0.0  # score r − k·U (ScorerOptions.pessimism)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptionError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.n < 1:
            raise OptionError(f"n must be >= 1, got {self.n}")
        alpha = parse_alpha(self.alpha)
        if not isinstance(alpha, AdaptiveAlpha) and not 0.0 <= alpha < 1.0:
            raise OptionError(f"alpha must be in [0, 1), got {alpha}")
        object.__setattr__(self, "alpha", alpha)


def read_prompts(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a prompts file (any format the data layer reads): each needs ``prompt`` (a list of
    messages or a string); an error names the file, line and field."""
    rows = []
    for loc, row in read_records(path, limit=limit, what="prompts"):
        prompt = row.get("prompt")
        valid = isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in prompt))
        if not valid:
            raise DataError(loc, "prompt", "expected a string or a non-empty list of {role, content} messages")
        rows.append(row)
    return rows


def build_generation_scorer(spec: str, *, items: str, options: ScorerOptions | None = None,
                            direction: str | None = None) -> Any:
    """The scorer for ``--reward spec`` through the one builder: ``verifier`` / ``hybrid:RM`` check
    against ``items`` (the prompts file) unless a file is named (``verifier:FILE``); ``direction`` turns a
    reward model into ``direction:RM``. A pairwise judge is refused: generation needs pointwise scores."""
    opts = dataclasses.replace(options or ScorerOptions(), items=items, direction=direction)
    kind, path = parse_spec(spec)
    if direction is not None:
        if kind not in ("rm", "direction"):
            raise OptionError(f"--direction needs a multi-output reward model, not a {kind!r} scorer")
        spec = f"direction:{path}"
    scorer = build_scorer(spec, opts)
    if is_pairwise(scorer):
        raise UnsupportedError(f"{spec!r} compares pairs of responses; generate needs a pointwise scorer")
    return scorer


def generate_file(cfg: GenerateConfig) -> dict[str, Any]:
    """Run ``cfg``; write ``cfg.out`` (one row per prompt, atomically) and return the summary."""
    rows = read_prompts(cfg.prompts, cfg.limit)
    options = ScorerOptions(max_length=cfg.max_length, device=cfg.device, dtype=cfg.dtype, sandbox=cfg.sandbox,
                            pessimism=cfg.pessimism)
    scorer = build_generation_scorer(cfg.reward, items=cfg.prompts, options=options, direction=cfg.direction)
    policy = load_policy(cfg.policy, dtype=cfg.dtype, device=cfg.device)
    prompts = [r["prompt"] for r in rows]
    keys = [str(r.get("prompt_id", i)) for i, r in enumerate(rows)]
    common = {"n": cfg.n, "sampling": cfg.sampling, "prompts_per_batch": cfg.prompts_per_batch,
              "prompt_keys": keys, "progress": cfg.progress}
    if cfg.method == "bon":
        results = best_of_n(policy, scorer, prompts, **common)
    else:
        assert not isinstance(cfg.alpha, str)  # parsed in __post_init__
        spec = SpeculativeConfig(cfg.alpha, chunk=None if cfg.token_budget else cfg.chunk, token_budget=cfg.token_budget)
        results = speculative_rejection(policy, scorer, prompts, config=spec, **common)
    _write_rows(Path(cfg.out), [_row(cfg, row, res) for row, res in zip(rows, results, strict=True)])
    return summarize(cfg, results)


def _row(cfg: GenerateConfig, row: dict[str, Any], res: PromptResult) -> dict[str, Any]:
    out = {**row, "response": res.best.text, "score": res.best.score, "finish": res.best.finish,
           "n_tokens": res.best.n_tokens, "sample_index": res.best.index, "method": cfg.method, "n": cfg.n,
           "compute": res.compute.to_dict()}
    if cfg.method == "speculative":
        out["alpha"] = alpha_label(parse_alpha(cfg.alpha))
        out["rounds"] = [asdict(r) for r in res.rounds]
    if cfg.keep_all:
        out["candidates"] = [asdict(c) for c in res.candidates]
    return out


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def summarize(cfg: GenerateConfig, results: list[PromptResult]) -> dict[str, Any]:
    """Mean best score and the total compute of a run, with per-prompt means."""
    spent = total([r.compute for r in results])
    k = max(len(results), 1)
    return {"out": cfg.out, "method": cfg.method, "n": cfg.n, "alpha": alpha_label(parse_alpha(cfg.alpha)), "policy": cfg.policy,
            "reward": cfg.reward, "pessimism": cfg.pessimism, "prompts": len(results),
            "mean_score": sum(r.best.score for r in results) / k,
            "compute": spent.to_dict(),
            "per_prompt": {"generated_tokens": spent.generated_tokens / k, "wall_s": round(spent.wall_s / k, 4)}}
