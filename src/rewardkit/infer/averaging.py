"""Averaged models on disk, and the reward-vs-alignment-tax sweep over α (``rewardkit average``).

For each α of a sweep the two models are averaged (:func:`~rewardkit.models.averaging.average_models`),
the averaged policy samples ``n`` responses to each prompt (the seeded sampler), a scorer rates them,
and the *alignment tax* is measured as the per-token NLL of held-out text the alignment never trained
on (``--tax-data``): α = 0 is the aligned model (most reward, most forgetting), α = 1 the base model.
The benchmark script calls :func:`load_pair`, :func:`average_models` and :func:`evaluate_point` directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.io import atomic_write_json
from rewardkit.errors import OptionError
from rewardkit.infer.best_of_n import as_messages
from rewardkit.infer.generate import build_generation_scorer, read_prompts
from rewardkit.infer.sampler import SamplingConfig, policy_from_model, sample
from rewardkit.models.averaging import (
    AveragingPlan,
    LMText,
    average_models,
    check_compatible,
    encode_lm_rows,
    layer_of,
    num_layers,
    read_lm_rows,
    response_nll,
)
from rewardkit.models.causal_lm import CausalLM, load_causal_lm
from rewardkit.scoring import ScorerOptions
from rewardkit.stats import bootstrap_mean

__all__ = [
    "PointResult",
    "SweepConfig",
    "average_models",
    "evaluate_point",
    "load_pair",
    "model_layers",
    "plot_sweep",
    "run_sweep",
    "save_averaged",
]


def load_pair(base: str, tuned: str, *, dtype: str = "float32", device: str = "cpu") -> tuple[CausalLM, CausalLM]:
    """Load the base (pre-alignment) and tuned (aligned) models; :class:`OptionError` naming the first
    difference when their architectures or sizes differ."""
    b = load_causal_lm(base, dtype=dtype, device=device)
    t = load_causal_lm(tuned, dtype=dtype, device=device)
    check_compatible(b.model.state_dict(), t.model.state_dict(), base_name=f"--base {base}",
                     tuned_name=f"--tuned {tuned}")
    if b.tokenizer.get_vocab() != t.tokenizer.get_vocab():
        raise OptionError(f"--base {base} and --tuned {tuned} have different tokenizers")
    return b, t


def model_layers(model: Any) -> int:
    """Decoder layers of ``model`` (as the averaging groups count them)."""
    return num_layers(layer_of(model))


def save_averaged(model: Any, tuned_path: str, out: str | Path, record: dict[str, Any]) -> Path:
    """Write ``model`` as a standard ``AutoModelForCausalLM`` folder with the tuned model's tokenizer (as
    it is on disk) and ``rewardkit.json`` (``record``: the plan, the sources, a search's history)."""
    from transformers import AutoTokenizer

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(tuned_path).save_pretrained(folder)
    atomic_write_json(folder / "rewardkit.json", record)
    return folder


# ------------------------------------------------------------------------------------ one point


@dataclass(frozen=True)
class PointResult:
    """One averaged model's figures: mean reward over prompts (each prompt's mean over its ``n``
    samples) with a 95% bootstrap interval over prompts, and the tax data's per-token NLL."""

    alpha: float
    reward: float
    reward_low: float
    reward_high: float
    prompts: int
    samples: int
    tax_nll: float
    tax_tokens: int
    mean_response_tokens: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def evaluate_point(model: Any, tokenizer: Any, *, alpha: float, prompts: Sequence[Any], scorer: Any,
                   tax: Sequence[LMText], n: int, sampling: SamplingConfig, seed: int = 0) -> PointResult:
    """Sample ``n`` responses per prompt from ``model``, score them with ``scorer`` (any
    :class:`~rewardkit.scoring.Scorer`), and measure the per-token NLL of ``tax`` (encoded texts)."""
    policy = policy_from_model(model, tokenizer, f"average α={alpha}")
    samples = sample(policy, list(prompts), n, sampling)  # [prompt][sample]
    msgs = [as_messages(p) for p in prompts]
    flat_p = [msgs[i][0] for i, row in enumerate(samples) for _ in row]
    flat_c = [msgs[i][1] for i, row in enumerate(samples) for _ in row]
    flat_r = [[{"role": "assistant", "content": s.text}] for row in samples for s in row]
    rewards = np.asarray(scorer.score(flat_p, flat_r, flat_c).rewards, dtype=np.float64).reshape(len(prompts), n)
    est = bootstrap_mean(rewards.mean(axis=1), seed=seed)
    nll = response_nll(model, tax, policy.pad_id)
    lengths = [s.n_tokens for row in samples for s in row]
    return PointResult(float(alpha), est.value, est.low, est.high, len(prompts), int(rewards.size), nll.per_token,
                       nll.tokens, float(np.mean(lengths)))


# ------------------------------------------------------------------------------------ the sweep


@dataclass(frozen=True)
class SweepConfig:
    """``rewardkit average --sweep``: one averaged model per α, each rated by reward and tax."""

    base: str
    tuned: str
    out: str
    reward: str
    prompts: str
    tax_data: str
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    n: int = 4
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=64))
    max_length: int = 512
    limit: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    options: ScorerOptions = field(default_factory=ScorerOptions)

    def __post_init__(self) -> None:
        if not self.alphas:
            raise OptionError("--sweep needs at least one alpha")
        if self.n < 1:
            raise OptionError(f"--n must be >= 1, got {self.n}")


