"""Reward-model scoring throughput: rewardkit's scorer vs a plain fixed-batch loop, in one run.

Both score the same sequences (the chosen and rejected side of the held-out HH-RLHF pairs, encoded
once by the reward model's own encoder) with the same model under ``torch.inference_mode()``:

- rewardkit: ``rewardkit.scoring.score_encoded`` -- sequences sorted by length, cut into batches of at
  most ``--max-tokens`` padded tokens;
- baseline: batches of ``--batch-size`` sequences in file order (pair by pair: chosen, rejected), each
  padded to its longest.

Runs alternate (baseline, rewardkit, baseline, rewardkit, ...) and each side keeps its best time, since
other users' work on a shared machine only ever adds time. Also reported: the largest score difference
between the two, between two very different token budgets (batch-size invariance), and against
``score_file`` (the ``rewardkit score`` path, timed end to end including tokenization).

Two more parts (``--parts``):

- ``sweep``: rewardkit's speed at each token budget of ``--sweep-budgets`` (the same sequences; runs
  alternate), the budget that was fastest, and the largest score difference between budgets -- the
  measurement behind ``rewardkit.scoring.default_batch_tokens``;
- ``memory``: ``rewardkit score`` over synthetic files of ``--sizes`` records (short texts, written to the
  workdir), each size in its own subprocess that prints its peak resident memory (VmHWM, and ``ru_maxrss``),
  beside the same command on 100 pairs (the floor: imports and the scorer). ``--src`` measures another checkout's code (its ``src``
  folder goes first on ``PYTHONPATH``), so the same command compares two commits.

Prints one JSON object on stdout (progress goes to stderr); see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import OFFLINE_ENV, run_json_main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
TARGET_RATIO = 2.0
INVARIANCE_TOLERANCE = 1e-4
PARTS = ("throughput", "sweep", "memory")


def log(message: str) -> None:
    print(f"[score_throughput] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data and model


@dataclass(frozen=True)
class Pairs:
    """Valid held-out pairs: the source records (for ``score_file``) and their parsed examples."""

    records: list[dict[str, Any]]
    examples: list[Any]  # rewardkit.data.formats.PreferenceExample
    invalid: list[dict[str, Any]]


def load_pairs(path: Path, skip_rows: int, rows: int) -> Pairs:
    """Rows ``skip_rows+1 .. skip_rows+rows`` of a jsonl(.gz) file, less those rewardkit rejects."""
    from rewardkit.data.formats import DataError, Location, parse_record

    records, examples, invalid = [], [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if line <= skip_rows:
                continue
            if line > skip_rows + rows:
                break
            record = json.loads(text)
            try:
                examples.append(parse_record(record, Location(str(path), line=line)))
                records.append(record)
            except DataError as e:
                invalid.append({"line": line, "field": e.field, "error": e.message})
    if len(records) + len(invalid) < rows:
        raise ValueError(f"{path}: asked for rows {skip_rows + 1}..{skip_rows + rows}, the file is shorter")
    return Pairs(records, examples, invalid)


def ensure_model(model: str | None, workdir: Path, max_length: int) -> str:
    """``model`` if given, else a fresh ``minilm`` reward model saved in ``workdir`` (its weights do not
    matter for throughput: only shapes do)."""
    if model:
        return model
    from rewardkit.models.reward_model import build_reward_model, save_reward_model

    rm = build_reward_model("minilm", max_length=max_length)
    return str(save_reward_model(rm, workdir / "rm-minilm", metadata={"note": "untrained, for benchmarks"}))


def encode_all(rm: Any, examples: Sequence[Any]) -> list[Any]:
    """``Encoded`` inputs in ``score_file``'s layout: every chosen side, then every rejected side."""
    chosen = [rm.encoder.encode(e.prompt, e.chosen, e.conversational) for e in examples]
    rejected = [rm.encoder.encode(e.prompt, e.rejected, e.conversational) for e in examples]
    return chosen + rejected


# ----------------------------------------------------------------------------- the two scorers


