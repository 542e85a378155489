"""Process rewards on the step-level tasks (issue 15): two-hop reasoning with distracting premises, and
(when the PRM commands are present) AdaptiveStep vs newline splitting and PRM-guided Best-of-N.

Parts (``--parts``; each writes into WORKDIR):

- ``bon``: on held-out mused and two-hop problems (one distractor), the policy samples 8 / 16 solutions;
  final-answer accuracy of the pick of a MiniLM PRM (``train prm`` on the task's gold + corrupted stepwise
  data; min and last aggregation), of a MiniLM outcome RM trained on the same solutions as pairs, of a random
  pick and of the oracle; the PRM's first-error accuracy/F1 on the held-out gold/corrupted solutions.
- ``adaptive``: AdaptiveStep (confidence split) vs newline split on the policy's own mused solutions: steps
  per solution, Monte-Carlo labelling cost (rollout tokens), and the first-error F1 (mused and CHAMP) of a PRM
  trained on each.
- ``champ``: a PRM trained on CHAMP's train problems (gold + hand-annotated model solutions), first-error
  accuracy/F1 on the test problems' annotated solutions (and the mused PRM there, out of domain).
- ``two_hop``: the policy (SmolLM2-135M-Instruct by default) answers held-out two-hop questions ("Who is A's
  X's Y?") with 0, 1 and 3 distracting premises, greedy; accuracy with 95% bootstrap intervals against the
  chance of guessing one of the names in the facts, and where the wrong answers come from (the bridge
  entity B, a distractor's value, another name in the facts, a name not in the facts). The seed's claim:
  with distractors, models collapse to guessing.

Usage: ``python benchmarks/process_rewards.py --workdir /tmp/prm --out benchmarks/results/process_rewards.json``
(JSON on stdout; a plot beside ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import read_jsonl, run_json_main, run_rewardkit, write_jsonl

PARTS = ("two_hop", "bon", "adaptive", "champ")
# MiniLM PRM / ORM recipe (the quickstart's optimiser settings, 3 epochs, 512 tokens: nothing truncated)
RECIPE = ("--model", "minilm", "--epochs", "3", "--batch-size", "8", "--lr", "1e-4", "--max-length", "512")


def log(message: str) -> None:
    print(f"[process_rewards] {message}", file=sys.stderr, flush=True)


def answer_source(answer: str, problem: Any) -> str:
    """Where a given answer comes from: ``correct``, ``bridge`` (stopped after one hop), ``distractor`` (the
    value of a distracting fact), ``other_in_facts``, ``subject`` or ``not_in_facts``."""
    given = answer.strip().strip(".").lower()
    if not given:
        return "no_answer"
    if given == problem.answer.lower():
        return "correct"
    if given == problem.bridge.lower():
        return "bridge"
    if given == problem.subject.lower():
        return "subject"
    gold = {(problem.subject, problem.relations[0], problem.bridge), (problem.bridge, problem.relations[1],
                                                                     problem.answer)}
    if any(given == v.lower() for f in problem.facts if f not in gold for v in (f[2],)):
        return "distractor"
    if any(given in (o.lower(), v.lower()) for o, _, v in problem.facts):
        return "other_in_facts"
    return "not_in_facts"


def given_answer(text: str, problem: Any) -> str:
    """The name a free-form output answers with: the first name after its last "answer" (any case), else the
    last name of the facts it mentions, else "" (no answer). Lenient on purpose: a 135M model rarely keeps
    to the asked format, and the question is which entity it picks."""
    import re

    names = {o for o, _, _ in problem.facts} | {v for _, _, v in problem.facts}
    cut = text.lower().rfind("answer")
    if cut >= 0:
        after = [w for w in re.findall(r"[A-Z][a-z]+", text[cut:]) if w != "Answer"]
        if after:
            return after[0]
    mentioned = [w for w in re.findall(r"[A-Z][a-z]+", text) if w in names]
    return mentioned[-1] if mentioned else ""


def chance(problem: Any) -> float:
    """Probability of naming the answer by picking uniformly among the names in the facts other than the
    subject (what guessing from the context gives)."""
    names = {o for o, _, _ in problem.facts} | {v for _, _, v in problem.facts}
    names.discard(problem.subject)
    return 1.0 / len(names)


def synth_task(task: str, workdir: Path, args: argparse.Namespace, *extra: str) -> Path:
    """``data synth --task TASK`` into WORKDIR/TASK (reused)."""
    out = workdir / task
    if not (out / "manifest.json").exists():
        run_rewardkit("data", "synth", "--task", task, "--out", str(out), "--seed", str(args.seed), *extra,
                  threads=args.threads)
    return out


def train_model(kind: str, name: str, data: Path, workdir: Path, args: argparse.Namespace) -> Path:
    """``rewardkit train KIND`` (prm or rm) with the MiniLM recipe on ``data`` into WORKDIR/models/NAME (reused)."""
    out = workdir / "models" / name
    if not (out / "rewardkit.json").exists():
        t0 = time.perf_counter()
        run_rewardkit("train", kind, "--data", str(data), "--out", str(out), "--seed", str(args.seed), *RECIPE,
                      threads=args.threads)
        log(f"{name}: trained ({kind}) in {time.perf_counter() - t0:.0f} s")
    return out


def outcome_pairs(stepwise: Path, out: Path) -> Path:
    """Outcome-RM pairs from a stepwise file: per prompt, the all-right solution (chosen) against each
    solution with a wrong step (rejected), steps joined by newlines."""
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in read_jsonl(stepwise):
        by_prompt.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(row)
    pairs = []
    for rows in by_prompt.values():
        gold = [r for r in rows if all(r["labels"])]
        for bad in (r for r in rows if not all(r["labels"])):
            for good in gold[:1]:
                pairs.append({"prompt": good["prompt"], "chosen": "\n".join(good["completions"]),
                              "rejected": "\n".join(bad["completions"])})
    return write_jsonl(out, pairs)


def checker(task: str) -> Any:
    """``check(row, text) -> bool``: the written solution's final answer is right."""
    from rewardkit.synth import mused, two_hop

    module = mused if task == "mused" else two_hop
    return lambda row, text: bool(module.check_solution(row["meta"]["premises"], row["answer"], text).answer_correct)