def run_sweep(cfg: SweepConfig, *, log: Callable[[str], None] = print) -> list[PointResult]:
    """Average, sample, score and measure the tax at every α; write ``sweep.json`` and ``sweep.png``."""
    rows = read_prompts(cfg.prompts, cfg.limit)
    prompts = [r["prompt"] for r in rows]
    scorer = build_generation_scorer(cfg.reward, items=cfg.prompts, options=cfg.options)
    base, tuned = load_pair(cfg.base, cfg.tuned, dtype=cfg.dtype, device=cfg.device)
    tax = encode_lm_rows(tuned.tokenizer, read_lm_rows(cfg.tax_data), cfg.max_length)
    n_layers = model_layers(tuned.model)
    scratch = None
    results = []
    for alpha in cfg.alphas:
        scratch = average_models(base.model, tuned.model, AveragingPlan.uniform(alpha, n_layers), into=scratch)
        point = evaluate_point(scratch, tuned.tokenizer, alpha=alpha, prompts=prompts, scorer=scorer, tax=tax,
                               n=cfg.n, sampling=cfg.sampling, seed=cfg.sampling.seed)
        log(f"alpha {alpha:g}: reward {point.reward:.4g} [{point.reward_low:.4g}, {point.reward_high:.4g}], "
            f"tax NLL/token {point.tax_nll:.4f}")
        results.append(point)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", sweep_record(cfg, results))
    plot_sweep(results, out / "sweep.png", reward_name=cfg.reward)
    return results


def sweep_record(cfg: SweepConfig, results: Sequence[PointResult]) -> dict[str, Any]:
    """What ``sweep.json`` holds: the settings and one row per α."""
    return {"base": cfg.base, "tuned": cfg.tuned, "reward": cfg.reward, "prompts": cfg.prompts,
            "tax_data": cfg.tax_data, "n": cfg.n, "sampling": json.loads(json.dumps(cfg.sampling.__dict__)),
            "alpha_meaning": "theta = alpha*base + (1-alpha)*tuned (0 = tuned/aligned, 1 = base)",
            "reward_interval": "95% percentile bootstrap over prompts of each prompt's mean reward",
            "tax": "per-token negative log-likelihood of the tax-data responses (higher = more forgetting)",
            "rows": [r.to_dict() for r in results]}


def plot_sweep(results: Sequence[PointResult], path: str | Path, *, reward_name: str = "reward") -> None:
    """Reward (with its interval) against the tax NLL, one point per α, labelled (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    x = [r.tax_nll for r in results]
    y = [r.reward for r in results]
    err = [[r.reward - r.reward_low for r in results], [r.reward_high - r.reward for r in results]]
    ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3)
    for r in results:
        ax.annotate(f"α={r.alpha:g}", (r.tax_nll, r.reward), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("alignment tax: held-out NLL per token (lower is better)")
    ax.set_ylabel(f"mean reward ({reward_name})")
    ax.set_title("model averaging: reward vs alignment tax")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
