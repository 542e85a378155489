"""Counterfactual twin pairs: the same two responses, each preferred under one prompt of a family.

A *twin* of a family (:class:`~rewardkit.synth.prompts.Family`, prompts 0 and 1) is two candidates
``(a, b)`` with ``gold_0(a) > gold_0(b)`` and ``gold_1(b) > gold_1(a)``. It gives two pairs: ``a`` over
``b`` under prompt 0, ``b`` over ``a`` under prompt 1. Every pair of the set belongs to a twin, so any
rule that looks at the responses alone -- longer wins, the edited one wins, a reward model shown no
prompt -- is right on exactly one pair of each twin it decides: only reading the prompt beats chance.

Twins are typed by what their responses are: ``sample`` (two plain model samples), ``edit`` (two edited
responses, edited alike but for the contrast) or ``mixed`` (one of each).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations

TWIN_TYPES: tuple[str, ...] = ("sample", "edit", "mixed")


@dataclass(frozen=True)
class Twin:
    """Candidates ``a`` (preferred under prompt 0) and ``b`` (preferred under prompt 1), and the twin type."""

    a: int
    b: int
    kind: str


def twin_type(source_a: str, source_b: str) -> str:
    """``sample`` when both responses are plain samples, ``edit`` when both are edited, else ``mixed``."""
    plain = (source_a == "sample") + (source_b == "sample")
    return ("edit", "mixed", "sample")[plain]


def find_twins(golds: Sequence[Sequence[float]], sources: Sequence[str]) -> list[Twin]:
    """Every twin among the candidates: ``golds[i] = (gold under prompt 0, gold under prompt 1)``."""
    return [Twin(a, b, twin_type(sources[a], sources[b]))
            for a, b in permutations(range(len(golds)), 2)
            if golds[a][0] > golds[b][0] and golds[b][1] > golds[a][1]]


def select_twins(twins: Sequence[Twin], *, k: int, rng: random.Random, max_uses: int = 2) -> list[Twin]:
    """Up to ``k`` twins, taken round-robin over :data:`TWIN_TYPES` (each type shuffled by ``rng``), so a
    family gives sample, edit and mixed twins alike when it has them; a candidate joins at most
    ``max_uses`` twins, so that one response does not fill a family's pairs."""
    queues = {t: [tw for tw in twins if tw.kind == t] for t in TWIN_TYPES}
    for queue in queues.values():
        rng.shuffle(queue)
    uses: dict[int, int] = {}
    chosen: list[Twin] = []
    while len(chosen) < k and any(queues.values()):
        for t in TWIN_TYPES:
            queue = queues[t]
            while queue and len(chosen) < k:
                tw = queue.pop()
                if uses.get(tw.a, 0) < max_uses and uses.get(tw.b, 0) < max_uses:
                    uses[tw.a] = uses.get(tw.a, 0) + 1
                    uses[tw.b] = uses.get(tw.b, 0) + 1
                    chosen.append(tw)
                    break
    return chosen
