"""LLM unlearning with rewardkit on the embedded fictitious-facts task: GA, NPO, SimNPO and FLAT (TV).

SmolLM2-135M-Instruct (the ``smollm2-135m`` alias) is taught invented facts and then made to forget a
part of them:

1. **data**: ``write_fictitious_facts`` (``rewardkit data synth --task fictitious-facts``): ``--people``
   invented people, ten facts each, split by person into forget (``--forget-fraction``) and retain;
2. **teaching**: ``train sft`` (LoRA, ``--sft-epochs`` at ``--sft-lr``) on all.jsonl; how well it learned
   is the base model's vs the taught model's forget / retain metrics (``evaluate_unlearning``: answer
   probability, ROUGE-L recall and exact match of greedy answers, truth ratio);
3. **reference**: the same ``train sft`` on retain.jsonl only -- a model never trained on the forget set,
   against which forget quality (TOFU's KS test of forget-set truth ratios) is measured;
4. **unlearning**: from the taught model, each of ``--methods`` (``train unlearn``) for the same
   ``--steps`` at the same lr and batch; ``--retain`` is always given (``--retain-rows`` rows of
   retain.jsonl) so the loop logs ``retain_answer_prob`` every ``--eval-steps``; only the losses whose
   config has a retain term (npo, simnpo by default: ``retain=nll``) train on it. ``npo_noretain`` is NPO
   with ``loss.retain=none``: GA's like-for-like comparison (GA has no retain term either, as in the NPO
   paper's GA-vs-NPO figure). Each final model is evaluated (reference: the retain-only model; perplexity
   on general.jsonl);
5. **headline checks**, stated as booleans with the numbers behind them (see :func:`matched_retain` and
   :func:`headline_checks`):

   (a) "NPO's model utility collapses more slowly than GA's at equal forgetting";
   (b) "FLAT forgets without retain data while keeping more utility than GA".

Default sizes (16 people = 20 forget / 140 retain rows, teaching 3 epochs at lr 5e-4 with LoRA r 16, batch 8,
max_length 128, 12 unlearning steps at a constant lr 2e-4, eval every 3 steps, 24 retain rows and 20 general
sentences evaluated) are meant to fit ~40 minutes on 2 idle cores (estimated from the smoke run's timings:
teaching ~13 min, 8 evaluations ~10 min, 5 unlearning runs ~16 min); a loaded machine takes 2-3x that.
``--methods`` drops runs (e.g. ``ga,npo_noretain,flat`` for the two headline checks only).

Prints one JSON object (progress on stderr) and writes ``unlearn.png`` next to ``--out``::

    python benchmarks/unlearn.py --threads 2 --out benchmarks/results/unlearn.json
    python benchmarks/unlearn.py --threads 1 --smoke --workdir /tmp/unlearn-smoke    # minutes: tiny sizes
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import read_jsonl, run_json_main, write_jsonl

# method name -> (registered loss, extra --set overrides)
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ga": ("ga", ()),
    "npo": ("npo", ()),
    "npo_noretain": ("npo", ("loss.retain=none",)),
    "simnpo": ("simnpo", ()),
    "flat": ("flat", ("loss.divergence=tv",)),
    "grad_diff": ("grad_diff", ()),
}


def log(message: str) -> None:
    print(f"[unlearn] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data


def prepare_data(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The fictitious facts, plus ``retain_eval.jsonl``: the first ``--retain-rows`` retain rows (0: all),
    the retain stream and retain evaluation of every unlearning run."""
    from rewardkit.synth.facts import write_fictitious_facts

    facts = write_fictitious_facts(workdir / "facts", args.people, forget_fraction=args.forget_fraction, seed=args.seed)
    log(str(facts))
    d = workdir / "facts"
    retain = read_jsonl(d / "retain.jsonl")
    retain_eval = retain[: args.retain_rows] if args.retain_rows > 0 else retain
    return {"forget": d / "forget.jsonl", "retain": d / "retain.jsonl", "all": d / "all.jsonl",
            "general": d / "general.jsonl", "retain_eval": write_jsonl(workdir / "retain_eval.jsonl", retain_eval),
            "counts": {"forget": facts.forget_rows, "retain": facts.retain_rows, "retain_eval": len(retain_eval),
                       "forget_people": facts.forget_people, "retain_people": facts.retain_people}}


