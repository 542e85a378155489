"""Reward-model training throughput: rewardkit vs TRL's ``RewardTrainer``, in one run.

Both systems train ``minilm`` (all-MiniLM-L6-v2 + a 1-output head) for one epoch on the same valid
HH-RLHF pairs (the first ``--train-rows`` lines of the shared file, less the rows rewardkit rejects as
invalid), with the same batch size, max length, learning rate and schedule, fp32, seed and torch
threads; then both are scored on the held-out rows that follow. Figures are ratios against TRL measured
in the same process, because the machine is shared and absolute timings are noisy.

Measured for each system: pairs/s over the training loop only (model loading and tokenization
excluded), pairs trained and dropped, padding of the training batches, held-out accuracy, and
model-FLOP utilisation against this machine's fp32 matmul peak measured in the same run.

Prints one JSON object on stdout (progress goes to stderr); see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import run_json_main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
TARGET_RATIO = 1.5
EVAL_BATCH_TOKENS = 16_384  # rewardkit's default eval budget; used for both systems' held-out scoring


def log(message: str) -> None:
    print(f"[train_throughput] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- settings and data


@dataclass(frozen=True)
class Settings:
    train_rows: int
    eval_rows: int
    batch_size: int
    max_length: int
    threads: int
    max_steps: int  # 0: one epoch
    lr: float = 5e-5
    seed: int = 42
    warmup_ratio: float = 0.05
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class Splits:
    """The valid pairs given to both systems (HH-RLHF records), and the rows left out as invalid."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    invalid: list[dict[str, Any]]  # {"line": 1-based line in the source file, "error": rewardkit's message}


def read_records(path: Path, n: int) -> list[tuple[int, dict[str, Any]]]:
    """The first ``n`` records of a jsonl(.gz) file as (1-based line, record)."""
    out: list[tuple[int, dict[str, Any]]] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if len(out) >= n:
                break
            out.append((line, json.loads(text)))
    return out


