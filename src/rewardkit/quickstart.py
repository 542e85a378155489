"""``rewardkit quickstart``: the embedded default end to end, offline, in minutes on 2 CPU cores.

1. train a MiniLM Bradley--Terry reward model on the shipped ifeval-lite train pairs;
2. evaluate it on the held-out pairs: accuracy with a 95% bootstrap interval beside random,
   longer-wins and shorter-wins, and accuracy per instruction kind (which shows MiniLM's blind spots,
   e.g. letter case: its tokenizer lowercases everything);
3. rerank the held-out candidate responses of each test prompt with the RM and report the gold reward
   (fraction of instructions met, from the programmatic verifiers) of the RM's pick, of a random pick and
   of the best candidate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.synth import load_embedded
from rewardkit.eval.pairwise import evaluate_pairs
from rewardkit.eval.stats import bootstrap_mean
from rewardkit.verify.verifiers import Constraint, check_all
from rewardkit.models.reward_model import write_json_atomic
from rewardkit.scoring import RewardModelScorer, score_file
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model


@dataclass(frozen=True)
class QuickstartResult:
    out_dir: Path
    summary: dict[str, Any]


def run_quickstart(*, out: str = "runs/quickstart", epochs: float = 1.0, model: str = "minilm",
                   max_steps: int = -1, seed: int = 42) -> QuickstartResult:
    """Train, evaluate and rerank on the embedded ifeval-lite data; write ``summary.json`` and print it."""
    out_dir = Path(out)
    train, test, candidates = (str(load_embedded(s)) for s in ("train", "test", "candidates"))
    _say(f"[1/3] training a {model} reward model on {train}")
    cfg = RewardTrainConfig(data=train, eval_data=test, model=model, out=str(out_dir / "rm"), epochs=epochs,
                            max_steps=max_steps, max_length=256, batch_size=16, lr=1e-4, seed=seed,
                            logging_steps=10)
    trained = train_reward_model(cfg)
    _say("[2/3] evaluating on the held-out pairs")
    scored = out_dir / "test_scored.jsonl"
    score_file(str(out_dir / "rm"), test, str(scored))
    pairwise = _pairwise(scored, seed)
    _say("[3/3] reranking held-out candidates with the reward model")
    rerank = _rerank(RewardModelScorer(str(out_dir / "rm")), Path(candidates), out_dir / "rerank.jsonl", seed)
    summary = {"reward_model": str(out_dir / "rm"), "training": trained.metadata["training"],
               "pairwise": pairwise, "rerank": rerank,
               "files": {"model": str(out_dir / "rm"), "test_scores": str(scored),
                         "rerank": str(out_dir / "rerank.jsonl"), "logs": str(out_dir / "rm" / "logs"),
                         "summary": str(out_dir / "summary.json")}}
    write_json_atomic(out_dir / "summary.json", summary)
    _print_summary(summary)
    return QuickstartResult(out_dir, summary)


def _differing_kinds(row: dict[str, Any]) -> list[str]:
    """Instruction kinds that the chosen response meets and the rejected one does not (or vice versa)."""
    constraints = [Constraint.from_dict(c) for c in row["constraints"]]
    chosen = check_all(row["chosen"][-1]["content"], constraints)
    rejected = check_all(row["rejected"][-1]["content"], constraints)
    return sorted({c.kind for c, a, b in zip(constraints, chosen, rejected, strict=True) if a != b})


def _pairwise(scored: Path, seed: int) -> dict[str, Any]:
    rows = [json.loads(line) for line in scored.read_text(encoding="utf-8").splitlines()]
    report = evaluate_pairs(
        np.array([r["chosen_score"] for r in rows]), np.array([r["rejected_score"] for r in rows]),
        chosen_len=[len(r["chosen"][-1]["content"]) for r in rows],
        rejected_len=[len(r["rejected"][-1]["content"]) for r in rows],
        groups=[_differing_kinds(r) for r in rows], seed=seed)
    return {**report.to_dict(), "pairs": len(rows), "truncated": sum(bool(r["truncated"]) for r in rows)}


def _rerank(scorer: RewardModelScorer, candidates: Path, out: Path, seed: int) -> dict[str, Any]:
    """Gold reward of the RM's top candidate vs a uniformly random one vs the best, per test prompt."""
    items = [json.loads(line) for line in candidates.read_text(encoding="utf-8").splitlines()]
    prompts = [it["prompt"] for it in items for _ in it["responses"]]
    responses = [[{"role": "assistant", "content": r}] for it in items for r in it["responses"]]
    scores = scorer.score(prompts, responses).rewards
    picked, randoms, best, rows, k = [], [], [], [], 0
    for it in items:
        s = scores[k : k + len(it["responses"])]
        k += len(it["responses"])
        gold = np.asarray(it["gold"], dtype=float)
        top = int(np.argmax(s))
        picked.append(gold[top])
        randoms.append(gold.mean())  # the expected gold of a uniformly random pick
        best.append(gold.max())
        rows.append({"prompt_id": it["prompt_id"], "pick": it["responses"][top], "pick_gold": gold[top],
                     "pick_score": float(s[top]), "mean_gold": gold.mean(), "best_gold": gold.max(),
                     "scores": s.tolist()})
    out.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows), encoding="utf-8")
    return {"prompts": len(items), "candidates": int(k),
            "rm_pick_gold": bootstrap_mean(picked, seed=seed).to_dict(),
            "random_pick_gold": bootstrap_mean(randoms, seed=seed).to_dict(),
            "best_possible_gold": bootstrap_mean(best, seed=seed).to_dict()}


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]{text}[/]")


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    p, r = s["pairwise"], s["rerank"]
    acc = p["accuracy"]
    table = Table(title=f"held-out pairs ({p['pairs']})", show_header=True)
    table.add_column("picker")
    table.add_column("accuracy", justify="right")
    table.add_row("reward model", f"{acc['value']:.3f} [{acc['ci95_low']:.3f}, {acc['ci95_high']:.3f}]")
    for name, value in p["baselines"].items():
        table.add_row(name.replace("_", "-"), f"{value:.3f}")
    console.print(table)
    kinds = Table(title="accuracy on pairs that differ in each instruction", show_header=True)
    kinds.add_column("instruction")
    kinds.add_column("pairs", justify="right")
    kinds.add_column("accuracy", justify="right")
    for kind, est in sorted(p["by_group"].items(), key=lambda kv: kv[1]["value"]):
        kinds.add_row(kind, str(est["n"]), f"{est['value']:.3f} [{est['ci95_low']:.3f}, {est['ci95_high']:.3f}]")
    console.print(kinds)
    rer = Table(title=f"reranking {r['candidates']} candidates of {r['prompts']} held-out prompts (gold reward)")
    rer.add_column("pick")
    rer.add_column("mean gold reward", justify="right")
    for label, key in (("reward model's top", "rm_pick_gold"), ("random", "random_pick_gold"),
                       ("best possible", "best_possible_gold")):
        e = r[key]
        rer.add_row(label, f"{e['value']:.3f} [{e['ci95_low']:.3f}, {e['ci95_high']:.3f}]")
    console.print(rer)
    console.print("wrote:")
    for name, path in s["files"].items():
        console.print(f"  {name}: {path}")
