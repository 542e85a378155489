"""``rewardkit average``: model averaging and HMA (:mod:`rewardkit.models.averaging`,
:mod:`rewardkit.train.averaging`, :mod:`rewardkit.infer.averaging`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardkit.cli.common import add_device_options, add_sandbox_options, command, sandbox_limits
from rewardkit.errors import OptionError

DESCRIPTION = (
    "average two causal LMs of one architecture weight by weight: theta = alpha*base + (1-alpha)*tuned, where "
    "--base is the model before alignment (SFT) and --tuned the aligned one (alpha 0 = tuned, 1 = base). "
    "Exactly one mode: --alpha A (one alpha everywhere); --groups K --alphas A1,...,AK (one alpha per group of "
    "consecutive decoder layers; embeddings, final norm and lm_head get --rest-alpha, default their mean); "
    "--search --data FILE (Heterogeneous Model Averaging: learn the K alphas, their mean fixed to --init, by "
    "the LM loss on FILE's responses, both models frozen); --sweep A,B,... (one averaged model per alpha, rated "
    "by --reward on samples for --prompts and by the alignment tax, the per-token NLL of --tax-data; writes "
    "sweep.json and sweep.png). The first three write a standard AutoModelForCausalLM folder with the tokenizer "
    "and rewardkit.json (alpha per group, the groups' layers, a search's history)")

EXAMPLES = """examples:
  rewardkit average --base sft/ --tuned dpo/ --alpha 0.3 --out runs/avg
  rewardkit average --base sft/ --tuned dpo/ --groups 3 --alphas 0.4,0.2,0.1 --out runs/avg3
  rewardkit average --base sft/ --tuned dpo/ --search --data best.jsonl --groups 3 --steps 20 --lr 0.01 --out runs/hma
  rewardkit average --base sft/ --tuned dpo/ --sweep 0,0.5,1 --reward length --prompts prompts.jsonl \\
      --tax-data heldout.jsonl --n 4 --max-new-tokens 32 --out runs/sweep
