"""Aligning a policy with rewardkit on the gold testbed: DPO, SimPO, RSF, model averaging, and speed.

SmolLM2-135M-Instruct (the ``smollm2-135m`` alias) is aligned on ifeval-lite's shipped training set and
measured on its held-out prompts, whose gold reward (the verifiers: the fraction of a prompt's
instructions a response meets) is known:

- **gold reward before vs after** ``train policy --loss dpo`` (LoRA), ``--loss simpo`` (LoRA) and one
  iteration of ``train rsf`` (picks by a reward model trained on the testbed's pairs, ``--rm``): each
  policy samples ``--samples`` responses to each held-out prompt (same seeds for every policy); the
  per-prompt mean gold is compared with the base policy's, paired over prompts (95% bootstrap);
- **alignment tax**: the mean per-token log-likelihood of held-out text the alignment never touched
  (HH-RLHF harmless-base chosen responses, ``--tax-rows``), before vs after;
- **model averaging**: θ = α·θ_base + (1 − α)·θ_DPO for α ∈ ``--alphas`` (``rewardkit average``), and
  HMA's searched per-group ratios (mean fixed at ``--hma-init``), each on the same two axes; the plot
  shows whether the searched point lies on or beyond the global front;
- **throughput** of ``train policy --loss dpo`` vs TRL's ``DPOTrainer`` on the same pairs, settings and
  threads (tokens/s over the training loop, model-FLOP utilisation against the fp32 matmul peak measured
  in the same run, and their ratio).

Prints one JSON object (progress on stderr) and writes ``policy.png`` next to ``--out``::

    python benchmarks/policy.py --rm runs/quickstart/rm --threads 2 --out benchmarks/results/policy.json
    python benchmarks/policy.py --smoke --workdir /tmp/policy-smoke        # minutes: tiny sizes
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
import torch

from _common import read_jsonl, run_json_main, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
IFEVAL = ROOT / "src" / "rewardkit" / "resources" / "ifeval_lite"
HH = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def log(message: str) -> None:
    print(f"[policy] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data


def prepare_data(args: argparse.Namespace, workdir: Path) -> dict[str, Path]:
    """Training pairs (the shipped train split, first ``--pairs``), RSF prompts (unique training prompts
    with their constraints), held-out prompts (the test split's candidates file), and tax text."""
    pairs = read_jsonl(IFEVAL / "train.jsonl")[: args.pairs]
    seen: dict[str, dict[str, Any]] = {}
    for row in read_jsonl(IFEVAL / "train.jsonl"):
        seen.setdefault(json.dumps(row["prompt"]), {"prompt": row["prompt"], "constraints": row["constraints"]})
    rsf_prompts = list(seen.values())[: args.rsf_prompts]
    held_out = [{"prompt_id": r["prompt_id"], "prompt": r["prompt"], "constraints": r["constraints"]}
                for r in read_jsonl(IFEVAL / "candidates.jsonl")][: args.eval_prompts]
    tax = []
    for row in read_jsonl(HH):
        if len(tax) >= args.tax_rows:
            break
        if isinstance(row.get("chosen"), str):  # raw HH: "\n\nHuman: ... \n\nAssistant: ..." text
            head, _, last = row["chosen"].rpartition("\n\nAssistant:")
            tax.append({"prompt": head.replace("\n\nHuman:", "").strip(), "response": last.strip()})
    return {"pairs": write_jsonl(workdir / "pairs.jsonl", pairs),
            "rsf_prompts": write_jsonl(workdir / "rsf_prompts.jsonl", rsf_prompts),
            "held_out": write_jsonl(workdir / "held_out.jsonl", held_out),
            "tax": write_jsonl(workdir / "tax.jsonl", tax)}


# ------------------------------------------------------------------------------------ measuring


def gold_per_prompt(model_dir: str, data: dict[str, Path], args: argparse.Namespace) -> list[float]:
    """Mean gold reward over ``--samples`` responses per held-out prompt (seeded: every policy gets the
    same sampling seeds), (P,)."""
    from rewardkit.infer.sampler import SamplingConfig, load_policy, sample
    from rewardkit.scoring import ScorerOptions, build_scorer

    rows = read_jsonl(data["held_out"])
    policy = load_policy(model_dir)
    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_k=50, seed=args.seed)
    samples = sample(policy, [r["prompt"] for r in rows], args.samples, cfg)
    verifier = build_scorer("verifier", ScorerOptions(items=str(data["held_out"])))
    out = []
    for row, group in zip(rows, samples, strict=True):
        scores = verifier.score([row["prompt"]] * len(group), [[{"role": "assistant", "content": s.text}] for s in group])
        out.append(float(np.mean(scores.rewards)))
    return out


