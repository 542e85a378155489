"""``rewardkit score``: any scorer over a file of pairs or completions."""

from __future__ import annotations

import argparse
from typing import Any

from rewardkit.cli.common import (
    add_device_options,
    add_pessimism_option,
    add_sandbox_options,
    command,
    sandbox_limits,
)


def add_commands(sub: Any) -> None:
    p = command(sub, "score", "score a file of pairs (any supported format) or prompt/completion rows with any "
                "scorer; output keeps input order and every field, adding chosen_score/rejected_score or score "
                "(and objectives / uncertainty when the scorer has them); under torchrun / accelerate launch each process "
                "scores a shard and the first writes the output, identical to one process", _run)
    p.add_argument("--model", required=True, help="scorer: a reward model folder (rewardkit or any HF "
                   "sequence-classification RM) or rm:PATH; dpo:POLICY (with --ref-model or --ref-free); "
                   "judge:MODEL (pairs only); direction:RM#name=w,...; verifier (checks each row's "
                   "constraints/answer/tests); hybrid:SCORER; length")
    p.add_argument("--data", required=True, help="input file or datasets folder")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--batch-tokens", type=int, default=None, help="padded-token budget per batch, sorted by "
                   "length (default for reward models: 512 on CPU, 65536 on GPU; 2048 for LM scorers); scores do not "
                   "depend on it")
    p.add_argument("--max-length", type=int, default=None, help="override the model's max length")
    p.add_argument("--ref-model", default=None, help="dpo: the reference model")
    p.add_argument("--ref-free", default=None, choices=["avg", "sum", "norm"], help="dpo: reference-free variant")
    p.add_argument("--skip-invalid", action="store_true",
                   help="write invalid records back with an 'error' field instead of stopping")
    add_pessimism_option(p)
    add_device_options(p)
    add_sandbox_options(p)


def _run(args: argparse.Namespace) -> int:
    from rewardkit.scorers.files import score_file
    from rewardkit.scoring import ScorerOptions

    opts = ScorerOptions(max_length=args.max_length, dtype=args.dtype, device=args.device,
                         batch_tokens=args.batch_tokens, ref_model=args.ref_model, ref_free=args.ref_free,
                         sandbox=sandbox_limits(args), pessimism=args.pessimism)
    r = score_file(args.model, args.data, args.out, options=opts, skip_invalid=args.skip_invalid)
    if not r.written:  # another process of a torchrun launch writes and reports
        return 0
    on = f" on {r.processes} processes" if r.processes > 1 else ""
    print(f"scored {r.pairs} pairs and {r.completions} completions with {r.scorer}{on} ({r.sequences} sequences, "
          f"{r.sequences_per_s:.1f} seq/s); {r.truncated_sequences} records truncated; {r.invalid} invalid")
    print(f"wrote {r.out}")
    return 0