"""


def add_commands(sub: Any) -> None:
    from rewardkit.infer.sampler import SamplingConfig
    from rewardkit.models.averaging import SPLITS
    from rewardkit.train.averaging import HMASearchConfig

    h = HMASearchConfig()
    p = command(sub, "average", DESCRIPTION, _run, formatter=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    p.add_argument("--base", required=True, help="model before alignment (SFT; alpha 1): alias, folder or hub name")
    p.add_argument("--tuned", required=True, help="aligned model (RLHF/DPO; alpha 0): alias, folder or hub name")
    p.add_argument("--out", required=True, help="output folder (a model folder, or the sweep's sweep.json/png)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--alpha", type=float, help="one alpha for every parameter, in [0, 1]")
    mode.add_argument("--alphas", help="comma-separated alphas, one per layer group (their count must equal --groups)")
    mode.add_argument("--search", action="store_true", help="HMA: learn one alpha per layer group on --data")
    mode.add_argument("--sweep", help="comma-separated alphas, e.g. 0,0.25,0.5,0.75,1: reward and tax of each")
    p.add_argument("--groups", type=int, default=None,
                   help=f"layer groups K (--alphas: must match their count; --search: default {h.groups})")
    p.add_argument("--split", choices=SPLITS, default=h.split, help="how layers form groups: equal = K runs of "
                   "equal size (LMFlow's blockK; default); lmflow = LMFlow's block3, layers 0-8/9-16/17-end "
                   "(0-11/12-21/22-end above 30 layers)")
    p.add_argument("--rest-alpha", type=float, default=None, help="--alphas: alpha of the parameters outside the "
                   "decoder layers (embeddings, final norm, lm_head); default the mean of --alphas")
    s = p.add_argument_group("search (--search)")
    s.add_argument("--data", help="jsonl with prompt + response (or completion, or text) per row: the 'collected' "
                   "data, e.g. high-reward samples; the loss is the NLL of the response tokens")
    s.add_argument("--init", type=float, default=h.init, help=f"mean alpha, fixed exactly (default {h.init})")
    s.add_argument("--eps", type=float, default=h.eps, help=f"epsilon of (sigmoid(a)+eps) (default {h.eps})")
    s.add_argument("--lr", type=float, default=h.lr, help=f"Adam lr on the group logits (default {h.lr}, LMFlow's; "
                   "alpha barely moves in a few steps at this rate, try 0.01 on small files)")
    s.add_argument("--reg-alpha", type=float, default=h.reg_alpha, help=f"weight of sum |alpha_k - init| "
                   f"(default {h.reg_alpha})")
    s.add_argument("--steps", type=int, default=None, help="optimizer steps (default: one epoch of --data)")
    s.add_argument("--batch-size", type=int, default=h.batch_size, help=f"rows per step (default {h.batch_size})")
    s.add_argument("--seed", type=int, default=0, help="row order (search) and sampling seed (sweep) (default 0)")
    w = p.add_argument_group("sweep (--sweep)")
    w.add_argument("--reward", help="scorer: rm:DIR or a reward model folder, verifier (checks --prompts' "
                   "constraints), length (a dummy), any spec `rewardkit score` takes")
    w.add_argument("--prompts", help="jsonl with 'prompt' (string or messages) per row")
    w.add_argument("--tax-data", help="held-out prompt/response (or text) jsonl the alignment never trained on")
    w.add_argument("--n", type=int, default=4, help="samples per prompt (default 4)")
    w.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample at most (default 64)")
    w.add_argument("--temperature", type=float, default=SamplingConfig().temperature, help="0 = greedy (default 1)")
    w.add_argument("--limit", type=int, default=None, help="only the first LIMIT prompts")
    p.add_argument("--max-length", type=int, default=h.max_length, help=f"tokens per --data/--tax-data row at most "
                   f"(default {h.max_length})")
    add_device_options(p)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_sandbox_options(p)


def _run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sweep is not None:
        _check_unused(args, ("groups", "rest_alpha"), "--alphas or --search", "the sweep uses one alpha everywhere")
        return _sweep(args)
    _check_unused(args, ("reward", "prompts", "tax_data"), "--sweep")
    if args.alpha is not None:
        _check_unused(args, ("groups", "rest_alpha"), "--alphas or --search")
    if args.search:
        _check_unused(args, ("rest_alpha",), "--alphas", "a search keeps the rest at --init")
    else:
        _check_unused(args, ("data",), "--search")
    return _search(args) if args.search else _average(args)


def _check_unused(args: argparse.Namespace, names: tuple[str, ...], mode: str, why: str = "") -> None:
    """No option is silently ignored: one given outside its mode is an error naming where it applies."""
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is not None]
    if given:
        raise OptionError(f"{', '.join(given)} only apply with {mode}" + (f" ({why})" if why else ""))


def _average(args: argparse.Namespace) -> int:
    from rewardkit.infer.averaging import average_models, load_pair, model_layers, save_averaged
    from rewardkit.models.averaging import AveragingPlan, check_unit_alphas, parse_alphas

    base, tuned = load_pair(args.base, args.tuned, dtype=args.dtype, device=args.device)
    n = model_layers(tuned.model)
    if args.alpha is not None:
        plan = AveragingPlan.uniform(check_unit_alphas([args.alpha])[0], n)
    else:
        alphas = check_unit_alphas(parse_alphas(args.alphas), "--alphas")
        if args.groups is not None and args.groups != len(alphas):
            raise OptionError(f"--alphas has {len(alphas)} value(s) but --groups is {args.groups}")
        rest = None if args.rest_alpha is None else check_unit_alphas([args.rest_alpha], "--rest-alpha")[0]
        plan = AveragingPlan.grouped(alphas, n, split=args.split, rest_alpha=rest)
    model = average_models(base.model, tuned.model, plan)
    record = {"kind": "average", "base": args.base, "tuned": args.tuned, "layers": n, "split": args.split,
              "alpha_meaning": "theta = alpha*base + (1-alpha)*tuned", **plan.to_dict()}
    folder = save_averaged(model, tuned.path, args.out, record)
    print(json.dumps(plan.to_dict()))
    print(f"wrote the averaged model to {folder}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from rewardkit.infer.averaging import load_pair, model_layers, save_averaged
    from rewardkit.models.averaging import average_models, encode_lm_rows, read_lm_rows
    from rewardkit.train.averaging import HMASearchConfig, search_alphas

    if args.data is None:
        raise OptionError("--search needs --data FILE (prompt/response rows)")
    cfg = HMASearchConfig(groups=args.groups or HMASearchConfig().groups, split=args.split, init=args.init,
                          eps=args.eps, lr=args.lr, reg_alpha=args.reg_alpha, steps=args.steps,
                          batch_size=args.batch_size, max_length=args.max_length, seed=args.seed)
    rows = read_lm_rows(args.data)
    base, tuned = load_pair(args.base, args.tuned, dtype=args.dtype, device=args.device)
    texts = encode_lm_rows(tuned.tokenizer, rows, cfg.max_length)
    result = search_alphas(base.model, tuned.model, texts, tuned.pad_id, cfg,
                           on_step=lambda s: print(f"step {s.step}: nll {s.nll:.4f} alphas "
                                                   + ",".join(f"{a:.6f}" for a in s.alphas)))
    model = average_models(base.model, tuned.model, result.plan)
    record = {"kind": "hma", "base": args.base, "tuned": args.tuned, "layers": model_layers(tuned.model),
              "data": args.data, "settings": dict(cfg.__dict__),
              "alpha_meaning": "theta = alpha*base + (1-alpha)*tuned", **result.plan.to_dict(),
              "search": result.to_dict()}
    folder = save_averaged(model, tuned.path, args.out, record)
    print(json.dumps({**result.plan.to_dict(), "nll_per_token_before": result.nll_before,
                      "nll_per_token_after": result.nll_after}))
    print(f"wrote the HMA model to {folder}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from rewardkit.infer.averaging import SweepConfig, run_sweep
    from rewardkit.infer.sampler import SamplingConfig
    from rewardkit.models.averaging import check_unit_alphas, parse_alphas
    from rewardkit.scoring import ScorerOptions

    missing = [f"--{n.replace('_', '-')}" for n in ("reward", "prompts", "tax_data") if getattr(args, n) is None]
    if missing:
        raise OptionError(f"--sweep needs {', '.join(missing)}")
    _check_unused(args, ("data",), "--search")
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    cfg = SweepConfig(base=args.base, tuned=args.tuned, out=args.out, reward=args.reward, prompts=args.prompts,
                      tax_data=args.tax_data, alphas=check_unit_alphas(parse_alphas(args.sweep), "--sweep"),
                      n=args.n, sampling=sampling, max_length=args.max_length, limit=args.limit, dtype=args.dtype,
                      device=args.device, options=ScorerOptions(dtype=args.dtype, device=args.device,
                                                                sandbox=sandbox_limits(args)))
    results = run_sweep(cfg)
    print(f"wrote {len(results)} rows to {args.out}/sweep.json and the plot to {args.out}/sweep.png")
    return 0