def tax_loglik(model_dir: str, data: dict[str, Path]) -> float:
    """Mean per-token log-likelihood of the held-out HH responses (higher = less forgetting)."""
    from rewardkit.scoring import ScorerOptions, build_scorer

    rows = read_jsonl(data["tax"])
    scorer = build_scorer(f"dpo:{model_dir}", ScorerOptions(ref_free="avg", max_length=512, dtype="float32"))
    out = scorer.score([[{"role": "user", "content": r["prompt"]}] for r in rows],
                       [[{"role": "assistant", "content": r["response"]}] for r in rows])
    return float(np.mean(out.rewards))


def measure(name: str, model_dir: str, data: dict[str, Path], args: argparse.Namespace,
            base_gold: list[float] | None) -> dict[str, Any]:
    from rewardkit.stats import bootstrap_mean

    t0 = time.perf_counter()
    gold = gold_per_prompt(model_dir, data, args)
    point: dict[str, Any] = {"name": name, "model": model_dir, "gold": bootstrap_mean(gold, seed=args.seed).to_dict(),
                             "tax_loglik": tax_loglik(model_dir, data), "gold_per_prompt": gold}
    if base_gold is not None:
        diff = np.asarray(gold) - np.asarray(base_gold)
        point["gold_minus_base"] = bootstrap_mean(diff, seed=args.seed).to_dict()
    point["seconds"] = round(time.perf_counter() - t0, 1)
    log(f"{name}: gold {point['gold']['value']:.3f} [{point['gold']['ci95_low']:.3f}, {point['gold']['ci95_high']:.3f}]"
        f", tax loglik {point['tax_loglik']:.4f} ({point['seconds']} s)")
    return point


# ------------------------------------------------------------------------------------ alignment


def train_policy_run(loss: str, data: Path, out: Path, args: argparse.Namespace, extra: Sequence[str] = ()
                     ) -> dict[str, Any]:
    """``rewardkit train policy --loss LOSS`` with LoRA on the pairs; returns its metadata."""
    from rewardkit.train.config import load_config
    from rewardkit.train.policy import PolicyTrainConfig, train_policy

    values = {"data": str(data), "model": args.policy, "out": str(out), "epochs": args.epochs, "lr": args.lr,
              "batch_size": args.batch_size, "max_length": args.max_length, "seed": args.seed, "device": "cpu",
              "max_steps": args.max_steps, "logging_steps": 5}
    overrides = [f"loss.name={loss}", f"lora.r={args.lora_r}", *extra]
    t0 = time.perf_counter()
    result = train_policy(load_config(PolicyTrainConfig, None, values, overrides))
    log(f"train policy --loss {loss}: {time.perf_counter() - t0:.0f} s")
    return result.metadata