def policy_samples(rows: Sequence[dict[str, Any]], n: int, args: argparse.Namespace, path: Path) -> list[list[str]]:
    """``n`` sampled solutions per row's prompt (temperature 0.8, top-p 0.95), stored and reused when the stored
    file has them for the same rows (else sampled again)."""
    if path.exists():
        stored = read_jsonl(path)
        if [r["id"] for r in stored] == [r["id"] for r in rows] and all(len(r["samples"]) >= n for r in stored):
            return [r["samples"][:n] for r in stored]
        log(f"{path}: stored samples do not cover {len(rows)} rows x {n}; sampling again")
    from rewardkit.infer.sampler import SamplingConfig, load_policy, sample

    policy = load_policy(args.policy)
    cfg = SamplingConfig(max_new_tokens=args.solution_tokens, temperature=0.8, top_p=0.95, seed=args.seed)
    texts: list[list[str]] = []
    for start in range(0, len(rows), args.prompts_per_batch):
        batch = rows[start : start + args.prompts_per_batch]
        texts += [[s.text for s in group] for group in sample(policy, [r["prompt"] for r in batch], n, cfg)]
    write_jsonl(path, [{"id": r["id"], "samples": t} for r, t in zip(rows, texts, strict=True)])
    return texts


def best_of_n(rows: Sequence[dict[str, Any]], texts: Sequence[Sequence[str]], correct: np.ndarray,
              scorers: dict[str, str], ns: Sequence[int], seed: int) -> dict[str, Any]:
    """Final-answer accuracy of each scorer's pick among the first n samples, against a random pick (the mean
    correctness) and the oracle (any sample right); 95% bootstrap intervals over problems."""
    from rewardkit.scorers import pointwise_function
    from rewardkit.scoring import ScorerOptions, build_scorer
    from rewardkit.stats import bootstrap_mean

    k = len(texts[0])
    prompts = [r["prompt"] for r in rows for _ in range(k)]
    responses = [[{"role": "assistant", "content": t}] for ts in texts for t in ts]
    rewards = {}
    for name, spec in scorers.items():
        fn = pointwise_function(build_scorer(spec, ScorerOptions(device="cpu")))
        rewards[name] = np.asarray(fn(prompts, responses, [True] * len(prompts)).rewards).reshape(len(rows), k)
    out: dict[str, Any] = {}
    for n in ns:
        res: dict[str, Any] = {}
        for name, r in rewards.items():
            pick = np.argmax(r[:, :n], axis=1)
            res[name] = bootstrap_mean(correct[np.arange(len(rows)), pick], seed=seed).to_dict()
        res["random"] = bootstrap_mean(correct[:, :n].mean(axis=1), seed=seed).to_dict()
        res["oracle"] = bootstrap_mean(correct[:, :n].max(axis=1), seed=seed).to_dict()
        out[str(n)] = res
    return out


