"""The ifeval-lite testbed, before and after: its shortcuts, the reward model, and Best-of-N on plain samples.

For two versions of the shipped ifeval-lite set -- ``old`` (the files at git revision ``--old-rev``,
b16247b: pairs of samples and one-sided edits) and ``new`` (the set shipped with this checkout:
counterfactual twins) -- in one run:

- **model-free shortcuts** on the test pairs (:func:`rewardkit.synth.audit.audit_pairs`): edited-wins
  (from the ``*_source`` fields; also on the pairs where exactly one response is an edit),
  more-edits-wins, longer- and shorter-wins, every surface feature alone and a logistic probe on all of
  them fitted on the train pairs, the ceiling of any prompt-blind scorer, and the verifiers' own
  verdict with each prompt swapped for another request's;
- **reward models** trained as the quickstart trains them (MiniLM, max length 256, batch 8, lr 1e-4, seed
  42; :func:`rewardkit.quickstart.train_and_audit`; two epochs on the new set, ``--old-epochs`` on the old
  one): the full model, the same model with every prompt replaced by "Respond." (response-only; for the
  old set only with ``--old-response-only``), and the full model scored with each test prompt swapped for
  another request's. Accuracy with 95% bootstrap intervals over pairs (a tie is wrong; the
  model-free rules count ties half). Each set's reward model is also scored on the other set's test pairs;
- **Best-of-N on plain samples** (no edits): ``--bon-prompts`` held-out prompts of the new set (both
  prompts of each of the first test families), ``max(--ns)`` samples each from SmolLM2-135M-Instruct
  (the shared sampler: top-k 50, temperature 1, 64 new tokens, seed ``--bon-seed``); for N in ``--ns``
  the expected gold reward (fraction of instructions met) of the sample the old set's RM picks, the new
  set's RM picks, the verifier picks (oracle), over all N-subsets of the samples; and the new minus the
  old RM's gold, paired over prompts (the same samples under both).

Trained models, scored files and the Best-of-N samples are kept in ``--workdir`` and reused when
present, so a rerun only recomputes what is missing. Prints one JSON object on stdout (progress on
stderr) and writes it to ``--out`` when given.

    python benchmarks/testbed.py --workdir runs/testbed --out runs/testbed/testbed.json
    python benchmarks/testbed.py --max-steps 2 --bon-prompts 2 --ns 1,2 --workdir /tmp/tb-smoke  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import run_json_main

REPO = Path(__file__).resolve().parents[1]
RESOURCE = "src/rewardkit/resources/ifeval_lite"
SPLITS = ("train", "test", "candidates", "manifest")


def log(message: str) -> None:
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def materialize(args: argparse.Namespace, workdir: Path) -> dict[str, Path]:
    """``{"old": folder, "new": folder}`` each holding train/test/candidates jsonl (old: from git)."""
    from rewardkit.synth import load_embedded

    folders = {"old": workdir / "old" / "data", "new": workdir / "new" / "data"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        name = load_embedded(split).name
        blob = subprocess.run(["git", "-C", str(REPO), "show", f"{args.old_rev}:{RESOURCE}/{name}"],
                              check=True, capture_output=True).stdout
        (folders["old"] / name).write_bytes(blob)
        (folders["new"] / name).write_bytes(load_embedded(split).read_bytes())
    return folders


def model_free(folder: Path, seed: int) -> dict[str, Any]:
    """The model-free audit of a set's test pairs, each rule with its bootstrap interval."""
    from rewardkit.eval import shortcuts
    from rewardkit.eval.stats import bootstrap_mean
    from rewardkit.synth import TASKS, audit
    from rewardkit.synth.core import read_jsonl

    train, test = read_jsonl(folder / "train.jsonl"), read_jsonl(folder / "test.jsonl")
    features = TASKS.get("ifeval-lite").surface_features
    out = shortcuts.model_free(test, seed=seed)
    out["surface_probe"] = bootstrap_mean(audit.surface_probe(train, test, features), seed=seed).to_dict()
    out["audit"] = audit.audit_pairs(train, test, features, seed=seed)
    return out


