"""Last-layer uncertainty (AdvPO, METHODS §5): does abstaining on uncertain pairs help, what does U cost,
and does a pessimistic reward r − k·U stop Best-of-N's over-optimisation?

In one run, with MiniLM reward models trained here (``rewardkit train rm``) and U fitted on their own
training pairs (``rewardkit uncertainty fit``):

(a) **Abstention.** HH-RLHF harmless-base (``../shared/data``; first ``--hh-train`` pairs train, the next
    ``--hh-test`` test, in file order) and the shipped ifeval-lite train/test pairs: held-out pairwise
    accuracy on all pairs and on the 80% most certain (pair uncertainty ``sqrt(U_c² + U_r²)``), the
    accuracy–coverage area and its gain over plain accuracy, each with a 95% bootstrap interval
    (:mod:`rewardkit.eval.abstention`); beside it the same abstention by the RM's own |margin|, the
    obvious competitor. ``--ensemble-model DATASET=PATH`` adds any scorer that reports uncertainty (e.g.
    a URME ensemble folder) on that dataset's test pairs.
(b) **Cost.** The first ``--cost-pairs`` HH test pairs' sequences scored with and without U by the same loaded model, alternating
    which goes first, best of ``--cost-repeats`` each (target: at most 1.1× the time).
(c) **Over-optimisation.** ``--prompts`` held-out ifeval-lite prompts, ``max(--ns)`` SmolLM2 samples each
    (seeded per sample, so Best-of-N's samples are the first N); every candidate scored once (r and U)
    by the ifeval-lite RM; for each k in ``--ks`` and N in ``--ns`` the pick ``argmax r − k·U`` and its
    gold reward (the fraction of the prompt's instructions the verifiers find met), for the first N
    samples and in expectation over all N-subsets of the samples; the verifier's own pick as the
    ceiling. Target: gold at N = max with the best k ≥ gold at N = 8 with k = 0.

    python benchmarks/uncertainty.py --out benchmarks/results/uncertainty.json   # ~25 min on 2 cores
    python benchmarks/uncertainty.py --quick                                     # ~12 min: fewer pairs and prompts

Prints one JSON object on stdout (progress on stderr), writes ``--out`` and the plot beside it (``--plot``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_json_main
from bon_vs_speculative import expected_best, gold

HH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def log(message: str) -> None:
    print(f"[uncertainty] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data and models


def split_hh(path: Path, workdir: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """HH-RLHF's first ``n_train`` pairs and the next ``n_test``, in file order, as two jsonl files."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if len(lines) < n_train + n_test:
        raise ValueError(f"{path} has {len(lines)} pairs; asked for {n_train} + {n_test}")
    train, test = workdir / "hh_train.jsonl", workdir / "hh_test.jsonl"
    train.write_text("".join(lines[:n_train]), encoding="utf-8")
    test.write_text("".join(lines[n_train:n_train + n_test]), encoding="utf-8")
    return train, test


def pin_ifeval(workdir: Path) -> dict[str, Path]:
    """Copies of the shipped ifeval-lite train, test and candidates files (so a regeneration during the run
    cannot mix two sets), with their sha256 in the report."""
    import shutil

    from rewardkit.synth import load_embedded

    folder = workdir / "ifeval_lite"
    folder.mkdir(parents=True, exist_ok=True)
    return {split: Path(shutil.copy(load_embedded(split), folder / f"{split}.jsonl"))
            for split in ("train", "test", "candidates")}


