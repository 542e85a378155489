"""Best-of-N vs Speculative Rejection: reward against compute on held-out instruction-following prompts.

Policy ``smollm2-135m``; scorer the MiniLM reward model that ``rewardkit quickstart`` trains
(``--rm DIR``: the quickstart folder or the RM folder itself); prompts the held-out ``ifeval-lite``
prompts shipped with rewardkit; gold reward = the fraction of each prompt's instructions met, from the
programmatic verifiers. In one run, with the same sampling settings and seeds:

- **Best-of-N_max** (N_max = the largest of ``--ns``, 128 by default) is run on every prompt, all
  candidates kept. Best-of-N for the smaller N are the first N samples of those runs: sampling is seeded
  per sample, so a separate Best-of-N run draws exactly these samples (checked) and its token counts are
  exact. Best-of-N at each ``--spr-ns`` size (64 and 128: the references) is timed on every prompt; the
  other sizes on the first ``--time-prompts`` prompts (``wall_s_raw``), scaled to the whole prompt set by
  Best-of-N_max's all-prompts/timing-prompts time ratio (``wall_s``).
- **Speculative Rejection** at each N of ``--spr-ns`` for each of ``--alphas`` (fixed rates, ``adaptive``
  or ``adaptive:LOW,HIGH``) with the **token-budget decision rule**: a batch of P prompts × N samples
  gets the KV-cache budget P·N·(padded prompt length + ``--first-decision``), so the first decision
  comes after ``--first-decision`` tokens and each later segment is as long as the shrunken batch fits
  in the same budget (the paper's memory-bound rule). ``--chunk C`` decides every C tokens instead.

Reported: mean RM score and mean gold reward of the returned responses, generated tokens (and policy
forward / scorer tokens) and wall time per prompt; for every (N, α) the ratios to Best-of-N at the same N
(RM score gap, generated tokens, wall time), and the paper's speedup (Best-of-N tokens / time at the same
RM score, interpolated log-linearly in N, over SpR's); the target (Best-of-N's RM score at ≤ 1/4 of its
generated tokens for some α at N ≥ 64) with the time ratio of the cheapest (N, α) that reaches it; and the
gold reward against N when selecting by the RM vs by the gold verifier itself (expected over all
N-subsets of the N_max samples, and for the first N samples).

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
# the same text scored in batches of other shapes differs by float rounding (~1e-6 with the MiniLM RM):
# a score gap above -SCORE_TOL counts as reaching Best-of-N's score
SCORE_TOL = 1e-4


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


def run_bon(policy: Any, scorer: Any, rows: Sequence[dict[str, Any]], *, n: int, sampling: Any,
            prompts_per_batch: int) -> list[Any]:
    from rewardkit.infer.best_of_n import best_of_n

    return best_of_n(policy, scorer, [r["prompt"] for r in rows], n=n, sampling=sampling,
                     prompt_keys=[r["prompt_id"] for r in rows], prompts_per_batch=prompts_per_batch, progress=True)


def spr_config(alpha: Any, *, n: int, prompt_lengths: Sequence[int], first_decision: int,
               chunk: int | None) -> Any:
    """Every ``chunk`` tokens, or the token budget of one batch: its rows × (padded prompt + first decision)."""
    from rewardkit.infer.speculative import SpeculativeConfig

    if chunk is not None:
        return SpeculativeConfig(alpha, chunk=chunk)
    budget = len(prompt_lengths) * n * (max(prompt_lengths) + first_decision)
    return SpeculativeConfig(alpha, chunk=None, token_budget=budget)


def run_spr(policy: Any, scorer: Any, rows: Sequence[dict[str, Any]], prompt_lengths: Sequence[int], *, n: int,
            alpha: Any, sampling: Any, prompts_per_batch: int, first_decision: int, chunk: int | None) -> list[Any]:
    """Speculative Rejection batch by batch (each batch's token budget from its own prompt lengths)."""
    from rewardkit.infer.speculative import speculative_rejection

    results = []
    for lo in range(0, len(rows), prompts_per_batch):
        batch, lengths = rows[lo:lo + prompts_per_batch], prompt_lengths[lo:lo + prompts_per_batch]
        cfg = spr_config(alpha, n=n, prompt_lengths=lengths, first_decision=first_decision, chunk=chunk)
        results += speculative_rejection(policy, scorer, [r["prompt"] for r in batch], n=n, sampling=sampling,
                                         prompt_keys=[r["prompt_id"] for r in batch], config=cfg,
                                         prompts_per_batch=prompts_per_batch)
    return results


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
             sampling: Any, prompts_per_batch: int) -> tuple[dict[int, float], bool]:
    """Wall seconds per prompt of separate Best-of-N runs on ``rows``, and whether their samples are the
    first N of the Best-of-N_max samples (they must be: per-sample seeding)."""
    seconds, nested = {}, True
    for n in ns:
        results = run_bon(policy, scorer, rows, n=n, sampling=sampling, prompts_per_batch=prompts_per_batch)
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