# ------------------------------------------------------------------------------------ training


def _common_values(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch_size": args.batch_size, "max_length": args.max_length, "seed": args.seed, "device": "cpu",
            "precision": "fp32", "logging_steps": 1}


def sft_run(data: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``rewardkit train sft`` (LoRA) on ``data``; returns its metadata."""
    from rewardkit.train.config import SftTrainConfig, load_config
    from rewardkit.train.policy import train_policy

    values = {**_common_values(args), "data": str(data), "model": args.model, "out": str(out),
              "epochs": args.sft_epochs, "lr": args.sft_lr, "max_steps": args.sft_max_steps}
    t0 = time.perf_counter()
    result = train_policy(load_config(SftTrainConfig, None, values, [f"lora.r={args.lora_r}"]))
    log(f"train sft on {data.name}: {time.perf_counter() - t0:.0f} s")
    return result.metadata


def unlearn_run(method: str, model: str, data: dict[str, Any], out: Path, args: argparse.Namespace
                ) -> dict[str, Any]:
    """``rewardkit train unlearn --loss L`` for ``--steps`` from ``model``; returns its metadata."""
    from rewardkit.train.config import load_config
    from rewardkit.train.unlearn import UnlearnTrainConfig, train_unlearn

    loss, extra = METHODS[method]
    values = {**_common_values(args), "forget": str(data["forget"]), "retain": str(data["retain_eval"]),
              "model": model, "out": str(out), "max_steps": args.steps, "lr": args.unlearn_lr,
              "eval_steps": args.eval_steps, "scheduler": "constant", "warmup_ratio": 0.0}
    t0 = time.perf_counter()
    result = train_unlearn(load_config(UnlearnTrainConfig, None, values,
                                       [f"loss.name={loss}", f"lora.r={args.lora_r}", *extra]))
    log(f"train unlearn --loss {loss} {' '.join(extra)}: {time.perf_counter() - t0:.0f} s")
    return result.metadata


# ------------------------------------------------------------------------------------ measuring


def load_model(path: str) -> Any:
    from rewardkit.models.causal_lm import load_causal_lm

    return load_causal_lm(path, dtype="float32", device="cpu")


def evaluate(name: str, model_dir: str, data: dict[str, Any], args: argparse.Namespace, reference: Any) -> dict[str, Any]:
    """``evaluate_unlearning`` on forget.jsonl and retain_eval.jsonl (+ general text, + the reference)."""
    from rewardkit.data.unlearning import read_unlearning_rows
    from rewardkit.eval.unlearn import evaluate_unlearning

    t0 = time.perf_counter()
    model = load_model(model_dir)
    general = [r.answer if not r.question else f"{r.question} {r.answer}"
               for r in read_unlearning_rows(str(data["general"]))][: args.general_rows]
    res = evaluate_unlearning(model, read_unlearning_rows(str(data["forget"])),
                              read_unlearning_rows(str(data["retain_eval"])), general, reference,
                              max_new_tokens=args.max_new_tokens, batch_size=args.eval_batch_size,
                              max_length=args.max_length)
    f, r = res.forget, res.retain
    assert r is not None
    out = {"model": model_dir,
           "forget": {"answer_prob": f.answer_prob, "rouge_l_recall": f.rouge_l_recall, "exact_match": f.exact_match,
                      "truth_ratio_mean": f.truth_ratio_mean, "truth_ratio_score": f.truth_ratio_score, "n": f.n},
           "retain": {"answer_prob": r.answer_prob, "rouge_l_recall": r.rouge_l_recall, "exact_match": r.exact_match,
                      "truth_ratio_mean": r.truth_ratio_mean, "truth_ratio_score": r.truth_ratio_score, "n": r.n},
           "model_utility": res.model_utility,
           "forget_quality": None if res.forget_quality is None else res.forget_quality.p_value,
           "ks_statistic": None if res.forget_quality is None else res.forget_quality.statistic,
           "general_perplexity": res.general_perplexity,
           "examples": [{k: row[k] for k in ("id", "split", "generated", "answer_prob")} for row in res.rows[:3]],
           "seconds": round(time.perf_counter() - t0, 1)}
    log(f"{name}: forget prob {f.answer_prob:.3f} rougeL {f.rouge_l_recall:.3f} EM {f.exact_match:.2f} | retain prob "
        f"{r.answer_prob:.3f} rougeL {r.rouge_l_recall:.3f} EM {r.exact_match:.2f} | utility {_n(res.model_utility)} "
        f"FQ {_n(out['forget_quality'])} ppl {_n(res.general_perplexity)} ({out['seconds']} s)")
    return _clean(out)


def _n(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _clean(x: Any) -> Any:
    """NaN/inf -> None, recursively (valid JSON)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def curves_of(run_dir: Path, start: dict[str, Any]) -> dict[str, list[float]]:
    """The run's eval rows of ``logs/metrics.jsonl`` as ``{"step", "forget_answer_prob", "retain_answer_prob",
    "forget_nll", "retain_nll"}`` lists, step 0 prepended from ``start`` (the taught model measured with the
    same answer-probability definition on the same files; its NLLs are left None)."""
    from rewardkit.eval.unlearn_report import read_eval_curves

    raw = read_eval_curves(run_dir / "logs" / "metrics.jsonl")
    steps = sorted({s for series in raw.values() for s, _ in series})
    out: dict[str, list[Any]] = {"step": [0, *steps]}
    for key in ("forget_answer_prob", "retain_answer_prob", "forget_nll", "retain_nll"):
        by_step = dict(raw.get(key, []))
        out[key] = [start.get(key), *[by_step.get(s) for s in steps]]
    return out


# ------------------------------------------------------------------------------------ headline checks


def first_crossing(forget: Sequence[float], retain: Sequence[float], level: float) -> float | None:
    """Retain answer probability where the forget answer probability curve first falls to ``level``:
    the first segment i with forget[i] > level >= forget[i+1], linearly interpolated in between (forget[0]
    <= level counts as reached at step 0). None when the curve never gets that low."""
    if forget[0] <= level:
        return float(retain[0])
    for i in range(len(forget) - 1):
        f0, f1 = forget[i], forget[i + 1]
        if f0 > level >= f1:
            t = (f0 - level) / (f0 - f1)
            return float(retain[i] + t * (retain[i + 1] - retain[i]))
    return None


def matched_retain(a: dict[str, list[Any]], b: dict[str, list[Any]], n_levels: int = 5) -> dict[str, Any]:
    """Retain answer probability of runs ``a`` and ``b`` at equal forgetting.

    Levels: ``n_levels`` forget answer probabilities evenly spaced from the start (step 0, shared by both
    runs: the taught model) down to the deepest level both curves reach (the larger of the two minima);
    the start itself is left out. At each level each run's retain answer probability is read where its
    forget curve first crosses that level (:func:`first_crossing`). ``diff`` = a − b per level; ``deepest``
    is the comparison at the deepest common level, the one the headline uses. ``depth`` = the deepest level
    as a fraction of the start (1: no common forgetting at all, nothing to compare)."""
    fa = [x for x in a["forget_answer_prob"] if x is not None]
    fb = [x for x in b["forget_answer_prob"] if x is not None]
    ra, rb = a["retain_answer_prob"][: len(fa)], b["retain_answer_prob"][: len(fb)]
    start = min(fa[0], fb[0])
    floor = max(min(fa), min(fb))
    out: dict[str, Any] = {"start_forget_prob": start, "deepest_common_forget_prob": floor,
                           "depth": floor / start if start > 0 else None, "levels": []}
    if floor >= start:
        out["deepest"] = None
        return out
    for k in range(1, n_levels + 1):
        level = floor if k == n_levels else start - (start - floor) * k / n_levels  # exact at the floor
        va, vb = first_crossing(fa, ra, level), first_crossing(fb, rb, level)
        out["levels"].append({"forget_prob": level, "retain_prob_a": va, "retain_prob_b": vb,
                              "diff": None if va is None or vb is None else va - vb})
    out["deepest"] = out["levels"][-1]
    diffs = [lv["diff"] for lv in out["levels"] if lv["diff"] is not None]
    out["mean_diff"] = float(np.mean(diffs)) if diffs else None
    return out


def headline_checks(runs: dict[str, Any], taught: dict[str, Any]) -> dict[str, Any]:
    """The two claims, each with a boolean and its numbers.

    (a) NPO vs GA: :func:`matched_retain` of NPO (``npo_noretain`` when it ran: no retain term, like GA;
        else ``npo``) against GA. ``reproduced`` iff the curves share real forgetting (deepest common forget
        probability at most 0.9 × the taught model's) and NPO's retain answer probability is higher than
        GA's at the deepest common level and on average over the levels. ``npo`` (with its retain NLL term)
        vs GA is reported beside it, not judged (its retain term makes it a different comparison).
    (b) FLAT vs GA: ``reproduced`` iff FLAT forgets (final forget answer probability at most half the taught
        model's) without retain data (its run has no retain term), its final model utility is higher than
        GA's, and along the curves its retain answer probability is higher than GA's at the deepest common
        forget level. ``forgetting_comparable`` says whether the final forget probabilities are within 0.05
        of each other (else the final-utility comparison is at unequal forgetting: read the matched one)."""
    out: dict[str, Any] = {}
    if "ga" not in runs:
        return {"note": "ga did not run: no headline checks"}
    ga = runs["ga"]
    npo_name = "npo_noretain" if "npo_noretain" in runs else ("npo" if "npo" in runs else None)
    if npo_name is not None:
        m = matched_retain(runs[npo_name]["curves"], ga["curves"])
        deep = m.get("deepest")
        ok = bool(deep is not None and deep["diff"] is not None and m["depth"] is not None and m["depth"] <= 0.9
                  and deep["diff"] > 0 and (m.get("mean_diff") or 0) > 0)
        out["a_npo_utility_collapses_slower_than_ga"] = {
            "claim": "NPO's model utility collapses more slowly than GA's at equal forgetting",
            "npo_run": npo_name, "measure": "retain answer probability at equal forget answer probability "
            "(a = NPO, b = GA; interpolated along the logged curves)", "matched": m, "reproduced": ok,
            "verdict": "reproduced" if ok else "not reproduced",
            "final": {k: {"forget_answer_prob": runs[k]["final"]["forget"]["answer_prob"],
                          "model_utility": runs[k]["final"]["model_utility"]} for k in (npo_name, "ga")}}
        if npo_name != "npo" and "npo" in runs:
            out["a_npo_utility_collapses_slower_than_ga"]["npo_with_retain_vs_ga"] = matched_retain(
                runs["npo"]["curves"], ga["curves"])
    if "flat" in runs:
        flat = runs["flat"]
        t_f = taught["forget"]["answer_prob"]
        ff, gf = flat["final"]["forget"]["answer_prob"], ga["final"]["forget"]["answer_prob"]
        fu, gu = flat["final"]["model_utility"], ga["final"]["model_utility"]
        m = matched_retain(flat["curves"], ga["curves"])
        deep = m.get("deepest")
        forgot = ff <= 0.5 * t_f
        no_retain = flat["retain_term"] == "none"
        util_higher = fu is not None and gu is not None and fu > gu
        matched_higher = deep is not None and deep["diff"] is not None and deep["diff"] > 0
        ok = bool(forgot and no_retain and util_higher and matched_higher)
        out["b_flat_forgets_without_retain_keeping_more_utility_than_ga"] = {
            "claim": "FLAT forgets without retain data while keeping more utility than GA",
            "taught_forget_answer_prob": t_f, "flat_final_forget_answer_prob": ff, "ga_final_forget_answer_prob": gf,
            "flat_forgot": forgot, "flat_retain_term": flat["retain_term"], "flat_final_model_utility": fu,
            "ga_final_model_utility": gu, "final_utility_higher": util_higher,
            "forgetting_comparable": abs(ff - gf) <= 0.05, "matched": m, "matched_retain_higher": matched_higher,
            "reproduced": ok, "verdict": "reproduced" if ok else "not reproduced"}
    return out


# ------------------------------------------------------------------------------------ the run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="base causal LM (alias, folder or hub name)")
    p.add_argument("--people", type=int, default=16, help="invented people (ten facts each); 16 × 0.1 rounds to 2 "
                   "forget people = 20 forget rows, 140 retain rows")
    p.add_argument("--forget-fraction", type=float, default=0.1, help="share of people in the forget set")
    p.add_argument("--retain-rows", type=int, default=24, help="retain rows the unlearning runs train on (npo, "
                   "simnpo) and every evaluation measures (first N of retain.jsonl; 0: all)")
    p.add_argument("--general-rows", type=int, default=20, help="general sentences for perplexity")
    p.add_argument("--methods", default="ga,npo,npo_noretain,simnpo,flat",
                   help=f"comma-separated unlearning runs, of: {', '.join(METHODS)}")
    p.add_argument("--sft-epochs", type=float, default=3.0, help="teaching epochs (all.jsonl, and the retain-only run)")
    p.add_argument("--sft-lr", type=float, default=5e-4, help="teaching lr (LoRA)")
    p.add_argument("--sft-max-steps", type=int, default=-1)
    p.add_argument("--steps", type=int, default=12, help="optimizer steps of every unlearning run")
    p.add_argument("--eval-steps", type=int, default=3, help="log forget/retain answer probability every N steps")
    p.add_argument("--unlearn-lr", type=float, default=2e-4, help="constant lr of every unlearning run (LoRA)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=20, help="greedy answer tokens (ROUGE-L, exact match)")
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--skip-base", action="store_true", help="do not evaluate the untaught base model")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script end to end")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    unknown = [m for m in args.methods.split(",") if m.strip() and m.strip() not in METHODS]
    if unknown:
        p.error(f"--methods: unknown {unknown}; known: {', '.join(METHODS)}")
    if args.smoke:
        args.people, args.retain_rows, args.general_rows, args.sft_max_steps = 4, 6, 4, 2
        args.steps, args.eval_steps, args.max_new_tokens, args.batch_size, args.max_length = 2, 1, 8, 2, 96
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data = prepare_data(args, workdir)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    report: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "threads": torch.get_num_threads(), "data": data["counts"], "phase_seconds": {}}
    phases = report["phase_seconds"]

    t0 = time.perf_counter()
    taught_dir, retain_dir = workdir / "taught", workdir / "retain_only"
    taught_meta = sft_run(data["all"], taught_dir, args)
    retain_meta = sft_run(data["retain"], retain_dir, args)
    phases["sft"] = time.perf_counter() - t0
    report["teaching"] = {"taught": _train_summary(taught_meta), "retain_only": _train_summary(retain_meta)}

    t0 = time.perf_counter()
    reference = load_model(str(retain_dir))
    points: dict[str, Any] = {}
    if not args.skip_base:
        from rewardkit.models.backbones import resolve_backbone

        points["base"] = evaluate("base (untaught)", resolve_backbone(args.model), data, args, reference)
    points["taught"] = evaluate("taught", str(taught_dir), data, args, reference)
    points["retain_only"] = evaluate("retain-only", str(retain_dir), data, args, reference)
    phases["eval_start"] = time.perf_counter() - t0
    report["points"] = points
    report["learned"] = {split: {k: {"before": points.get("base", {}).get(split, {}).get(k),
                                     "after": points["taught"][split][k]}
                                 for k in ("answer_prob", "rouge_l_recall", "exact_match")}
                         for split in ("forget", "retain")}
    start = {"forget_answer_prob": points["taught"]["forget"]["answer_prob"],
             "retain_answer_prob": points["taught"]["retain"]["answer_prob"]}

    runs: dict[str, Any] = {}
    for method in methods:
        t0 = time.perf_counter()
        out = workdir / f"unlearn_{method}"
        meta = unlearn_run(method, str(taught_dir), data, out, args)
        train_s = time.perf_counter() - t0
        final = evaluate(method, str(out), data, args, reference)
        runs[method] = {"loss": METHODS[method][0], "overrides": list(METHODS[method][1]),
                        "retain_term": (meta.get("unlearn") or {}).get("retain_term"),
                        "training": _train_summary(meta), "train_call_seconds": round(train_s, 1),
                        "seconds_per_step": round(train_s / max(args.steps, 1), 2),
                        "curves": _clean(curves_of(out, start)), "final": final}
        phases[f"unlearn_{method}"] = time.perf_counter() - t0
    report["runs"] = runs
    report["headline"] = headline_checks(runs, points["taught"])
    report["phase_seconds"]["total"] = time.perf_counter() - t_start
    png = args.out.with_name("unlearn.png") if args.out else workdir / "unlearn.png"
    plot(report, png)
    report["plot"] = str(png)
    return _clean(report)