def reward_models(folder: Path, out_dir: Path, args: argparse.Namespace, *, epochs: float,
                  response_only: bool) -> dict[str, Any]:
    """The quickstart's trainings (the full model and, with ``response_only``, the prompt-hidden one) and
    scorings, or their stored result."""
    from rewardkit.quickstart import train_and_audit

    stored = out_dir / "result.json"
    if stored.exists():
        log(f"reusing {stored}")
        return json.loads(stored.read_text())
    result = train_and_audit(folder / "train.jsonl", folder / "test.jsonl", out_dir, max_steps=args.max_steps,
                             epochs=epochs, seed=42, response_only=response_only, say=log)
    stored.write_text(json.dumps(result, indent=2) + "\n")
    return result


def cross_accuracy(rm_dir: Path, test: Path, out: Path, seed: int) -> dict[str, float]:
    """Accuracy of the reward model in ``rm_dir`` on the pairs of ``test`` (a tie is wrong)."""
    from rewardkit.eval.stats import bootstrap_mean, pairwise_correct
    from rewardkit.scorers.files import score_file
    from rewardkit.synth.core import read_jsonl

    if not out.exists():
        score_file(str(rm_dir), str(test), str(out))
    rows = read_jsonl(out)
    correct = pairwise_correct(np.array([r["chosen_score"] for r in rows]), np.array([r["rejected_score"] for r in rows]))
    return bootstrap_mean(correct, seed=seed).to_dict()


# ----------------------------------------------------------------------------- Best-of-N on plain samples


def bon_samples(rows: Sequence[dict[str, Any]], path: Path, args: argparse.Namespace) -> list[list[str]]:
    """``max(ns)`` plain samples of each prompt (stored in ``path``, reused when present)."""
    from rewardkit.infer.sampler import Rollout, SamplingConfig, load_policy
    from rewardkit.synth.core import read_jsonl, write_jsonl

    n = max(args.ns)
    if path.exists():
        stored = {r["prompt_id"]: r["samples"] for r in read_jsonl(path)}
        if all(len(stored.get(r["prompt_id"], [])) >= n for r in rows):
            return [stored[r["prompt_id"]][:n] for r in rows]
    policy = load_policy("smollm2-135m", device="cpu")
    cfg = SamplingConfig(max_new_tokens=64, temperature=1.0, top_k=50, top_p=1.0, seed=args.bon_seed)
    samples = []
    for i, r in enumerate(rows):
        rollout = Rollout(policy, [policy.encode_prompt(r["prompt"])], n, cfg, prompt_keys=[r["prompt_id"]])
        rollout.advance(cfg.max_new_tokens)
        samples.append([rollout.text(g).strip() for g in rollout.rows_of(0)])
        log(f"best-of-n samples: prompt {i + 1}/{len(rows)}")
    write_jsonl(path, [{"prompt_id": r["prompt_id"], "samples": s} for r, s in zip(rows, samples, strict=True)])
    return samples


def expected_best(keys: Sequence[float], values: Sequence[float], n: int) -> float:
    """E[value of the max-key sample] over all n-subsets: the sample ranked i-th lowest of M is the max of
    a random n-subset with probability C(i-1, n-1)/C(M, n) (ties in key broken by sample order)."""
    order = np.argsort(np.asarray(keys, dtype=np.float64), kind="stable")
    m = len(order)
    weights = np.array([math.comb(i - 1, n - 1) for i in range(1, m + 1)], dtype=np.float64) / math.comb(m, n)
    return float(np.dot(weights, np.asarray(values, dtype=np.float64)[order]))


