"""``rewardkit eval``: benchmark one or more scorers exactly by a benchmark's published rules.

Plugged into the main parser through ``rewardkit.cli.main.COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rewardkit.cli.common import add_device_options

HELP = ("benchmark reward models by the published rules of RewardBench v1/v2, RMB and RM-Bench (or any "
        "preference file), with 95%% intervals, trivial baselines, length bias, calibration and an HTML report")
EPILOG = """scorers (--model, repeatable):
  PATH | rm:PATH     a rewardkit RM folder or any HF sequence-classification RM
  dpo:MODEL          a DPO policy as an implicit RM (with --ref-model, or --ref-free avg|sum|norm)
  judge:MODEL        a generative judge: an instruct LM asked which response is better (A/B logits, both orders)
  length             dummy: longer response scores higher
  prm:DIR[#agg=A]    a process reward model (`rewardkit train prm`): reward = min (default), last or product
                     of its steps' P(right), steps split at newlines
benchmarks (--benchmark): pairs, rewardbench, rewardbench2, rmb, rmbench; first-error (a prm:DIR scorer on
  ProcessBench-style rows: problem, steps, label = first wrong step or -1; --threshold)
unlearning: `rewardkit eval unlearn --model LM --forget F --retain R --out DIR` (TOFU's metrics; see its --help)

examples:
  rewardkit eval --model runs/rm --data prefs.jsonl --out runs/eval
  rewardkit eval --model runs/rm --model runs/rm2 --benchmark rewardbench --data reward-bench.parquet --out runs/rb
  rewardkit eval --model dpo:smollm2-135m --ref-free avg --benchmark rmbench --data total_dataset.json --out runs/rmb
  rewardkit eval --model judge:smollm2-135m --benchmark rmb --data RMB_dataset --out runs/rmb --cache runs/cache
"""


def add_commands(sub: Any) -> None:
    """Add the ``eval`` subcommand to ``rewardkit``'s subparsers."""
    p = sub.add_parser("eval", help=HELP, description=HELP.replace("%%", "%"),  # help is %-formatted
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=run_eval_command)
    p.add_argument("--model", dest="models", action="append", required=True, metavar="SCORER",
                   help="scorer to evaluate; repeat to compare several side by side (see below)")
    p.add_argument("--data", required=True, help="benchmark file or folder in its published schema, or a hub "
                   "dataset name (loaded through `datasets`)")
    p.add_argument("--benchmark", default="pairs",
                   help="benchmark whose rules to apply: pairs, rewardbench, rewardbench2, rmb, rmbench, first-error "
                   "(default: pairs)")
    p.add_argument("--out", required=True, help="output folder: results.json, items.jsonl, report.html")
    p.add_argument("--split", default=None, help="split of a hub dataset (default: the benchmark's published one)")
    p.add_argument("--max-length", type=int, default=None, help="max tokens per input (default: the model's own, "
                   "from rewardkit.json or its tokenizer; always written to results.json)")
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="padded-token budget per batch (default for RMs: 512 on CPU, 65536 on GPU; 2048 for LM scorers); scores do "
                   "not depend on it")
    add_device_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of any random choice")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="keep per-input scores in DIR; an interrupted run resumes without rescoring")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out invalid records (counted and listed in results.json) instead of stopping")
    p.add_argument("--ref-model", default=None, help="reference model of dpo: scorers (implicit reward = "
                   "Σ log π − Σ log π_ref)")
    p.add_argument("--ref-free", default=None, choices=["avg", "sum", "norm"],
                   help="reference-free implicit reward of dpo: scorers: avg = mean log π(y_t) per response "
                   "token, sum = Σ log π(y_t), norm = −‖(log π(y_t))_t‖₂ (reward-bench's 'norm')")
    p.add_argument("--judge-single-order", action="store_true",
                   help="ask a judge each comparison once, in a seeded random A/B order (default: both orders)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items (a quick look)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--threshold", type=float, default=0.5, help="first-error: a step is predicted wrong when its "
                   "P(right) < threshold (ProcessBench's rule; default 0.5)")


def run_eval_command(args: argparse.Namespace) -> int:
    if args.benchmark == "first-error":  # per-step scores of a PRM: its own path (rewardkit.eval.first_error)
        from rewardkit.cli.eval_first_error import run_first_error_command

        return run_first_error_command(args)
    from rewardkit.eval.runner import EvalConfig, run_eval

    cfg = EvalConfig(models=tuple(args.models), data=args.data, benchmark=args.benchmark, out=args.out,
                     split=args.split, max_length=args.max_length, dtype=args.dtype, batch_tokens=args.batch_tokens,
                     device=args.device, seed=args.seed, n_boot=args.n_boot, cache=args.cache,
                     skip_invalid=args.skip_invalid, ref_model=args.ref_model, ref_free=args.ref_free,
                     judge_both_orders=not args.judge_single_order, limit=args.limit, report=not args.no_report,
                     command=tuple(sys.argv))
    result, _ = run_eval(cfg)
    from rewardkit.scorers.shards import current_shard

    if not current_shard(cfg.device).is_main:  # under torchrun the first process writes and reports
        return 0
    print_result(result)
    out = Path(args.out)
    print(f"wrote {out / 'results.json'}, {out / 'items.jsonl'}" + ("" if args.no_report else f", {out / 'report.html'}"))
    return 0