def read_prompts(path: Path, k: int) -> list[dict[str, Any]]:
    """The first ``k`` held-out prompts (one row per prompt, with its constraints)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) < k:
        raise ValueError(f"{path}: only {len(rows)} prompts, asked for {k}")
    return rows[:k]


def train_and_fit(name: str, train: Path, workdir: Path, *, epochs: float, batch_size: int, lr: float,
                  max_length: int, seed: int) -> dict[str, Any]:
    """A MiniLM RM on ``train`` (``rewardkit train rm``), then U fitted on the same pairs. Invalid records
    (HH-RLHF has a few empty responses) are left out of both and counted."""
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model
    from rewardkit.train.uncertainty import FitConfig, fit_uncertainty

    out = workdir / f"{name}_rm"
    t0 = time.perf_counter()
    trained = train_reward_model(RewardTrainConfig(data=str(train), model="minilm", out=str(out), epochs=epochs,
                                                   max_length=max_length, batch_size=batch_size, lr=lr, seed=seed,
                                                   logging_steps=50, skip_invalid=True))
    t1 = time.perf_counter()
    fit = fit_uncertainty(FitConfig(model=str(out), data=str(train), device="cpu", skip_invalid=True))
    log(f"{name}: trained in {t1 - t0:.0f} s, U fitted in {fit.seconds:.0f} s")
    return {"folder": str(out), "train_seconds": t1 - t0, "fit": fit.to_dict(),
            "training": trained.metadata["training"]}


def fit_existing(name: str, model: Path, train: Path, workdir: Path) -> dict[str, Any]:
    """A copy of an already trained RM folder (e.g. ``benchmarks/testbed.py``'s ``new/rm``), with U fitted on
    ``train``: the figures then describe that very model."""
    import shutil

    from rewardkit.train.uncertainty import FitConfig, fit_uncertainty

    out = workdir / f"{name}_rm"
    if not out.exists():
        shutil.copytree(model, out)
    fit = fit_uncertainty(FitConfig(model=str(out), data=str(train), device="cpu", skip_invalid=True))
    log(f"{name}: {model} copied, U fitted in {fit.seconds:.0f} s")
    return {"folder": str(out), "copied_from": str(model), "fit": fit.to_dict()}


def stored_samples(path: Path, rows: Sequence[dict[str, Any]], n: int) -> list[list[str]]:
    """The first ``n`` samples of each prompt from a jsonl of ``{"prompt_id", "samples"}`` rows (the format of
    ``benchmarks/testbed.py``'s ``bon_samples.jsonl``)."""
    stored = {r["prompt_id"]: r["samples"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
    missing = [r["prompt_id"] for r in rows if len(stored.get(r["prompt_id"], [])) < n]
    if missing:
        raise SystemExit(f"--samples {path}: fewer than {n} samples for {len(missing)} prompts, e.g. {missing[0]}")
    return [stored[r["prompt_id"]][:n] for r in rows]


def read_pairs(path: Path) -> dict[str, list[Any]]:
    from rewardkit.data.dataset import load_examples

    return load_examples(str(path), kind="preference", skip_invalid=True).dataset.select_columns(
        ["prompt", "chosen", "rejected", "conversational"])[:]


def score_pairs(scorer: Any, rows: dict[str, list[Any]]) -> tuple[Any, Any]:
    """(chosen, rejected) :class:`~rewardkit.types.ScoreOutput` of every pair, in one scoring call."""
    from rewardkit.scorers import pointwise_function

    n = len(rows["prompt"])
    out = pointwise_function(scorer)(rows["prompt"] * 2, rows["chosen"] + rows["rejected"], rows["conversational"] * 2)
    return out.select(range(n)), out.select(range(n, 2 * n))


# ----------------------------------------------------------------------------- (a) abstention


def abstention_report(chosen: Any, rejected: Any, *, n_boot: int, seed: int) -> dict[str, Any]:
    """Accuracy on all pairs vs the most certain, by U and by the RM's own |margin|."""
    from rewardkit.eval.abstention import abstention, item_uncertainty
    from rewardkit.eval.stats import cluster_bootstrap
    from rewardkit.stats import pairwise_correct

    credit = pairwise_correct(chosen.rewards, rejected.rewards)
    n = len(credit)

    def resamples() -> Any:  # the same iid resamples for every criterion
        return cluster_bootstrap(["pairs"] * n, [str(i) for i in range(n)], n_boot=n_boot, seed=seed)

    margin = np.abs(chosen.rewards.astype(np.float64) - rejected.rewards.astype(np.float64))
    out: dict[str, Any] = {"pairs": n, "by_margin": abstention(credit, -margin, resamples()).to_dict()}
    if chosen.uncertainty is not None:
        u = item_uncertainty([np.array([c, r]) for c, r in zip(chosen.uncertainty, rejected.uncertainty, strict=True)])
        out["by_uncertainty"] = abstention(credit, u, resamples()).to_dict()
        out["spearman_u_vs_error"] = _spearman(u, 1.0 - credit)
        a = out["by_uncertainty"]
        out["higher_on_80_than_all"] = a["accuracy_at_80"]["value"] > a["accuracy_all"]["value"]
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if np.std(y) == 0 or np.std(x) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def abstention_on(name: str, model: str, test: Path, *, n_boot: int, seed: int) -> dict[str, Any]:
    from rewardkit.scoring import ScorerOptions, build_scorer

    scorer = build_scorer(model, ScorerOptions(device="cpu", dtype="float32"))
    chosen, rejected = score_pairs(scorer, read_pairs(test))
    report = abstention_report(chosen, rejected, n_boot=n_boot, seed=seed)
    if "by_uncertainty" in report:
        a = report["by_uncertainty"]
        log(f"{name}: accuracy {a['accuracy_all']['value']:.3f} on all, {a['accuracy_at_80']['value']:.3f} on the 80% "
            f"most certain (area gain {a['gain']['value']:+.3f})")
    return {"model": model, **report}


# ----------------------------------------------------------------------------- (b) cost


def cost(model: str, test: Path, *, repeats: int, pairs: int) -> dict[str, Any]:
    """Seconds to score the first ``pairs`` test pairs' sequences without and with U (same model, same
    encoded inputs)."""
    from rewardkit.scoring import RewardModelScorer, score_encoded_output

    scorer = RewardModelScorer(model, device="cpu", dtype="float32")
    rows = {k: v[:pairs] for k, v in read_pairs(test).items()}
    encoded = scorer.encode(rows["prompt"] * 2, rows["chosen"] + rows["rejected"], rows["conversational"] * 2)
    fitted = scorer.rm.net.uncertainty
    times: dict[str, list[float]] = {"without": [], "with": []}
    order = (("without", None), ("with", fitted))
    for rep in range(repeats):
        for label, module in order if rep % 2 == 0 else order[::-1]:  # alternate who goes first
            scorer.rm.net.uncertainty = module
            t0 = time.perf_counter()
            out = score_encoded_output(scorer.rm, encoded)
            times[label].append(time.perf_counter() - t0)
            assert (out.uncertainty is not None) == (module is not None)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["with"] / best["without"]
    log(f"cost: {len(encoded)} sequences, {best['without']:.1f} s without U, {best['with']:.1f} s with ({ratio:.3f}x)")
    return {"sequences": len(encoded), "seconds": times, "best_without_s": best["without"],
            "best_with_s": best["with"], "ratio": ratio, "target": 1.1, "meets_target": ratio <= 1.1}


# ----------------------------------------------------------------------------- (c) over-optimisation


def sample_candidates(policy_name: str, rows: Sequence[dict[str, Any]], *, n: int, max_new_tokens: int,
                      seed: int) -> list[list[str]]:
    """``n`` seeded samples per prompt (Best-of-n with the dummy length scorer: only the samples are used)."""
    from rewardkit.infer.best_of_n import best_of_n
    from rewardkit.infer.sampler import SamplingConfig, load_policy
    from rewardkit.scoring import LengthScorer

    policy = load_policy(policy_name)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=1.0, top_k=50, top_p=1.0, seed=seed)
    results = best_of_n(policy, LengthScorer(), [r["prompt"] for r in rows], n=n, sampling=sampling,
                        prompt_keys=[r["prompt_id"] for r in rows], progress=True)
    return [[c.text for c in sorted(res.candidates, key=lambda c: c.index)] for res in results]


def over_optimisation(model: str, rows: Sequence[dict[str, Any]], texts: Sequence[Sequence[str]], ks: Sequence[float],
                      ns: Sequence[int]) -> dict[str, Any]:
    """Gold of the pick ``argmax r − k·U`` per (k, N): over the first N samples and over all N-subsets."""
    from rewardkit.scoring import RewardModelScorer

    scorer = RewardModelScorer(model, device="cpu", dtype="float32")
    per_prompt = []
    for row, cands in zip(rows, texts, strict=True):
        out = scorer.score([row["prompt"]] * len(cands), [[{"role": "assistant", "content": t}] for t in cands])
        golds = np.array([gold(t, row) for t in cands])
        per_prompt.append((out.rewards.astype(np.float64), out.uncertainty.astype(np.float64), golds))
    curves = []
    for k in ks:
        for n in ns:
            first = [g[int(np.argmax((r - k * u)[:n]))] for r, u, g in per_prompt]
            first_r = [r[int(np.argmax((r - k * u)[:n]))] for r, u, g in per_prompt]
            expected = [expected_best(r - k * u, g, n) for r, u, g in per_prompt]
            curves.append({"k": k, "n": n, "gold_first_n": float(np.mean(first)),
                           "gold_expected": float(np.mean(expected)), "rm_reward_first_n": float(np.mean(first_r))})
    oracle = [{"n": n, "gold_expected": float(np.mean([expected_best(g, g, n) for _, _, g in per_prompt]))}
              for n in ns]
    return {"curves": curves, "oracle": oracle, "verdict": verdict(curves, ns),
            "u_spread_within_prompt": float(np.mean([np.std(u) for _, u, _ in per_prompt])),
            "r_spread_within_prompt": float(np.mean([np.std(r) for r, _, _ in per_prompt]))}


def verdict(curves: Sequence[dict[str, Any]], ns: Sequence[int]) -> dict[str, Any]:
    """Gold at N = max with the best k vs gold at N = 8 (or the N closest below) with k = 0 (expected picks)."""
    n_max, n_ref = max(ns), max([n for n in ns if n <= 8] or [min(ns)])
    at = {(c["k"], c["n"]): c["gold_expected"] for c in curves}
    best_k = max((k for k, n in at if n == n_max), key=lambda k: at[(k, n_max)])
    return {"n_max": n_max, "n_ref": n_ref, "gold_k0_at_n_ref": at[(0.0, n_ref)], "gold_k0_at_n_max": at[(0.0, n_max)],
            "best_k_at_n_max": best_k, "gold_best_k_at_n_max": at[(best_k, n_max)],
            "meets_target": at[(best_k, n_max)] >= at[(0.0, n_ref)]}


def plot(report: dict[str, Any], path: Path) -> None:
    """Left: gold vs N per k (expected picks) and the verifier's own pick; right: the RM reward of the picks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    over = report["over_optimisation"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    ks = sorted({c["k"] for c in over["curves"]})
    for j, k in enumerate(ks):
        pts = [c for c in over["curves"] if c["k"] == k]
        left.plot([c["n"] for c in pts], [c["gold_expected"] for c in pts], "o-", color=f"C{j}", label=f"r − {k:g}·U")
        right.plot([c["n"] for c in pts], [c["rm_reward_first_n"] for c in pts], "o-", color=f"C{j}", label=f"k = {k:g}")
    left.plot([o["n"] for o in over["oracle"]], [o["gold_expected"] for o in over["oracle"]], "^--", color="gray",
              label="picked by the verifiers (ceiling)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("N (samples per prompt)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("gold reward of the pick (instructions met)")
    right.set_ylabel("RM reward r of the pick (first N samples)")
    cfg = report["config"]
    fig.suptitle(f"Best-of-N with a pessimistic reward: {cfg['policy']}, {cfg['prompts']} ifeval-lite prompts, "
                 f"MiniLM RM + last-layer U")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from rewardkit.data.dataset import file_fingerprint

    torch.set_num_threads(args.threads)
    ns = sorted(int(x) for x in args.ns.split(","))
    ks = sorted({0.0, *(float(x) for x in args.ks.split(","))})  # k = 0 is the reference
    report: dict[str, Any] = {"benchmark": "uncertainty", "config": {**{k: (str(v) if isinstance(v, Path) else v)
                                                                        for k, v in vars(args).items()},
                                                                     "ns": ns, "ks": ks}}
    ifeval = pin_ifeval(workdir)
    report["config"]["ifeval_lite_sha256"] = {k: file_fingerprint(v) for k, v in ifeval.items()}
    models: dict[str, Any] = {}
    tests: dict[str, Path] = {}
    if "ifeval_lite" in args.datasets and args.ifeval_model is not None:
        models["ifeval_lite"] = fit_existing("ifeval", args.ifeval_model, ifeval["train"], workdir)
        tests["ifeval_lite"] = ifeval["test"]
    elif "ifeval_lite" in args.datasets:
        models["ifeval_lite"] = train_and_fit("ifeval", ifeval["train"], workdir, epochs=args.ifeval_epochs,
                                              batch_size=8, lr=1e-4, max_length=args.max_length, seed=args.seed)
        tests["ifeval_lite"] = ifeval["test"]
    if "hh_rlhf" in args.datasets and args.hh.exists():
        hh_train, hh_test = split_hh(args.hh, workdir, args.hh_train, args.hh_test)
        models["hh_rlhf"] = train_and_fit("hh", hh_train, workdir, epochs=args.hh_epochs, batch_size=16, lr=5e-5,
                                          max_length=args.max_length, seed=args.seed)
        tests["hh_rlhf"] = hh_test
    elif "hh_rlhf" in args.datasets:
        report["hh_rlhf_missing"] = f"{args.hh} not found: HH-RLHF skipped"
    if not models:
        raise SystemExit(f"--datasets {','.join(args.datasets)}: nothing to run (HH-RLHF missing?)")
    report["models"] = models
    report["abstention"] = {name: abstention_on(name, models[name]["folder"], tests[name], n_boot=args.n_boot,
                                                seed=args.seed) for name in models}
    for item in args.ensemble_model:
        name, _, path = item.partition("=")
        if name not in tests:
            raise SystemExit(f"--ensemble-model {item}: the dataset must be one of {sorted(tests)}")
        report["abstention"][f"{name}_ensemble"] = abstention_on(f"{name} ensemble", path, tests[name],
                                                                 n_boot=args.n_boot, seed=args.seed)
    cost_name = "hh_rlhf" if "hh_rlhf" in models else "ifeval_lite"
    report["cost"] = {"data": cost_name, **cost(models[cost_name]["folder"], tests[cost_name],
                                                  repeats=args.cost_repeats, pairs=args.cost_pairs)}
    if "ifeval_lite" not in models:
        return report
    rows = read_prompts(ifeval["candidates"], args.prompts)
    t0 = time.perf_counter()
    if args.samples is not None:
        texts = stored_samples(args.samples, rows, max(ns))
        report["config"]["samples_sha256"] = file_fingerprint(args.samples)
    else:
        texts = sample_candidates(args.policy, rows, n=max(ns), max_new_tokens=args.max_new_tokens, seed=args.seed)
    log(f"{max(ns)} responses for {len(rows)} prompts in {time.perf_counter() - t0:.0f} s")
    report["config"]["prompts"] = len(rows)
    report["over_optimisation"] = over_optimisation(models["ifeval_lite"]["folder"], rows, texts, ks, ns)
    plot_path = args.plot or (args.out.with_suffix(".png") if args.out else workdir / "uncertainty.png")
    plot(report, Path(plot_path))
    report["plot"] = str(plot_path)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smaller run (~12 min on 2 idle cores): HH 600/812 pairs, "
                   "ifeval-lite one epoch, 8 prompts, 1000 bootstrap resamples")
    p.add_argument("--datasets", default="ifeval_lite,hh_rlhf", type=lambda s: s.split(","),
                   help="which of ifeval_lite and hh_rlhf to run (Best-of-N needs ifeval_lite)")
    p.add_argument("--hh", type=Path, default=HH, help="HH-RLHF jsonl.gz (skipped if missing)")
    p.add_argument("--hh-train", type=int, default=1500, help="HH pairs to train on (the first ones)")
    p.add_argument("--hh-test", type=int, default=812, help="HH pairs to test on (the next ones)")
    p.add_argument("--hh-epochs", type=float, default=1.0, help="HH training epochs (batch 16, lr 5e-5)")
    p.add_argument("--ifeval-epochs", type=float, default=2.0, help="ifeval-lite epochs (the quickstart's recipe)")
    p.add_argument("--max-length", type=int, default=256, help="RM max tokens per input")
    p.add_argument("--ensemble-model", action="append", default=[], metavar="DATASET=PATH",
                   help="also abstain with this scorer's uncertainty (e.g. a URME ensemble) on DATASET's test "
                   "pairs (ifeval_lite or hh_rlhf); repeatable")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--cost-pairs", type=int, default=400, help="test pairs (2 sequences each) timed for the cost")
    p.add_argument("--cost-repeats", type=int, default=3, help="timed scoring passes each, with and without U")
    p.add_argument("--ifeval-model", type=Path, default=None,
                   help="an ifeval-lite RM already trained (e.g. benchmarks/testbed.py's WORKDIR/new/rm): copied and "
                   "U fitted on it instead of training one")
    p.add_argument("--samples", type=Path, default=None,
                   help="Best-of-N samples already drawn (jsonl of prompt_id + samples, e.g. testbed.py's "
                   "bon_samples.jsonl) instead of sampling")
    p.add_argument("--policy", default="smollm2-135m", help="causal LM for Best-of-N")
    p.add_argument("--prompts", type=int, default=20, help="held-out ifeval-lite prompts for Best-of-N")
    p.add_argument("--ns", default="1,2,4,8,16,32", help="Best-of-N sizes")
    p.add_argument("--ks", default="0,0.5,1,2", help="pessimism k of r − k·U")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sampled response")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the timings assume a 2-core machine)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the models here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here (and the plot beside it)")
    p.add_argument("--plot", type=Path, default=None, help="plot path (default: --out with .png)")
    args = p.parse_args(argv)
    if args.quick:
        args.hh_train, args.ifeval_epochs, args.prompts, args.n_boot = 600, 1.0, 8, 1000
    return args


if __name__ == "__main__":
    raise SystemExit(run_json_main(run, parse_args(), prefix="rk-uncertainty-"))