def best_of_n(rows: Sequence[dict[str, Any]], samples: Sequence[Sequence[str]], scorers: dict[str, Any],
              ns: Sequence[int], seed: int) -> dict[str, Any]:
    """Gold reward of the pick of each scorer (and of the verifier) against N, per prompt then averaged."""
    from rewardkit.eval.stats import bootstrap_mean
    from rewardkit.verify.verifiers import Constraint, gold_reward

    golds = [[gold_reward(s, [Constraint.from_dict(c) for c in r["constraints"]]) for s in ss]
             for r, ss in zip(rows, samples, strict=True)]
    scores: dict[str, list[list[float]]] = {}
    for name, scorer in scorers.items():
        flat = scorer.score([r["prompt"] for r, ss in zip(rows, samples, strict=True) for _ in ss],
                            [[{"role": "assistant", "content": s}] for ss in samples for s in ss]).rewards
        k, per = 0, []
        for ss in samples:
            per.append([float(x) for x in flat[k : k + len(ss)]])
            k += len(ss)
        scores[name] = per
    curve = []
    for n in ns:
        point: dict[str, Any] = {"n": n}
        per_prompt: dict[str, np.ndarray] = {}
        for name, per in {**scores, "oracle": golds}.items():
            per_prompt[name] = np.array([expected_best(s, g, n) for s, g in zip(per, golds, strict=True)])
            point[f"gold_{name}"] = bootstrap_mean(per_prompt[name], seed=seed).to_dict()
        if {"new_rm", "old_rm"} <= set(per_prompt):  # paired over prompts: the same samples under both RMs
            point["gold_new_minus_old"] = bootstrap_mean(per_prompt["new_rm"] - per_prompt["old_rm"], seed=seed).to_dict()
        curve.append(point)
    return {"prompts": len(rows), "samples_per_prompt": len(samples[0]),
            "mean_sample_gold": float(np.mean(golds)), "curve": curve}


# ----------------------------------------------------------------------------- main


def recipe(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """How each set's reward model is trained: the new set as the quickstart trains it now (two epochs,
    batch 8); the old set as 0.1's quickstart trained it (one epoch: about as many examples seen as two
    epochs of the new set, which has half its pairs), its response-only model only when asked."""
    from rewardkit.quickstart import EPOCHS

    if name == "old":
        return {"epochs": args.old_epochs, "response_only": args.old_response_only}
    return {"epochs": EPOCHS, "response_only": True}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from rewardkit.scoring import RewardModelScorer
    from rewardkit.synth.core import read_jsonl

    torch.set_num_threads(args.threads)
    started_load = os.getloadavg()
    folders = materialize(args, workdir)
    report: dict[str, Any] = {"benchmark": "testbed", "old_rev": args.old_rev, "load_avg_at_start": started_load,
                              "threads": args.threads}
    for name, folder in folders.items():
        counts = {s: sum(1 for _ in (folder / f"{s}.jsonl").open()) for s in ("train", "test")}
        log(f"{name}: model-free audit, then reward models")
        report[name] = {"pairs": counts, "model_free": model_free(folder, args.seed),
                        "reward_models": reward_models(folder, workdir / name, args, **recipe(name, args))}
    for a, b in (("old", "new"), ("new", "old")):
        report[a][f"rm_on_{b}_test"] = cross_accuracy(workdir / a / "rm", folders[b] / "test.jsonl",
                                                      workdir / a / f"scored_on_{b}_test.jsonl", args.seed)
    if args.bon_prompts > 0:
        rows = read_jsonl(folders["new"] / "candidates.jsonl")[: args.bon_prompts]
        samples = bon_samples(rows, workdir / "bon_samples.jsonl", args)
        scorers = {f"{name}_rm": RewardModelScorer(str(workdir / name / "rm")) for name in folders}
        report["best_of_n"] = best_of_n(rows, samples, scorers, args.ns, args.seed)
    report["load_avg_at_end"] = os.getloadavg()
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--old-rev", default="b16247b", help="git revision holding the old shipped set")
    p.add_argument("--max-steps", type=int, default=-1, help="cap on training steps (smoke runs); -1 = one epoch")
    p.add_argument("--old-epochs", type=float, default=1.0, help="epochs of the old set's reward model")
    p.add_argument("--old-response-only", action="store_true",
                   help="also train the old set's response-only model (issue 17 measured it: 0.769 [0.727, 0.808])")
    p.add_argument("--bon-prompts", type=int, default=32, help="held-out prompts for Best-of-N (0 skips it)")
    p.add_argument("--ns", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8, 16, 32],
                   help="Best-of-N sizes; the largest is the number of samples drawn per prompt")
    p.add_argument("--bon-seed", type=int, default=1, help="sampling seed for Best-of-N (the set used seed 0)")
    p.add_argument("--seed", type=int, default=42, help="seed of the bootstrap and of the prompt swap")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--workdir", type=Path, default=None, help="folder for data, models and samples (default: temp)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-testbed-")


if __name__ == "__main__":
    raise SystemExit(main())