def print_result(result: Any) -> None:
    """The results table (value [95% interval] per model beside the baselines), then the checks."""
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)  # logs and pipes: do not squeeze the table
    d = result.data
    incomplete = "" if result.complete else f" — INCOMPLETE: {result.coverage.headline()}"
    table = Table(title=f"{result.benchmark}: {d.items} items from {d.source} ({d.skipped_invalid} invalid "
                  f"skipped){incomplete}")
    table.add_column("metric", no_wrap=True)
    for m in result.models:
        table.add_column(m.spec if len(m.spec) <= 32 else "…" + m.spec[-31:], justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    for name in ("random", "longer-wins", "shorter-wins"):
        table.add_column(name, justify="right", style="dim")
    for m0 in result.models[0].metrics:
        cells = [_ci(m.metric(m0.key)) for m in result.models]
        base = [_num(result.baselines[b].get(m0.key)) for b in ("random", "longer_wins", "shorter_wins")]
        style = "bold" if m0.level == "overall" else None
        label = m0.key if result.complete or m0.key != "overall" else f"overall (incomplete: {result.coverage.short()})"
        table.add_row(label, *cells, str(m0.n), *base, style=style)
    console.print(table)
    for m in result.models:
        lb, cal, sc = m.length_bias, m.calibration, m.scoring
        console.print(f"[bold]{m.spec}[/]: length bias Spearman(Δscore, Δlength) {_num(lb.margin_length_spearman)}, "
                      f"accuracy when correct is longer {_num(lb.accuracy_correct_longer)} / shorter "
                      f"{_num(lb.accuracy_correct_shorter)}; ECE of σ(Δ) {_num(cal.ece)}; {m.truncated_items} items "
                      f"truncated; {sc['scored']} inputs scored ({sc['from_cache']} from cache) in {sc['seconds']:.1f} s")
        _print_uncertainty_and_objectives(console, m)
        if m.truncated_share > 0.10:
            console.print(f"[red]warning[/] {m.spec}: {m.truncated_share:.0%} of the items were truncated by its max "
                          "length; raise --max-length (results.json: truncated_share)")
    if result.shortcuts is not None:
        _print_shortcuts(console, result.shortcuts)
    for c in result.comparisons:
        if c.key == "overall" or c.key.startswith("section/"):
            r = c.result
            console.print(f"{c.key}: {c.model_b} − {c.model_a} = {_num(r.diff)} [{_num(r.low)}, {_num(r.high)}], "
                          f"paired bootstrap p = {_num(r.p_value)}")
    for line in d.remarks():
        console.print(f"[yellow]note[/] {line}")


def _print_uncertainty_and_objectives(console: Any, m: Any) -> None:
    if m.abstention is not None:
        a = m.abstention
        console.print(f"{m.spec}: abstaining on the 20% most uncertain items: accuracy {_tri(a.accuracy_at_80)} vs "
                      f"{_tri(a.accuracy_all)} on all; accuracy-coverage area {_tri(a.area)} (gain {_tri(a.gain)})")
    if m.objectives:
        shown = ", ".join(f"{name} {_num(v['value'])} [{_num(v['ci95_low'])}, {_num(v['ci95_high'])}]"
                          for name, v in m.objectives.items())
        console.print(f"{m.spec}: each objective alone as the score: {shown}")
    if m.gating:
        g = m.gating
        spread = ", ".join(f"{name} {v['mean']:.2f} ± {v['std']:.2f}" for name, v in g["objectives"].items())
        console.print(f"{m.spec}: gating weights (mean ± std over responses): {spread}; top weight {g['top_weight_mean']:.2f} "
                      f"on average, entropy {g['entropy_mean']:.2f} vs {g['entropy_uniform']:.2f} uniform")


def _print_shortcuts(console: Any, sc: dict[str, Any]) -> None:
    """Testbed pairs: the rules that never read the prompt, and each model with the prompts swapped."""
    rules = ", ".join(f"{name.replace('_', '-')} {_num(sc[name]['value'])}"
                      for name in ("edited_wins", "longer_wins", "shorter_wins") if name in sc)
    console.print(f"shortcut baselines (testbed pairs; a tie counts half): {rules}; the best any prompt-blind "
                  f"scorer can do {_num(sc['prompt_blind_ceiling'])}")
    for spec, acc in sc["prompt_swap"].items():
        console.print(f"{spec} with every prompt swapped for another request's: {_num(acc['value'])} "
                      f"[{_num(acc['ci95_low'])}, {_num(acc['ci95_high'])}] (a model that reads the prompt falls "
                      "towards chance)")


def _tri(v: tuple[float, float, float]) -> str:
    return f"{_num(v[0])} [{_num(v[1])}, {_num(v[2])}]"


def _num(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def _ci(m: Any) -> str:
    return "–" if m is None else f"{_num(m.value)} [{_num(m.low)}, {_num(m.high)}]"
