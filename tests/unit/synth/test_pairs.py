"""Counterfactual twins on a gold table worked out by hand."""

from __future__ import annotations

import random

from rewardkit.synth.pairs import Twin, find_twins, select_twins, twin_type

# (gold under prompt 0, gold under prompt 1) of five candidates
GOLDS = [(1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]
SOURCES = ["sample", "sample", "edit:a", "edit:b", "sample"]


def test_twin_type() -> None:
    assert twin_type("sample", "sample") == "sample"
    assert twin_type("edit:a", "sample") == twin_type("sample", "edit:a") == "mixed"
    assert twin_type("edit:a", "edit:b+c") == "edit"


def test_find_twins_by_hand() -> None:
    """a wins under prompt 0 and loses under prompt 1: a in {0, 2} (gold 1 then 0), b in {1, 3}.
    Candidate 4 fails both prompts: it is beaten under both, so never half of a twin."""
    assert find_twins(GOLDS, SOURCES) == [Twin(0, 1, "sample"), Twin(0, 3, "mixed"), Twin(2, 1, "mixed"),
                                          Twin(2, 3, "edit")]
    assert find_twins([(0.5, 0.5), (0.5, 0.5)], ["sample", "sample"]) == []  # ties are no twins
    # a better under both prompts (shared instructions differ): no twin, whatever the gap
    assert find_twins([(1.0, 1.0), (0.5, 0.0)], ["sample", "sample"]) == []


def test_select_twins_round_robin_and_reuse_limit() -> None:
    twins = find_twins(GOLDS, SOURCES)
    for seed in range(10):
        rng = random.Random(seed)
        # one use per candidate: the sample twin (0, 1) and the edit twin (2, 3) use all four candidates
        assert select_twins(twins, k=3, rng=rng, max_uses=1) == [Twin(0, 1, "sample"), Twin(2, 3, "edit")]
        picked = select_twins(twins, k=3, rng=random.Random(seed), max_uses=2)
        assert [t.kind for t in picked] == ["sample", "edit", "mixed"]  # one of each type first
        assert sorted(select_twins(twins, k=9, rng=random.Random(seed)), key=lambda t: (t.a, t.b)) == twins
    assert select_twins(twins, k=0, rng=random.Random(0)) == []
