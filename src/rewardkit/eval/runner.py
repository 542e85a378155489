"""``rewardkit eval``: read a benchmark, score it with one or more scorers, and report honest numbers.

For each scorer: one scoring pass over every distinct input (cached, resumable), the benchmark's rule
per item, its aggregation to subsets / sections / overall, 95% intervals from a stratified cluster
bootstrap (the same seeded resamples for every model, so differences are tested pairwise), trivial
baselines on the same items (random, longer-wins, shorter-wins), length bias, calibration of σ(Δ),
score distributions and truncation, and whether the overall covers every published section (an overall
over 3 of 4 domains is flagged incomplete). Writes ``results.json``, ``items.jsonl`` and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.io import atomic_writer
from rewardkit.errors import OptionError
from rewardkit.eval import shortcuts
from rewardkit.eval.abstention import Abstention, abstention, item_uncertainty
from rewardkit.eval.analysis import Comparisons, comparisons, gating_spread, length_bias, score_distribution
from rewardkit.eval.benchmarks import Benchmark, Item, Outcomes, Stat, get_benchmark
from rewardkit.eval.benchmarks.base import Coverage, coverage
from rewardkit.eval.cache import ScoreCache
from rewardkit.eval.calibration import calibration
from rewardkit.eval.results import (
    Comparison,
    DataInfo,
    EvalResult,
    Metric,
    ModelResult,
    Settings,
    write_json,
)
from rewardkit.eval.score_items import ItemScores, score_items
from rewardkit.eval.stats import cluster_bootstrap, paired_difference, percentile_interval
from rewardkit.scorers import ScorerOptions, build_scorer, scorer_identity
from rewardkit.scorers.shards import current_shard


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: scorers (specs), a benchmark and its data, and every setting that can move a number."""

    models: tuple[str, ...]
    data: str
    benchmark: str = "pairs"
    out: str = "runs/eval"
    split: str | None = None
    max_length: int | None = None
    dtype: str = "float32"
    batch_tokens: int | None = None
    device: str = "cpu"
    seed: int = 0
    n_boot: int = 2000
    cache: str | None = None
    skip_invalid: bool = False
    ref_model: str | None = None
    ref_free: str | None = None
    judge_both_orders: bool = True
    limit: int | None = None
    report: bool = True
    command: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.models:
            raise OptionError("give at least one --model")
        if len(set(self.models)) != len(self.models):
            raise OptionError(f"--model given twice: {sorted(m for m in self.models if self.models.count(m) > 1)}")
        if self.n_boot < 100:
            raise OptionError(f"--n-boot must be at least 100 for a 95% interval, got {self.n_boot}")
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"--limit must be positive, got {self.limit}")

    def scorer_options(self) -> ScorerOptions:
        return ScorerOptions(self.max_length, self.dtype, self.device, self.batch_tokens, self.ref_model,
                             self.ref_free, self.seed, self.judge_both_orders)


@dataclass(frozen=True)
class ScoredModel:
    """What one scorer produced on the items (kept in memory for the report, not in results.json)."""

    spec: str
    scores: ItemScores
    outcomes: Outcomes
    comparisons: Comparisons
    replicates: np.ndarray  # (n_boot, K) the summary keys on each bootstrap resample


def run_eval(cfg: EvalConfig) -> tuple[EvalResult, list[ScoredModel]]:
    """Run the evaluation of ``cfg``; write ``results.json`` and ``items.jsonl`` (and ``report.html``)."""
    bench = get_benchmark(cfg.benchmark)
    read = bench.read(cfg.data, split=cfg.split, skip_invalid=cfg.skip_invalid)
    items = read.items[: cfg.limit] if cfg.limit else read.items
    baselines = trivial_baselines(bench, items, seed=cfg.seed)
    results, scored = [], []
    for spec in cfg.models:
        model, kept = evaluate_model(spec, bench, items, cfg)
        results.append(model)
        scored.append(kept)
    keys = [m.key for m in results[0].metrics]
    cov = coverage(bench, keys)
    out = EvalResult(bench.name, bench.description, data_info(cfg, read, items, cov), settings(cfg), baselines,
                     tuple(results), tuple(paired_comparisons(results, scored, keys)), cfg.out, cov,
                     shortcuts_of(cfg, bench, items))
    if not current_shard(cfg.device).is_main:  # under torchrun the first process writes
        return out, scored
    write_outputs(out, items, scored)
    if cfg.report:
        from rewardkit.eval.report import write_report

        write_report(out, scored, Path(cfg.out) / "report.html")
    return out, scored


