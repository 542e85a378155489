"""``rewardkit quickstart``: the embedded default end to end, offline, in minutes on 2 CPU cores.

1. train a MiniLM Bradley--Terry reward model on the shipped ifeval-lite train pairs (and, with
   ``response_only``, the same model with every prompt replaced by "Respond.": the response-only
   shortcut baseline, which ``benchmarks/testbed.py`` always trains);
2. evaluate on the held-out pairs: accuracy with a 95% bootstrap interval; the shortcut baselines
   beside it (edited-wins, longer- and shorter-wins, the best any prompt-blind scorer can do, the
   response-only model when trained, the reward model with each pair's prompt swapped for another
   request's: a model that reads the prompt falls towards chance there); accuracy per pair type and
   per deciding instruction kind;
3. rerank the held-out candidate responses of each test prompt with the RM and report the gold reward
   (fraction of instructions met, from the programmatic verifiers) of the RM's pick, of a random pick and
   of the best candidate, over all candidates and over the plain model samples only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.eval import shortcuts
from rewardkit.eval.pairwise import evaluate_pairs
from rewardkit.eval.stats import bootstrap_mean, pairwise_correct
from rewardkit.models.memory import peak_rss_mb
from rewardkit.models.reward_model import write_json_atomic
from rewardkit.scorers.files import score_file
from rewardkit.scoring import RewardModelScorer
from rewardkit.synth import audit, load_embedded
from rewardkit.synth.core import read_jsonl, write_jsonl
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model


@dataclass(frozen=True)
class QuickstartResult:
    out_dir: Path
    summary: dict[str, Any]


# The training recipe: on counterfactual twins nothing but the prompt tells the better response, and
# MiniLM needs about two epochs at batch 8 to learn to read the instructions (one epoch: 0.60-0.64
# held-out accuracy, two: 0.73-0.8; docs/testbed.md).
EPOCHS = 2.0
BATCH_SIZE = 8
LR = 1e-4


def run_quickstart(*, out: str = "runs/quickstart", epochs: float | None = None, model: str = "minilm",
                   max_steps: int = -1, seed: int = 42, response_only: bool = False,
                   activation_checkpointing: bool = False) -> QuickstartResult:
    """Train, evaluate and rerank on the embedded ifeval-lite data; write ``summary.json`` and print it.

    ``epochs`` None means :data:`EPOCHS`. ``response_only`` also trains the response-only baseline (the
    same training with every prompt hidden); without it the summary still bounds every prompt-blind
    scorer exactly (``prompt_blind_ceiling``: 0.5 on the shipped twin pairs). The summary's ``resources``
    say what the run took: wall seconds and the process's peak resident memory (``peak_rss_mb``);
    ``activation_checkpointing`` trades training time for memory (the same numbers)."""
    t0 = time.perf_counter()
    out_dir = Path(out)
    train, test, candidates = (load_embedded(s) for s in ("train", "test", "candidates"))
    result = train_and_audit(train, test, out_dir, model=model, epochs=EPOCHS if epochs is None else epochs,
                             max_steps=max_steps, seed=seed, response_only=response_only, say=_say,
                             activation_checkpointing=activation_checkpointing)
    steps = 4 if response_only else 3
    _say(f"[{steps}/{steps}] reranking held-out candidates with the reward model")
    rerank = _rerank(RewardModelScorer(str(out_dir / "rm")), candidates, out_dir / "rerank.jsonl", seed)
    scored = {k: str(out_dir / v) for k, v in SCORED_FILES.items() if response_only or k != "response_only"}
    summary = {"reward_model": str(out_dir / "rm"), **result, "rerank": rerank,
               "files": {"model": str(out_dir / "rm"),
                         **({"response_only_model": str(out_dir / "rm_response_only")} if response_only else {}),
                         **{f"test_scores_{k}": v for k, v in scored.items()},
                         "rerank": str(out_dir / "rerank.jsonl"), "logs": str(out_dir / "rm" / "logs"),
                         "summary": str(out_dir / "summary.json")}}
    summary["resources"] = {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
    write_json_atomic(out_dir / "summary.json", summary)
    _print_summary(summary)
    return QuickstartResult(out_dir, summary)


SCORED_FILES: dict[str, str] = {"rm": "test_scored.jsonl", "prompt_swap": "test_scored_prompt_swapped.jsonl",
                                "response_only": "test_scored_response_only.jsonl"}


def train_and_audit(train: Path, test: Path, out_dir: Path, *, model: str = "minilm", epochs: float = EPOCHS,
                    max_steps: int = -1, seed: int = 42, response_only: bool = True,
                    say: Callable[[str], None] = lambda _: None, activation_checkpointing: bool = False
                    ) -> dict[str, Any]:
    """Train a reward model on ``train`` (into ``out_dir/rm``; batch :data:`BATCH_SIZE`, lr :data:`LR`) and,
    with ``response_only``, the same model with every prompt hidden (``out_dir/rm_response_only``); score
    the ``test`` pairs as given, with each prompt swapped for another request's
    (:func:`rewardkit.synth.audit.swap_prompts`) and, for the response-only model, hidden. Returns the
    trainings' metadata, the pairwise report and the :func:`shortcut_summary`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    test_rows = read_jsonl(test)
    swapped_test = out_dir / "test_prompt_swapped.jsonl"
    write_jsonl(swapped_test, audit.swap_prompts(test_rows, seed=seed))

    def config(data: Path, rm_dir: Path) -> RewardTrainConfig:
        return RewardTrainConfig(data=str(data), model=model, out=str(rm_dir), epochs=epochs, max_steps=max_steps,
                                 max_length=256, batch_size=BATCH_SIZE, lr=LR, seed=seed, logging_steps=10,
                                 activation_checkpointing=activation_checkpointing)

    steps = "4" if response_only else "3"
    say(f"[1/{steps}] training a {model} reward model on {train}")
    result: dict[str, Any] = {"training": train_reward_model(config(train, out_dir / "rm")).metadata["training"]}
    scored = {name: out_dir / file for name, file in SCORED_FILES.items()}
    if response_only:
        say(f"[2/{steps}] training the same {model} reward model with every prompt hidden (response-only baseline)")
        hidden_train, hidden_test = out_dir / "train_prompt_hidden.jsonl", out_dir / "test_prompt_hidden.jsonl"
        write_jsonl(hidden_train, audit.hide_prompt(read_jsonl(train)))
        write_jsonl(hidden_test, audit.hide_prompt(test_rows))
        blind = train_reward_model(config(hidden_train, out_dir / "rm_response_only"))
        result["training_response_only"] = blind.metadata["training"]
        score_file(str(out_dir / "rm_response_only"), str(hidden_test), str(scored["response_only"]))
    else:
        del scored["response_only"]
    say(f"[{int(steps) - 1}/{steps}] evaluating on the held-out pairs, with prompts as given and swapped")
    score_file(str(out_dir / "rm"), str(test), str(scored["rm"]))
    score_file(str(out_dir / "rm"), str(swapped_test), str(scored["prompt_swap"]))
    result["pairwise"] = _pairwise(scored["rm"], seed)
    result["shortcuts"] = shortcut_summary(test_rows, {k: read_jsonl(v) for k, v in scored.items()}, seed=seed)
    return result


