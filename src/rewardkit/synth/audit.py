"""Shortcut audit of a preference set: can a rule that never reads the prompt pick the chosen response?

Pure arithmetic on preference rows (numpy only; no model). Each *rule* gives every pair a credit: 1 when
it picks the chosen response, 0 when it picks the rejected one, 0.5 when it has no opinion (a coin flip).
Its accuracy is the mean credit. The rules:

- ``edited_wins``: the response made by a controlled edit wins (from ``chosen_source`` /
  ``rejected_source``: ``"sample"`` or ``"edit:a+b"``); ``more_edits_wins`` counts the edits;
- ``longer_wins`` / ``shorter_wins``: by characters;
- surface features (:data:`GENERIC_FEATURES` plus a task's own edit markers): "the response with more of
  this wins", each feature alone, and :func:`surface_probe`, a logistic regression on all of them fitted
  on the training pairs (a response-only model with no language in it);
- :func:`prompt_blind_ceiling`: the best accuracy ANY scorer that never sees the prompt can reach: pairs
  holding the same two responses must all be ordered the same way by it;
- :func:`swap_prompts`: each pair under another request's prompt. A scorer that reads the prompt must
  fall towards chance there; :func:`shortcut_baselines`' ``prompt_swap_gold`` is what the verifiers
  themselves say under the swapped instructions (a perfect prompt reader's score).

Intervals are the caller's (``rewardkit.eval.stats.bootstrap_mean`` over the credits), so that this
module stays below ``eval``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.verify.verifiers import (
    Constraint,
    bullet_lines,
    check_all,
    count_words,
    gold_reward,
    parse_json_object,
)

Row = Mapping[str, Any]
Feature = Callable[[str], float]


def _upper_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isupper() for ch in letters) / len(letters) if letters else 0.0


# Surface features any task's responses have; a task adds its own edit markers (SynthTask.surface_features).
GENERIC_FEATURES: dict[str, Feature] = {
    "chars": lambda t: float(len(t)),
    "words": lambda t: float(count_words(t)),
    "lines": lambda t: float(t.count("\n") + 1),
    "bullets": lambda t: float(len(bullet_lines(t))),
    "ends_with_question": lambda t: float(t.rstrip().endswith("?")),
    "ends_with_full_stop": lambda t: float(t.rstrip().endswith(".")),
    "commas": lambda t: float(t.count(",")),
    "uppercase_share": _upper_share,
    "json_object": lambda t: float(parse_json_object(t) is not None),
    "digits": lambda t: float(sum(ch.isdigit() for ch in t)),
}


def response(row: Row, side: str) -> str:
    """The text of the last message of ``row[side]`` (``"chosen"`` / ``"rejected"``), or the string itself."""
    value = row[side]
    return str(value[-1]["content"]) if isinstance(value, list) else str(value)


def rule_credit(chosen: Sequence[float] | np.ndarray, rejected: Sequence[float] | np.ndarray) -> np.ndarray:
    """(N,) credit of the rule "the larger value wins": 1.0, 0.0, or 0.5 on a tie."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    return np.where(c > r, 1.0, np.where(c < r, 0.0, 0.5))


def edit_count(source: str) -> int:
    """Edits that made a response: 0 for ``"sample"``, 2 for ``"edit:truncate+to_json"``."""
    return 0 if not source.startswith("edit:") else len(source[len("edit:"):].split("+"))


def decided_accuracy(credit: np.ndarray) -> float:
    """Accuracy on the pairs where the rule has an opinion (credit not 0.5); NaN if it has none."""
    c = np.asarray(credit, dtype=np.float64)
    decided = c[c != 0.5]
    return float(decided.mean()) if decided.size else float("nan")


def feature_credits(rows: Sequence[Row], features: Mapping[str, Feature]) -> dict[str, np.ndarray]:
    """Per feature, (N,) credit of "the response with more of it wins"."""
    return {name: rule_credit([f(response(r, "chosen")) for r in rows], [f(response(r, "rejected")) for r in rows])
            for name, f in features.items()}


