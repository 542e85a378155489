"""Best-of-N vs Speculative Rejection: reward against compute on held-out instruction-following prompts.

Policy ``smollm2-135m``; scorer the MiniLM reward model that ``rewardkit quickstart`` trains
(``--rm DIR``: the quickstart folder or the RM folder itself); prompts the held-out ``ifeval-lite``
prompts shipped with rewardkit; gold reward = the fraction of each prompt's instructions met, from the
programmatic verifiers. In one run, with the same sampling settings and seeds:

- **Best-of-N_max** (N_max = 32) is run on every prompt, all candidates kept. Best-of-N for the smaller N
  are the first N samples of those runs: sampling is seeded per sample, so a separate Best-of-N run draws
  exactly these samples (checked below on the timing prompts) and its token counts are exact. The wall
  time of Best-of-N for N < N_max is measured in separate runs on the first ``--time-prompts`` prompts
  (``wall_s_raw``) and scaled to the whole prompt set by Best-of-N_max's all-prompts/timing-prompts time
  ratio (``wall_s``); Best-of-N_max and Speculative Rejection are timed on every prompt.
- **Speculative Rejection** at N = N_max for each ``--alphas``, decision points every ``--chunk`` tokens.

Reported: mean RM score and mean gold reward of the returned responses, generated tokens (and policy
forward / scorer tokens) and wall time per prompt; the tokens and time Speculative Rejection needs to
reach Best-of-N_max's mean RM score as ratios (the cheapest α that reaches it), and the paper's speedup
(Best-of-N tokens at the same score, interpolated log-linearly in N, over SpR's tokens); and the gold
reward against N when selecting by the RM vs by the gold verifier itself (expected over all N-subsets
of the N_max samples, and for the first N samples).

Prints one JSON object on stdout (progress goes to stderr) and writes ``--out`` (JSON) and ``--plot`` (PNG).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import OFFLINE_ENV

TARGET_RATIO = 0.25


def log(message: str) -> None:
    print(f"[bon_vs_speculative] {message}", file=sys.stderr, flush=True)


def rm_folder(path: str) -> str:
    """The quickstart folder's ``rm`` subfolder, or ``path`` itself if it is a model folder."""
    return str(Path(path) / "rm") if (Path(path) / "rm" / "config.json").exists() else path


def load_prompts(k: int) -> list[dict[str, Any]]:
    """The first ``k`` held-out prompts (one row per prompt, with its constraints)."""
    from rewardkit.synth import load_embedded

    rows = [json.loads(line) for line in load_embedded("candidates").read_text(encoding="utf-8").splitlines()]
    if len(rows) < k:
        raise ValueError(f"only {len(rows)} held-out prompts, asked for {k}")
    return rows[:k]


def gold(text: str, row: dict[str, Any]) -> float:
    from rewardkit.verify.verifiers import Constraint, gold_reward

    return gold_reward(text, [Constraint.from_dict(c) for c in row["constraints"]])


# ----------------------------------------------------------------------------- runs


def run(method: str, policy: Any, scorer: Any, rows: Sequence[dict[str, Any]], *, n: int, sampling: Any,
        alpha: float | None = None, chunk: int = 8) -> list[Any]:
    from rewardkit.infer.best_of_n import best_of_n
    from rewardkit.infer.speculative import SpeculativeConfig, speculative_rejection

    prompts = [r["prompt"] for r in rows]
    keys = [r["prompt_id"] for r in rows]
    if method == "bon":
        return best_of_n(policy, scorer, prompts, n=n, sampling=sampling, prompt_keys=keys, progress=True)
    assert alpha is not None
    return speculative_rejection(policy, scorer, prompts, n=n, sampling=sampling, prompt_keys=keys, progress=True,
                                 config=SpeculativeConfig(alpha, chunk=chunk))