def shortcut_summary(rows: Sequence[dict[str, Any]], scored: dict[str, Sequence[dict[str, Any]]], *,
                     seed: int = 0) -> dict[str, Any]:
    """Every shortcut baseline on the test ``rows`` with its 95% bootstrap interval: the model-free rules
    (:func:`rewardkit.synth.audit.shortcut_baselines`; ties count half), and the accuracy of each scored
    file in ``scored`` (a tie counts as wrong), by name: ``rm``, ``prompt_swap``, ``response_only``. Also
    the ceiling of any prompt-blind scorer and the reward model's accuracy per pair type."""
    out = shortcuts.model_free(rows, seed=seed)
    for name, srows in scored.items():
        correct = _correct(srows)
        key = "rm" if name == "rm" else f"{name}_rm"
        out[key] = bootstrap_mean(correct, seed=seed).to_dict()
        if name == "rm" and all("pair_type" in r for r in srows):
            out["rm_by_pair_type"] = {t: bootstrap_mean(correct[[r["pair_type"] == t for r in srows]], seed=seed)
                                      .to_dict() for t in sorted({r["pair_type"] for r in srows})}
    return out


def _correct(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    return pairwise_correct(np.array([r["chosen_score"] for r in rows]), np.array([r["rejected_score"] for r in rows]))


def _pairwise(scored: Path, seed: int) -> dict[str, Any]:
    rows = read_jsonl(scored)
    report = evaluate_pairs(
        np.array([r["chosen_score"] for r in rows]), np.array([r["rejected_score"] for r in rows]),
        chosen_len=[len(r["chosen"][-1]["content"]) for r in rows],
        rejected_len=[len(r["rejected"][-1]["content"]) for r in rows],
        groups=[audit.differing_kinds(r) for r in rows], seed=seed)
    return {**report.to_dict(), "pairs": len(rows), "truncated": sum(bool(r["truncated"]) for r in rows)}


def _rerank(scorer: RewardModelScorer, candidates: Path, out: Path, seed: int) -> dict[str, Any]:
    """Gold reward of the RM's top candidate vs a uniformly random one vs the best, per test prompt: over
    all candidates, and over the plain model samples only (no edits)."""
    items = read_jsonl(candidates)
    prompts = [it["prompt"] for it in items for _ in it["responses"]]
    responses = [[{"role": "assistant", "content": r}] for it in items for r in it["responses"]]
    scores = scorer.score(prompts, responses).rewards
    picks: dict[str, dict[str, list[float]]] = {"all": {}, "samples": {}}
    rows, k = [], 0
    for it in items:
        s = np.asarray(scores[k : k + len(it["responses"])], dtype=np.float64)
        k += len(it["responses"])
        gold = np.asarray(it["gold"], dtype=np.float64)
        plain = np.array([src == "sample" for src in it.get("sources", ["sample"] * len(gold))])
        for name, keep in (("all", np.ones_like(plain)), ("samples", plain)):
            top = int(np.flatnonzero(keep)[np.argmax(s[keep])])
            for key, value in (("rm_pick_gold", gold[top]), ("random_pick_gold", gold[keep].mean()),
                               ("best_possible_gold", gold[keep].max())):
                picks[name].setdefault(key, []).append(float(value))
        top = int(np.argmax(s))
        rows.append({"prompt_id": it["prompt_id"], "pick": it["responses"][top], "pick_gold": gold[top],
                     "pick_score": float(s[top]), "mean_gold": gold.mean(), "best_gold": gold.max(),
                     "scores": s.tolist()})
    out.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows), encoding="utf-8")
    result: dict[str, Any] = {"prompts": len(items), "candidates": int(k)}
    result.update({key: bootstrap_mean(v, seed=seed).to_dict() for key, v in picks["all"].items()})
    result["samples_only"] = {key: bootstrap_mean(v, seed=seed).to_dict() for key, v in picks["samples"].items()}
    return result


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]{text}[/]")


