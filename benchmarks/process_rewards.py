"""Process rewards on the step-level tasks (issue 15): two-hop reasoning with distracting premises, and
(when the PRM commands are present) AdaptiveStep vs newline splitting and PRM-guided Best-of-N.

Parts (``--parts``; each writes into WORKDIR):

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
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_json_main, write_jsonl

PARTS = ("two_hop",)


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 1, figsize=(5.5, 4))
    if "two_hop" in report:
        rows = report["two_hop"]["by_distractors"]
        ks = sorted(int(k) for k in rows)
        acc = [rows[str(k)]["accuracy"] for k in ks]
        err = [[a - rows[str(k)]["ci95_low"] for k, a in zip(ks, acc, strict=True)],
               [rows[str(k)]["ci95_high"] - a for k, a in zip(ks, acc, strict=True)]]
        ax.errorbar(ks, acc, yerr=err, fmt="o-", capsize=4, label=report["two_hop"]["policy"])
        ax.plot(ks, [rows[str(k)]["chance"] for k in ks], "k--", label="guessing a name in the facts")
        ax.set_xlabel("distracting premises")
        ax.set_ylabel("final-answer accuracy")
        ax.set_xticks(ks)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("two-hop reasoning with distractors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "process_rewards", "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                        for k, v in vars(args).items()}}
    for part in args.parts:
        t0 = time.perf_counter()
        if part == "two_hop":
            report["two_hop"] = part_two_hop(args, workdir)
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
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run_json_main(run, parse_args(), prefix="rk-prm-"))