def rsf_run(data: dict[str, Path], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from rewardkit.infer.sampler import SamplingConfig
    from rewardkit.train.rsf import RSFConfig, run_rsf

    cfg = RSFConfig(policy=args.policy, reward=f"rm:{args.rm}" if args.rm else "verifier", prompts=str(data["rsf_prompts"]),
                    out=str(workdir / "rsf"), k=args.rsf_k, iterations=1, gold="verifier",
                    sampling=SamplingConfig(max_new_tokens=args.max_new_tokens, seed=args.seed + 7),
                    prompts_per_batch=args.prompts_per_batch, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                    max_length=args.max_length, lora_r=args.lora_r, device="cpu", progress=False,
                    sft=("logging_steps=5",))
    t0 = time.perf_counter()
    out = run_rsf(cfg)
    log(f"train rsf (1 iteration, k={args.rsf_k}): {time.perf_counter() - t0:.0f} s")
    return out


# ------------------------------------------------------------------------------------ the run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default="smollm2-135m", help="base policy (alias, folder or hub name)")
    p.add_argument("--rm", default=None, help="reward model folder for RSF's picks (default: the verifier, an oracle)")
    p.add_argument("--pairs", type=int, default=968, help="training pairs (first N of the shipped train split)")
    p.add_argument("--rsf-prompts", type=int, default=96, help="training prompts RSF samples")
    p.add_argument("--rsf-k", type=int, default=4, help="RSF samples per prompt")
    p.add_argument("--eval-prompts", type=int, default=66, help="held-out prompts (66 ship)")
    p.add_argument("--samples", type=int, default=4, help="samples per held-out prompt per policy")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample")
    p.add_argument("--prompts-per-batch", type=int, default=8, help="RSF: prompts decoded together")
    p.add_argument("--tax-rows", type=int, default=100, help="held-out HH chosen responses for the tax")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--simpo-beta", type=float, default=2.0)
    p.add_argument("--alphas", default="0.25,0.5,0.75", help="averaging points besides 0 (DPO) and 1 (base)")
    p.add_argument("--hma-init", type=float, default=0.5, help="HMA: mean ratio kept fixed while searching")
    p.add_argument("--hma-lr", type=float, default=0.05, help="HMA: Adam lr on the group logits (LMFlow's 2e-5 "
                   "barely moves them in one epoch of a small file)")
    p.add_argument("--throughput-pairs", type=int, default=64, help="pairs for the train policy vs TRL timing")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: base,dpo,simpo,rsf,average,hma,throughput (base is measured "
                   "whenever an aligned policy is)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script end to end")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.pairs, args.rsf_prompts, args.eval_prompts, args.samples, args.tax_rows = 16, 8, 4, 2, 8
        args.max_new_tokens, args.max_steps, args.throughput_pairs, args.alphas = 16, 2, 8, "0.5"
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    data = prepare_data(args, workdir)
    from rewardkit.models.backbones import resolve_backbone

    base_dir = resolve_backbone(args.policy)
    report: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "threads": torch.get_num_threads(), "points": {}}
    points = report["points"]
    aligned = {"dpo", "simpo", "rsf"} - skip
    base_gold: list[float] = []
    if aligned or "base" not in skip:  # the reference point of every comparison
        points["base"] = measure("base", base_dir, data, args, None)
        base_gold = points["base"]["gold_per_prompt"]
    if "dpo" not in skip:
        report["dpo_training"] = train_summary(train_policy_run("dpo", data["pairs"], workdir / "dpo", args))
        points["dpo"] = measure("dpo", str(workdir / "dpo"), data, args, base_gold)
    if "simpo" not in skip:
        report["simpo_training"] = train_summary(train_policy_run(
            "simpo", data["pairs"], workdir / "simpo", args, [f"loss.beta={args.simpo_beta}"]))
        points["simpo"] = measure("simpo", str(workdir / "simpo"), data, args, base_gold)
    if "rsf" not in skip:
        rsf = rsf_run(data, workdir, args)
        report["rsf_log"] = rsf["iterations"]
        points["rsf"] = measure("rsf", rsf["final_policy"], data, args, base_gold)
    if "dpo" not in skip and "average" not in skip:
        report["averaging"] = averaging_sweep(base_dir, str(workdir / "dpo"), data, workdir, args, base_gold, points)
    if "dpo" not in skip and "hma" not in skip:
        points["hma"] = hma_point(base_dir, str(workdir / "dpo"), data, workdir, args, base_gold)
    if "throughput" not in skip:
        report["throughput"] = throughput(data, workdir, args)
    plot(report, (args.out.with_suffix(".png") if args.out else workdir / "policy.png"))
    return report


def train_summary(meta: dict[str, Any]) -> dict[str, Any]:
    return {"training": meta.get("training"), "eval": meta.get("metrics", {}).get("eval"),
            "train_last": meta.get("metrics", {}).get("train_last")}


def averaging_sweep(base: str, tuned: str, data: dict[str, Path], workdir: Path, args: argparse.Namespace,
                    base_gold: list[float], points: dict[str, Any]) -> list[dict[str, Any]]:
    """``rewardkit average --alpha a`` for each of ``--alphas`` (α = 0 is the DPO model, α = 1 the base,
    both measured already), each measured like every other policy."""
    from rewardkit.cli.main import main as rewardkit

    sweep = [{"alpha": 0.0, **_axes(points["dpo"])}]
    for alpha in (float(a) for a in args.alphas.split(",") if a.strip()):
        folder = workdir / f"avg_{alpha:g}"
        if rewardkit(["average", "--base", base, "--tuned", tuned, "--alpha", str(alpha), "--out", str(folder)]) != 0:
            raise RuntimeError(f"rewardkit average --alpha {alpha} failed")
        point = measure(f"alpha={alpha:g}", str(folder), data, args, base_gold)
        points[f"alpha={alpha:g}"] = point
        sweep.append({"alpha": alpha, **_axes(point)})
    sweep.append({"alpha": 1.0, **_axes(points["base"])})
    return sweep


