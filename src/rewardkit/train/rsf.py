"""``rewardkit train rsf``: rejection-sampling fine-tuning (RAFT / DPA's preference-conditioned RSF).

Each iteration: sample ``k`` responses per prompt from the current policy, keep the best by any scorer
(``rm:DIR``, ``verifier``, ``hybrid:RM``, ``direction:RM`` ...), and fine-tune the policy on the picks with
the ``sft`` loss on the one training loop (:func:`rewardkit.train.policy.train_policy`); the fine-tuned
folder is the next iteration's policy. A last sampling round measures the final policy the same way, so
the log has one row per policy: the starting one, and the one after each iteration.

With a direction (``--direction helpfulness=0.9,verbosity=-0.4``; DPA, METHODS §3) the preference vector
``v`` is written into a system prompt the policy sees while sampling and while being fine-tuned --
``"Your response should maximize weighted rating = helpfulness*90 + verbosity*-44"``, the weights
``round(100·v_i)`` -- and the scorer is ``direction:RM`` with the same ``v``. The scorers never see that
system prompt: they score the user's conversation, as DPA's reward model does.

Each row of the log holds the mean reward of all samples (the policy's expected reward), of the picks,
and -- with ``--gold SCORER`` (e.g. ``verifier`` on ifeval-lite prompts) -- the same two for the gold
reward, with a 95% bootstrap interval over prompts.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.data.io import atomic_writer
from rewardkit.errors import OptionError
from rewardkit.infer.best_of_n import PromptResult, as_messages, best_of_n
from rewardkit.infer.generate import build_generation_scorer, read_prompts
from rewardkit.infer.sampler import SamplingConfig, load_policy
from rewardkit.scoring import ScoreOutput, ScorerOptions
from rewardkit.stats import bootstrap_mean


@dataclass(frozen=True)
class RSFConfig:
    """One ``rewardkit train rsf`` run. ``sft`` holds ``--set`` overrides of the fine-tuning job
    (:class:`rewardkit.train.policy.PolicyTrainConfig`, loss ``sft``), e.g. ``["lr=1e-5", "lora.r=8"]``."""

    policy: str
    reward: str
    prompts: str
    out: str
    k: int = 8
    iterations: int = 2
    gold: str | None = None
    direction: str | None = None
    system_prompt: bool = True
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=128))
    limit: int | None = None
    prompts_per_batch: int = 1
    sft: tuple[str, ...] = ()
    epochs: float = 1.0
    lr: float = 1e-5
    batch_size: int = 8
    max_length: int = 512
    lora_r: int = 0
    dtype: str = "auto"
    device: str = "auto"
    pessimism: float = 0.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.k < 2:
            raise OptionError(f"k must be >= 2 (rejection sampling keeps the best of k samples), got {self.k}")
        if self.iterations < 1:
            raise OptionError(f"iterations must be >= 1, got {self.iterations}")


def dpa_system_prompt(weights: dict[str, float]) -> str:
    """DPA's conditioning: ``"Your response should maximize weighted rating = a*w_a + b*w_b"`` with the
    weights ``round(100·v_i)`` of the unit vector ``v`` (objectives in the order given)."""
    if not weights:
        raise OptionError("a direction needs at least one objective")
    norm = float(np.sqrt(sum(w * w for w in weights.values())))
    if not np.isfinite(norm) or norm == 0.0:
        raise OptionError("a direction needs at least one non-zero, finite weight")
    terms = " + ".join(f"{name}*{round(100 * w / norm)}" for name, w in weights.items())
    return f"Your response should maximize weighted rating = {terms}"


def with_system(prompt: Sequence[Message] | str, system: str | None) -> list[Message]:
    """The prompt as messages with ``system`` as its first message (replacing one it had); None: unchanged."""
    messages, _ = as_messages(prompt)
    if system is None:
        return messages
    if messages and messages[0]["role"] == "system":
        messages = messages[1:]
    return [{"role": "system", "content": system}, *messages]


class UserView:
    """A scorer that scores what the user asked: it drops the system prompt RSF added before scoring, so a
    reward model or verifier sees (and a verifier matches) the prompt as it is in the prompts file."""

    def __init__(self, scorer: Any, original: dict[str, list[Message]]) -> None:
        self.inner, self.original, self.name = scorer, original, getattr(scorer, "name", "scorer")

    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
              conversational: Sequence[bool] | bool = True) -> ScoreOutput:
        return self.inner.score([self.original.get(_key(p), list(p)) for p in prompts], responses, conversational)


def _key(messages: Sequence[Message]) -> str:
    return json.dumps([[m["role"], m["content"]] for m in messages])


def _responses(texts: Sequence[str]) -> list[list[Message]]:
    return [[{"role": "assistant", "content": t}] for t in texts]


@dataclass(frozen=True)
class Round:
    """One sampling round: the candidates of every prompt and their gold rewards ([prompt][sample])."""

    results: list[PromptResult]
    gold: list[list[float]] | None


def sample_round(policy_name: str, scorer: Any, gold: Any, prompts: list[list[Message]], originals: list[list[Message]],
                 cfg: RSFConfig, iteration: int) -> Round:
    """``k`` samples per prompt from ``policy_name``, scored (and gold-scored) on the user's prompt."""
    policy = load_policy(policy_name, dtype="float32" if cfg.dtype == "auto" else cfg.dtype, device=cfg.device)
    sampling = dataclasses.replace(cfg.sampling, seed=cfg.sampling.seed + 1000 * iteration)
    results = best_of_n(policy, scorer, prompts, n=cfg.k, sampling=sampling, prompts_per_batch=cfg.prompts_per_batch,
                        progress=cfg.progress)
    golds = None
    if gold is not None:
        golds = [[float(x) for x in gold.score([orig] * len(r.candidates), _responses([c.text for c in r.candidates]),
                                               True).rewards] for orig, r in zip(originals, results, strict=True)]
    return Round(results, golds)


