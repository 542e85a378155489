"""``rewardkit eval unlearn``: TOFU's unlearning metrics of a causal LM on forget / retain files.

Reached from ``rewardkit eval unlearn ...``: :func:`rewardkit.cli.main.main` routes an argument list that
starts with ``eval unlearn`` to :func:`build_parser`, so ``rewardkit eval --model ... --data ...`` (the reward
model benchmark) keeps its own parser unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rewardkit.cli.common import add_device_options

HELP = ("measure unlearning (TOFU's metrics): answer probability, ROUGE-L recall and exact match of greedy "
        "answers, truth ratio on the forget and retain sets, model utility, forget quality (KS test against a "
        "model never trained on the forget set) and perplexity on general text; writes results.json and report.html")
EPILOG = """files (--forget, --retain, --general): rows of `rewardkit data synth --task fictitious-facts`
(prompt/completion, paraphrased_answer, perturbed_answers), TOFU rows (question, answer, paraphrased_answer,
perturbed_answer), MUSE knowmem/verbmem rows or {"text": ...} rows (--general).

examples:
  rewardkit eval unlearn --model runs/unlearn --forget facts/forget.jsonl --retain facts/retain.jsonl --out runs/eval-unlearn
  rewardkit eval unlearn --model runs/unlearn --forget facts/forget.jsonl --retain facts/retain.jsonl \\
      --general facts/general.jsonl --reference-retain-model runs/sft-retain-only --out runs/eval-unlearn
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``rewardkit eval unlearn`` parser (its own parser: ``rewardkit eval``'s options do not apply)."""
    p = argparse.ArgumentParser(prog="rewardkit eval unlearn", description=HELP, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=run_eval_unlearn_command)
    p.add_argument("--model", required=True, help="causal LM to evaluate: a folder (e.g. the output of "
                   "`rewardkit train unlearn`; its logs/metrics.jsonl gives the training curves) or an offline alias")
    p.add_argument("--forget", required=True, help="forget-set rows (what the model should no longer know)")
    p.add_argument("--retain", default=None, help="retain-set rows (what it should still know): model utility")
    p.add_argument("--general", default=None, help="general text rows ({\"text\": ...}): perplexity")
    p.add_argument("--reference-retain-model", default=None, metavar="MODEL",
                   help="a model never trained on the forget set (e.g. fine-tuned on the retain set only): forget "
                   "quality = KS-test p-value between its and --model's forget-set truth ratios")
    p.add_argument("--out", required=True, help="output folder: results.json, report.html")
    p.add_argument("--max-new-tokens", type=int, default=32, help="greedy answer length (default 32)")
    p.add_argument("--max-length", type=int, default=512, help="max tokens of prompt + answer (default 512)")
    p.add_argument("--batch-size", type=int, default=16, help="rows per forward pass (default 16)")
    p.add_argument("--perturbed-mean", default="geometric", choices=["geometric", "arithmetic"],
                   help="how the truth ratio averages the wrong answers' normalised probabilities: geometric = "
                   "TOFU's code and open-unlearning (default), arithmetic = the TOFU paper")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N rows of each file")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    add_device_options(p)
    return p


def run_eval_unlearn_command(args: argparse.Namespace) -> int:
    import torch

    from rewardkit.errors import OptionError
    from rewardkit.eval.unlearn import evaluate_unlearning
    from rewardkit.eval.unlearn_report import read_eval_curves, results_dict, write_report, write_results

    if args.limit is not None and args.limit < 1:
        raise OptionError(f"--limit must be >= 1, got {args.limit}")
    if args.threads is not None:
        if args.threads < 1:
            raise OptionError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    forget = _rows(args.forget, args.limit)
    retain = _rows(args.retain, args.limit) if args.retain else None
    general = [_text(r) for r in _rows(args.general, args.limit)] if args.general else None
    model = _load(args.model, args)
    reference = _load(args.reference_retain_model, args) if args.reference_retain_model else None
    result = evaluate_unlearning(model, forget, retain, general, reference, max_new_tokens=args.max_new_tokens,
                                 batch_size=args.batch_size, max_length=args.max_length,
                                 perturbed_mean=args.perturbed_mean)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = results_dict(result, model=args.model, forget=args.forget, retain=args.retain, general=args.general,
                           reference=args.reference_retain_model, command=list(sys.argv))
    write_results(results, out)
    write_report(results, read_eval_curves(Path(args.model) / "logs" / "metrics.jsonl"), out)
    _print(results)
    print(f"wrote {out / 'results.json'}, {out / 'report.html'}")
    return 0


def _rows(path: str, limit: int | None) -> list[Any]:
    from rewardkit.data.unlearning import read_unlearning_rows
    from rewardkit.errors import MissingInputError

    if not Path(path).exists():
        raise MissingInputError(f"{path}: no such file")
    rows = read_unlearning_rows(path)
    return rows[:limit] if limit else rows


def _text(row: Any) -> str:
    """A general-text row's text (``{"text": ...}`` rows: the answer; question-answer rows: both)."""
    return f"{row.question} {row.answer}" if row.question else row.answer


def _load(name: str, args: argparse.Namespace) -> Any:
    from rewardkit.errors import MissingInputError
    from rewardkit.models.causal_lm import load_causal_lm

    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise MissingInputError(f"{name}: no such model folder")
    return load_causal_lm(name, dtype=args.dtype, device=args.device)


def _print(results: dict[str, Any]) -> None:
    m, splits = results["metrics"], results["splits"]
    for name, s in splits.items():
        if s is not None:
            print(f"{name}: answer prob {_num(s['answer_prob'])}, ROUGE-L recall {_num(s['rouge_l_recall'])}, exact "
                  f"match {_num(s['exact_match'])}, truth ratio {_num(s['truth_ratio_mean'])} (score "
                  f"{_num(s['truth_ratio_score'])}), {s['n']} rows")
    print(f"model utility {_num(m['model_utility'])}; forget quality {_num(m['forget_quality'])}; "
          f"general perplexity {_num(m['general_perplexity'])}")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"