def _axes(point: dict[str, Any]) -> dict[str, Any]:
    return {"gold": point["gold"], "tax_loglik": point["tax_loglik"], **(
        {"gold_minus_base": point["gold_minus_base"]} if "gold_minus_base" in point else {})}


def hma_point(base: str, tuned: str, data: dict[str, Path], workdir: Path, args: argparse.Namespace,
              base_gold: list[float]) -> dict[str, Any]:
    """``rewardkit average --search`` (HMA): three layer groups, mean α fixed at ``--hma-init``, searched on
    the collected high-reward data (RSF's picks when RSF ran, else the pairs' chosen responses)."""
    from rewardkit.cli.main import main as rewardkit

    picks = workdir / "rsf" / "iter_1" / "picks.jsonl"
    collected = picks if picks.exists() else write_jsonl(workdir / "collected.jsonl", [
        {"prompt": r["prompt"], "completion": r["chosen"]} for r in read_jsonl(data["pairs"])])
    folder = workdir / "hma"
    code = rewardkit(["average", "--base", base, "--tuned", tuned, "--search", "--data", str(collected), "--groups", "3",
                      "--init", str(args.hma_init), "--lr", str(args.hma_lr), "--max-length", str(args.max_length),
                      "--out", str(folder)])
    if code != 0:
        raise RuntimeError("rewardkit average --search failed")
    point = measure("hma", str(folder), data, args, base_gold)
    record = json.loads((folder / "rewardkit.json").read_text(encoding="utf-8"))
    point["search"] = {"groups": record["groups"], "rest_alpha": record["rest_alpha"],
                       "nll_per_token_before": record["search"]["nll_per_token_before"],
                       "nll_per_token_after": record["search"]["nll_per_token_after"],
                       "steps": len(record["search"]["history"])}
    point["collected"] = str(collected)
    return point