def reach(bon: Sequence[dict[str, Any]], spr: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each SpR point against Best-of-N at the same N: RM score gap, token and time ratios, the paper's
    speedup (Best-of-N cost at SpR's score / SpR's cost); the cheapest (N, α) at N ≥ 64 reaching its
    Best-of-N's mean RM score, and whether it does so at ≤ 1/4 of the generated tokens."""
    timed = [b for b in bon if "wall_s" in b]
    per_point = []
    for p in spr:
        ref = next(b for b in bon if b["n"] == p["n"])
        need_tokens = bon_cost_at(bon, p["mean_rm_score"], "generated_tokens")
        need_time = bon_cost_at(timed, p["mean_rm_score"], "wall_s") if len(timed) == len(bon) else None
        per_point.append({
            "n": p["n"], "alpha": p["alpha"], "reference": f"best-of-{p['n']}",
            "reaches_bon_rm_score": p["mean_rm_score"] >= ref["mean_rm_score"] - SCORE_TOL,
            "rm_score_gap": p["mean_rm_score"] - ref["mean_rm_score"], "gold_gap": p["mean_gold"] - ref["mean_gold"],
            "tokens_ratio": p["generated_tokens"] / ref["generated_tokens"], "time_ratio": p["wall_s"] / ref["wall_s"],
            "speedup_tokens": None if need_tokens is None else need_tokens / p["generated_tokens"],
            "speedup_time": None if need_time is None else need_time / p["wall_s"]})
    reached = [a for a in per_point if a["reaches_bon_rm_score"] and a["n"] >= 64]
    cheapest = min(reached, key=lambda a: a["tokens_ratio"]) if reached else None
    return {"target": f"Best-of-N's mean RM score at <= {TARGET_RATIO} of its generated tokens, some alpha, N >= 64",
            "target_ratio": TARGET_RATIO, "per_point": per_point, "cheapest_reaching": cheapest,
            "meets_target": bool(cheapest and cheapest["tokens_ratio"] <= TARGET_RATIO)}


def plot(result: dict[str, Any], path: Path) -> None:
    """Three panels: RM score vs generated tokens, RM score vs wall time (Best-of-N curve, SpR points per
    N and α), and gold reward vs N (picked by the RM vs by the gold verifier)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bon, spr, curve = result["best_of_n"], result["speculative"], result["selection"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    markers = dict(zip(sorted({p["n"] for p in spr}), "sDv^P", strict=False))
    for ax, field, label in ((axes[0], "generated_tokens", "generated tokens per prompt"),
                             (axes[1], "wall_s", "wall seconds per prompt")):
        pts = [p for p in bon if field in p]
        ax.plot([p[field] for p in pts], [p["mean_rm_score"] for p in pts], "o-", color="C0", label="Best-of-N")
        for p in pts:
            ax.annotate(f"N={p['n']}", (p[field], p["mean_rm_score"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=8)
        for n, marker in markers.items():
            sel = [p for p in spr if p["n"] == n]
            ax.plot([p[field] for p in sel], [p["mean_rm_score"] for p in sel], marker, linestyle="none",
                    color=f"C{1 + list(markers).index(n)}", label=f"Speculative Rejection, N={n}")
            for p in sel:
                ax.annotate(f"α={str(p['alpha']).replace('adaptive', 'ad')}", (p[field], p["mean_rm_score"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("mean RM score of the returned response")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    ns = [c["n"] for c in curve]
    ax.plot(ns, [c["gold_selected_by_rm"] for c in curve], "o-", label="Best-of-N picked by the RM (proxy)")
    ax.plot(ns, [c["gold_selected_by_gold"] for c in curve], "^-", label="picked by the verifier (oracle)")
    ax.plot([p["n"] for p in spr], [p["mean_gold"] for p in spr], "s", color="C3", label="Speculative Rejection (RM)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N")
    ax.set_ylabel("mean gold reward (fraction of instructions met)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    cfg = result["config"]
    rule = f"chunk {cfg['chunk']}" if cfg["chunk"] else f"token budget, first decision at {cfg['first_decision']} tokens"
    fig.suptitle(f"{cfg['policy']} + reward model {Path(cfg['rm']).name!r} on {cfg['prompts']} held-out ifeval-lite "
                 f"prompts ({rule})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rm", default="runs/quickstart", help="quickstart output folder (uses DIR/rm) or an RM folder")
    p.add_argument("--policy", default="smollm2-135m", help="causal LM")
    p.add_argument("--prompts", type=int, default=32, help="held-out prompts")
    p.add_argument("--ns", default="1,2,4,8,16,32,64,128", help="Best-of-N sizes; the largest is N_max")
    p.add_argument("--spr-ns", default="64,128", help="Speculative Rejection sizes (each must be one of --ns)")
    p.add_argument("--alphas", default="0.5,0.8,0.9,adaptive,adaptive:0.5,0.95",
                   help="rejection rates: numbers, 'adaptive' or 'adaptive:LOW,HIGH', separated by commas "
                   "(a comma after adaptive:LOW belongs to it)")
    p.add_argument("--first-decision", type=int, default=8, help="token-budget rule: tokens generated before the "
                   "first decision (budget = rows x (padded prompt + this))")
    p.add_argument("--chunk", type=int, default=None, help="decide every CHUNK tokens instead of the token budget")
    p.add_argument("--prompts-per-batch", type=int, default=1, help="prompts decoded together (each with N samples)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-prompts", type=int, default=5, help="prompts on which Best-of-N (N not in --spr-ns) is timed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--out", default="bon_vs_speculative.json")
    p.add_argument("--plot", default="bon_vs_speculative.png")
    return p.parse_args(argv)


def parse_alphas(text: str) -> list[Any]:
    """``0.5,0.9,adaptive,adaptive:0.5,0.95`` → [0.5, 0.9, AdaptiveAlpha(), AdaptiveAlpha(0.5, 0.95)]."""
    from rewardkit.infer.speculative import parse_alpha

    parts, out = text.split(","), []
    while parts:
        head = parts.pop(0).strip()
        if head.startswith("adaptive:"):
            head += "," + parts.pop(0).strip()
        out.append(parse_alpha(head))
    return out


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def run_all(args: argparse.Namespace, policy: Any, scorer: Any, rows: list[dict[str, Any]], sampling: Any
            ) -> dict[str, Any]:
    """Best-of-N_max, the timed references, Speculative Rejection for every (N, α), and the analysis."""
    from rewardkit.infer.speculative import alpha_label

    ns, spr_ns = sorted(int(x) for x in args.ns.split(",")), sorted(int(x) for x in args.spr_ns.split(","))
    if not set(spr_ns) <= set(ns):
        raise SystemExit(f"--spr-ns {spr_ns} must be among --ns {ns}")
    n_max, ppb = ns[-1], args.prompts_per_batch
    lengths = [len(policy.encode_prompt(r["prompt"])) for r in rows]
    log(f"best-of-{n_max} on {len(rows)} prompts")
    full = run_bon(policy, scorer, rows, n=n_max, sampling=sampling, prompts_per_batch=ppb)
    bon = prefix_points(full, rows, scorer, lengths, ns)
    by_n = {p["n"]: p for p in bon}
    by_n[n_max].update(wall_s=sum(r.compute.wall_s for r in full) / len(full), timed_on_prompts=len(full))
    nested = True
    for n in spr_ns[:-1] if spr_ns[-1] == n_max else spr_ns:
        log(f"best-of-{n} on {len(rows)} prompts (a reference, timed on all)")
        seconds, same = time_bon(policy, scorer, rows, full, [n], sampling, ppb)
        by_n[n].update(wall_s=seconds[n], timed_on_prompts=len(rows))
        nested &= same
    spr = []
    for n in spr_ns:
        for alpha in parse_alphas(args.alphas):
            log(f"speculative rejection N={n} alpha={alpha_label(alpha)} on {len(rows)} prompts")
            results = run_spr(policy, scorer, rows, lengths, n=n, alpha=alpha, sampling=sampling, prompts_per_batch=ppb,
                              first_decision=args.first_decision, chunk=args.chunk)
            spr.append(summarize(results, rows, method="speculative", n=n, alpha=alpha_label(alpha),
                                 rounds=float(np.mean([len(r.rounds) for r in results])),
                                 first_decision_tokens=float(np.mean([r.rounds[0].generated for r in results
                                                                      if r.rounds] or [math.nan])),
                                 first_alpha=float(np.mean([r.rounds[0].alpha for r in results if r.rounds]
                                                           or [math.nan]))))
            log(f"  mean RM {spr[-1]['mean_rm_score']:.3f} (best-of-{n}: {by_n[n]['mean_rm_score']:.3f}), tokens "
                f"{spr[-1]['generated_tokens']:.0f} ({spr[-1]['generated_tokens'] / by_n[n]['generated_tokens']:.2f}x)")
    small = [n for n in ns if "wall_s" not in by_n[n]]
    seconds, same = time_bon(policy, scorer, rows[: args.time_prompts], full, small, sampling, ppb)
    nested &= same
    bon_max_subset = sum(r.compute.wall_s for r in full[: args.time_prompts]) / min(args.time_prompts, len(full))
    for n in small:
        by_n[n].update(wall_s=seconds[n] * by_n[n_max]["wall_s"] / bon_max_subset, timed_on_prompts=args.time_prompts,
                       wall_s_raw=seconds[n])
    return {"best_of_n": bon, "speculative": spr, "reach": reach(bon, spr),
            "selection": selection_curve(full, rows, ns), "nested_samples_identical": nested,
            "config_ns": {"ns": ns, "spr_ns": spr_ns, "n_max": n_max}}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.update(OFFLINE_ENV)
    import torch

    from rewardkit.infer.sampler import SamplingConfig, load_policy
    from rewardkit.scoring import RewardModelScorer

    torch.set_num_threads(args.threads)
    rows = load_prompts(args.prompts)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)
    scorer = RewardModelScorer(rm_folder(args.rm))
    policy = load_policy(args.policy)
    started, load_avg = time.perf_counter(), os.getloadavg()
    out = run_all(args, policy, scorer, rows, sampling)
    result = {
        "benchmark": "bon_vs_speculative",
        "config": {"policy": args.policy, "rm": rm_folder(args.rm), "prompts": len(rows), **out.pop("config_ns"),
                   "alphas": args.alphas, "decision_rule": "chunk" if args.chunk else "token_budget",
                   "first_decision": args.first_decision, "chunk": args.chunk, "max_new_tokens": args.max_new_tokens,
                   "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed,
                   "prompts_per_batch": args.prompts_per_batch, "time_prompts": args.time_prompts},
        "machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_at_start": load_avg,
                    "torch": torch.__version__, "python": platform.python_version()},
        **out, "peak_rss_mb": peak_rss_mb(), "total_wall_s": round(time.perf_counter() - started, 1)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, Path(args.plot))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