@torch.inference_mode()
def score_fixed_batches(rm: Any, encoded: Sequence[Any], order: Sequence[int], batch_size: int) -> np.ndarray:
    """The baseline: batches of ``batch_size`` sequences taken in ``order``, each right-padded to its
    longest (same padding, masks and token types as rewardkit); returns (N,) float32 in input order."""
    from rewardkit.data.collate import pad_sequences

    out = np.zeros(len(encoded), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = list(order[start : start + batch_size])
        batch = pad_sequences([encoded[i].input_ids for i in idx],
                              [encoded[i].token_type_ids or [] for i in idx], rm.pad_token_id)
        out[idx] = rm.model(**batch).logits[:, 0].float().numpy()
    return out


def score_rewardkit(rm: Any, encoded: Sequence[Any], max_tokens: int) -> np.ndarray:
    """rewardkit's scorer: length-sorted, token-budget batches (already under inference_mode; made explicit)."""
    from rewardkit.scoring import score_encoded

    with torch.inference_mode():
        return score_encoded(rm, encoded, max_tokens=max_tokens)


def file_order(n_pairs: int) -> list[int]:
    """Sequence indices pair by pair (chosen 0, rejected 0, chosen 1, ...) in the chosen-then-rejected layout."""
    return [i for p in range(n_pairs) for i in (p, n_pairs + p)]


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    scores = fn()
    return scores, time.perf_counter() - t0


# ----------------------------------------------------------------------------- padding


def padding_fixed(lengths: Sequence[int], order: Sequence[int], batch_size: int) -> dict[str, float]:
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    return padding_of(lengths, batches)


def padding_budget(lengths: Sequence[int], max_tokens: int) -> dict[str, float]:
    """The batches ``score_token_ids`` forms (``token_budget_batches`` with its default batch cap)."""
    from rewardkit.data.collate import token_budget_batches
    from rewardkit.scoring import DEFAULT_MAX_BATCH

    return padding_of(lengths, token_budget_batches(lengths, max_tokens, DEFAULT_MAX_BATCH))


def padding_of(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> dict[str, float]:
    real = sum(lengths[i] for b in batches for i in b)
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return {"batches": len(batches), "real_tokens": real, "padded_slots": slots, "padding": 1.0 - real / slots}


# ----------------------------------------------------------------------------- measurement


@dataclass
class Timing:
    seconds: list[float]
    sequences: int

    @property
    def best(self) -> float:
        return min(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"sequences_per_s": self.sequences / self.best, "seconds": self.best, "seconds_all_runs": self.seconds}


def alternate(runs: dict[str, Callable[[], np.ndarray]], repeats: int) -> tuple[dict[str, Timing], dict[str, np.ndarray]]:
    """Run each callable ``repeats`` times, interleaved; keep every time and the last scores."""
    timings = {name: Timing([], 0) for name in runs}
    scores: dict[str, np.ndarray] = {}
    for r in range(repeats):
        for name, fn in runs.items():
            scores[name], seconds = timed(fn)
            timings[name].seconds.append(seconds)
            timings[name].sequences = len(scores[name])
            log(f"run {r + 1}/{repeats} {name}: {len(scores[name]) / seconds:.1f} seq/s")
    return timings, scores


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if len(a) else 0.0


def read_score_file(path: Path) -> np.ndarray:
    """``chosen_score`` of every line, then ``rejected_score`` of every line (the layout of ``encode_all``)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return np.array([r["chosen_score"] for r in rows] + [r["rejected_score"] for r in rows], dtype=np.float32)


def run_score_file(model_dir: str, pairs: Pairs, workdir: Path, max_tokens: int, max_length: int) -> tuple[Any, np.ndarray]:
    from rewardkit.scorers.files import score_file
    from rewardkit.scoring import ScorerOptions

    data = workdir / "eval.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for record in pairs.records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    out = workdir / "scored.jsonl"
    opts = ScorerOptions(max_length=max_length, batch_tokens=max_tokens, device="cpu", dtype="float32")
    result = score_file(model_dir, str(data), str(out), options=opts)
    return result, read_score_file(out)


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Settings:
    skip_rows: int
    rows: int
    batch_size: int
    max_tokens: int
    max_length: int
    threads: int
    repeats: int
    invariance_budgets: tuple[int, int]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("rewardkit", "torch", "transformers", "tokenizers")
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


@dataclass(frozen=True)
class Measured:
    """Everything one run measured."""

    timings: dict[str, Timing]          # "baseline", "rewardkit"
    scores: dict[str, np.ndarray]       # (N,) float32 each, chosen-then-rejected layout
    invariance: dict[str, Timing]       # rewardkit at the two budgets
    invariance_scores: dict[str, np.ndarray]
    file_result: Any                    # rewardkit.scoring.ScoreFileResult
    file_scores: np.ndarray
    lengths: list[int]
    order: list[int]
    load_average: dict[str, float]


def build_report(s: Settings, pairs: Pairs, model_desc: str, m: Measured) -> dict[str, Any]:
    base, rk = m.timings["baseline"].to_dict(), m.timings["rewardkit"].to_dict()
    ratio = rk["sequences_per_s"] / base["sequences_per_s"]
    diff = max_abs_diff(m.scores["rewardkit"], m.scores["baseline"])
    inv_scores = list(m.invariance_scores.values())
    inv_diff = max_abs_diff(inv_scores[0], inv_scores[1])
    file_diff = max_abs_diff(m.file_scores, m.scores["rewardkit"])
    low, high = s.invariance_budgets
    return {
        "benchmark": "score_throughput",
        "ratio_sequences_per_s": ratio, "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO,
        "max_abs_score_diff_vs_baseline": diff,
        "max_abs_score_diff_between_budgets": inv_diff,
        "score_tolerance": INVARIANCE_TOLERANCE,
        "scores_within_tolerance": max(diff, inv_diff) <= INVARIANCE_TOLERANCE,
        "sequences": len(m.lengths), "pairs": len(pairs.records),
        "rewardkit": {**rk, "method": "score_encoded: length-sorted token-budget batches",
                      "max_tokens": s.max_tokens, **padding_budget(m.lengths, s.max_tokens)},
        "baseline": {**base, "method": "fixed batches in file order, padded to each batch's longest",
                     "batch_size": s.batch_size, **padding_fixed(m.lengths, m.order, s.batch_size)},
        "batch_size_invariance": {
            "budgets_max_tokens": [low, high], "max_abs_score_diff": inv_diff,
            **{f"budget_{b}": {**m.invariance[f"rewardkit_budget_{b}"].to_dict(), **padding_budget(m.lengths, b)}
               for b in (low, high)},
        },
        "score_file": {"sequences_per_s": m.file_result.sequences_per_s, "seconds": m.file_result.seconds,
                       "sequences": m.file_result.sequences,
                       "truncated_pairs": m.file_result.truncated_sequences,
                       "max_abs_score_diff_vs_score_encoded": file_diff},
        "settings": {**asdict(s), "model": model_desc, "data": str(DATA),
                     "rows": f"{s.skip_rows + 1}..{s.skip_rows + s.rows}", "invalid_rows_dropped": pairs.invalid,
                     "torch_threads": torch.get_num_threads(),
                     "mean_tokens": float(np.mean(m.lengths)), "max_tokens_seen": max(m.lengths)},
        "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "load_average_1min": m.load_average},
        "versions": versions(),
        "notes": [
            "same model, same Encoded inputs (the RM's own encoder, keep-response truncation to max_length), same "
            "padding/mask code, torch.inference_mode() for both; only the batching differs",
            f"baseline and rewardkit alternate {s.repeats} time(s) after an untimed warm-up; each keeps its best "
            "time (on a shared machine other work only adds time); all times are listed",
            "timed: the scoring calls only (tokenization excluded) for baseline, rewardkit and the two budgets",
            "score_file is the `rewardkit score` path, timed by itself: its seconds include tokenization (which "
            "datasets may serve from its cache on a re-run) but not model or data loading",
            f"batch-size invariance: rewardkit's scores at max_tokens={low} vs {high} (batches capped at "
            "DEFAULT_MAX_BATCH sequences)",
            "timings are noisy (shared 2-core machine): compare the ratio, not absolute numbers",
        ],
    }


# ----------------------------------------------------------------------------- part: throughput


def warm_up(rm: Any, encoded: Sequence[Any], batch_size: int, max_tokens: int) -> None:
    """Score a spread of lengths once with both methods, untimed (thread pool, allocator, kernel setup)."""
    sample = list(encoded[:: max(1, len(encoded) // (4 * batch_size))])
    score_fixed_batches(rm, sample, range(len(sample)), batch_size)
    score_rewardkit(rm, sample, max_tokens)


def measure(s: Settings, model_dir: str, pairs: Pairs, workdir: Path, rm: Any, encoded: Sequence[Any]) -> Measured:
    lengths = [len(e.input_ids) for e in encoded]
    order = file_order(len(pairs.examples))
    log(f"{len(encoded)} sequences, mean {np.mean(lengths):.0f} / max {max(lengths)} tokens; warming up")
    warm_up(rm, encoded, s.batch_size, s.max_tokens)
    load = {"before": os.getloadavg()[0]}
    timings, scores = alternate({"baseline": lambda: score_fixed_batches(rm, encoded, order, s.batch_size),
                                 "rewardkit": lambda: score_rewardkit(rm, encoded, s.max_tokens)}, s.repeats)
    low, high = s.invariance_budgets
    load["before_invariance"] = os.getloadavg()[0]
    invariance, inv_scores = alternate({f"rewardkit_budget_{b}": (lambda b=b: score_rewardkit(rm, encoded, b))
                                        for b in (low, high)}, 1)
    load["before_score_file"] = os.getloadavg()[0]
    file_result, file_scores = run_score_file(model_dir, pairs, workdir, s.max_tokens, s.max_length)
    load["after"] = os.getloadavg()[0]
    return Measured(timings, scores, invariance, inv_scores, file_result, file_scores, lengths, order, load)


# ----------------------------------------------------------------------------- part: token-budget sweep


def measure_sweep(rm: Any, encoded: Sequence[Any], budgets: Sequence[int], repeats: int) -> dict[str, Any]:
    """rewardkit's sequences/s at each token budget (runs alternate; each keeps its best), its batches and
    padding, the fastest budget, and the largest score difference from the first budget."""
    from rewardkit.scoring import default_batch_tokens

    lengths = [len(e.input_ids) for e in encoded]
    device = next(rm.model.parameters()).device
    score_rewardkit(rm, list(encoded[:: max(1, len(encoded) // 64)]), min(budgets))  # untimed warm-up
    load_before = os.getloadavg()[0]
    timings, scores = alternate({str(b): (lambda b=b: score_rewardkit(rm, encoded, b)) for b in budgets}, repeats)
    rates = {b: timings[str(b)].to_dict()["sequences_per_s"] for b in budgets}
    fastest = max(rates, key=rates.__getitem__)
    first = scores[str(budgets[0])]
    return {
        "device": str(device), "default_budget_for_device": default_batch_tokens(device),
        "fastest_budget": fastest, "sequences": len(encoded), "mean_tokens": float(np.mean(lengths)),
        "budgets": {str(b): {**timings[str(b)].to_dict(), "relative_to_fastest": rates[b] / rates[fastest],
                             **padding_budget(lengths, b)} for b in budgets},
        "max_abs_score_diff_between_budgets": max(max_abs_diff(scores[str(b)], first) for b in budgets),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


# ----------------------------------------------------------------------------- part: peak memory by file size

# runs `rewardkit score ARGS` in this process, then prints its peak resident memory (and which rewardkit ran).
# On Linux ru_maxrss survives exec (a child can start at the forking parent's peak, here torch loaded),
# so the peak is read from /proc/self/status (VmHWM, this process image's own high-water mark); ru_maxrss is
# printed beside it, and is the peak where /proc is missing.
_MEASURE = """import json, resource, sys, time
t0 = time.perf_counter()
import rewardkit
from rewardkit.cli.main import main
rc = main(['score', *sys.argv[1:]])
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    hwm = next(int(line.split()[1]) / 1024 for line in open('/proc/self/status') if line.startswith('VmHWM:'))
except OSError:
    hwm = maxrss
print(json.dumps({'rc': rc, 'peak_rss_mb': hwm, 'ru_maxrss_mb': maxrss, 'seconds': time.perf_counter() - t0,
                  'rewardkit': rewardkit.__file__}))
sys.exit(rc)"""
FLOOR_RECORDS = 100  # the floor: the same command on this many pairs (imports, scorer, one window)
_WORDS = ("the", "a", "cat", "dog", "sat", "ran", "on", "mat", "quickly", "blue", "green", "answer", "is", "yes",
          "no", "maybe", "because", "water", "boils", "at", "one", "hundred", "degrees")


def synthetic_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` short preference pairs (prompt 6-12 words, responses 4-20 words) as jsonl, one record a line,
    written as it goes (the file, not this process, holds them)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            prompt = f"q{i}: " + " ".join(rng.choices(_WORDS, k=rng.randint(6, 12))) + "?"
            chosen, rejected = (" " + " ".join(rng.choices(_WORDS, k=rng.randint(4, 20))) for _ in range(2))
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    return path


def run_measured(argv: Sequence[str], *, src: Path | None, threads: int, cache: Path) -> dict[str, Any]:
    """Run ``rewardkit score ARGV`` in a fresh Python; its peak RSS in MB (VmHWM; and ru_maxrss), seconds,
    and which rewardkit it imported. ``src`` goes first on PYTHONPATH; ``cache`` holds the
    datasets cache (so every size starts cold and the files go away with it)."""
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_DATASETS_CACHE": str(cache)}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", _MEASURE, *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"rewardkit score {' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def part_memory(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Peak RSS of ``rewardkit score --model SCORER`` at each size, each in its own process, beside the same
    command on :data:`FLOOR_RECORDS` pairs (what imports and the scorer take)."""
    folder = workdir / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"scorer": args.memory_scorer, "sizes": {}}
    for n in [FLOOR_RECORDS, *sorted(args.sizes)]:
        data = synthetic_pairs(folder / f"pairs_{n}.jsonl", n)
        cache = folder / f"hf-cache-{n}"
        measured = run_measured(["--model", args.memory_scorer, "--data", str(data), "--out", str(folder / "scored.jsonl"),
                                 "--device", "cpu"], src=args.src, threads=args.threads, cache=cache)
        shutil.rmtree(cache, ignore_errors=True)
        data.unlink()
        if n == FLOOR_RECORDS:
            report.update({"rewardkit": measured["rewardkit"], "floor_records": n,
                           "floor_peak_rss_mb": measured["peak_rss_mb"]})
            continue
        report["sizes"][str(n)] = {"records": n, "peak_rss_mb": measured["peak_rss_mb"],
                                   "above_floor_mb": measured["peak_rss_mb"] - report["floor_peak_rss_mb"],
                                   "ru_maxrss_mb": measured["ru_maxrss_mb"], "seconds": measured["seconds"],
                                   "records_per_s": n / measured["seconds"]}
        log(f"memory {n}: peak RSS {measured['peak_rss_mb']:.0f} MB, {measured['seconds']:.0f} s")
    report["note"] = ("peak_rss_mb is VmHWM (Linux: this process image's own peak); ru_maxrss_mb is getrusage's, "
                      "which on Linux can also hold the forking parent's peak from before exec")
    return report


# ----------------------------------------------------------------------------- main


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _parts(text: str) -> list[str]:
    parts = [x.strip() for x in text.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    return parts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--parts", type=_parts, default=["throughput", "sweep"],
                   help=f"comma-separated parts to run, of {', '.join(PARTS)}")
    p.add_argument("--model", default=None, help="reward model folder; default: an untrained minilm RM built in --workdir")
    p.add_argument("--skip-rows", type=int, default=1500, help="rows of the HH file before the held-out ones")
    p.add_argument("--rows", type=int, default=812, help="held-out rows to score (2 sequences each)")
    p.add_argument("--batch-size", type=int, default=32, help="baseline: sequences per fixed batch")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="rewardkit: padded-token budget per batch (default: rewardkit's default for the model's device)")
    p.add_argument("--max-length", type=int, default=256, help="max tokens per sequence (the encoder truncates)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each method, alternating")
    p.add_argument("--invariance-budgets", type=int, nargs=2, default=(512, 65536), metavar=("LOW", "HIGH"),
                   help="two max_tokens budgets whose rewardkit scores must agree")
    p.add_argument("--sweep-budgets", type=_ints, default=[256, 512, 1024, 2048, 4096, 16384, 65536],
                   help="sweep: comma-separated token budgets to time")
    p.add_argument("--sizes", type=_ints, default=[10_000, 100_000, 1_000_000],
                   help="memory: comma-separated numbers of synthetic pairs to score")
    p.add_argument("--memory-scorer", default="length",
                   help="memory: the --model of `rewardkit score` (length: no model; or a reward model folder)")
    p.add_argument("--src", type=Path, default=None,
                   help="memory: a rewardkit checkout's src folder to measure instead of the installed one")
    p.add_argument("--workdir", type=Path, default=None, help="folder for derived files (default: temp)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "score_throughput", "parts": args.parts}
    if {"throughput", "sweep"} & set(args.parts):
        from rewardkit.models.reward_model import load_reward_model
        from rewardkit.scoring import default_batch_tokens

        pairs = load_pairs(DATA, args.skip_rows, args.rows)
        model_dir = ensure_model(args.model, workdir, args.max_length)
        model_desc = args.model or "untrained minilm reward model (build_reward_model + save_reward_model)"
        rm = load_reward_model(model_dir, max_length=args.max_length)
        encoded = encode_all(rm, pairs.examples)
        max_tokens = args.max_tokens or default_batch_tokens(next(rm.model.parameters()).device)
        s = Settings(args.skip_rows, args.rows, args.batch_size, max_tokens, args.max_length, args.threads,
                     args.repeats, tuple(args.invariance_budgets))
        if "throughput" in args.parts:
            report.update(build_report(s, pairs, model_desc, measure(s, model_dir, pairs, workdir, rm, encoded)))
        if "sweep" in args.parts:
            report["budget_sweep"] = measure_sweep(rm, encoded, args.sweep_budgets, args.repeats)
    if "memory" in args.parts:
        report["memory"] = part_memory(args, workdir)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-score-bench-")


if __name__ == "__main__":
    sys.exit(main())