def evaluate_model(spec: str, bench: Benchmark, items: Sequence[Item], cfg: EvalConfig
                   ) -> tuple[ModelResult, ScoredModel]:
    """Score ``items`` with one scorer and compute everything reported about it. The bootstrap resamples
    are regenerated from the seed for each model (not stored), so every model sees the same ones."""
    opts = cfg.scorer_options()
    shard = current_shard(opts.device)
    opts = dataclasses.replace(opts, device=shard.device(opts.device))
    scorer = build_scorer(spec, opts)
    identity = scorer_identity(scorer, opts)
    # under torchrun the cache is off: every process must score the same chunks
    cache = ScoreCache(cfg.cache, identity) if cfg.cache and shard.world == 1 else None
    try:
        scored = score_items(scorer, items, cache=cache, desc=f"scoring {spec}", shard=shard)
    finally:
        if cache is not None:
            cache.close()
        del scorer
        gc.collect()
    outcomes = bench.outcomes(items, scored.scores)
    point = bench.summarize(outcomes)
    keys = list(point)
    resamples = cluster_bootstrap([it.subset for it in items], [it.cluster_key for it in items],
                                  n_boot=cfg.n_boot, seed=cfg.seed)
    reps = np.array([[s.value for s in _values(bench.summarize(outcomes.take(rows, ids)), keys)]
                     for rows, ids in resamples]).reshape(cfg.n_boot, len(keys))
    metrics = tuple(Metric(k, point[k].value, *percentile_interval(reps[:, j]), point[k].n)
                    for j, k in enumerate(keys))
    comp = comparisons(items, scored.scores)
    result = ModelResult(spec, identity, metrics, length_bias(items, scored.scores, comp), calibration(comp.margin),
                         score_distribution(items, scored.scores), scored.to_dict(),
                         int(sum(bool(t.any()) for t in scored.truncated)), len(items),
                         _abstention(items, scored, outcomes, cfg), per_objective(bench, items, scored, cfg),
                         gating_spread(scored.weights, scored.objective_names) if scored.weights else None)
    return result, ScoredModel(spec, scored, outcomes, comp, reps)


def _resamples(items: Sequence[Item], cfg: EvalConfig) -> Any:
    """The evaluation's bootstrap resamples, regenerated from its seed (identical for every model and use)."""
    return cluster_bootstrap([it.subset for it in items], [it.cluster_key for it in items], n_boot=cfg.n_boot,
                             seed=cfg.seed)


def _abstention(items: Sequence[Item], scored: ItemScores, outcomes: Outcomes, cfg: EvalConfig) -> Abstention | None:
    if scored.uncertainty is None or not items:
        return None
    return abstention(outcomes.credit, item_uncertainty(scored.uncertainty), _resamples(items, cfg))


def per_objective(bench: Benchmark, items: Sequence[Item], scored: ItemScores, cfg: EvalConfig
                  ) -> dict[str, dict[str, float]] | None:
    """For a scorer with objectives: the benchmark's overall when each objective alone is the score (e.g.
    pairwise accuracy of the ``helpfulness`` output), with its 95% interval."""
    if scored.objectives is None or not items:
        return None
    out = {}
    for j, name in enumerate(scored.objective_names):
        outcomes = bench.outcomes(items, [o[:, j] for o in scored.objectives])
        point = bench.summarize(outcomes)["overall"]
        reps = [bench.summarize(outcomes.take(rows, ids))["overall"].value for rows, ids in _resamples(items, cfg)]
        low, high = percentile_interval(np.array(reps))
        out[name] = {"value": point.value, "ci95_low": low, "ci95_high": high, "n": point.n}
    return out


def _values(summary: dict[str, Stat], keys: Sequence[str]) -> list[Stat]:
    return [summary.get(k, Stat(float("nan"), 0)) for k in keys]


