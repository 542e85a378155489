"""``rewardkit data curate``: deduplicate, decontaminate, filter and balance a preference file."""

from __future__ import annotations

import argparse
from typing import Any

from rewardkit.cli.common import add_device_options, command

HELP = ("curate a preference file: exact and MinHash near deduplication, decontamination against benchmark "
        "files (prompt n-grams, exact responses), filtering by any scorer's agreement or best fraction per "
        "group, length balancing. Steps run in that order, each optional; OUT gets kept.jsonl, removed.jsonl "
        "(every removed record with its reason), report.json and report.html")


def add_command(dsub: Any) -> None:
    """Register ``curate`` under ``rewardkit data``."""
    p = command(dsub, "curate", HELP, _run)
    p.add_argument("input", help="preference file (jsonl / json / parquet, optionally .gz, or a datasets folder); "
                   "jsonl records are written back unchanged, other inputs as canonical rows")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dedup", default="", help="comma list of exact,near (empty: no deduplication)")
    p.add_argument("--dedup-scope", default="pair", choices=["pair", "prompt"],
                   help="exact dedup key: normalised prompt + both responses, or the prompt only")
    p.add_argument("--near-threshold", type=float, default=0.8,
                   help="near dedup: Jaccard similarity of word shingles (prompt + responses) from which pairs are "
                   "near duplicates (MinHash LSH; bands and rows chosen for it)")
    p.add_argument("--shingle", type=int, default=5, help="near dedup: words per shingle")
    p.add_argument("--num-perm", type=int, default=128, help="near dedup: MinHash permutations")
    p.add_argument("--decontaminate", nargs="+", default=[], metavar="FILE",
                   help="benchmark / eval files: a pair is removed if its prompt shares a word n-gram with a "
                   "benchmark prompt (or equals one) or a response equals a benchmark response")
    p.add_argument("--decontaminate-format", default="auto",
                   choices=["auto", "pairs", "rewardbench", "rewardbench2", "rmb", "rmbench"],
                   help="reader for the --decontaminate files (auto: from the first record's fields)")
    p.add_argument("--ngram", type=int, default=13, help="decontamination: words per prompt n-gram")
    p.add_argument("--response-min-words", type=int, default=13,
                   help="decontamination: a response matches a benchmark response exactly only when it has at "
                   "least this many words (short answers like 'What do you mean?' recur everywhere; 0: all)")
    p.add_argument("--filter-by", default=None, metavar="SCORER",
                   help="scorer as in `rewardkit score --model` (a reward model folder, rm:PATH, judge:MODEL, "
                   "dpo:POLICY, verifier, length, ...)")
    p.add_argument("--keep", default=None,
                   help="with --filter-by: 'agree' keeps pairs with P(chosen > rejected) > 0.5; 'top:F' keeps the "
                   "best fraction F (ceil(F × size)) of each --per group by --select-by")
    p.add_argument("--select-by", default="margin", choices=["margin", "chosen", "mean"],
                   help="top:F ranks by the chosen − rejected reward margin, the chosen reward, or their mean "
                   "(judges: margin only, their log-odds)")
    p.add_argument("--per", default=None, metavar="COLUMN",
                   help="raw field grouping top:F and the report (missing: its own group '(none)'; the report "
                   "uses a 'source' field when --per is not given)")
    p.add_argument("--balance-length", default=None, choices=["drop", "weight"],
                   help="make 'longer chosen wins' 50%%: drop a seeded random part of the majority side, or keep "
                   "all and add a 'weight' field (inverse frequency, each side weighs half). With no pair on the "
                   "minority side, drop removes every unequal pair and weight leaves every weight 1")
    p.add_argument("--skip-invalid", action="store_true",
                   help="write invalid records to removed.jsonl (reason 'invalid') instead of stopping at the first")
    p.add_argument("--seed", type=int, default=0, help="seed of the length-balance drop and MinHash permutations")
    p.add_argument("--batch-tokens", type=int, default=None, help="scorer: padded-token budget per batch")
    p.add_argument("--max-length", type=int, default=None, help="scorer: override the model's max length")
    p.add_argument("--ref-model", default=None, help="dpo scorer: the reference model")
    p.add_argument("--ref-free", default=None, choices=["avg", "sum", "norm"], help="dpo scorer: reference-free variant")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_options(p)


def _run(args: argparse.Namespace) -> int:
    from rewardkit.curate import CurateConfig, curate

    config = CurateConfig(
        dedup=tuple(d.strip() for d in args.dedup.split(",") if d.strip()), dedup_scope=args.dedup_scope,
        near_threshold=args.near_threshold, shingle=args.shingle, num_perm=args.num_perm,
        decontaminate=tuple(args.decontaminate), decontaminate_format=args.decontaminate_format, ngram=args.ngram,
        response_min_words=args.response_min_words,
        filter_by=args.filter_by, keep=args.keep, select_by=args.select_by, per=args.per,
        balance_length=args.balance_length, skip_invalid=args.skip_invalid, seed=args.seed,
        progress=not args.no_progress)
    scorer = None
    if config.filter_by is not None:
        from rewardkit.scoring import ScorerOptions, build_scorer

        scorer = build_scorer(config.filter_by, ScorerOptions(
            max_length=args.max_length, dtype=args.dtype, device=args.device, batch_tokens=args.batch_tokens,
            ref_model=args.ref_model, ref_free=args.ref_free, seed=args.seed))
    result = curate(args.input, args.out, config, scorer=scorer)
    print(result)
    print(f"wrote {args.out}/kept.jsonl, removed.jsonl, report.json, report.html")
    return 0
