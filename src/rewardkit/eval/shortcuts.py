"""Shortcut baselines beside an evaluation on a synthetic testbed's pairs.

When ``rewardkit eval --benchmark pairs`` reads pairs written by ``rewardkit data synth`` (rows with
``constraints``, the verifiable instructions, and usually ``chosen_source`` / ``rejected_source``), a
reward model's accuracy means little without the accuracy of the rules that never read the prompt
(:mod:`rewardkit.synth.audit`): edited-wins, longer- and shorter-wins, the ceiling of any prompt-blind
scorer, and each model's accuracy with every pair's prompt swapped for another request's (a model that
reads the instructions falls towards chance there; one that scores the response alone does not move).
Model-free rules count a tie or no opinion as half; a model's tie counts as wrong, as in ``pairs``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.stats import bootstrap_mean
from rewardkit.synth import audit
from rewardkit.synth.core import read_jsonl, write_jsonl

Row = dict[str, Any]


def testbed_rows(source: str) -> list[Row] | None:
    """The rows of ``source`` when it is a local jsonl(.gz) file of synthetic-testbed pairs (every row has
    ``constraints``, ``prompt``, ``chosen`` and ``rejected`` as message lists), else None."""
    path = Path(source)
    if not path.is_file() or not path.name.lower().removesuffix(".gz").endswith(".jsonl"):
        return None
    try:
        rows = read_jsonl(path)
    except (ValueError, OSError):
        return None  # the benchmark's reader reports what is wrong with the file
    keys = ("constraints", "prompt", "chosen", "rejected")
    if not rows or not all(all(k in r for k in keys) and isinstance(r["chosen"], list) for r in rows):
        return None
    return rows


def model_free(rows: Sequence[Row], *, seed: int = 0) -> dict[str, Any]:
    """Each model-free rule's accuracy on ``rows`` with its 95% bootstrap interval
    (:func:`rewardkit.synth.audit.shortcut_baselines`), ``edited_wins_decided`` (on the pairs where exactly
    one response is an edit) and the ``prompt_blind_ceiling``."""
    rules = audit.shortcut_baselines(rows, seed=seed)
    out: dict[str, Any] = {name: bootstrap_mean(c, seed=seed).to_dict() for name, c in rules.items()}
    if "edited_wins" in rules:
        decided = rules["edited_wins"][rules["edited_wins"] != 0.5]
        out["edited_wins_decided"] = bootstrap_mean(decided, seed=seed).to_dict()
    out["prompt_blind_ceiling"] = audit.prompt_blind_ceiling(rows)
    return out


def write_swapped(rows: Sequence[Row], path: Path, *, seed: int = 0) -> Path:
    """``rows`` with each pair's prompt swapped for another request's (:func:`audit.swap_prompts`), as jsonl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, audit.swap_prompts(rows, seed=seed))
    return path


def accuracy(correct: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Mean of per-pair credits (N,) with its 95% bootstrap interval."""
    return bootstrap_mean(correct, seed=seed).to_dict()


def testbed_shortcuts(rows: Sequence[Row], specs: Sequence[str], swap_credit: Callable[[str, Path], np.ndarray],
                      swapped_path: Path, *, seed: int = 0) -> dict[str, Any]:
    """The model-free rules on ``rows`` (:func:`model_free`) and, for each scorer spec, its accuracy on the
    pairs with swapped prompts: ``swap_credit(spec, path)`` scores the pairs of the jsonl at ``path`` and
    returns their credits (N,) (1 right, 0 wrong or tied)."""
    out = model_free(rows, seed=seed)
    write_swapped(rows, swapped_path, seed=seed)
    out["prompt_swap"] = {spec: accuracy(swap_credit(spec, swapped_path), seed=seed) for spec in specs}
    out["swapped_pairs_file"] = str(swapped_path)
    return out
