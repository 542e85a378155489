"""Directions (DPA, METHODS §3): do Best-of-N picks lengthen as the direction turns toward verbosity?

Given a multi-objective reward model (``--model``: a folder trained with ``rewardkit train rm --head multi``
or any HF RM with named outputs) with a helpfulness-like and a verbosity objective, for each angle θ
(``--angles``, degrees) the direction is DPA's unit vector ``v = (cos θ, sin θ)`` over
(``--helpful``, ``--verbose``) and the reward is ``R_v = vᵀ r(x, y)``, the same as the scorer
``direction:MODEL#helpfulness=cos θ,verbosity=sin θ``.

Sampling is seeded per sample, so every angle would draw the same N samples: they are drawn once
(Best-of-N with the model's own scalar, all candidates kept), their objectives scored once, and each
angle picks ``argmax_i vᵀ r_i`` among them (ties to the lower index, as Best-of-N). On the first prompt
the pick is checked against the ``direction:`` scorer itself. Reported per angle: mean characters and
tokens of the picks, the share of picks cut at ``--max-new-tokens`` (set it high enough that few are), and
whether the means increase with θ (``monotone_*``).

    python benchmarks/directions.py --model runs/armo --policy smollm2-135m --n 8 --angles -30,0,30

Prints one JSON object on stdout (progress on stderr) and writes ``--out`` if given.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_json_main

PROMPTS = (
    "Explain why the sky is blue.", "Give me advice for a job interview.", "What is a prime number?",
    "Describe a cat to someone who has never seen one.", "How do I make a cup of tea?",
    "Why do we have seasons?", "Suggest a name for a bakery.", "What does a compiler do?",
)


def direction(theta_deg: float, helpful: str, verbose: str) -> dict[str, float]:
    """DPA's weights for angle θ: ``{helpful: cos θ, verbose: sin θ}`` (already a unit vector)."""
    t = math.radians(theta_deg)
    return {helpful: math.cos(t), verbose: math.sin(t)}


def unit_vector(weights: dict[str, float], names: Sequence[str]) -> np.ndarray:
    v = np.array([weights.get(n, 0.0) for n in names], dtype=np.float64)
    return v / np.linalg.norm(v)


def picks_by_angle(objectives: np.ndarray, lengths: np.ndarray, names: Sequence[str], angles: Sequence[float], *,
                   helpful: str, verbose: str) -> list[dict[str, Any]]:
    """``objectives`` (P, N, K) of N candidates per prompt, ``lengths`` (P, N, 2 or 3) their characters, tokens
    (and 1 where the sample hit max_new_tokens): per angle the picks ``argmax_i vᵀ r_i`` and their mean lengths
    (and the share of picks cut at the token limit, whose true length is unknown)."""
    rows = []
    for theta in angles:
        v = unit_vector(direction(theta, helpful, verbose), names)
        picks = np.argmax(objectives @ v, axis=1)  # (P,): argmax returns the first of equal maxima
        chosen = lengths[np.arange(len(picks)), picks]  # (P, 2)
        rows.append({"angle_deg": theta, "weights": {helpful: v[list(names).index(helpful)],
                                                     verbose: v[list(names).index(verbose)]},
                     "mean_chars": float(chosen[:, 0].mean()), "mean_tokens": float(chosen[:, 1].mean()),
                     **({"capped_share": float(chosen[:, 2].mean())} if chosen.shape[1] > 2 else {}),
                     "picks": picks.tolist()})
    return rows


def is_monotone(values: Sequence[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from rewardkit.infer.best_of_n import as_messages, best_of_n
    from rewardkit.infer.generate import read_prompts
    from rewardkit.infer.sampler import SamplingConfig, load_policy
    from rewardkit.scoring import ScorerOptions, build_scorer

    torch.set_num_threads(args.threads)
    angles = [float(a) for a in args.angles.split(",")]
    prompts: list[Any] = [r["prompt"] for r in read_prompts(args.prompts, args.limit)] if args.prompts \
        else list(PROMPTS[: args.limit or None])
    opts = ScorerOptions(device=args.device, dtype="float32")
    rm = build_scorer(args.model, opts)
    names = list(rm.rm.objectives)  # type: ignore[attr-defined]
    for name in (args.helpful, args.verbose):
        if name not in names:
            raise SystemExit(f"{args.model} has objectives {names}; no {name!r} (set --helpful / --verbose)")
    policy = load_policy(args.policy, device=args.device)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, seed=args.seed)
    results = best_of_n(policy, rm, prompts, n=args.n, sampling=sampling, progress=True)
    objectives, lengths = [], []
    for prompt, res in zip(prompts, results, strict=True):
        msgs, conv = as_messages(prompt)
        texts = [c.text for c in res.candidates]
        out = rm.score([msgs] * len(texts), [[{"role": "assistant", "content": t}] for t in texts], conv)
        objectives.append(out.objectives)
        lengths.append([[len(t), c.n_tokens, float(c.finish == "length")]
                        for t, c in zip(texts, res.candidates, strict=True)])
    obj, lens = np.stack(objectives), np.array(lengths, dtype=np.float64)
    rows = picks_by_angle(obj, lens, names, angles, helpful=args.helpful, verbose=args.verbose)
    # the direction scorer picks the same on the first prompt
    spec = ",".join(f"{k}={w!r}" for k, w in direction(angles[-1], args.helpful, args.verbose).items())
    scorer = build_scorer(f"direction:{args.model}#{spec}", opts)
    msgs, conv = as_messages(prompts[0])
    texts = [c.text for c in results[0].candidates]
    r = scorer.score([msgs] * len(texts), [[{"role": "assistant", "content": t}] for t in texts], conv).rewards
    agrees = int(np.argmax(r)) == rows[-1]["picks"][0]
    return {"model": args.model, "policy": args.policy, "n": args.n, "prompts": len(prompts),
            "angles": rows, "monotone_chars": is_monotone([x["mean_chars"] for x in rows]),
            "monotone_tokens": is_monotone([x["mean_tokens"] for x in rows]),
            "direction_scorer_agrees": agrees}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="multi-objective RM folder")
    p.add_argument("--policy", default="smollm2-135m")
    p.add_argument("--prompts", default=None, help="prompts file (jsonl with 'prompt'); default: 8 built-in prompts")
    p.add_argument("--limit", type=int, default=0, help="first N prompts (0: all)")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--angles", default="-30,0,30", help="degrees toward verbosity, comma-separated")
    p.add_argument("--helpful", default="helpfulness")
    p.add_argument("--verbose", default="verbosity")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    return run_json_main(run, p.parse_args(argv), prefix="rk-directions-")


if __name__ == "__main__":
    raise SystemExit(main())
