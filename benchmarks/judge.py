"""Con-J generative judges, measured (issue 15): pairwise accuracy on held-out ifeval-lite and HH-RLHF pairs
before vs after ``rewardkit train judge``, and the length-bias check, beside a scalar RM trained on the same pairs.

Data: the shipped ifeval-lite train/test pairs and HH-RLHF harmless-base (``../shared/data``; the first
``--hh-train`` pairs train, the next ``--hh-test`` are held out, in file order; skipped if missing). Records
that fail validation (HH has a few empty responses) are left out and counted. Training pairs: a seeded subset
of ``--train-pairs`` per dataset, mixed in one file; evaluation: a seeded subset of ``--eval-pairs`` held-out
pairs per dataset, the same pairs for every scorer.

Scorers (each a ``rewardkit`` scorer, compared through :func:`rewardkit.scorers.preference.preference_probabilities`):

- ``judge_base``: ``judge:smollm2-135m`` -- the base instruct LM's answer-token logits, both orders ("before");
- ``judge_base_rationale``: the same base LM as a rationale judge with Con-J's template (a folder of links to
  its weights plus the ``rewardkit.json`` that ``train judge`` writes), so "after minus before" can be split
  into the template's share and the training's;
- ``judge_conj``: the Con-J judge (``rewardkit train judge`` on the training pairs: ``--samples`` judgments per
  pair and order, hint pairs, DPO with the command's defaults) as ``judge:DIR`` ("after"): a greedy rationale
  of at most ``--max-new-tokens`` tokens per order, then the ``A``/``B`` logits after ``Better:``;
- ``rm_minilm``: a MiniLM reward model (``rewardkit train rm``, the ifeval recipe: 2 epochs, batch 8, lr 1e-4,
  max_length 256) on the same training pairs.

For each scorer and dataset: accuracy (correct = P(chosen better) > 0.5; a tie is wrong) with its 95%
bootstrap interval, and the length-bias check: accuracy on pairs whose chosen response is longer (characters)
than the rejected one vs shorter, with counts and the gap. Judge differences (after − before, after − template,
template − before) are paired bootstrap intervals over the same pairs.

Parts (``--parts``, both by default; everything is written into WORKDIR and reused when rerun):
``train`` (data, the RM, the Con-J judge) and ``eval`` (every scorer on every held-out set; per-pair
probabilities and rationales in WORKDIR/eval).

    python benchmarks/judge.py --workdir /tmp/judge --out benchmarks/results/judge.json   # ~40-60 min on 2 CPU cores
    python benchmarks/judge.py --smoke --threads 1                                        # ~8 min, 1 busy core
    python benchmarks/judge.py --device cuda --train-pairs 64 --samples 8 --judge-temperature 1.2 \
        --judge-max-steps -1 --eval-pairs 200 --workdir /tmp/judge_gpu                  # Con-J's settings, a GPU

The defaults are sized for 2 CPU cores (the issue's budget), which makes Con-J tiny: 16 training pairs per
dataset, K = 2, temperature 0.7, 8 DPO steps at lr 1e-5, 30 held-out pairs per dataset. On CPU the cost is
the 135M model's work on ~600-token judge prompts: Con-J samples (K + 2 hints) x 2 orders judgments per
training pair, each DPO step runs 4 pairs of such sequences through the policy and the reference, and each
rationale judge writes 2 rationales per evaluated pair (~12 s per pair on one quiet core).

Prints one JSON object on stdout (progress on stderr), writes ``--out`` and the plot beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import read_jsonl, run_json_main, write_jsonl

HH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
PARTS = ("train", "eval")
SCORERS = ("judge_base", "judge_base_rationale", "judge_conj", "rm_minilm")
RM_RECIPE = {"epochs": 2.0, "batch_size": 8, "lr": 1e-4, "max_length": 256}  # the ifeval-lite quickstart's
SMOKE = {"train_pairs": 2, "eval_pairs": 4, "samples": 1, "max_new_tokens": 16, "judge_max_steps": 1, "n_boot": 200}


def log(message: str) -> None:
    print(f"[judge] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def valid_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The raw records of ``path`` that pass rewardkit's validation (input order), and how many did not."""
    from rewardkit.data.dataset import load_examples

    loaded = load_examples(str(path), kind="preference", skip_invalid=True)
    lines = {int(loc.rsplit(":", 1)[1]) for loc in loaded.dataset["location"]}
    raw = read_jsonl(path)
    return [row for i, row in enumerate(raw, start=1) if i in lines], loaded.n_errors