def shortcut_baselines(rows: Sequence[Row], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-pair credits (N,) of the rules that need no model: ``edited_wins`` and ``more_edits_wins`` (only
    when the rows carry ``chosen_source``), ``longer_wins`` and ``shorter_wins`` (characters), and
    ``prompt_swap_gold`` (the verifiers' verdict under another request's instructions, only when the
    rows carry ``constraints`` and come from two groups or more). Ties and no-opinion pairs count 0.5."""
    chars = np.array([[len(response(r, "chosen")), len(response(r, "rejected"))] for r in rows], dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    if rows and all("chosen_source" in r and "rejected_source" in r for r in rows):
        out["edited_wins"] = rule_credit([r["chosen_source"] != "sample" for r in rows],
                                         [r["rejected_source"] != "sample" for r in rows])
        out["more_edits_wins"] = rule_credit([edit_count(r["chosen_source"]) for r in rows],
                                             [edit_count(r["rejected_source"]) for r in rows])
    out["longer_wins"] = rule_credit(chars[:, 0], chars[:, 1]) if rows else np.zeros(0)
    out["shorter_wins"] = 1.0 - out["longer_wins"]
    if all("constraints" in r for r in rows) and len({_group(r) for r in rows}) > 1:
        out["prompt_swap_gold"] = gold_credit(swap_prompts(rows, seed=seed))
    return out


def gold_credit(rows: Sequence[Row]) -> np.ndarray:
    """(N,) credit of the verifiers under each row's ``constraints``: gold(chosen) vs gold(rejected)."""
    golds = []
    for r in rows:
        constraints = [Constraint.from_dict(c) for c in r["constraints"]]
        golds.append([gold_reward(response(r, side), constraints) for side in ("chosen", "rejected")])
    g = np.asarray(golds, dtype=np.float64).reshape(-1, 2)
    return rule_credit(g[:, 0], g[:, 1])


def differing_kinds(row: Row) -> list[str]:
    """Instruction kinds that one response of the pair meets and the other does not (the deciding ones)."""
    constraints = [Constraint.from_dict(c) for c in row["constraints"]]
    chosen = check_all(response(row, "chosen"), constraints)
    rejected = check_all(response(row, "rejected"), constraints)
    return sorted({c.kind for c, a, b in zip(constraints, chosen, rejected, strict=True) if a != b})


# ------------------------------------------------------------------------------ prompt-blind and prompt-swap


def prompt_blind_ceiling(rows: Sequence[Row]) -> float:
    """The highest accuracy (ties 0.5) any scorer that never sees the prompt can reach on ``rows``.

    Such a scorer orders two given responses the same way in every pair that holds them, so of the pairs
    holding responses {a, b} it gets at most max(#(a over b), #(b over a)) right. Ignoring transitivity
    makes this an upper bound. 1.0 when every pair holds its own two responses; 0.5 when every pair has
    a counterfactual twin.
    """
    counts: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        c, j = response(r, "chosen"), response(r, "rejected")
        key, first = ((c, j), 0) if c <= j else ((j, c), 1)
        counts.setdefault(key, [0, 0])[first] += 1
    return sum(max(n) for n in counts.values()) / len(rows) if rows else float("nan")


def _group(row: Row) -> str:
    """What a swapped-in prompt must differ in: the request ``group``, else the family, else the prompt."""
    for key in ("group", "family_id", "prompt_id"):
        if key in row:
            return str(row[key])
    return str(row["prompt"][-1]["content"])


def swap_prompts(rows: Sequence[Row], *, seed: int = 0) -> list[dict[str, Any]]:
    """Each row under the prompt (and ``constraints``) of a row of another request ``group`` (without
    that field: another ``family_id``, else another ``prompt_id``): row ``i``'s donor is drawn by
    ``random.Random(f"swap/{seed}/{i}")`` among the distinct prompts. The donor's prompt id is kept in
    ``swapped_from``. Needs rows from at least two groups."""
    donors: dict[str, Row] = {}
    for r in rows:
        donors.setdefault(str(r.get("prompt_id", r["prompt"][-1]["content"])), r)
    pool = list(donors.values())
    if len({_group(r) for r in pool}) < 2:
        raise ValueError("swapping prompts needs rows from at least two families or prompts")
    out = []
    for i, r in enumerate(rows):
        rng = random.Random(f"swap/{seed}/{i}")
        donor = rng.choice(pool)
        while _group(donor) == _group(r):
            donor = rng.choice(pool)
        swapped = {**r, "prompt": donor["prompt"], "swapped_from": donor.get("prompt_id")}
        if "constraints" in donor:
            swapped["constraints"] = donor["constraints"]
        out.append(swapped)
    return out


def hide_prompt(rows: Sequence[Row], *, text: str = "Respond.") -> list[dict[str, Any]]:
    """The rows with every prompt replaced by one constant user message (for a response-only model)."""
    return [{**r, "prompt": [{"role": "user", "content": text}]} for r in rows]


# ------------------------------------------------------------------------------ the surface probe


def _feature_diffs(rows: Sequence[Row], features: Mapping[str, Feature]) -> np.ndarray:
    """(N, F) float64: feature(chosen) - feature(rejected) per pair."""
    fs = list(features.values())
    if not rows:
        return np.zeros((0, len(fs)))
    return np.array([[f(response(r, "chosen")) - f(response(r, "rejected")) for f in fs] for r in rows],
                    dtype=np.float64)


def fit_probe(diffs: np.ndarray, *, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Weights (F,) of a logistic model P(chosen wins) = sigmoid(w · d) with no intercept (swapping the
    two responses flips the sign), fitted by Newton steps with an L2 penalty ``l2``; ``diffs`` (N, F)
    are feature differences scaled to unit root-mean-square. Symmetric data (every difference also
    present negated) gives w = 0."""
    d = np.asarray(diffs, dtype=np.float64)
    w = np.zeros(d.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(d @ w)))  # (N,)
        grad = -d.T @ (1.0 - p) + l2 * w
        hess = (d * (p * (1.0 - p))[:, None]).T @ d + l2 * np.eye(d.shape[1])
        w = w - np.linalg.solve(hess, grad)
    return w


def surface_probe(train_rows: Sequence[Row], test_rows: Sequence[Row], features: Mapping[str, Feature]) -> np.ndarray:
    """(N_test,) credit of a logistic model on response surface features, fitted on ``train_rows``."""
    train, test = _feature_diffs(train_rows, features), _feature_diffs(test_rows, features)
    scale = np.sqrt((train**2).mean(axis=0)) if len(train) else np.ones(train.shape[1])
    scale[scale == 0] = 1.0
    w = fit_probe(train / scale)
    return rule_credit(test / scale @ w, np.zeros(len(test)))


def audit_pairs(train_rows: Sequence[Row], test_rows: Sequence[Row], features: Mapping[str, Feature], *,
                seed: int = 0) -> dict[str, Any]:
    """Every model-free shortcut on ``test_rows``, rounded to 4 places: the :func:`shortcut_baselines`
    accuracies (``edited_wins_decided``: on the pairs where exactly one response is an edit), each surface
    feature's "more wins" accuracy and the best rule on one feature, "more wins" or "less wins"
    (``worst_surface_rule``), the
    :func:`surface_probe` fitted on ``train_rows``, and the :func:`prompt_blind_ceiling`."""
    base = shortcut_baselines(test_rows, seed=seed)
    out: dict[str, Any] = {"pairs": len(test_rows)}
    out.update({name: round(float(c.mean()), 4) for name, c in base.items()})
    if "edited_wins" in base:
        out["edited_wins_decided"] = round(decided_accuracy(base["edited_wins"]), 4)
        out["edited_wins_decides_share"] = round(float((base["edited_wins"] != 0.5).mean()), 4)
    rules = {name: round(float(c.mean()), 4) for name, c in feature_credits(test_rows, features).items()}
    worst = max(rules, key=lambda k: abs(rules[k] - 0.5))
    out["surface_rules"] = rules
    out["worst_surface_rule"] = {"name": f"{'more' if rules[worst] >= 0.5 else 'less'} {worst} wins",
                                 "accuracy": round(max(rules[worst], 1.0 - rules[worst]), 4)}
    out["surface_probe"] = round(float(surface_probe(train_rows, test_rows, features).mean()), 4)
    out["prompt_blind_ceiling"] = round(prompt_blind_ceiling(test_rows), 4)
    return out