def summarize(results: Sequence[Any], rows: Sequence[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Means per prompt of a method's results: RM score, gold, tokens, scorer use, seconds."""
    k = len(results)
    return {**extra,
            "mean_rm_score": float(np.mean([r.best.score for r in results])),
            "mean_gold": float(np.mean([gold(r.best.text, row) for r, row in zip(results, rows, strict=True)])),
            "generated_tokens": sum(r.compute.generated_tokens for r in results) / k,
            "policy_forward_tokens": sum(r.compute.policy_forward_tokens for r in results) / k,
            "scorer_calls": sum(r.compute.scorer_calls for r in results) / k,
            "scorer_tokens": sum(r.compute.scorer_tokens for r in results) / k,
            "wall_s": sum(r.compute.wall_s for r in results) / k,
            "scorer_s": sum(r.compute.scorer_s for r in results) / k}


def prefix_points(full: Sequence[Any], rows: Sequence[dict[str, Any]], scorer: Any, prompt_lens: Sequence[int],
                  ns: Sequence[int]) -> list[dict[str, Any]]:
    """Best-of-N for each N from the first N samples of the Best-of-N_max runs (exact token counts)."""
    rm_tokens = [[len(e.input_ids) for e in scorer.encode([r["prompt"]] * len(res.candidates),
                                                          [[{"role": "assistant", "content": c.text}]
                                                           for c in res.candidates], True)]
                 for res, r in zip(full, rows, strict=True)]
    points = []
    for n in ns:
        best, golds, gen, fed, stoks = [], [], 0, 0, 0
        for res, row, toks, plen in zip(full, rows, rm_tokens, prompt_lens, strict=True):
            cands = res.candidates[:n]
            pick = max(cands, key=lambda c: (c.score, -c.index))
            best.append(pick.score)
            golds.append(gold(pick.text, row))
            gen += sum(c.n_tokens for c in cands)
            fed += plen + sum(c.n_tokens - 1 for c in cands)
            stoks += sum(toks[:n])
        k = len(full)
        points.append({"method": "bon", "n": n, "mean_rm_score": float(np.mean(best)), "mean_gold": float(np.mean(golds)),
                       "generated_tokens": gen / k, "policy_forward_tokens": fed / k, "scorer_calls": 1.0,
                       "scorer_tokens": stoks / k})
    return points


def time_bon(policy: Any, scorer: Any, rows: Sequence[dict[str, Any]], full: Sequence[Any], ns: Sequence[int],
             sampling: Any) -> tuple[dict[int, float], bool]:
    """Wall seconds per prompt of separate Best-of-N runs on ``rows``, and whether their samples are the
    first N of the Best-of-N_max samples (they must be: per-sample seeding)."""
    seconds, nested = {}, True
    for n in ns:
        results = run("bon", policy, scorer, rows, n=n, sampling=sampling)
        seconds[n] = sum(r.compute.wall_s for r in results) / len(rows)
        for r, f in zip(results, full, strict=False):
            nested &= [c.text for c in r.candidates] == [c.text for c in f.candidates[:n]]
        log(f"timed best-of-{n}: {seconds[n]:.2f} s/prompt on {len(rows)} prompts")
    return seconds, nested


# ----------------------------------------------------------------------------- analysis


def expected_best(keys: Sequence[float], values: Sequence[float], n: int) -> float:
    """E[value of the max-key sample] over all n-subsets of the samples: the sample ranked i-th lowest (of
    M) is the max of a random n-subset with probability C(i−1, n−1)/C(M, n)."""
    order = np.argsort(np.asarray(keys, dtype=np.float64), kind="stable")
    m = len(order)
    weights = np.array([math.comb(i - 1, n - 1) for i in range(1, m + 1)], dtype=np.float64) / math.comb(m, n)
    return float(np.dot(weights, np.asarray(values, dtype=np.float64)[order]))


def selection_curve(full: Sequence[Any], rows: Sequence[dict[str, Any]], ns: Sequence[int]) -> list[dict[str, Any]]:
    """Gold reward against N when picking by the RM vs by the gold verifier (oracle)."""
    per_prompt = [([c.score for c in res.candidates], [gold(c.text, row) for c in res.candidates])
                  for res, row in zip(full, rows, strict=True)]
    curve = []
    for n in ns:
        by_rm = [expected_best(s, g, n) for s, g in per_prompt]
        by_gold = [expected_best(g, g, n) for _, g in per_prompt]
        first_rm = [g[int(np.argmax(s[:n]))] for s, g in per_prompt]
        first_gold = [max(g[:n]) for _, g in per_prompt]
        curve.append({"n": n, "gold_selected_by_rm": float(np.mean(by_rm)),
                      "gold_selected_by_gold": float(np.mean(by_gold)),
                      "first_n_gold_selected_by_rm": float(np.mean(first_rm)),
                      "first_n_gold_selected_by_gold": float(np.mean(first_gold))})
    return curve


def bon_cost_at(points: Sequence[dict[str, Any]], score: float, field: str) -> float | None:
    """Best-of-N cost (``field``) needed for mean RM ``score``: log-linear interpolation between the first
    adjacent pair of Best-of-N points that brackets it (None if no Best-of-N point reaches it)."""
    pts = sorted(points, key=lambda p: p["n"])
    if score <= pts[0]["mean_rm_score"]:
        return float(pts[0][field])
    for a, b in itertools.pairwise(pts):
        if a["mean_rm_score"] < score <= b["mean_rm_score"]:
            t = (score - a["mean_rm_score"]) / (b["mean_rm_score"] - a["mean_rm_score"])
            return float(math.exp((1 - t) * math.log(a[field]) + t * math.log(b[field])))
    return None


def reach(bon: Sequence[dict[str, Any]], spr: Sequence[dict[str, Any]], n_max: int) -> dict[str, Any]:
    """SpR against Best-of-N_max: cost ratios per α, the cheapest α reaching Best-of-N_max's mean RM score,
    and the paper's speedup (Best-of-N cost at SpR's score / SpR's cost)."""
    ref = next(p for p in bon if p["n"] == n_max)
    per_alpha = []
    for p in spr:
        need_tokens = bon_cost_at(bon, p["mean_rm_score"], "generated_tokens")
        timed = [b for b in bon if "wall_s" in b]
        need_time = bon_cost_at(timed, p["mean_rm_score"], "wall_s") if len(timed) == len(bon) else None
        per_alpha.append({
            "alpha": p["alpha"], "reaches_bon_max_rm_score": p["mean_rm_score"] >= ref["mean_rm_score"],
            "rm_score_gap": p["mean_rm_score"] - ref["mean_rm_score"],
            "tokens_ratio": p["generated_tokens"] / ref["generated_tokens"], "time_ratio": p["wall_s"] / ref["wall_s"],
            "speedup_tokens": None if need_tokens is None else need_tokens / p["generated_tokens"],
            "speedup_time": None if need_time is None else need_time / p["wall_s"]})
    reached = [a for a in per_alpha if a["reaches_bon_max_rm_score"]]
    cheapest = min(reached, key=lambda a: a["tokens_ratio"]) if reached else None
    return {"reference": f"best-of-{n_max}", "target_ratio": TARGET_RATIO, "per_alpha": per_alpha,
            "cheapest_reaching": cheapest,
            "meets_target": bool(cheapest and cheapest["tokens_ratio"] <= TARGET_RATIO
                                 and cheapest["time_ratio"] <= TARGET_RATIO)}


def plot(result: dict[str, Any], path: Path) -> None:
    """Three panels: RM score vs generated tokens, RM score vs wall time, gold vs N (RM vs gold pick)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bon, spr, curve = result["best_of_n"], result["speculative"], result["selection"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, field, label in ((axes[0], "generated_tokens", "generated tokens per prompt"),
                             (axes[1], "wall_s", "wall seconds per prompt")):
        pts = [p for p in bon if field in p]
        ax.plot([p[field] for p in pts], [p["mean_rm_score"] for p in pts], "o-", label="Best-of-N")
        for p in pts:
            ax.annotate(f"N={p['n']}", (p[field], p["mean_rm_score"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=8)
        ax.plot([p[field] for p in spr], [p["mean_rm_score"] for p in spr], "s", color="C3",
                label=f"Speculative Rejection, N={result['config']['n_max']}")
        for p in spr:
            ax.annotate(f"α={p['alpha']:g}", (p[field], p["mean_rm_score"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8, color="C3")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("mean RM score of the returned response")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    ns = [c["n"] for c in curve]
    ax.plot(ns, [c["gold_selected_by_rm"] for c in curve], "o-", label="picked by the RM (proxy)")
    ax.plot(ns, [c["gold_selected_by_gold"] for c in curve], "^-", label="picked by the verifier (oracle)")
    ax.plot([result["config"]["n_max"]] * len(spr), [p["mean_gold"] for p in spr], "s", color="C3",
            label="Speculative Rejection (RM)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N")
    ax.set_ylabel("mean gold reward (fraction of instructions met)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{result['config']['policy']} + reward model {Path(result['config']['rm']).name!r} on "
                 f"{result['config']['prompts']} held-out ifeval-lite prompts")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rm", default="runs/quickstart", help="quickstart output folder (uses DIR/rm) or an RM folder")
    p.add_argument("--policy", default="smollm2-135m", help="causal LM")
    p.add_argument("--prompts", type=int, default=32, help="held-out prompts")
    p.add_argument("--ns", default="1,2,4,8,16,32", help="Best-of-N sizes; the largest is N_max")
    p.add_argument("--alphas", default="0.5,0.7,0.9", help="Speculative Rejection rejection rates")
    p.add_argument("--chunk", type=int, default=8, help="tokens between Speculative Rejection decision points")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-prompts", type=int, default=5, help="prompts on which Best-of-N (N < N_max) is timed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--out", default="bon_vs_speculative.json")
    p.add_argument("--plot", default="bon_vs_speculative.png")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.update(OFFLINE_ENV)
    import torch

    from rewardkit.infer.sampler import SamplingConfig, load_policy
    from rewardkit.scoring import RewardModelScorer

    torch.set_num_threads(args.threads)
    ns = sorted(int(x) for x in args.ns.split(","))
    alphas = [float(x) for x in args.alphas.split(",")]
    n_max = ns[-1]
    rows = load_prompts(args.prompts)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)
    scorer = RewardModelScorer(rm_folder(args.rm))
    policy = load_policy(args.policy)
    started, load_avg = time.perf_counter(), os.getloadavg()
    log(f"best-of-{n_max} on {len(rows)} prompts")
    full = run("bon", policy, scorer, rows, n=n_max, sampling=sampling)
    bon = prefix_points(full, rows, scorer, [len(policy.encode_prompt(r["prompt"])) for r in rows], ns)
    bon[-1].update(wall_s=sum(r.compute.wall_s for r in full) / len(full), timed_on_prompts=len(full))
    spr = []
    for alpha in alphas:
        log(f"speculative rejection alpha={alpha} on {len(rows)} prompts")
        results = run("speculative", policy, scorer, rows, n=n_max, sampling=sampling, alpha=alpha, chunk=args.chunk)
        spr.append(summarize(results, rows, method="speculative", n=n_max, alpha=alpha, chunk=args.chunk,
                             rounds=float(np.mean([len(r.rounds) for r in results]))))
    seconds, nested = time_bon(policy, scorer, rows[: args.time_prompts], full, ns[:-1], sampling)
    bon_max_subset = sum(r.compute.wall_s for r in full[: args.time_prompts]) / min(args.time_prompts, len(full))
    for p in bon[:-1]:
        p.update(wall_s=seconds[p["n"]] * bon[-1]["wall_s"] / bon_max_subset, timed_on_prompts=args.time_prompts,
                 wall_s_raw=seconds[p["n"]])
    result = {
        "benchmark": "bon_vs_speculative",
        "config": {"policy": args.policy, "rm": rm_folder(args.rm), "prompts": len(rows), "n_max": n_max, "ns": ns,
                   "alphas": alphas, "chunk": args.chunk, "max_new_tokens": args.max_new_tokens,
                   "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed,
                   "prompts_per_batch": 1, "time_prompts": args.time_prompts},
        "machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_at_start": load_avg,
                    "torch": torch.__version__, "python": platform.python_version()},
        "best_of_n": bon, "speculative": spr, "reach": reach(bon, spr, n_max),
        "selection": selection_curve(full, rows, ns), "nested_samples_identical": nested,
        "total_wall_s": round(time.perf_counter() - started, 1)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, Path(args.plot))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