def split_hh(path: Path, workdir: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """HH-RLHF's first ``n_train`` pairs and the next ``n_test``, in file order, as two jsonl files."""
    rows = read_jsonl(path)
    if len(rows) < n_train + n_test:
        raise SystemExit(f"{path} has {len(rows)} pairs; asked for {n_train} + {n_test}")
    return (write_jsonl(workdir / "data" / "hh_train_all.jsonl", rows[:n_train]),
            write_jsonl(workdir / "data" / "hh_test_all.jsonl", rows[n_train:n_train + n_test]))


def prepare_data(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Write WORKDIR/data/train.jsonl (``--train-pairs`` per dataset, seeded, shuffled together) and
    eval_DATASET.jsonl (``--eval-pairs`` held-out pairs per dataset, seeded); returns paths and counts."""
    from rewardkit.data.dataset import file_fingerprint
    from rewardkit.synth import load_embedded

    sources = {"ifeval_lite": (Path(load_embedded("train")), Path(load_embedded("test")))}
    if args.hh.exists():
        sources["hh_rlhf"] = split_hh(args.hh, workdir, args.hh_train, args.hh_test)
    rng = random.Random(args.seed)
    train: list[dict[str, Any]] = []
    out: dict[str, Any] = {"datasets": {}, "eval": {}}
    for name, (train_path, test_path) in sources.items():
        pool, bad_train = valid_rows(train_path)
        held, bad_test = valid_rows(test_path)
        if len(pool) < args.train_pairs:
            raise SystemExit(f"{name}: {len(pool)} valid training pairs, asked for --train-pairs {args.train_pairs}")
        chosen = rng.sample(pool, args.train_pairs)
        train += [{**row, "source": name} for row in chosen]
        evaluated = rng.sample(held, min(args.eval_pairs, len(held)))
        out["eval"][name] = str(write_jsonl(workdir / "data" / f"eval_{name}.jsonl", evaluated))
        out["datasets"][name] = {"train_pool": len(pool), "train_invalid_skipped": bad_train, "train_pairs": len(chosen),
                                 "held_out": len(held), "held_out_invalid_skipped": bad_test,
                                 "eval_pairs": len(evaluated), "train_sha256": file_fingerprint(train_path),
                                 "test_sha256": file_fingerprint(test_path)}
    rng.shuffle(train)
    out["train"] = str(write_jsonl(workdir / "data" / "train.jsonl", train))
    return out


def response_chars(messages: Sequence[dict[str, str]]) -> int:
    """Characters of a response (the contents of its messages)."""
    return sum(len(m["content"]) for m in messages)


def read_pairs(path: Path) -> dict[str, list[Any]]:
    from rewardkit.data.dataset import load_examples

    return load_examples(str(path), kind="preference").dataset.select_columns(
        ["prompt", "chosen", "rejected", "conversational"])[:]


# ----------------------------------------------------------------------------- training


def check_trained_on(folder: Path, train: Path, *, write: bool = False) -> None:
    """Refuse a model of WORKDIR that was trained on other pairs than ``train`` (a sidecar records them);
    ``write``: record that ``folder`` is trained on ``train``."""
    from rewardkit.data.dataset import file_fingerprint

    sidecar = folder.with_name(folder.name + ".trained_on")
    if write:
        sidecar.write_text(file_fingerprint(train) + "\n", encoding="utf-8")
    elif sidecar.exists() and sidecar.read_text(encoding="utf-8").strip() != file_fingerprint(train):
        raise SystemExit(f"{folder} was trained on other pairs than {train} (other --train-pairs/--seed?): "
                         "use another --workdir or delete it")


def train_rm(train: Path, workdir: Path, *, seed: int, device: str) -> dict[str, Any]:
    """MiniLM Bradley-Terry RM on ``train`` (reused when WORKDIR already holds it)."""
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    out = workdir / "rm_minilm"
    check_trained_on(out, train)
    if (out / "rewardkit.json").exists():
        log(f"RM: reusing {out}")
        return {"folder": str(out), "reused": True}
    t0 = time.perf_counter()
    trained = train_reward_model(RewardTrainConfig(data=str(train), model="minilm", out=str(out), seed=seed,
                                                   device=device, logging_steps=50, **RM_RECIPE))
    seconds = time.perf_counter() - t0
    check_trained_on(out, train, write=True)
    log(f"RM: trained in {seconds:.0f} s")
    return {"folder": str(out), "reused": False, "seconds": seconds, "recipe": RM_RECIPE,
            "training": trained.metadata.get("training")}


def train_conj(train: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``rewardkit train judge`` on ``train`` (reused when WORKDIR already holds the judge)."""
    from rewardkit.scorers.judge import judge_metadata
    from rewardkit.train.judge import JudgeTrainConfig, train_judge

    out = workdir / "judge_conj"
    check_trained_on(out, train)
    if judge_metadata(str(out)):
        log(f"Con-J: reusing {out}")
        return {"folder": str(out), "reused": True, **_judgment_counts(out)}
    cfg = JudgeTrainConfig(data=str(train), model=args.judge_model, out=str(out), samples=args.samples,
                           max_new_tokens=args.max_new_tokens, seed=args.seed, device=args.device,
                           batch_size=args.judge_batch_size, max_steps=args.judge_max_steps, lr=args.judge_lr,
                           temperature=args.judge_temperature,
                           logging_steps=10)
    t0 = time.perf_counter()
    result = train_judge(cfg)
    seconds = time.perf_counter() - t0
    check_trained_on(out, train, write=True)
    counts = result.metadata["judgments"]
    log(f"Con-J: trained in {seconds:.0f} s ({counts['positive']} positive, {counts['negative']} negative, "
        f"{counts['unknown']} unknown judgments; {counts['rows']} DPO pairs {counts['pairs']})")
    return {"folder": str(out), "reused": False, "seconds": seconds, "config": {
        "samples": cfg.samples, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
        "top_p": cfg.top_p, "top_k": cfg.top_k, "hints": cfg.hints, "lr": cfg.lr, "beta": getattr(cfg.loss, "beta", None),
        "epochs": cfg.epochs, "max_steps": cfg.max_steps, "batch_size": cfg.batch_size,
        "max_length": cfg.max_length}, **_judgment_counts(out), "training": result.metadata.get("training")}


def _judgment_counts(out: Path) -> dict[str, Any]:
    path = out / "judgments.json"
    return {"judgments": json.loads(path.read_text(encoding="utf-8"))} if path.exists() else {}


def rationale_control(workdir: Path, base: str, tokens: int) -> Path:
    """A judge folder that is ``base``'s weights (linked, not copied) with the ``rewardkit.json`` that ``train
    judge`` writes: ``judge:FOLDER`` is then the untrained LM reading Con-J's template and writing a rationale
    first, exactly as the trained judge does."""
    from rewardkit.models.backbones import resolve_backbone
    from rewardkit.scorers.judge import VERDICT_PREFIX
    from rewardkit.train.judge import RATIONALE_TEMPLATE

    src = Path(resolve_backbone(base)).resolve()
    out = workdir / "judge_base_rationale"
    out.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        link = out / item.name
        if item.name != "rewardkit.json" and not link.exists():
            link.symlink_to(item)
    meta = {"kind": "judge", "template": RATIONALE_TEMPLATE, "rationale": True, "rationale_tokens": tokens,
            "verdict_prefix": VERDICT_PREFIX, "base": base, "trained": False}
    (out / "rewardkit.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- evaluation


def length_bias(correct: np.ndarray, chosen_chars: np.ndarray, rejected_chars: np.ndarray, *, n_boot: int,
                seed: int) -> dict[str, Any]:
    """Accuracy (95% bootstrap) on all pairs, on pairs whose chosen response is longer and on those where it
    is shorter (characters), with counts; ``gap`` = longer − shorter. ``correct``, lengths: (N,)."""
    from rewardkit.stats import bootstrap_mean

    longer, shorter = chosen_chars > rejected_chars, chosen_chars < rejected_chars
    acc = {key: bootstrap_mean(correct[mask], n_boot=n_boot, seed=seed).to_dict()
           for key, mask in (("all", np.ones_like(longer)), ("chosen_longer", longer), ("chosen_shorter", shorter))}
    gap = acc["chosen_longer"]["value"] - acc["chosen_shorter"]["value"]
    return {"accuracy": acc["all"], "chosen_longer": acc["chosen_longer"], "chosen_shorter": acc["chosen_shorter"],
            "equal_length_pairs": int((chosen_chars == rejected_chars).sum()), "gap_longer_minus_shorter": gap}


def score_file(spec: str, path: Path, cache: Path, *, threads: int, device: str) -> dict[str, Any]:
    """P(chosen better) for every pair of ``path`` under the scorer ``spec`` (with rationales for a rationale
    judge), cached in ``cache`` (reused when it covers the same file)."""
    from rewardkit.data.dataset import file_fingerprint
    from rewardkit.scorers.preference import preference_probabilities
    from rewardkit.scoring import ScorerOptions, build_scorer

    meta = Path(spec.removeprefix("judge:")) / "rewardkit.json"  # a trained or retemplated folder's settings
    key = file_fingerprint(path) + (f"+{file_fingerprint(meta)}" if meta.is_file() else "")
    if cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("data_sha256") == key:
            return stored
    rows = read_pairs(path)
    t0 = time.perf_counter()
    scorer = build_scorer(spec, ScorerOptions(device=device, dtype="float32"))
    t_load = time.perf_counter() - t0
    rationales: list[Any] = []
    if getattr(scorer, "rationale_tokens", 0):  # call the judge directly to keep its rationales
        from scipy.special import expit

        out = scorer.compare(rows["prompt"], rows["chosen"], rows["rejected"])
        p_first = expit(np.asarray(out.rewards, dtype=np.float64))
        truncated = np.asarray(out.truncated, dtype=bool)
        rationales = [list(r) for r in out.rationales]
    else:
        prefs = preference_probabilities(scorer, rows["prompt"], rows["chosen"], rows["rejected"],
                                         rows["conversational"])
        p_first, truncated = prefs.p_first, prefs.truncated
    seconds = time.perf_counter() - t0 - t_load
    result = {"scorer": spec, "data": str(path), "data_sha256": key, "load_seconds": t_load,
              "score_seconds": seconds, "threads": threads, "p_chosen": p_first.tolist(),
              "truncated": truncated.tolist(),
              "chosen_chars": [response_chars(c) for c in rows["chosen"]],
              "rejected_chars": [response_chars(r) for r in rows["rejected"]], "rationales": rationales}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def summarise(scored: dict[str, Any], *, n_boot: int, seed: int) -> dict[str, Any]:
    """The accuracy and length-bias figures of one (scorer, dataset)."""
    p = np.asarray(scored["p_chosen"], dtype=np.float64)
    correct = (p > 0.5).astype(np.float64)
    out = length_bias(correct, np.asarray(scored["chosen_chars"]), np.asarray(scored["rejected_chars"]),
                      n_boot=n_boot, seed=seed)
    out.update({"pairs": len(p), "ties": int((p == 0.5).sum()), "mean_p_chosen": float(p.mean()) if len(p) else None,
                "truncated": int(np.sum(scored["truncated"])), "score_seconds": scored["score_seconds"],
                "seconds_per_pair": scored["score_seconds"] / max(len(p), 1)})
    if scored["rationales"]:
        texts = [t for pair in scored["rationales"] for t in pair]
        out["rationales"] = {"mean_chars": float(np.mean([len(t) for t in texts])),
                             "empty": sum(not t for t in texts), "examples": scored["rationales"][:2]}
    return out


def paired_differences(scored: dict[str, dict[str, Any]], *, n_boot: int, seed: int) -> dict[str, Any]:
    """Accuracy differences between judges on the same pairs (paired bootstrap over pairs)."""
    from rewardkit.stats import bootstrap_mean

    def correct(name: str) -> np.ndarray:
        return (np.asarray(scored[name]["p_chosen"]) > 0.5).astype(np.float64)

    pairs = {"after_minus_before": ("judge_conj", "judge_base"),
             "after_minus_template": ("judge_conj", "judge_base_rationale"),
             "template_minus_before": ("judge_base_rationale", "judge_base"),
             "after_minus_rm": ("judge_conj", "rm_minilm")}
    return {key: bootstrap_mean(correct(a) - correct(b), n_boot=n_boot, seed=seed).to_dict()
            for key, (a, b) in pairs.items() if a in scored and b in scored}


def plot(report: dict[str, Any], path: Path) -> None:
    """Left: accuracy per scorer per dataset (95% CIs); right: accuracy when chosen is longer vs shorter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    datasets = list(results)
    scorers = [s for s in SCORERS if any(s in results[d] for d in datasets)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(scorers), 1)
    for j, name in enumerate(scorers):
        xs = np.arange(len(datasets)) + (j - (len(scorers) - 1) / 2) * width
        acc = [results[d][name]["accuracy"] if name in results[d] else None for d in datasets]
        vals = [a["value"] if a else np.nan for a in acc]
        err = np.array([[a["value"] - a["ci95_low"], a["ci95_high"] - a["value"]] if a else [0, 0] for a in acc]).T
        left.bar(xs, vals, width, yerr=err, capsize=3, color=f"C{j}", label=name)
        for k, key in enumerate(("chosen_longer", "chosen_shorter")):
            sub = [results[d][name][key] if name in results[d] else None for d in datasets]
            x2 = np.arange(len(datasets)) * 2 + k + (j - (len(scorers) - 1) / 2) * width
            right.bar(x2, [s["value"] if s else np.nan for s in sub], width, color=f"C{j}",
                      hatch="" if k == 0 else "//", label=name if k == 0 else None)
    left.set_xticks(np.arange(len(datasets)), datasets)
    any_scorer = {d: next(iter(results[d].values())) for d in datasets}  # the counts are the same for every scorer
    right.set_xticks(np.arange(len(datasets) * 2),
                     [f"{d}\nchosen {side} (n={any_scorer[d][f'chosen_{side}']['n']})" for d in datasets
                      for side in ("longer", "shorter")], fontsize=8)
    for ax in (left, right):
        ax.axhline(0.5, color="gray", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("pairwise accuracy")
        ax.grid(alpha=0.3, axis="y")
    left.legend(fontsize=8)
    left.set_title("held-out accuracy (95% bootstrap CI)")
    right.set_title("length-bias check (hatched: chosen is shorter)")
    cfg = report["config"]
    fig.suptitle(f"Con-J ({cfg['judge_model']}, {cfg['train_pairs']} train pairs/dataset, K={cfg['samples']}, "
                 f"{cfg['max_new_tokens']} tokens) vs base judge vs MiniLM RM")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "judge", "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                for k, v in vars(args).items()}}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = prepare_data(args, workdir)
    timings["data"] = time.perf_counter() - t0
    report["data"] = data
    if not args.hh.exists():
        report["hh_rlhf_missing"] = f"{args.hh} not found: HH-RLHF skipped"
    train = Path(data["train"])
    if "train" in args.parts:
        t0 = time.perf_counter()
        report["rm"] = train_rm(train, workdir, seed=args.seed, device=args.device)
        timings["train_rm"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report["conj"] = train_conj(train, workdir, args)
        timings["train_conj"] = time.perf_counter() - t0
    from rewardkit.scorers.judge import judge_metadata

    # the template control writes rationales as long as the trained judge's (its own setting when reused)
    tokens = int(judge_metadata(str(workdir / "judge_conj")).get("rationale_tokens", args.max_new_tokens))
    specs = {"judge_base": f"judge:{args.judge_model}",
             "judge_base_rationale": f"judge:{rationale_control(workdir, args.judge_model, tokens)}",
             "judge_conj": f"judge:{workdir / 'judge_conj'}", "rm_minilm": str(workdir / "rm_minilm")}
    report["scorers"] = specs
    report["template_control"] = ("judge_base_rationale: the untrained LM with Con-J's template and rationale "
                                  "(same scorer code path as judge_conj, via a linked folder)")
    if "eval" in args.parts:
        for folder in (workdir / "judge_conj", workdir / "rm_minilm"):
            if not (folder / "rewardkit.json").exists():
                raise SystemExit(f"{folder}: not trained; run with --parts train,eval (or the same --workdir)")
            check_trained_on(folder, train)
        results: dict[str, Any] = {}
        differences: dict[str, Any] = {}
        for dataset, path in data["eval"].items():
            scored = {}
            for name, spec in specs.items():
                t0 = time.perf_counter()
                scored[name] = score_file(spec, Path(path), workdir / "eval" / f"{name}__{dataset}.json",
                                          threads=args.threads, device=args.device)
                timings[f"eval_{name}_{dataset}"] = time.perf_counter() - t0
            results[dataset] = {name: summarise(s, n_boot=args.n_boot, seed=args.seed) for name, s in scored.items()}
            differences[dataset] = paired_differences(scored, n_boot=args.n_boot, seed=args.seed)
            for name, r in results[dataset].items():
                log(f"{dataset} {name}: accuracy {r['accuracy']['value']:.3f} (longer {r['chosen_longer']['value']:.3f} "
                    f"n={r['chosen_longer']['n']}, shorter {r['chosen_shorter']['value']:.3f} "
                    f"n={r['chosen_shorter']['n']}); {r['score_seconds']:.0f} s")
        report["results"] = results
        report["differences"] = differences
        plot_path = args.plot or (args.out.with_suffix(".png") if args.out else workdir / "judge.png")
        plot(report, Path(plot_path))
        report["plot"] = str(plot_path)
    report["timings_seconds"] = timings
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="end-to-end check in minutes: 2 train pairs, 4 eval pairs, "
                   "K=1, 16 tokens, one DPO step (the figures mean nothing)")
    p.add_argument("--parts", default=",".join(PARTS), type=lambda s: s.split(","), help=f"of {', '.join(PARTS)}")
    p.add_argument("--hh", type=Path, default=HH, help="HH-RLHF jsonl.gz (skipped if missing)")
    p.add_argument("--hh-train", type=int, default=1500, help="HH pairs the training subset is drawn from (the first)")
    p.add_argument("--hh-test", type=int, default=812, help="HH pairs held out (the next ones)")
    p.add_argument("--train-pairs", type=int, default=16, help="training pairs per dataset (seeded subset, mixed)")
    p.add_argument("--eval-pairs", type=int, default=30, help="held-out pairs per dataset (seeded subset)")
    p.add_argument("--judge-model", default="smollm2-135m", help="the instruct LM judged before and trained by Con-J")
    p.add_argument("--samples", type=int, default=2, help="Con-J judgments sampled per pair and order (K)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="judgment length when sampling, and the rationale "
                   "bound of the rationale judges")
    p.add_argument("--judge-batch-size", type=int, default=4, help="DPO pairs per micro-batch for Con-J")
    p.add_argument("--judge-lr", type=float, default=1e-5, help="Con-J's DPO learning rate (train judge's default, "
                   "Con-J's 5e-7 for 7B models, barely moves a 135M model in the few steps 2 CPU cores allow)")
    p.add_argument("--judge-temperature", type=float, default=0.7, help="judgment sampling temperature (Con-J's 1.2 "
                   "left SmolLM2-135M without a verdict in 31 of 32 judgments in a probe)")
    p.add_argument("--judge-max-steps", type=int, default=8, help="stop Con-J's DPO after this many steps (-1: one epoch)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--device", default="cpu", help="torch device for training and scoring (cpu, cuda, auto); the "
                   "timings in the docstring are CPU ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the timings assume a 2-core machine)")
    p.add_argument("--workdir", type=Path, default=None, help="keep data, models and scores here (default: a temporary "
                   "folder); rerunning with the same folder reuses them")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here (and the plot beside it)")
    p.add_argument("--plot", type=Path, default=None, help="plot path (default: --out with .png)")
    args = p.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


if __name__ == "__main__":
    raise SystemExit(run_json_main(run, parse_args(), prefix="rk-judge-"))