def _train_summary(meta: dict[str, Any]) -> dict[str, Any]:
    return _clean({"training": meta.get("training"), "eval": (meta.get("metrics") or {}).get("eval"),
                   "train_last": (meta.get("metrics") or {}).get("train_last")})


def plot(report: dict[str, Any], path: Path) -> None:
    """Left: the trade-off (forget vs retain answer probability over steps, one line per method, step 0 =
    the taught model); middle / right: forget and retain answer probability over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, run in report["runs"].items():
        c = run["curves"]
        pts = [(s, f, r) for s, f, r in zip(c["step"], c["forget_answer_prob"], c["retain_answer_prob"], strict=True)
               if f is not None and r is not None]
        if not pts:
            continue
        steps, fs, rs = zip(*pts, strict=True)
        (line,) = axes[0].plot(fs, rs, "-o", ms=3, label=name)
        axes[0].annotate(f"{steps[-1]}", (fs[-1], rs[-1]), textcoords="offset points", xytext=(3, 3), fontsize=7,
                         color=line.get_color())
        axes[1].plot(steps, fs, "-o", ms=3, color=line.get_color(), label=name)
        axes[2].plot(steps, rs, "-o", ms=3, color=line.get_color(), label=name)
    ref = report["points"].get("retain_only")
    if ref:
        axes[0].plot([ref["forget"]["answer_prob"]], [ref["retain"]["answer_prob"]], "k*", ms=10,
                     label="retain-only model (never saw forget)")
        axes[1].axhline(ref["forget"]["answer_prob"], color="k", ls=":", lw=1, label="retain-only model")
    axes[0].set_xlabel("forget answer probability (lower = more forgotten)")
    axes[0].set_ylabel("retain answer probability (higher = utility kept)")
    axes[0].set_title("trade-off over unlearning steps")
    axes[0].invert_xaxis()
    axes[1].set_title("forget answer probability")
    axes[2].set_title("retain answer probability")
    for ax in axes[1:]:
        ax.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-unlearn-")


if __name__ == "__main__":
    raise SystemExit(main())
