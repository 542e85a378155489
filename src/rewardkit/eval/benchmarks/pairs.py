"""``pairs``: any preference file rewardkit reads, scored pair by pair.

Rule: a pair is correct iff ``score(chosen) > score(rejected)``; an exact tie counts as wrong.
Aggregation: overall = mean over all pairs; if rows carry a ``subset`` column, accuracy per subset too
(each subset is a bootstrap stratum).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from rewardkit.data.formats import DataError, PreferenceExample, parse_record
from rewardkit.eval.benchmarks.base import (
    Item,
    Outcomes,
    ReadResult,
    Stat,
    base_outcomes,
    beats_all,
    finish_read,
    group_means,
    iter_source,
)

NO_SUBSET = "all"


def pair_item(ex: PreferenceExample, uid: str, subset: str) -> Item:
    """A preference pair as a two-response item (response 0 is the chosen one)."""
    return Item(uid, ex.prompt, (ex.chosen, ex.rejected), (True, False), subset, ex.conversational,
                meta={"format": ex.format})


def read_pairs(source: str, *, split: str | None, default_split: str,
               subset_of: Callable[[PreferenceExample], str] | None = None) -> tuple[list[Item], int, list[DataError]]:
    """Parse every record of ``source`` with rewardkit's readers; ``subset_of(example)`` names its subset."""
    items: list[Item] = []
    errors: list[DataError] = []
    n = 0
    for loc, record in iter_source(source, split=split, default_split=default_split):
        n += 1
        try:
            if isinstance(record, DataError):
                raise record
            ex = parse_record(record, loc)
            if not isinstance(ex, PreferenceExample):
                raise DataError(loc, "chosen", "missing (this benchmark needs preference pairs)")
        except DataError as e:
            errors.append(e)
            continue
        subset = subset_of(ex) if subset_of is not None else str(ex.extras.get("subset") or NO_SUBSET)
        uid = str(ex.extras.get("id", f"{len(items)}"))
        items.append(pair_item(ex, uid, subset))
    return items, n, errors


class PairsBenchmark:
    """Pairwise accuracy on any preference file, optionally per ``subset``."""

    name = "pairs"
    description = "pairwise accuracy (ties wrong) on any preference file; per subset if a 'subset' column exists"
    default_split = "train"
    section_unit = "subsets"
    sections_expected: Mapping[str, tuple[str, ...]] = MappingProxyType({})  # no published sections

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult:
        items, n, errors = read_pairs(source, split=split, default_split=self.default_split)
        return finish_read(source, items, n, errors, skip_invalid=skip_invalid)

    def outcomes(self, items: Sequence[Item], scores: Sequence[np.ndarray]) -> Outcomes:
        return base_outcomes(items, [beats_all(s) for s in scores])

    def random_outcomes(self, items: Sequence[Item]) -> Outcomes:
        return base_outcomes(items, [0.5] * len(items))

    def summarize(self, outcomes: Outcomes) -> dict[str, Stat]:
        out = {"overall": Stat(float(np.mean(outcomes.credit)), len(outcomes.credit))}
        subsets = group_means(outcomes.credit, outcomes.code, outcomes.names, "subset/")
        if set(subsets) != {f"subset/{NO_SUBSET}"}:
            out.update(subsets)
        return out
