"""``rewardkit serve``: the reward server on the command line (plugged into :mod:`rewardkit.cli`, which
imports this module; this module never imports the CLI, which sits in the same top layer)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from rewardkit.serve.settings import ServeSettings

_FIELDS = {f.name: f for f in dataclasses.fields(ServeSettings)}


def _help(name: str) -> str:
    return str(_FIELDS[name].metadata["help"])


def _default(name: str) -> Any:
    return _FIELDS[name].default


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the ``rewardkit`` subcommands ``sub`` (an argparse subparsers action)."""
    about = ("serve a reward model over HTTP with dynamic batching: rewardkit's /v1/score, OpenRLHF's /get_reward, "
             "/health, /v1/models and Prometheus /metrics")
    p = sub.add_parser("serve", help=about, description=about, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(handler=_run_serve)
    p.add_argument("--model", required=True, help="scorer: a reward model folder (rewardkit or any HF "
                   "sequence-classification RM) or rm:PATH; dpo:POLICY; direction:RM#name=w,...; verifier or "
                   "hybrid:SCORER (with --items); length (a dummy for tests). Pairwise judges cannot be served")
    p.add_argument("--items", default=None, help="verifier / hybrid: jsonl whose rows give each prompt's "
                   "references (constraints, answer or tests)")
    p.add_argument("--sandbox-timeout", type=float, default=10.0, help="python checks: wall seconds per run")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="run model-written code WITHOUT the bubblewrap "
                   "sandbox (limits only; a warning on every run). Only for code you trust")
    p.add_argument("--pessimism", type=float, default=0.0, metavar="K", help="serve r − k·U with the model's "
                   "uncertainty U (fitted by `rewardkit uncertainty fit`, or a gaussian head); 0 = off")
    p.add_argument("--host", default=_default("host"), help=_help("host"))
    p.add_argument("--port", type=int, default=_default("port"), help=_help("port"))
    p.add_argument("--max-batch-tokens", type=int, default=_default("max_batch_tokens"), help=_help("max_batch_tokens"))
    p.add_argument("--max-batch-size", type=int, default=_default("max_batch_size"), help=_help("max_batch_size"))
    p.add_argument("--max-wait-ms", type=float, default=_default("max_wait_ms"), help=_help("max_wait_ms"))
    p.add_argument("--max-padding", type=float, default=_default("max_padding"), help=_help("max_padding"))
    p.add_argument("--max-queue-items", type=int, default=_default("max_queue_items"), help=_help("max_queue_items"))
    p.add_argument("--max-items", dest="max_items_per_request", type=int, default=_default("max_items_per_request"),
                   help=_help("max_items_per_request"))
    p.add_argument("--max-body-mb", type=float, default=_default("max_body_bytes") / 2**20,
                   help="largest request body in MiB (413 beyond)")
    p.add_argument("--request-timeout", dest="request_timeout_s", type=float, default=_default("request_timeout_s"),
                   help=_help("request_timeout_s"))
    p.add_argument("--body-timeout", dest="body_timeout_s", type=float, default=_default("body_timeout_s"),
                   help=_help("body_timeout_s"))
    p.add_argument("--drain-timeout", dest="drain_timeout_s", type=float, default=_default("drain_timeout_s"),
                   help=_help("drain_timeout_s"))
    p.add_argument("--api-key-file", help="file holding the bearer key clients must send (one line); without it "
                   "there is no authentication")
    p.add_argument("--openrlhf-scores", choices=("raw", "sigmoid"), default=_default("openrlhf_scores"),
                   help=_help("openrlhf_scores"))
    p.add_argument("--prep-threads", type=int, default=_default("prep_threads"), help=_help("prep_threads"))
    p.add_argument("--max-length", type=int, default=None, help="override the model's max tokens per input")
    p.add_argument("--device", default="auto", help="torch device: auto (cuda, else mps, else cpu), cpu, cuda:1, ...")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="model weights' dtype: auto = bfloat16 on a GPU with native bf16, else float32")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="CPU threads of the model (torch.set_num_threads; default: torch's, all cores). On a CPU "
                        "host leave a core to the HTTP and tokenizer threads: they starve when the model takes all")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level")
    p.add_argument("--access-log", action="store_true", help="log every request")


def _run_serve(args: argparse.Namespace) -> int:
    from rewardkit.errors import UnsupportedError
    from rewardkit.scoring import ScorerOptions, build_scorer, is_pairwise
    from rewardkit.serve.engine import check_finite_rewards
    from rewardkit.serve.server import serve
    from rewardkit.serve.settings import read_api_key
    from rewardkit.verify.sandbox import SandboxLimits

    settings = ServeSettings(
        host=args.host, port=args.port, max_batch_tokens=args.max_batch_tokens, max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms, max_padding=args.max_padding, max_queue_items=args.max_queue_items,
        max_items_per_request=args.max_items_per_request, max_body_bytes=int(args.max_body_mb * 2**20),
        request_timeout_s=args.request_timeout_s, body_timeout_s=args.body_timeout_s,
        drain_timeout_s=args.drain_timeout_s,
        openrlhf_scores=args.openrlhf_scores, prep_threads=args.prep_threads,
        api_key=read_api_key(args.api_key_file) if args.api_key_file else None)
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    options = ScorerOptions(max_length=args.max_length, dtype=args.dtype, device=args.device,
                            batch_tokens=args.max_batch_tokens, items=args.items, pessimism=args.pessimism,
                            sandbox=SandboxLimits(wall_s=args.sandbox_timeout, allow_unsandboxed=args.unsafe_no_sandbox))
    scorer = build_scorer(args.model, options)
    if is_pairwise(scorer):
        raise UnsupportedError(f"{args.model}: a pairwise judge compares two responses; the server scores one")
    check_finite_rewards(scorer)  # a model that answers NaN is refused now, not on every request
    auth = "bearer key required" if settings.api_key else "no authentication"
    print(f"serving {scorer.name} on http://{settings.host}:{settings.port} ({auth}; batches of up to "
          f"{settings.max_batch_size} items / {settings.max_batch_tokens} tokens, {settings.max_wait_ms:g} ms wait)",
          flush=True)
    serve(scorer, settings, log_level=args.log_level, access_log=args.access_log)
    print("server stopped", flush=True)
    return 0