def _ci(e: dict[str, float]) -> str:
    return f"{e['value']:.3f} [{e['ci95_low']:.3f}, {e['ci95_high']:.3f}]"


SHORTCUT_LABELS: tuple[tuple[str, str], ...] = (
    ("rm", "reward model"),
    ("response_only_rm", "response-only reward model (prompt hidden)"),
    ("prompt_swap_rm", "reward model, prompt swapped for another request's"),
    ("prompt_swap_gold", "verifiers, prompt swapped (a perfect prompt reader)"),
    ("edited_wins", "edited response wins"),
    ("more_edits_wins", "more edits win"),
    ("longer_wins", "longer wins"),
    ("shorter_wins", "shorter wins"),
)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    p, sc, r = s["pairwise"], s["shortcuts"], s["rerank"]
    table = Table(title=f"held-out pairs ({p['pairs']}): the reward model against the shortcuts", show_header=True)
    table.add_column("picker")
    table.add_column("accuracy [95% CI]", justify="right")
    for key, label in SHORTCUT_LABELS:
        if key in sc:
            table.add_row(label, _ci(sc[key]))
    table.add_row("any prompt-blind scorer, at best", f"{sc['prompt_blind_ceiling']:.3f}")
    console.print(table)
    kinds = Table(title="accuracy on pairs that differ in each instruction", show_header=True)
    kinds.add_column("instruction")
    kinds.add_column("pairs", justify="right")
    kinds.add_column("accuracy", justify="right")
    for kind, est in sorted(p["by_group"].items(), key=lambda kv: kv[1]["value"]):
        kinds.add_row(kind, str(est["n"]), _ci(est))
    for kind, est in sorted(sc.get("rm_by_pair_type", {}).items()):
        kinds.add_row(f"pair type: {kind}", str(est["n"]), _ci(est))
    console.print(kinds)
    rer = Table(title=f"reranking {r['candidates']} candidates of {r['prompts']} held-out prompts (gold reward)")
    rer.add_column("pick")
    rer.add_column("all candidates", justify="right")
    rer.add_column("plain samples only", justify="right")
    for label, key in (("reward model's top", "rm_pick_gold"), ("random", "random_pick_gold"),
                       ("best possible", "best_possible_gold")):
        rer.add_row(label, _ci(r[key]), _ci(r["samples_only"][key]))
    console.print(rer)
    if "resources" in s:
        console.print(f"took {s['resources']['seconds']:.0f} s; peak resident memory "
                      f"{s['resources']['peak_rss_mb']:,.0f} MB")
    console.print("wrote:")
    for name, path in s["files"].items():
        console.print(f"  {name}: {path}")
