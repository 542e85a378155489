"""``rewardbench2``: RewardBench 2 (``allenai/reward-bench-2``, split ``test``), best-of-4 and its Ties rule.

Rows: ``id, prompt, chosen: [str] (1 or more), rejected: [str] (3 or more), subset, num_correct``.
The responses of a row are ``chosen + rejected``, scored together.

Rules (``reroll_and_score_dataset`` and ``process_single_model`` of the reference code):
- every subset but Ties: with ``m`` the top score and ``k`` the number of responses scoring ``m``,
  an item scores ``1/k`` if the FIRST chosen response scores ``m``, else 0 (other chosen responses,
  if any, compete like rejected ones -- as in the reference);
- Ties: rows are ``ref:ID`` (one correct answer) or ``tied:ID`` (several); per row
  ``accurate = min(correct) − max(incorrect) > 0``; with, for the prompts that have both rows,
  ``d`` = the tied row's spread of correct scores and ``g_t``/``g_r`` the tied/ref rows' correct-minus-
  incorrect margins, the subset score is
  ``0.30·acc(tied) + 0.30·acc(ref) + 0.20·mean(g_t > d) + 0.20·mean(min(g_r, g_t) > d)
  + 0.01·mean(tanh(min(g_r, g_t)/d − 1))`` (a NaN from 0/0 counts 0);
- final score = plain mean of the subsets (six in the release: Factuality, Precise IF, Math, Safety,
  Focus, Ties).

Departure: a ``tied`` row with a single correct answer has no spread; it is NaN here (so its margin
comparisons are false and its tanh term 0) where the reference would fail.
The bootstrap resamples a Ties prompt's ``ref`` and ``tied`` rows together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.data.formats import DataError, Location
from rewardkit.eval.benchmarks.base import (
    Item,
    Outcomes,
    ReadResult,
    Stat,
    base_outcomes,
    finish_read,
    group_means,
    iter_source,
    mean_stat,
    reply,
    text_field,
    text_list,
    user,
)

TIES = "ties"
# The Ties composite: weights of tied accuracy, ref accuracy, the two margin terms, and the tanh term.
TIES_WEIGHTS = (0.30, 0.30, 0.20, 0.20, 0.01)
_KIND = {"ref": 0, "tied": 1}  # extra["ties_kind"]: -1 outside Ties


def top_credit(scores: np.ndarray) -> float:
    """``1/k`` if response 0 is among the ``k`` responses sharing the top score, else 0."""
    top = np.max(scores)
    return float(1.0 / np.sum(scores == top)) if scores[0] == top else 0.0


def ties_stats(scores: np.ndarray, n_correct: int) -> tuple[float, float, float]:
    """(accurate, spread of correct scores or NaN if fewer than 2, worst correct − best incorrect)."""
    correct, incorrect = scores[:n_correct], scores[n_correct:]
    gap = float(np.min(correct) - np.max(incorrect))
    spread = float(np.max(correct) - np.min(correct)) if n_correct > 1 else float("nan")
    return float(gap > 0), spread, gap


def ties_composite(kind: np.ndarray, cluster: np.ndarray, accurate: np.ndarray, spread: np.ndarray,
                   gap: np.ndarray) -> float:
    """The Ties subset score from its rows: ``kind`` (M,) 0 ref / 1 tied, ``cluster`` (M,) prompt ids,
    ``accurate``/``spread``/``gap`` (M,) from :func:`ties_stats`."""
    ref, tied = kind == 0, kind == 1
    acc_ref = float(accurate[ref].mean()) if ref.any() else 0.0
    acc_tied = float(accurate[tied].mean()) if tied.any() else 0.0
    ref_gap = {int(c): g for c, g in zip(cluster[ref], gap[ref], strict=True)}
    pairs = [(s, g, ref_gap[int(c)]) for c, s, g in zip(cluster[tied], spread[tied], gap[tied], strict=True)
             if int(c) in ref_gap]
    if not pairs:
        return float("nan")  # as the reference: the margin terms are a mean over no prompts
    d, g_t, g_r = (np.array(col, dtype=np.float64) for col in zip(*pairs, strict=True))
    hard = np.minimum(g_r, g_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.nan_to_num(np.tanh(hard / d - 1), nan=0.0)
    w = TIES_WEIGHTS
    return float(w[0] * acc_tied + w[1] * acc_ref + w[2] * np.mean(g_t > d) + w[3] * np.mean(hard > d)
                 + w[4] * np.mean(margin))


def _item(record: dict, loc: Location, index: int) -> Item:
    prompt = text_field(record, "prompt", loc, allow_empty=True)
    chosen = text_list(record, "chosen", loc)
    rejected = text_list(record, "rejected", loc)
    subset = text_field(record, "subset", loc)
    num_correct = record.get("num_correct", len(chosen))
    if num_correct != len(chosen):
        raise DataError(loc, "num_correct", f"is {num_correct!r} but 'chosen' has {len(chosen)} responses")
    uid = str(record.get("id", index))
    cluster, meta = "", {"ties_kind": -1}
    if subset.lower() == TIES:
        kind, sep, prompt_id = uid.partition(":")
        if not sep or not prompt_id:
            raise DataError(loc, "id", f"a Ties row id must look like 'ref:ID' or 'tied:ID', got {uid!r}")
        cluster, meta = f"{TIES}:{prompt_id}", {"ties_kind": _KIND.get(kind, 1)}  # as the reference: not ref = tied
    return Item(uid, user(prompt), tuple(reply(r) for r in chosen + rejected),
                (True,) * len(chosen) + (False,) * len(rejected), subset, True, cluster, meta)


class RewardBenchV2:
    """RewardBench 2: best-of-N with 1/k credit for ties at the top; the Ties subset's composite."""

    name = "rewardbench2"
    description = "RewardBench 2: best-of-4, 1/k credit for a k-way tie at the top; Ties composite; mean of subsets"
    default_split = "test"

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult:
        items: list[Item] = []
        errors: list[DataError] = []
        n = 0
        for loc, record in iter_source(source, split=split, default_split=self.default_split):
            n += 1
            try:
                if isinstance(record, DataError):
                    raise record
                items.append(_item(record, loc, len(items)))
            except DataError as e:
                errors.append(e)
        return finish_read(source, items, n, errors, skip_invalid=skip_invalid)

    def outcomes(self, items: Sequence[Item], scores: Sequence[np.ndarray]) -> Outcomes:
        credit, spread, gap = [], [], []
        for it, s in zip(items, scores, strict=True):
            if it.meta.get("ties_kind", -1) >= 0:
                acc, d, g = ties_stats(np.asarray(s, dtype=np.float64), sum(it.labels))
            else:
                acc, d, g = top_credit(np.asarray(s)), float("nan"), float("nan")
            credit.append(acc)
            spread.append(d)
            gap.append(g)
        kind = np.array([it.meta.get("ties_kind", -1) for it in items], dtype=np.int64)
        return base_outcomes(items, credit, ties_kind=kind, spread=np.array(spread), gap=np.array(gap))

    def random_outcomes(self, items: Sequence[Item]) -> Outcomes:
        """Expected outcomes under i.i.d. continuous random scores: ``1/n`` for a best-of-n item (for Ties
        rows this is not the composite's expectation; :meth:`random_baseline` handles Ties)."""
        out = self.outcomes(items, [np.zeros(len(it.responses)) for it in items])
        credit = np.array([1.0 / len(it.responses) for it in items])
        return Outcomes(credit, out.code, out.names, out.cluster, out.extra)

    def random_baseline(self, items: Sequence[Item], *, seed: int = 0, draws: int = 200) -> dict[str, float]:
        """The random picker's expected numbers: exact for best-of-n subsets; for Ties (a nonlinear
        composite) the mean over ``draws`` seeded draws of standard-normal scores."""
        values = {k: v.value for k, v in self.summarize(self.random_outcomes(items)).items()}
        ties = [it for it in items if it.meta.get("ties_kind", -1) >= 0]
        if ties:
            rng = np.random.default_rng(seed)
            runs = [self.summarize(self.outcomes(ties, [rng.standard_normal(len(it.responses)) for it in ties]))
                    for _ in range(draws)]
            for key in runs[0]:
                if key.startswith("subset/"):
                    values[key] = float(np.mean([r[key].value for r in runs]))
            values["overall"] = float(np.mean([v for k, v in values.items() if k.startswith("subset/")]))
        return values

    def summarize(self, outcomes: Outcomes) -> dict[str, Stat]:
        kind = outcomes.extra["ties_kind"]
        plain = kind < 0
        subsets = group_means(outcomes.credit[plain], outcomes.code[plain], outcomes.names, "subset/")
        for code in np.unique(outcomes.code[~plain]):
            rows = ~plain & (outcomes.code == code)
            value = ties_composite(kind[rows], outcomes.cluster[rows], outcomes.credit[rows],
                                   outcomes.extra["spread"][rows], outcomes.extra["gap"][rows])
            subsets[f"subset/{outcomes.names[code]}"] = Stat(value, int(rows.sum()))
        subsets = dict(sorted(subsets.items()))
        return {"overall": mean_stat(list(subsets.values())), **subsets}
