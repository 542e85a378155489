"""Curation and semi-supervised reward modelling, measured (issue 14): label-noise recovery on the gold
testbed, SSRM label efficiency, `data curate` at scale, and what decontamination finds.

Parts (``--parts``, all by default; each writes into WORKDIR and is reused when rerun):

- ``noise``: ifeval-lite training pairs with 30% of labels flipped (seeded). MiniLM RMs trained on the clean
  pairs, on the noisy pairs, and on the noisy pairs after ``rewardkit data curate --filter-by MODEL --keep
  agree`` with (a) a model trained on a small clean subset and (b) the noisy model itself. Held-out accuracy
  (95% bootstrap intervals) on the shipped test pairs; recovery = (curated - noisy) / (clean - noisy); the
  target is >= 0.5. Also: how many flipped / correct pairs each filter removed.
- ``ssrm``: ``rewardkit train ssrm --init backbone`` (each round from the backbone, so round 0 and the last
  round differ only by the pseudo-labelled pairs) with 5%, 10% and 25% of the labels (the rest of the training file is the
  unlabelled set, its labels used only to report the pseudo-labels' accuracy), against 100% of the labels;
  held-out accuracy before (round 0) and after the SSRM rounds; ifeval-lite and HH-RLHF (1,500 / 812).
- ``scale``: ``rewardkit data curate`` (exact + near dedup + decontamination against 3,000 benchmark
  prompts) on 10k, 100k and 1M synthetic pairs, each size in its own process: pairs/s and peak RSS.
- ``decontam``: how many HH-RLHF training pairs and ifeval-lite training pairs overlap the held-out sets they
  are evaluated on, and the detector on planted copies of held-out prompts.

Usage: ``python benchmarks/curation.py --workdir /tmp/cur --out benchmarks/results/curation.json`` (JSON on
stdout; a plot beside ``--out``). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OFFLINE_ENV, read_jsonl, run_json_main, run_rewardkit, write_jsonl

HH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
PARTS = ("noise", "ssrm", "scale", "decontam")
# MiniLM recipes: ifeval-lite is the quickstart's; HH at 128 tokens to fit the time budget on 2 cores
RECIPES = {"ifeval_lite": {"epochs": 2.0, "batch_size": 8, "lr": 1e-4, "max_length": 256},
           "hh_rlhf": {"epochs": 1.0, "batch_size": 16, "lr": 5e-5, "max_length": 128}}


def log(message: str) -> None:
    print(f"[curation] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def ifeval_files(workdir: Path) -> dict[str, Path]:
    """Copies of the shipped ifeval-lite train and test pairs."""
    import shutil

    from rewardkit.synth import load_embedded

    folder = workdir / "ifeval_lite"
    folder.mkdir(parents=True, exist_ok=True)
    return {split: Path(shutil.copy(load_embedded(split), folder / f"{split}.jsonl")) for split in ("train", "test")}


def hh_files(path: Path, workdir: Path, n_train: int, n_test: int) -> dict[str, Path]:
    """HH-RLHF's first ``n_train`` pairs and the next ``n_test``, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if len(lines) < n_train + n_test:
        raise ValueError(f"{path} has {len(lines)} pairs; asked for {n_train} + {n_test}")
    folder = workdir / "hh_rlhf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(lines[:n_train]), encoding="utf-8")
    (folder / "test.jsonl").write_text("".join(lines[n_train:n_train + n_test]), encoding="utf-8")
    return {"train": folder / "train.jsonl", "test": folder / "test.jsonl"}