def shortcuts_of(cfg: EvalConfig, bench: Benchmark, items: Sequence[Item]) -> dict[str, Any] | None:
    """On synthetic-testbed pairs (``rewardkit data synth`` output, read whole by ``pairs``), the shortcut
    baselines of :mod:`rewardkit.eval.shortcuts`, each model also scored with every prompt swapped."""
    if bench.name != "pairs":
        return None
    rows = shortcuts.testbed_rows(cfg.data)
    if rows is None or len(rows) != len(items):  # limited or with skipped rows: the pairs would not align
        return None

    def swap_credit(spec: str, path: Path) -> np.ndarray:
        swapped = bench.read(str(path), split=None, skip_invalid=False).items
        scorer = build_scorer(spec, cfg.scorer_options())
        try:
            return bench.outcomes(swapped, score_items(scorer, swapped, desc=f"{spec}, prompts swapped").scores).credit
        finally:
            del scorer
            gc.collect()

    return shortcuts.testbed_shortcuts(rows, cfg.models, swap_credit, Path(cfg.out) / "pairs_prompt_swapped.jsonl",
                                       seed=cfg.seed)


def trivial_baselines(bench: Benchmark, items: Sequence[Item], *, seed: int) -> dict[str, dict[str, float]]:
    """The benchmark's numbers for a random picker (expected value), longer-wins and shorter-wins."""
    if hasattr(bench, "random_baseline"):
        random = bench.random_baseline(items, seed=seed)
    else:
        random = {k: s.value for k, s in bench.summarize(bench.random_outcomes(items)).items()}
    lengths = [it.response_lengths().astype(np.float64) for it in items]
    longer = bench.summarize(bench.outcomes(items, lengths))
    shorter = bench.summarize(bench.outcomes(items, [-x for x in lengths]))
    return {"random": random, "longer_wins": {k: s.value for k, s in longer.items()},
            "shorter_wins": {k: s.value for k, s in shorter.items()}}


def paired_comparisons(results: Sequence[ModelResult], scored: Sequence[ScoredModel],
                       keys: Sequence[str]) -> list[Comparison]:
    """Every pair of models on every metric, tested on the same bootstrap resamples."""
    out = []
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            for k, key in enumerate(keys):
                a, b = results[i].metrics[k].value, results[j].metrics[k].value
                diff = paired_difference(a, b, scored[i].replicates[:, k], scored[j].replicates[:, k])
                out.append(Comparison(results[i].spec, results[j].spec, key, diff))
    return out


def data_info(cfg: EvalConfig, read: Any, items: Sequence[Item], cov: Coverage | None = None) -> DataInfo:
    from rewardkit.data.dataset import file_fingerprint

    local = Path(cfg.data).exists()
    fingerprint = file_fingerprint(cfg.data) if local else f"hub:{cfg.data}@{cfg.split or 'default'}"
    notes = dict(read.notes)
    if cfg.limit and cfg.limit < len(read.items):
        notes["limited_to_first"] = cfg.limit
    if cov is not None and not cov.complete:  # the CLI prints every note: the warning reaches the terminal
        notes["incomplete"] = (f"{cov.headline()}; the overall is the mean of the {cov.unit} present, "
                               "not comparable to the published overall")
    return DataInfo(cfg.data, fingerprint, read.n_records, len(items), sum(len(it.responses) for it in items),
                    read.n_errors, read.errors, notes, dict(sorted(Counter(it.subset for it in items).items())))


def settings(cfg: EvalConfig) -> Settings:
    return Settings(cfg.benchmark, cfg.split, cfg.seed, cfg.n_boot, cfg.max_length, cfg.dtype, cfg.batch_tokens,
                    cfg.device, cfg.ref_model, cfg.ref_free, cfg.judge_both_orders, cfg.limit, versions(),
                    list(cfg.command), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def versions() -> dict[str, str]:
    """Versions of Python, the platform and every package that can move a score."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("rewardkit", "torch", "transformers", "tokenizers", "datasets", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_outputs(result: EvalResult, items: Sequence[Item], scored: Sequence[ScoredModel]) -> None:
    """``results.json`` and ``items.jsonl`` (per item: labels, and each model's scores and credit)."""
    out = Path(result.out_dir)
    write_json(out / "results.json", result.to_dict())
    with atomic_writer(out / "items.jsonl") as f:
        for k, it in enumerate(items):
            row = {"uid": it.uid, "subset": it.subset, "labels": list(it.labels),
                   "models": {m.spec: {"scores": m.scores.scores[k].tolist(), "credit": float(m.outcomes.credit[k]),
                                       "truncated": m.scores.truncated[k].tolist()} for m in scored}}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