def part_bon(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    tasks = {"mused": ("--n", str(args.synth_problems), "--depth", "1-4"),
             "two-hop": ("--n", str(args.synth_problems), "--distractors", "1")}
    for task, extra in ((t, tasks[t]) for t in args.tasks):
        folder = synth_task(task, workdir, args, *extra)
        prm = train_model("prm", f"prm_{task}", folder / "stepwise.jsonl", workdir, args)
        orm = train_model("rm", f"orm_{task}", outcome_pairs(folder / "stepwise.jsonl", workdir / f"orm_{task}.jsonl"),
                        workdir, args)
        rows = read_jsonl(folder / "test.jsonl")[: args.bon_problems]
        t0 = time.perf_counter()
        texts = policy_samples(rows, max(args.ns), args, workdir / f"bon_{task}.jsonl")
        sample_s = time.perf_counter() - t0
        check = checker(task)
        correct = np.array([[check(r, t) for t in ts] for r, ts in zip(rows, texts, strict=True)], dtype=np.float64)
        scorers = {"prm_min": f"prm:{prm}", "prm_last": f"prm:{prm}#agg=last", "orm": str(orm)}
        report[task] = {"problems": len(rows), "samples_per_problem": max(args.ns), "sampling_seconds": sample_s,
                        "sample_accuracy": float(correct.mean()),
                        "best_of_n": best_of_n(rows, texts, correct, scorers, args.ns, args.seed)}
        from rewardkit.eval.first_error import evaluate_first_error, read_first_error_rows
        from rewardkit.scoring import ScorerOptions, build_scorer

        fe = evaluate_first_error(build_scorer(f"prm:{prm}", ScorerOptions(device="cpu")),
                                  read_first_error_rows(str(folder / "first_error.jsonl")), seed=args.seed)
        report[task]["prm_first_error"] = _first_error_dict(fe)
        log(f"bon {task}: {json.dumps(report[task]['best_of_n'][str(max(args.ns))], default=str)[:400]}")
    return report


def _first_error_dict(evaluated: Any) -> dict[str, Any]:
    """The results of :func:`evaluate_first_error` (result, per-item records) without the records."""
    return evaluated[0].to_dict()


def part_adaptive(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """AdaptiveStep vs newline on mused: the policy's own solutions to training problems, split both ways,
    labelled by Monte-Carlo rollouts, a PRM trained on each, first-error F1 on the held-out gold/corrupted
    solutions."""
    from rewardkit.eval.first_error import evaluate_first_error, read_first_error_rows
    from rewardkit.scoring import ScorerOptions, build_scorer

    folder = synth_task("mused", workdir, args, "--n", str(args.synth_problems), "--depth", "1-4")
    rows = read_jsonl(folder / "train.jsonl")[: args.adaptive_problems]
    texts = policy_samples(rows, args.adaptive_samples, args, workdir / "adaptive_samples.jsonl")
    solutions = write_jsonl(workdir / "adaptive_solutions.jsonl",
                            [{"id": f"{r['id']}-{j}", "prompt": r["prompt"], "response": t, "answer": r["answer"],
                              "meta": r["meta"]} for r, ts in zip(rows, texts, strict=True) for j, t in enumerate(ts)])
    report: dict[str, Any] = {"solutions": len(read_jsonl(solutions)), "rollouts": args.rollouts}
    fe_rows = read_first_error_rows(str(folder / "first_error.jsonl"))
    champ_rows = read_first_error_rows(str(champ_test(workdir, args)))
    for split in ("confidence", "newline"):
        steps, labeled = workdir / f"steps_{split}.jsonl", workdir / f"labeled_{split}.jsonl"
        t0 = time.perf_counter()
        if not steps.exists():
            run_rewardkit("data", "steps", "--policy", args.policy, "--data", str(solutions), "--out", str(steps),
                      "--split", split, "--quantile", str(args.quantile), threads=args.threads)
        t1 = time.perf_counter()
        if not labeled.exists():
            run_rewardkit("data", "label-steps", "--policy", args.policy, "--data", str(steps), "--out", str(labeled),
                      "--rollouts", str(args.rollouts), "--max-new-tokens", str(args.rollout_tokens), "--task", "mused",
                      "--seed", str(args.seed), threads=args.threads)
        t2 = time.perf_counter()
        prm = train_model("prm", f"prm_adaptive_{split}", labeled, workdir, args)
        scorer = build_scorer(f"prm:{prm}", ScorerOptions(device="cpu"))
        fe = evaluate_first_error(scorer, fe_rows, seed=args.seed)
        report[split] = {"steps": json.loads(steps.with_name(steps.stem + ".summary.json").read_text()),
                         "labels": json.loads(labeled.with_name(labeled.stem + ".summary.json").read_text()),
                         "split_seconds": t1 - t0, "label_seconds": t2 - t1,
                         "prm_first_error_mused": _first_error_dict(fe),
                         "prm_first_error_champ": _first_error_dict(evaluate_first_error(scorer, champ_rows,
                                                                                         seed=args.seed))}
        log(f"adaptive {split}: {report[split]['steps']['steps_per_solution']}, "
            f"{report[split]['labels']['rollout_tokens']} rollout tokens")
    return report


def champ_test(workdir: Path, args: argparse.Namespace) -> Path:
    """WORKDIR/champ_first_error_test.jsonl: CHAMP's annotated model solutions of the test problems."""
    folder = synth_task("math-champ", workdir, args)
    return write_jsonl(workdir / "champ_first_error_test.jsonl",
                       [r for r in read_jsonl(folder / "first_error.jsonl") if r.get("meta", {}).get("split") == "test"])


def part_champ(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A PRM trained on CHAMP's train problems (gold solutions + annotated model solutions), first-error
    accuracy/F1 on the annotated solutions of the test problems."""
    from rewardkit.eval.first_error import evaluate_first_error, read_first_error_rows
    from rewardkit.scoring import ScorerOptions, build_scorer

    folder = synth_task("math-champ", workdir, args)
    prm = train_model("prm", "prm_champ", folder / "stepwise.jsonl", workdir, args)
    test = champ_test(workdir, args)
    scorer = build_scorer(f"prm:{prm}", ScorerOptions(device="cpu"))
    report = {"test_rows": len(read_jsonl(test)),
              "prm_champ": _first_error_dict(evaluate_first_error(scorer, read_first_error_rows(str(test)),
                                                                  seed=args.seed))}
    mused_prm = workdir / "models" / "prm_mused"
    if (mused_prm / "rewardkit.json").exists():  # out of domain: the mused PRM on CHAMP
        report["prm_mused_on_champ"] = _first_error_dict(evaluate_first_error(
            build_scorer(f"prm:{mused_prm}", ScorerOptions(device="cpu")), read_first_error_rows(str(test)),
            seed=args.seed))
    return report


def part_two_hop(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from rewardkit.infer.sampler import SamplingConfig, load_policy, sample
    from rewardkit.stats import bootstrap_mean
    from rewardkit.synth.two_hop import build_two_hop

    policy = load_policy(args.policy)
    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.0, seed=args.seed)
    report: dict[str, Any] = {"policy": args.policy, "problems": args.problems, "max_new_tokens": args.max_new_tokens,
                              "by_distractors": {}}
    for k in args.distractors:
        problems = build_two_hop(args.problems, distractors=k, seed=args.seed + 1000)  # not the synth split's seed
        t0 = time.perf_counter()
        samples = sample(policy, [p.to_row()["prompt"] for p in problems], 1, cfg)
        texts = [s[0].text for s in samples]
        answers = [given_answer(t, p) for t, p in zip(texts, problems, strict=True)]
        sources = [answer_source(a, p) for a, p in zip(answers, problems, strict=True)]
        correct = np.array([s == "correct" for s in sources], dtype=np.float64)
        acc = bootstrap_mean(correct, seed=args.seed)
        counts = {s: sources.count(s) for s in sorted(set(sources))}
        report["by_distractors"][str(k)] = {
            "accuracy": acc.value, "ci95_low": acc.low, "ci95_high": acc.high,
            "chance": float(np.mean([chance(p) for p in problems])), "answer_sources": counts,
            "seconds": time.perf_counter() - t0}
        write_jsonl(workdir / f"two_hop_{k}.jsonl", [{"id": p.id, "prompt": p.prompt_text(), "answer": p.answer,
                                                      "output": t, "given": a, "source": s}
                                                     for p, t, a, s in zip(problems, texts, answers, sources,
                                                                           strict=True)])
        log(f"two-hop, {k} distractors: accuracy {acc.value:.3f} [{acc.low:.3f}, {acc.high:.3f}], {counts}")
    return report


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per part present: two-hop accuracy vs distractors, Best-of-N accuracy per task and N,
    AdaptiveStep vs newline (steps per solution, rollout tokens, first-error F1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("two_hop", "bon", "adaptive") if p in report]
    tasks = list(report.get("bon", {}))
    n = len(panels) - ("bon" in panels) + len(tasks)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(5.5 * max(n, 1), 4), squeeze=False)
    axes = list(axes[0])
    if "two_hop" in report:
        _plot_two_hop(axes.pop(0), report["two_hop"])
    for task in tasks:
        _plot_bon(axes.pop(0), task, report["bon"][task])
    if "adaptive" in report:
        _plot_adaptive(axes.pop(0), report["adaptive"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_two_hop(ax: Any, two_hop: dict[str, Any]) -> None:
    rows = two_hop["by_distractors"]
    ks = sorted(int(k) for k in rows)
    acc = [rows[str(k)]["accuracy"] for k in ks]
    err = [[a - rows[str(k)]["ci95_low"] for k, a in zip(ks, acc, strict=True)],
           [rows[str(k)]["ci95_high"] - a for k, a in zip(ks, acc, strict=True)]]
    ax.errorbar(ks, acc, yerr=err, fmt="o-", capsize=4, label=two_hop["policy"])
    ax.plot(ks, [rows[str(k)]["chance"] for k in ks], "k--", label="guessing a name in the facts")
    ax.set_xlabel("distracting premises")
    ax.set_ylabel("final-answer accuracy")
    ax.set_xticks(ks)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("two-hop reasoning with distractors")


def _plot_bon(ax: Any, task: str, bon: dict[str, Any]) -> None:
    ns = list(bon["best_of_n"])
    names = list(bon["best_of_n"][ns[0]])
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        vals = [bon["best_of_n"][n][name] for n in ns]
        x = np.arange(len(ns)) + (j - (len(names) - 1) / 2) * width
        ax.bar(x, [v["value"] for v in vals], width, label=name,
               yerr=[[v["value"] - v["ci95_low"] for v in vals], [v["ci95_high"] - v["value"] for v in vals]],
               capsize=2)
    ax.set_xticks(range(len(ns)), [f"N = {n}" for n in ns])
    ax.set_ylabel("final-answer accuracy of the pick")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(f"Best-of-N on held-out {task} ({bon['problems']} problems)")


def _plot_adaptive(ax: Any, adaptive: dict[str, Any]) -> None:
    splits = [s for s in ("confidence", "newline") if s in adaptive]
    metrics = {"steps per\nsolution": [adaptive[s]["steps"]["steps_per_solution"]["mean"] for s in splits],
               "rollout\nktokens": [adaptive[s]["labels"]["rollout_tokens"] / 1000 for s in splits],
               "F1 mused\n(x10)": [10 * adaptive[s]["prm_first_error_mused"]["metrics"]["f1"]["value"]
                                            for s in splits],
               "F1 CHAMP\n(x10)": [10 * adaptive[s]["prm_first_error_champ"]["metrics"]["f1"]["value"]
                                            for s in splits if "prm_first_error_champ" in adaptive[s]]}
    metrics = {k: v for k, v in metrics.items() if len(v) == len(splits)}
    width = 0.8 / len(splits)
    for j, split in enumerate(splits):
        x = np.arange(len(metrics)) + (j - (len(splits) - 1) / 2) * width
        ax.bar(x, [v[j] for v in metrics.values()], width, label=f"{split} split")
    ax.set_xticks(range(len(metrics)), list(metrics), fontsize=7)
    ax.legend(fontsize=8)
    ax.set_title("AdaptiveStep (confidence) vs newline steps")


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "process_rewards", "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                        for k, v in vars(args).items()}}
    for part in args.parts:
        t0 = time.perf_counter()
        if part == "two_hop":
            report["two_hop"] = part_two_hop(args, workdir)
        elif part == "bon":
            report["bon"] = part_bon(args, workdir)
        elif part == "adaptive":
            report["adaptive"] = part_adaptive(args, workdir)
        elif part == "champ":
            report["champ"] = part_champ(args, workdir)
        log(f"part {part}: {time.perf_counter() - t0:.0f} s")
    plot_path = args.out.with_suffix(".png") if args.out else workdir / "process_rewards.png"
    plot(report, plot_path)
    report["plot"] = str(plot_path)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), type=lambda s: s.split(","), help=f"of {', '.join(PARTS)}")
    p.add_argument("--policy", default="smollm2-135m", help="causal LM that answers (alias, folder or hub name)")
    p.add_argument("--problems", type=int, default=100, help="two-hop problems per distractor count")
    p.add_argument("--distractors", default=[0, 1, 3], type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--max-new-tokens", type=int, default=96, help="two-hop answer tokens")
    p.add_argument("--synth-problems", type=int, default=400, help="mused / two-hop problems generated (80/20 split)")
    p.add_argument("--bon-problems", type=int, default=40, help="held-out problems for Best-of-N")
    p.add_argument("--tasks", default=["mused", "two-hop"], type=lambda s: s.split(","),
                   help="bon: of mused, two-hop")
    p.add_argument("--ns", default=[8, 16], type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--solution-tokens", type=int, default=128, help="max new tokens of a sampled solution")
    p.add_argument("--prompts-per-batch", type=int, default=4)
    p.add_argument("--adaptive-problems", type=int, default=30, help="mused training problems the policy solves")
    p.add_argument("--adaptive-samples", type=int, default=2, help="solutions per problem to split and label")
    p.add_argument("--quantile", type=float, default=0.02, help="AdaptiveStep's confidence quantile")
    p.add_argument("--rollouts", type=int, default=4, help="Monte-Carlo rollouts per step")
    p.add_argument("--rollout-tokens", type=int, default=48, help="max new tokens per rollout")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run_json_main(run, parse_args(), prefix="rk-prm-"))
