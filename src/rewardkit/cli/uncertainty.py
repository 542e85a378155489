"""``rewardkit uncertainty fit``: last-layer uncertainty (AdvPO) for any reward model folder."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import add_device_options, command


def add_commands(sub: Any) -> None:
    from rewardkit.models.uncertainty import DEFAULT_LAMBDA
    from rewardkit.scoring import DEFAULT_MAX_TOKENS

    group = sub.add_parser("uncertainty", help="uncertainty of any reward model's rewards (last-layer, AdvPO)")
    usub = group.add_subparsers(title="uncertainty commands", metavar="COMMAND")
    p = command(usub, "fit", "fit last-layer uncertainty on a reward model's training pairs: M = λI + Σ (φ_c − φ_r)"
                "(φ_c − φ_r)ᵀ over the pairs' last-layer features φ, stored beside the model (uncertainty.safetensors "
                "and rewardkit.json). From then on every scorer of the folder also returns U = sqrt(φᵀ M⁻¹ φ), and "
                "--pessimism k (score, generate, serve) rewards r − k·U. Works on any HF sequence-classification "
                "folder; the model itself is not changed", _run_fit)
    p.add_argument("--model", required=True, help="reward model folder (rewardkit or any HF "
                   "AutoModelForSequenceClassification folder); the fit is written into it, replacing an earlier one")
    p.add_argument("--data", required=True, help="the preference pairs the model was trained on (any format "
                   "`train rm --data` reads)")
    p.add_argument("--lambda", dest="lam", type=float, default=DEFAULT_LAMBDA,
                   help="ridge prior λ > 0 (M's smallest eigenvalue): larger gives smaller, smoother U")
    p.add_argument("--max-length", type=int, default=None, help="override the model's max tokens per input "
                   "(default: the model's; scoring uses the model's too)")
    p.add_argument("--batch-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help="padded-token budget per forward batch; M does not depend on it")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out records that fail validation (counted and listed) instead of stopping")
    add_device_options(p)
    p.set_defaults(dtype="float32")


def _run_fit(args: argparse.Namespace) -> int:
    from rewardkit.train.uncertainty import FitConfig, fit_uncertainty

    cfg = FitConfig(model=args.model, data=args.data, lam=args.lam, max_length=args.max_length,
                    skip_invalid=args.skip_invalid, batch_tokens=args.batch_tokens, device=args.device,
                    dtype=args.dtype)
    r = fit_uncertainty(cfg)
    print(json.dumps(r.to_dict(), indent=2))
    what = "replaced the earlier fit" if r.replaced else "fitted"
    print(f"{what}: {r.pairs} pairs, {r.dim} features, λ = {r.lam:g}, M's eigenvalues in [{r.eigenvalues[0]:.3g}, "
          f"{r.eigenvalues[1]:.3g}]; U on training responses: median {r.train_u['p50']:.3g}, "
          f"90th percentile {r.train_u['p90']:.3g} (use it to size --pessimism)")
    print(f"wrote {r.file}")
    return 0