def round_summary(rnd: Round, seed: int) -> dict[str, Any]:
    """Mean reward of all samples and of the picks (with 95% bootstrap intervals over prompts), and the
    same for the gold reward when there is one."""
    out: dict[str, Any] = {}
    per_prompt_all = [float(np.mean([c.score for c in r.candidates])) for r in rnd.results]
    per_prompt_best = [r.best.score for r in rnd.results]
    out["reward_samples"] = _ci(per_prompt_all, seed)
    out["reward_picks"] = _ci(per_prompt_best, seed)
    if rnd.gold is not None:
        out["gold_samples"] = _ci([float(np.mean(g)) for g in rnd.gold], seed)
        out["gold_picks"] = _ci([g[r.best.index] for g, r in zip(rnd.gold, rnd.results, strict=True)], seed)
    out["mean_tokens"] = float(np.mean([c.n_tokens for r in rnd.results for c in r.candidates]))
    return out


def _ci(values: Sequence[float], seed: int) -> dict[str, float]:
    return bootstrap_mean(values, seed=seed).to_dict()


def write_picks(path: Path, prompts: list[list[Message]], rnd: Round) -> int:
    """The SFT data of one iteration: a TRL prompt-completion row (``prompt`` with the system prompt,
    ``completion``) per prompt, with its reward (and gold). Returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        for i, (prompt, res) in enumerate(zip(prompts, rnd.results, strict=True)):
            row = {"prompt": prompt, "completion": [{"role": "assistant", "content": res.best.text}],
                   "reward": res.best.score, "sample_index": res.best.index}
            if rnd.gold is not None:
                row["gold"] = rnd.gold[i][res.best.index]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(prompts)


def fine_tune(cfg: RSFConfig, policy: str, data: Path, out: Path, iteration: int) -> dict[str, Any]:
    """SFT of ``policy`` on the picks in ``data`` -> ``out`` (a standard causal-LM folder)."""
    from rewardkit.train.config import load_config
    from rewardkit.train.policy import PolicyTrainConfig, train_policy

    values = {"data": str(data), "model": policy, "out": str(out), "epochs": cfg.epochs, "lr": cfg.lr,
              "batch_size": cfg.batch_size, "max_length": cfg.max_length, "seed": cfg.seed + iteration,
              "device": cfg.device}
    overrides = ["loss.name=sft", *([f"lora.r={cfg.lora_r}"] if cfg.lora_r else []), *cfg.sft]
    result = train_policy(load_config(PolicyTrainConfig, None, values, overrides))
    return result.metadata.get("training", {})


def run_rsf(cfg: RSFConfig) -> dict[str, Any]:
    """Run ``cfg.iterations`` rounds of sample → pick → SFT; write ``OUT/rsf.json`` (one row per policy)
    and ``OUT/iter_<i>/{picks.jsonl, model/}``; return the log. The final policy is ``OUT/iter_<I>/model``."""
    from rewardkit.scorers.direction import parse_direction

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_prompts(cfg.prompts, cfg.limit)
    originals = [as_messages(r["prompt"])[0] for r in rows]
    system = dpa_system_prompt(parse_direction(cfg.direction)) if cfg.direction and cfg.system_prompt else None
    prompts = [with_system(p, system) for p in originals]
    options = ScorerOptions(device=cfg.device, pessimism=cfg.pessimism)
    scorer = UserView(build_generation_scorer(cfg.reward, items=cfg.prompts, options=options, direction=cfg.direction),
                      {_key(p): o for p, o in zip(prompts, originals, strict=True)})
    gold = build_generation_scorer(cfg.gold, items=cfg.prompts, options=ScorerOptions(device=cfg.device)) \
        if cfg.gold else None
    log: list[dict[str, Any]] = []
    policy = cfg.policy
    for it in range(cfg.iterations + 1):
        t0 = time.perf_counter()
        rnd = sample_round(policy, scorer, gold, prompts, originals, cfg, it)
        row: dict[str, Any] = {"iteration": it, "policy": policy, **round_summary(rnd, cfg.seed)}
        if it < cfg.iterations:
            folder = out / f"iter_{it + 1}"
            row["picks"] = write_picks(folder / "picks.jsonl", prompts, rnd)
            row["sft"] = fine_tune(cfg, policy, folder / "picks.jsonl", folder / "model", it)
            policy = str(folder / "model")
        row["seconds"] = round(time.perf_counter() - t0, 2)
        log.append(row)
        _write_log(out / "rsf.json", cfg, system, log, policy)
    return {"final_policy": policy, "system_prompt": system, "iterations": log}


def _write_log(path: Path, cfg: RSFConfig, system: str | None, log: list[dict[str, Any]], policy: str) -> None:
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "sampling"}
    config["sampling"] = dataclasses.asdict(cfg.sampling)
    with atomic_writer(path) as f:
        json.dump({"config": config, "system_prompt": system, "final_policy": policy, "iterations": log}, f, indent=2)