def split_valid(rows: Sequence[tuple[int, dict[str, Any]]], path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keep the records rewardkit's validator accepts; list the others with its message."""
    from rewardkit.data.formats import DataError, Location, parse_record

    valid, invalid = [], []
    for line, record in rows:
        try:
            parse_record(record, Location(str(path), line=line))
            valid.append({"chosen": record["chosen"], "rejected": record["rejected"]})
        except DataError as e:
            invalid.append({"line": line, "error": e.message, "field": e.field})
    return valid, invalid


def load_splits(path: Path, train_rows: int, eval_rows: int) -> Splits:
    rows = read_records(path, train_rows + eval_rows)
    if len(rows) < train_rows + eval_rows:
        raise ValueError(f"{path}: asked for {train_rows}+{eval_rows} rows, the file has {len(rows)}")
    train, bad_train = split_valid(rows[:train_rows], path)
    held_out, bad_eval = split_valid(rows[train_rows:], path)
    return Splits(train, held_out, bad_train + bad_eval)


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


# ----------------------------------------------------------------------------- machine


def matmul_peak_gflops(*, size: int = 2048, repeats: int = 8) -> float:
    """Best fp32 GFLOP/s of ``size``^3 matmuls (one warm-up first) at the current torch thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def warm_up(backbone_dir: str, max_length: int, batch_size: int) -> None:
    """A throwaway forward+backward of the backbone at the benchmark's largest shape, so neither timed
    run pays for first-use costs (allocator growth, oneDNN/MKL kernel setup, thread-pool start)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1, dtype=torch.float32)
    ids = torch.randint(1000, 2000, (2 * batch_size, max_length))
    for _ in range(2):
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
        model.zero_grad(set_to_none=True)


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside the embedding tables (the ``N`` of the 6*N*tokens training-FLOP estimate)."""
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


# ----------------------------------------------------------------------------- results


@dataclass
class BatchTokens:
    """Per training batch: pairs, real (non-pad) tokens and padded slots (2*pairs x longest)."""

    pairs: list[int] = field(default_factory=list)
    real: list[int] = field(default_factory=list)
    padded: list[int] = field(default_factory=list)

    def add(self, pairs: int, real: int, padded: int) -> None:
        self.pairs.append(pairs)
        self.real.append(real)
        self.padded.append(padded)

    def first(self, steps: int) -> BatchTokens:
        return BatchTokens(self.pairs[:steps], self.real[:steps], self.padded[:steps])

    def fractions(self) -> np.ndarray:
        return 1.0 - np.asarray(self.real, dtype=np.float64) / np.maximum(np.asarray(self.padded, np.float64), 1)

    def padding(self) -> float:
        """Padded share of all token slots (token-weighted)."""
        return 1.0 - sum(self.real) / max(sum(self.padded), 1)

    def padding_batch_mean(self) -> float:
        """Pair-weighted mean of each batch's padded share (what rewardkit's logs report)."""
        return float(np.average(self.fractions(), weights=self.pairs)) if self.pairs else float("nan")


@dataclass
class SystemResult:
    pairs_per_s: float
    seconds: float
    pairs_trained: int
    pairs_dropped: int
    steps: int
    padding: float
    padding_batch_mean: float
    real_tokens: int
    padded_tokens: int
    accuracy: float
    accuracy_ci95: list[float]
    eval_pairs: int
    details: dict[str, Any] = field(default_factory=dict)
    real_tokens_per_s: float = float("nan")
    mfu: float = float("nan")
    mfu_counting_padding: float = float("nan")
    train_tflop: float = float("nan")

    def set_rates(self, n_params: int, peak_gflops: float) -> None:
        """Work rates: real tokens/s, and MFU against ``peak_gflops`` with FLOPs = 6*N*tokens."""
        self.real_tokens_per_s = self.real_tokens / max(self.seconds, 1e-9)
        flop, flop_padded = 6.0 * n_params * self.real_tokens, 6.0 * n_params * self.padded_tokens
        self.train_tflop = flop / 1e12
        self.mfu = flop / max(self.seconds, 1e-9) / (peak_gflops * 1e9)
        self.mfu_counting_padding = flop_padded / max(self.seconds, 1e-9) / (peak_gflops * 1e9)


@dataclass(frozen=True)
class Machine:
    """What the machine did during the run: matmul peaks (before rewardkit, between, after TRL), the
    1-minute load average at each phase (other users' work inflates timings), torch threads seen."""

    peaks: list[float]
    load_average: dict[str, float]
    threads_seen: dict[str, int]


# ----------------------------------------------------------------------------- rewardkit


def run_rewardkit(train_file: Path, eval_file: Path, s: Settings, out_dir: Path) -> tuple[SystemResult, Any]:
    """Train with ``train_reward_model``; read speed and accuracy from its metadata, padding from its logs."""
    from rewardkit.models.reward_model import load_reward_model
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    cfg = RewardTrainConfig(
        data=str(train_file), eval_data=str(eval_file), model="minilm", out=str(out_dir), max_length=s.max_length,
        batch_size=s.batch_size, epochs=1.0, max_steps=s.max_steps or -1, lr=s.lr, weight_decay=s.weight_decay,
        warmup_ratio=s.warmup_ratio, scheduler=s.scheduler, max_grad_norm=s.max_grad_norm,
        precision="fp32", seed=s.seed,
    )
    result = train_reward_model(cfg)
    meta = result.metadata
    training, final_eval = meta["training"], meta["metrics"]["eval"]
    rm = load_reward_model(result.out_dir)
    tokens = rewardkit_batch_tokens(train_file, rm.encoder, s, training["steps"])
    logged = logged_padding(result.out_dir / "logs" / "metrics.jsonl")
    check = padding_log_check(tokens, logged)
    res = SystemResult(
        pairs_per_s=training["pairs_per_s"], seconds=training["seconds"], pairs_trained=training["pairs_seen"],
        pairs_dropped=0, steps=training["steps"], padding=tokens.padding(),
        padding_batch_mean=tokens.padding_batch_mean(), real_tokens=sum(tokens.real),
        padded_tokens=sum(tokens.padded), accuracy=final_eval["accuracy"],
        accuracy_ci95=[final_eval["accuracy_ci95_low"], final_eval["accuracy_ci95_high"]],
        eval_pairs=int(final_eval["pairs"]),
        details={"precision": training["precision"], "truncation_train": meta["data"]["truncation"],
                 "truncation_eval": (meta.get("eval_data") or {}).get("truncation"),
                 "padding_logged_max_abs_diff_vs_reconstructed": check,
                 "eval_input": "text_pair: [CLS] prompt turns [SEP] response [SEP], keep-response truncation"},
    )
    return res, rm.model


def rewardkit_batch_tokens(train_file: Path, encoder: Any, s: Settings, steps: int) -> BatchTokens:
    """Token counts of the batches rewardkit's loop ran: the same tokenization and the same
    ``length_grouped_batches`` call (one process, no accumulation: one batch per step, epoch 0 first)."""
    from rewardkit.data.collate import length_grouped_batches
    from rewardkit.data.dataset import load_examples, tokenize_examples

    tok = tokenize_examples(load_examples(str(train_file)).dataset, encoder)
    cols = tok.select_columns(["chosen_input_ids", "rejected_input_ids", "length"])[:]
    lengths = list(cols["length"])
    out = BatchTokens()
    epoch = 0
    while len(out.pairs) < steps:
        for batch in length_grouped_batches(lengths, s.batch_size, seed=s.seed, epoch=epoch):
            real = sum(len(cols["chosen_input_ids"][i]) + len(cols["rejected_input_ids"][i]) for i in batch)
            out.add(len(batch), real, 2 * len(batch) * max(lengths[i] for i in batch))
        epoch += 1
    return out.first(steps)


def logged_padding(path: Path) -> list[tuple[int, float]]:
    """(step, padding) of each training row rewardkit logged (a pair-weighted mean over its window)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(int(r["step"]), float(r["padding"])) for r in rows if r.get("split") == "train" and "padding" in r]


def padding_log_check(tokens: BatchTokens, logged: list[tuple[int, float]]) -> float:
    """Largest |logged - reconstructed| window padding: float rounding (~1e-9) means the rebuilt batches
    are the ones rewardkit trained on, so the token counts used for MFU are exact."""
    fractions, worst, start = tokens.fractions(), 0.0, 0
    for step, value in logged:
        window = slice(start, step)
        expected = float(np.average(fractions[window], weights=tokens.pairs[window]))
        worst, start = max(worst, abs(expected - value)), step
    return worst if logged else float("nan")


# ----------------------------------------------------------------------------- TRL


@dataclass
class CountingCollator:
    """Wraps TRL's ``DataCollatorForPreference`` and records each collated batch's token counts."""

    inner: Callable[[list[dict[str, Any]]], dict[str, Any]]
    tokens: BatchTokens = field(default_factory=BatchTokens)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = self.inner(examples)
        mask = out["attention_mask"]  # (2b, T): chosen rows, then rejected rows
        self.tokens.add(mask.shape[0] // 2, int(mask.sum()), mask.numel())
        return out


def make_clock() -> Any:
    """A ``TrainerCallback`` that times ``on_train_begin`` -> ``on_train_end`` (the training loop only)."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        begin = end = float("nan")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.begin = time.perf_counter()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.end = time.perf_counter()

    return Clock()


def trl_tokenizer(backbone_dir: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    tokenizer.eos_token = tokenizer.sep_token  # BERT has no EOS; RewardTrainer appends EOS to each text
    return tokenizer


def trl_config(s: Settings, out_dir: Path) -> Any:
    """RewardConfig with every setting that differs between the two tools' defaults made equal."""
    from trl import RewardConfig

    return RewardConfig(
        output_dir=str(out_dir), per_device_train_batch_size=s.batch_size, num_train_epochs=1,
        max_steps=s.max_steps or -1, learning_rate=s.lr, lr_scheduler_type=s.scheduler, warmup_steps=s.warmup_ratio,
        weight_decay=s.weight_decay, max_grad_norm=s.max_grad_norm, max_length=s.max_length, seed=s.seed,
        data_seed=s.seed,
        bf16=False, fp16=False,          # TRL defaults to bf16; both run fp32
        gradient_checkpointing=False,    # TRL defaults to True (recomputes forwards); rewardkit does not
        disable_dropout=False,           # TRL defaults to True; rewardkit trains with the backbone's dropout
        use_cpu=True, dataloader_num_workers=0, logging_steps=10, save_strategy="no", eval_strategy="no",
        report_to="none",
    )


def run_trl(backbone_dir: str, splits: Splits, s: Settings, out_dir: Path) -> tuple[SystemResult, Any, Any]:
    """Train with TRL's ``RewardTrainer`` on the implicit-prompt text format; time the loop with a callback."""
    from datasets import Dataset
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    tokenizer = trl_tokenizer(backbone_dir)
    collator = CountingCollator(DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id))
    clock = make_clock()
    trainer = RewardTrainer(
        model=backbone_dir, args=trl_config(s, out_dir), train_dataset=Dataset.from_list(splits.train),
        processing_class=tokenizer, data_collator=collator, callbacks=[clock],
    )
    kept = len(trainer.train_dataset)
    output = trainer.train()
    seconds = clock.end - clock.begin
    steps = trainer.state.global_step
    tokens = collator.tokens.first(steps)  # accelerate collates one batch ahead of the step it trains
    model = trainer.model.eval()
    acc = trl_accuracy(model, tokenizer, splits.eval, s.max_length)
    res = SystemResult(
        pairs_per_s=sum(tokens.pairs) / seconds, seconds=seconds, pairs_trained=sum(tokens.pairs),
        pairs_dropped=len(splits.train) - kept, steps=steps, padding=tokens.padding(),
        padding_batch_mean=tokens.padding_batch_mean(), real_tokens=sum(tokens.real),
        padded_tokens=sum(tokens.padded), accuracy=acc["keep_end"]["value"],
        accuracy_ci95=[acc["keep_end"]["ci95_low"], acc["keep_end"]["ci95_high"]],
        eval_pairs=int(acc["keep_end"]["n"]),
        details={"train_runtime_reported": output.metrics.get("train_runtime"),
                 "accuracy_variants": acc,
                 "eval_input": "its own tokenization (text + EOS, [CLS] ... [SEP][SEP]); pairs longer than max "
                               "length truncated with the tokenizer's truncation_side='left' (keeps the end of "
                               "the dialogue); 'keep_start' uses truncation_side='right'"},
    )
    return res, model, tokenizer


def trl_accuracy(model: Any, tokenizer: Any, pairs: Sequence[dict[str, Any]], max_length: int) -> dict[str, Any]:
    """Held-out accuracy of the TRL model on every pair: TRL's own text + EOS tokenization, truncated (not
    dropped) to ``max_length``, scored with rewardkit's length-sorted scorer (the same code rewardkit's
    eval uses; scores do not depend on batching). Also on the pairs TRL's length filter would keep."""
    from rewardkit.eval.stats import bootstrap_mean, pairwise_correct
    from rewardkit.scoring import score_token_ids

    texts = [p[k] + tokenizer.eos_token for k in ("chosen", "rejected") for p in pairs]
    full = tokenizer(texts)["input_ids"]
    fits = np.array([len(c) <= max_length and len(r) <= max_length
                     for c, r in zip(full[: len(pairs)], full[len(pairs):], strict=True)])
    out: dict[str, Any] = {"pairs_longer_than_max_length": int((~fits).sum())}
    for name, side in (("keep_end", "left"), ("keep_start", "right")):
        tokenizer.truncation_side = side
        ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        scores = score_token_ids(model, tokenizer.pad_token_id, ids, None, max_tokens=EVAL_BATCH_TOKENS)
        correct = pairwise_correct(scores[: len(pairs)], scores[len(pairs):])
        out[name] = bootstrap_mean(correct).to_dict()
        if name == "keep_end":
            out["fitting_pairs_only"] = bootstrap_mean(correct[fits]).to_dict()
    tokenizer.truncation_side = "right"
    return out


# ----------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("rewardkit", "torch", "transformers", "trl", "datasets", "accelerate", "tokenizers")
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def build_report(s: Settings, splits: Splits, rk: SystemResult, trl: SystemResult, machine: Machine,
                 n_params: int) -> dict[str, Any]:
    ratio = rk.pairs_per_s / trl.pairs_per_s
    notes = [
        f"dropped {len(splits.invalid)} invalid row(s) for BOTH systems before training "
        f"(source lines {[b['line'] for b in splits.invalid]}; rewardkit refuses them unless skip_invalid)",
        "TRL input: standard implicit-prompt text {'chosen': str, 'rejected': str} (the raw HH transcripts); "
        "conversational input needs a chat template, which the BERT tokenizer lacks; tokenizer.eos_token = "
        "sep_token so each text becomes [CLS] ... [SEP][SEP]",
        f"TRL silently dropped {trl.pairs_dropped} of {len(splits.train)} training pairs longer than "
        f"{s.max_length} tokens; rewardkit trained on all {rk.pairs_trained} (its keep-response truncation cut "
        f"{rk.details['truncation_train']['pairs_truncated']} pairs)",
        "same settings: AdamW, lr, cosine schedule with 5% warmup (rewardkit floors the warmup steps, "
        "transformers ceils them), grad clip 1.0, no weight decay, fp32, dropout on, no gradient checkpointing "
        "(TRL's defaults bf16=True, gradient_checkpointing=True, disable_dropout=True were overridden)",
        "pairs_per_s = pairs trained / seconds of the training loop only (rewardkit: metadata['training']; TRL: "
        "a TrainerCallback from on_train_begin to on_train_end); steps differ because TRL has fewer pairs",
        "TRL keeps only the pairs that fit, rewardkit trains every pair (long ones cut to max_length), so a "
        "rewardkit pair is longer on average: ratio_real_tokens_per_s compares the rate of useful work",
        "padding = padded share of all token slots of the training batches (token-weighted); "
        "padding_batch_mean = pair-weighted mean of per-batch shares (rewardkit's logged definition). TRL: "
        "counted by wrapping its data collator; rewardkit: its batches rebuilt with length_grouped_batches and "
        "checked against its logged padding",
        "accuracy is on all held-out pairs for both (rewardkit: its eval metrics with keep-response truncation; "
        "TRL: its own tokenization truncated from the left, see trl.details); TRL's max-length filter would "
        f"have dropped {trl.details['accuracy_variants']['pairs_longer_than_max_length']} of them",
        "mfu = 6 x non-embedding params x real tokens / loop seconds / best matmul peak of the run "
        "(attention-score FLOPs not counted); mfu_counting_padding counts padded slots too",
        "timings are noisy (shared 2-core machine): compare the ratio, not absolute numbers",
    ]
    return {
        "benchmark": "train_throughput",
        "ratio_pairs_per_s": ratio, "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO,
        "ratio_real_tokens_per_s": rk.real_tokens_per_s / trl.real_tokens_per_s,
        "rewardkit": asdict(rk), "trl": asdict(trl),
        "matmul_peak_gflops_fp32": max(machine.peaks),
        "matmul_peak_gflops_fp32_by_phase": dict(zip(("before", "between", "after"), machine.peaks, strict=True)),
        "non_embedding_params": n_params,
        "settings": {**asdict(s), "backbone": "minilm (all-MiniLM-L6-v2)", "precision": "fp32",
                     "data": str(DATA), "train_pairs_valid": len(splits.train), "eval_pairs": len(splits.eval),
                     "invalid_rows_dropped": splits.invalid, "torch_threads_seen": machine.threads_seen},
        "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "load_average_1min": machine.load_average},
        "versions": versions(),
        "notes": notes,
    }


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train-rows", type=int, default=1500, help="first N rows of the HH file to train on")
    p.add_argument("--eval-rows", type=int, default=812, help="the next N rows, held out for accuracy")
    p.add_argument("--batch-size", type=int, default=16, help="pairs per optimizer step, both systems")
    p.add_argument("--max-length", type=int, default=256, help="max tokens per sequence, both systems")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads for both")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (smoke runs); 0 = one epoch")
    p.add_argument("--workdir", type=Path, default=None, help="folder for derived data and models (default: temp)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from rewardkit.models.backbones import resolve_backbone

    s = Settings(args.train_rows, args.eval_rows, args.batch_size, args.max_length, args.threads, args.max_steps)
    torch.set_num_threads(s.threads)
    splits = load_splits(DATA, s.train_rows, s.eval_rows)
    train_file = write_jsonl(workdir / "train.jsonl", splits.train)
    eval_file = write_jsonl(workdir / "eval.jsonl", splits.eval)
    log(f"{len(splits.train)} train / {len(splits.eval)} eval pairs; {len(splits.invalid)} invalid rows dropped")
    backbone = resolve_backbone("minilm")
    peaks = [matmul_peak_gflops()]
    log(f"matmul peak {peaks[0]:.1f} GFLOP/s fp32 with {torch.get_num_threads()} threads; warming up")
    warm_up(backbone, s.max_length, s.batch_size)
    load = {"before_rewardkit": os.getloadavg()[0]}
    log("training with rewardkit")
    rk, rk_model = run_rewardkit(train_file, eval_file, s, workdir / "rewardkit")
    threads = {"after_rewardkit": torch.get_num_threads()}
    torch.set_num_threads(s.threads)
    peaks.append(matmul_peak_gflops())
    load["before_trl"] = os.getloadavg()[0]
    log(f"rewardkit: {rk.pairs_per_s:.2f} pairs/s, accuracy {rk.accuracy:.3f}; training with TRL")
    trl, _, _ = run_trl(backbone, splits, s, workdir / "trl")
    threads["after_trl"] = torch.get_num_threads()
    load["after_trl"] = os.getloadavg()[0]
    log(f"TRL: {trl.pairs_per_s:.2f} pairs/s, accuracy {trl.accuracy:.3f}")
    torch.set_num_threads(s.threads)
    peaks.append(matmul_peak_gflops())
    n_params = non_embedding_params(rk_model)
    for result in (rk, trl):
        result.set_rates(n_params, max(peaks))
    return build_report(s, splits, rk, trl, Machine(peaks, load, threads), n_params)



def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-train-bench-")


if __name__ == "__main__":
    sys.exit(main())