def flip_labels(rows: Sequence[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """A copy of ``rows`` with a seeded ``fraction`` of them swapped (chosen <-> rejected), each row marked
    ``noise_flipped`` true/false so the filters' removals can be checked."""
    rng = random.Random(seed)
    flipped = set(rng.sample(range(len(rows)), round(fraction * len(rows))))
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        if i in flipped:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        row["noise_flipped"] = i in flipped
        out.append(row)
    return out


def subset(rows: Sequence[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """A seeded ``fraction`` of ``rows``, in file order."""
    keep = sorted(random.Random(seed).sample(range(len(rows)), max(1, round(fraction * len(rows)))))
    return [rows[i] for i in keep]


# ----------------------------------------------------------------------------- models


def train_rm(name: str, data: Path, workdir: Path, recipe: dict[str, Any], seed: int) -> Path:
    """A MiniLM BT reward model on ``data`` (reused when already trained)."""
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    out = workdir / "models" / name
    if (out / "rewardkit.json").exists():
        return out
    t0 = time.perf_counter()
    train_reward_model(RewardTrainConfig(data=str(data), model="minilm", out=str(out), seed=seed, logging_steps=50,
                                         skip_invalid=True, save_steps=0, **recipe))
    log(f"{name}: trained on {data.name} in {time.perf_counter() - t0:.0f} s")
    return out


def held_out(model: Path, test: Path, seed: int) -> dict[str, float]:
    """Pairwise accuracy (95% bootstrap interval) of ``model`` on the test pairs."""
    from rewardkit.data.dataset import iter_examples
    from rewardkit.scorers.preference import preference_probabilities
    from rewardkit.scoring import ScorerOptions, build_scorer
    from rewardkit.stats import pairwise_summary

    pairs = [ex for _, ex in iter_examples(test) if not isinstance(ex, Exception)]
    scorer = build_scorer(str(model), ScorerOptions(device="cpu"))
    prefs = preference_probabilities(scorer, [p.prompt for p in pairs], [p.chosen for p in pairs],
                                     [p.rejected for p in pairs], [p.conversational for p in pairs])
    return pairwise_summary(prefs.first_scores, prefs.second_scores, seed=seed)


def recovery(clean: float, noisy: float, curated: float) -> float | None:
    """Share of the noise's accuracy drop that curation won back (None when noise cost nothing)."""
    drop = clean - noisy
    return None if drop <= 0 else (curated - noisy) / drop


# ----------------------------------------------------------------------------- parts


def part_noise(args: argparse.Namespace, workdir: Path, files: dict[str, Path]) -> dict[str, Any]:
    recipe = RECIPES["ifeval_lite"]
    folder = workdir / "noise"
    rows = read_jsonl(files["train"])
    noisy = write_jsonl(folder / "noisy.jsonl", flip_labels(rows, args.noise, args.seed))
    small = write_jsonl(folder / "small_clean.jsonl", subset(rows, args.small_fraction, args.seed))
    models = {"clean": train_rm("ifeval_lite_full", files["train"], workdir, recipe, args.seed),  # = ssrm's 100%
              "noisy": train_rm("ifeval_noisy", noisy, workdir, recipe, args.seed),
              "small_clean": train_rm("ifeval_small_clean", small, workdir, recipe, args.seed)}
    filters: dict[str, Any] = {}
    for filt in ("small_clean", "noisy"):
        out = folder / f"curated_by_{filt}"
        if not (out / "report.json").exists():
            run_rewardkit("data", "curate", str(noisy), "--out", str(out), "--filter-by", str(models[filt]),
                      "--keep", "agree", "--max-length", str(recipe["max_length"]), threads=args.threads)
        kept, removed = read_jsonl(out / "kept.jsonl"), read_jsonl(out / "removed.jsonl")
        filters[filt] = {"kept": len(kept), "removed": len(removed),
                         "removed_flipped": sum(r["noise_flipped"] for r in removed),
                         "removed_correct": sum(not r["noise_flipped"] for r in removed),
                         "kept_flipped": sum(r["noise_flipped"] for r in kept)}
        models[f"curated_by_{filt}"] = train_rm(f"ifeval_curated_by_{filt}", out / "kept.jsonl", workdir, recipe,
                                                args.seed)
    acc = {name: held_out(m, files["test"], args.seed) for name, m in models.items()}
    clean, noisy_acc = acc["clean"]["accuracy"], acc["noisy"]["accuracy"]
    return {"noise_fraction": args.noise, "flipped": sum(r["noise_flipped"] for r in read_jsonl(noisy)),
            "train_pairs": len(rows), "small_clean_pairs": len(read_jsonl(small)), "held_out": acc,
            "filters": filters,
            "recovery": {f: recovery(clean, noisy_acc, acc[f"curated_by_{f}"]["accuracy"]) for f in filters},
            "target": "recovery >= 0.5"}


def part_ssrm(args: argparse.Namespace, workdir: Path, data: dict[str, dict[str, Path]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, files in data.items():
        recipe = RECIPES[name]
        full = train_rm(f"{name}_full", files["train"], workdir, recipe, args.seed)
        runs: dict[str, Any] = {"1.0": {"held_out": held_out(full, files["test"], args.seed)}}
        for fraction in args.fractions:
            out = workdir / "ssrm" / f"{name}_{fraction}"
            if not (out / "ssrm.json").exists():
                t0 = time.perf_counter()
                run_rewardkit("train", "ssrm", "--labeled", str(files["train"]), "--labeled-fraction", str(fraction),
                          "--rounds", str(args.rounds), "--threshold", str(args.threshold), "--model", "minilm",
                          "--init", "backbone",
                          "--eval-data", str(files["test"]), "--out", str(out), "--seed", str(args.seed),
                          "--skip-invalid", "--epochs", str(recipe["epochs"]), "--batch-size",
                          str(recipe["batch_size"]), "--lr", str(recipe["lr"]), "--max-length",
                          str(recipe["max_length"]), "--save-steps", "0", threads=args.threads)
                log(f"ssrm {name} {fraction}: {time.perf_counter() - t0:.0f} s")
            runs[str(fraction)] = json.loads((out / "ssrm.json").read_text(encoding="utf-8"))
        report[name] = runs
    return report


SCALE_VOCAB = 5000


def synthetic_pairs(path: Path, n: int, bench_prompts: Sequence[str], seed: int) -> dict[str, int]:
    """``n`` plain preference pairs of random words (prompt 20, responses 40 words), with 2% exact copies of
    an earlier pair, 2% near copies (one word changed) and 0.5% prompts planted from the benchmark."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(SCALE_VOCAB)]
    recent: list[tuple[str, str, str]] = []
    counts = {"exact": 0, "near": 0, "planted": 0}
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            u = rng.random()
            if recent and u < 0.02:
                prompt, chosen, rejected = rng.choice(recent)
                counts["exact"] += 1
            elif recent and u < 0.04:
                prompt, chosen, rejected = rng.choice(recent)
                words = chosen.split()
                words[rng.randrange(len(words))] = rng.choice(vocab)
                chosen = " ".join(words)
                counts["near"] += 1
            else:
                prompt = " ".join(rng.choices(vocab, k=20))
                if u < 0.045:
                    prompt = rng.choice(bench_prompts)
                    counts["planted"] += 1
                chosen, rejected = " ".join(rng.choices(vocab, k=40)), " ".join(rng.choices(vocab, k=40))
                if len(recent) < 1000:
                    recent.append((prompt, chosen, rejected))
                else:
                    recent[rng.randrange(1000)] = (prompt, chosen, rejected)
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    return counts


def part_scale(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    folder = workdir / "scale"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed + 1)
    vocab = [f"b{i}" for i in range(SCALE_VOCAB)] + [f"w{i}" for i in range(SCALE_VOCAB)]
    bench_rows = [{"prompt": " ".join(rng.choices(vocab, k=25)), "chosen": " ".join(rng.choices(vocab, k=30)),
                   "rejected": " ".join(rng.choices(vocab, k=30))} for _ in range(args.bench_prompts)]
    bench = write_jsonl(folder / "benchmark.jsonl", bench_rows)
    sizes = sorted(args.sizes)
    report: dict[str, Any] = {"benchmark_prompts": len(bench_rows), "sizes": {}}
    for n in sizes:
        data = folder / f"pairs_{n}.jsonl"
        if not data.exists():
            report["sizes"].setdefault(str(n), {})["planted"] = synthetic_pairs(
                data, n, [r["prompt"] for r in bench_rows], args.seed)
        out = folder / f"curated_{n}"
        child = [sys.executable, "-c", _MEASURE, str(data), "--out", str(out), "--dedup", "exact,near",
                 "--decontaminate", str(bench)]
        import os

        env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        done = subprocess.run(child, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"curate at {n} pairs exited {done.returncode}:\n{done.stderr[-3000:]}")
        peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        cur = json.loads((out / "report.json").read_text(encoding="utf-8"))
        report["sizes"].setdefault(str(n), {}).update(
            {"pairs": n, "seconds": seconds, "pairs_per_second": n / seconds, "peak_rss_mb": peak,
             "curate_report": {k: cur[k] for k in cur if k not in ("examples",)}})
        log(f"scale {n}: {seconds:.0f} s, {n / seconds:.0f} pairs/s, peak RSS {peak:.0f} MB")
    return report


# runs `rewardkit data curate ARGS` in this process, then prints its peak resident memory as JSON
_MEASURE = ("import json, resource, sys\nfrom rewardkit.cli.main import main\nrc = main(['data', 'curate', "
            "*sys.argv[1:]])\nprint(json.dumps({'rc': rc, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF)"
            ".ru_maxrss / 1024}))\nsys.exit(rc)")


def part_decontam(args: argparse.Namespace, workdir: Path, data: dict[str, dict[str, Path]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, files in data.items():
        folder = workdir / "decontam" / name
        train_rows, test_rows = read_jsonl(files["train"]), read_jsonl(files["test"])
        rng = random.Random(args.seed)
        planted_from = rng.sample(range(len(test_rows)), args.planted)
        # a planted copy: a held-out prompt with the training pair's own responses (prompt n-gram rule), and
        # a held-out chosen response under a training prompt (exact response rule)
        planted = [dict(r) for r in train_rows]
        for j, i in enumerate(planted_from):
            row = dict(train_rows[j])
            if "prompt" in test_rows[i] and "prompt" in row:
                row["prompt"] = test_rows[i]["prompt"]
            else:  # HH transcripts: the whole held-out dialogue as the pair
                row = dict(test_rows[i])
            row["planted"] = True
            planted.append(row)
        planted_file = write_jsonl(folder / "train_planted.jsonl", planted)
        found = {}
        for label, source in (("as_shipped", files["train"]), ("planted", planted_file)):
            out = folder / label
            if not (out / "report.json").exists():
                run_rewardkit("data", "curate", str(source), "--out", str(out), "--decontaminate", str(files["test"]),
                          "--skip-invalid", threads=args.threads)
            removed = read_jsonl(out / "removed.jsonl")
            hits = [r for r in removed if r.get("step") == "decontaminate"]
            found[label] = {"pairs": len(read_jsonl(source)), "contaminated": len(hits),
                            "planted_found": sum(bool(r.get("planted")) for r in hits),
                            "planted": sum(bool(r.get("planted")) for r in read_jsonl(source)),
                            "reasons": _count(r.get("reason", "?") for r in hits),
                            "examples": [_brief_row(r) for r in hits[:3]]}
        report[name] = {"test_pairs": len(test_rows), **found}
    return report


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _brief_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:160] if isinstance(v, str) else v) for k, v in row.items()
            if k not in ("chosen", "rejected") and not isinstance(v, list)}


# ----------------------------------------------------------------------------- plot and main


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    if "noise" in report:
        acc = report["noise"]["held_out"]
        names = list(acc)
        vals = [acc[n]["accuracy"] for n in names]
        err = [[v - acc[n]["accuracy_ci95_low"] for n, v in zip(names, vals, strict=True)],
               [acc[n]["accuracy_ci95_high"] - v for n, v in zip(names, vals, strict=True)]]
        axes[0].bar(range(len(names)), vals, yerr=err, capsize=4, color="tab:blue")
        axes[0].set_xticks(range(len(names)), [n.replace("curated_by_", "curated by\n") for n in names], fontsize=8)
        axes[0].set_ylim(0.4, 1.0)
        axes[0].set_ylabel("held-out accuracy (ifeval-lite)")
        axes[0].set_title(f"{report['noise']['noise_fraction']:.0%} flipped labels")
    if "ssrm" in report:
        for name, runs in report["ssrm"].items():
            fracs = sorted(float(f) for f in runs if f != "1.0")
            before = [runs[str(f)]["rounds"][0]["heldout"]["accuracy"] for f in fracs]
            after = [runs[str(f)]["rounds"][-1]["heldout"]["accuracy"] for f in fracs]
            line = axes[1].plot(fracs, before, "o--", label=f"{name}: labelled only")[0]
            axes[1].plot(fracs, after, "o-", color=line.get_color(), label=f"{name}: + SSRM")
            axes[1].axhline(runs["1.0"]["held_out"]["accuracy"], color=line.get_color(), lw=0.8, ls=":")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("fraction of labels (dotted: 100%)")
        axes[1].set_ylabel("held-out accuracy")
        axes[1].legend(fontsize=7)
        axes[1].set_title("SSRM label efficiency")
    if "scale" in report:
        sizes = report["scale"]["sizes"]
        ns = sorted(int(n) for n in sizes)
        axes[2].plot(ns, [sizes[str(n)]["peak_rss_mb"] for n in ns], "o-", label="peak RSS (MB)")
        ax2 = axes[2].twinx()
        ax2.plot(ns, [sizes[str(n)]["pairs_per_second"] for n in ns], "s--", color="tab:orange", label="pairs/s")
        axes[2].set_xscale("log")
        axes[2].set_xlabel("pairs curated (exact + near dedup + decontamination)")
        axes[2].set_ylabel("peak RSS (MB)")
        ax2.set_ylabel("pairs/s")
        axes[2].set_title("data curate at scale")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "curation", "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                 for k, v in vars(args).items()}}
    data = {"ifeval_lite": ifeval_files(workdir)}
    if args.hh.exists() and "hh_rlhf" in args.datasets:
        data["hh_rlhf"] = hh_files(args.hh, workdir, args.hh_train, args.hh_test)
    elif "hh_rlhf" in args.datasets:
        report["hh_rlhf_missing"] = f"{args.hh} not found: HH-RLHF skipped"
    data = {k: v for k, v in data.items() if k in args.datasets}
    timings: dict[str, float] = {}
    for part in args.parts:
        t0 = time.perf_counter()
        if part == "noise":
            report["noise"] = part_noise(args, workdir, ifeval_files(workdir))
        elif part == "ssrm":
            report["ssrm"] = part_ssrm(args, workdir, data)
        elif part == "scale":
            report["scale"] = part_scale(args, workdir)
        elif part == "decontam":
            report["decontam"] = part_decontam(args, workdir, data)
        timings[part] = time.perf_counter() - t0
        log(f"part {part}: {timings[part]:.0f} s")
    report["part_seconds"] = timings
    plot_path = args.out.with_suffix(".png") if args.out else workdir / "curation.png"
    plot(report, plot_path)
    report["plot"] = str(plot_path)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), type=lambda s: s.split(","), help=f"of {', '.join(PARTS)}")
    p.add_argument("--datasets", default="ifeval_lite,hh_rlhf", type=lambda s: s.split(","),
                   help="for ssrm and decontam: ifeval_lite, hh_rlhf")
    p.add_argument("--hh", type=Path, default=HH, help="HH-RLHF jsonl.gz (skipped if missing)")
    p.add_argument("--hh-train", type=int, default=1500)
    p.add_argument("--hh-test", type=int, default=812)
    p.add_argument("--noise", type=float, default=0.3, help="fraction of training labels flipped")
    p.add_argument("--small-fraction", type=float, default=0.1, help="clean subset for the filter model")
    p.add_argument("--fractions", default=[0.05, 0.1, 0.25], type=lambda s: [float(x) for x in s.split(",")],
                   help="labelled fractions for SSRM (100%% is always trained)")
    p.add_argument("--rounds", type=int, default=1, help="SSRM rounds after round 0")
    p.add_argument("--threshold", type=float, default=0.8, help="SSRM confidence threshold")
    p.add_argument("--sizes", default=[10_000, 100_000, 1_000_000], type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--bench-prompts", type=int, default=3000, help="benchmark prompts to decontaminate against")
    p.add_argument("--planted", type=int, default=20, help="held-out prompts planted into the training copy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run_json_main(run, parse_args(), prefix="rk-curation-"))