def throughput(data: dict[str, Path], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``train policy --loss dpo`` vs TRL's ``DPOTrainer``: full fine-tuning (so 6·N FLOPs per token is the
    model-FLOP count), fp32, the same pairs, batch, max length, learning rate, schedule, seed and threads;
    reference log-probs precomputed by both before the loop. Tokens are each system's own real (non-pad)
    tokens of chosen and rejected sequences; loop seconds exclude loading, tokenizing and the reference."""
    from rewardkit.models.backbones import resolve_backbone
    from train_throughput import make_clock, matmul_peak_gflops

    pairs = read_jsonl(data["pairs"])[: args.throughput_pairs]
    path = write_jsonl(workdir / "throughput_pairs.jsonl", pairs)
    peaks = [matmul_peak_gflops()]
    t0 = time.perf_counter()
    meta = train_policy_run("dpo", path, workdir / "tp_rewardkit", _full_ft(args),
                            ["lora.r=0", "warmup_ratio=0", "scheduler=constant", "group_by_length=false"])
    rk_total = time.perf_counter() - t0
    rk_loop = float(meta["training"]["seconds"])
    rk_tokens = _rewardkit_tokens(path, args)
    peaks.append(matmul_peak_gflops())
    trl = _trl_dpo(resolve_backbone(args.policy), pairs, workdir / "tp_trl", args, make_clock())
    peaks.append(matmul_peak_gflops())
    n_params = _non_embedding_params(resolve_backbone(args.policy))
    peak = max(peaks)
    out = {"pairs": len(pairs), "batch_size": args.batch_size, "max_length": args.max_length, "full_fine_tuning": True,
           "matmul_peak_gflops_fp32": peak, "matmul_peaks_by_phase": peaks, "non_embedding_params": n_params}
    for name, loop_s, total_s, tokens in (("rewardkit", rk_loop, rk_total, rk_tokens),
                                          ("trl", trl["loop_s"], trl["total_s"], trl["tokens"])):
        out[name] = {"loop_seconds": loop_s, "call_seconds": total_s, "tokens": tokens,
                     "tokens_per_s": tokens / loop_s, "pairs_per_s": len(pairs) / loop_s,
                     "mfu": 6.0 * n_params * tokens / loop_s / (peak * 1e9)}
    out["trl"]["final_loss"] = trl["final_loss"]
    out["rewardkit"]["final_loss"] = (meta.get("metrics", {}).get("train_last") or {}).get("loss")
    out["ratio_tokens_per_s"] = out["rewardkit"]["tokens_per_s"] / out["trl"]["tokens_per_s"]
    out["ratio_pairs_per_s"] = out["rewardkit"]["pairs_per_s"] / out["trl"]["pairs_per_s"]
    out["ratio_call_seconds"] = trl["total_s"] / rk_total
    log(f"throughput: rewardkit {out['rewardkit']['tokens_per_s']:.0f} tok/s, TRL {out['trl']['tokens_per_s']:.0f} "
        f"tok/s, ratio {out['ratio_tokens_per_s']:.2f}")
    return out


def _full_ft(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "lr": 1e-6, "epochs": 1.0, "max_steps": -1, "lora_r": 0})


def _non_embedding_params(path: str) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for name, p in model.named_parameters() if "embed" not in name and "lm_head" not in name)


def _rewardkit_tokens(path: Path, args: argparse.Namespace) -> int:
    """Real tokens of every chosen and rejected sequence as rewardkit encodes them (its truncation policy)."""
    from transformers import AutoTokenizer

    from rewardkit.data.chat import PairEncoder
    from rewardkit.models.backbones import resolve_backbone

    encoder = PairEncoder(AutoTokenizer.from_pretrained(resolve_backbone(args.policy)), "chat", args.max_length)
    total = 0
    for row in read_jsonl(path):
        for side in ("chosen", "rejected"):
            total += len(encoder.encode(row["prompt"], row[side], True).input_ids)
    return total


def _trl_dpo(model_dir: str, pairs: Sequence[dict[str, Any]], out: Path, args: argparse.Namespace, clock: Any
             ) -> dict[str, Any]:
    """TRL 1.16 ``DPOTrainer`` (sigmoid loss, β 0.1) with the same settings, timed around the loop."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in pairs]
    config = DPOConfig(
        output_dir=str(out), per_device_train_batch_size=args.batch_size, num_train_epochs=1, learning_rate=1e-6,
        lr_scheduler_type="constant", warmup_steps=0, max_length=args.max_length, beta=0.1, loss_type=["sigmoid"],
        precompute_ref_log_probs=True, seed=args.seed, data_seed=args.seed, bf16=False, fp16=False,
        gradient_checkpointing=False, disable_dropout=True, use_cpu=True, dataloader_num_workers=0,
        logging_steps=5, save_strategy="no", eval_strategy="no", report_to="none", max_grad_norm=1.0)
    trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         callbacks=[clock])
    tokens = sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"])
                 for r in trainer.train_dataset)
    t0 = time.perf_counter()
    result = trainer.train()
    total = time.perf_counter() - t0
    return {"loop_s": clock.end - clock.begin, "total_s": total, "tokens": int(tokens),
            "final_loss": float(result.training_loss)}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sweep = report.get("averaging") or []
    if sweep:
        xs = [p["tax_loglik"] for p in sweep]
        ys = [p["gold"]["value"] for p in sweep]
        ax.plot(xs, ys, "-o", color="tab:blue", label="global averaging α·base + (1−α)·DPO", zorder=1)
        for p in sweep:
            ax.annotate(f"α={p['alpha']:g}", (p["tax_loglik"], p["gold"]["value"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    for name, p in report["points"].items():
        if name.startswith("alpha"):
            continue
        ax.errorbar(p["tax_loglik"], p["gold"]["value"],
                    yerr=[[p["gold"]["value"] - p["gold"]["ci95_low"]], [p["gold"]["ci95_high"] - p["gold"]["value"]]],
                    fmt="s", capsize=3, label=name)
    ax.set_xlabel("held-out log-likelihood per token (HH chosen; higher = less alignment tax)")
    ax.set_ylabel("gold reward on held-out ifeval-lite prompts")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-policy-")


if __name__ == "__main__":
    raise SystemExit(main())
