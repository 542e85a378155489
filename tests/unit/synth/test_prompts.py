"""ifeval-lite prompt families: seeded, balanced, and the two prompts differ in the contrast only."""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations

import pytest

from rewardkit.synth.prompts import (
    BASE_REQUESTS,
    CONTRAST_WEIGHTS,
    INCOMPATIBLE,
    build_families,
    contrast_sides,
)
from rewardkit.verify.verifiers import describe_all


def test_families_are_seeded_and_prefix_stable() -> None:
    assert build_families(40, seed=3) == build_families(40, seed=3)
    assert build_families(40, seed=3) != build_families(40, seed=4)
    assert build_families(10, seed=3) == build_families(40, seed=3)[:10]  # n does not reshuffle


def test_family_prompts_share_all_but_the_contrast() -> None:
    families = build_families(300, seed=0)
    requests = {r for r, _ in BASE_REQUESTS}
    texts = [p.text for f in families for p in f.prompts]
    assert len(set(texts)) == len(texts)  # no prompt twice (it could straddle the split)
    for f in families:
        a, b = f.prompts
        assert a.group == b.group == f.group and a.prompt_id != b.prompt_id
        assert a.constraints != b.constraints
        assert [c for c in a.constraints if c != f.sides[0]] == list(f.shared)
        assert [c for c in b.constraints if c != f.sides[1]] == list(f.shared)
        assert a.constraints.index(f.sides[0]) == b.constraints.index(f.sides[1])  # same slot
        for p in f.prompts:
            kinds = [c.kind for c in p.constraints]
            assert len(set(kinds)) == len(kinds)
            assert not any(frozenset(pair) in INCOMPATIBLE for pair in combinations(kinds, 2)), kinds
            request = p.text[: len(p.text) - len(describe_all(p.constraints)) - 1]
            assert request in requests and p.text.endswith(describe_all(p.constraints))
    assert len(BASE_REQUESTS) == len({r for r, _ in BASE_REQUESTS}) == 100


def test_contrasts_follow_the_weights_exactly() -> None:
    """Contrasts come from a shuffled deck, so every full deck holds each contrast ``weight`` times."""
    deck = sum(CONTRAST_WEIGHTS.values())  # 9
    families = build_families(3 * deck, seed=5)
    assert Counter(f.contrast for f in families) == {k: 3 * w for k, w in CONTRAST_WEIGHTS.items() if w}
    # requests cycle through the bank: the first 100 families use 100 different requests
    assert len({f.group for f in build_families(100, seed=5)}) == 100
    cased = build_families(10, seed=5, weights={"case": 1, "json": 1})
    assert Counter(f.contrast for f in cased) == {"case": 5, "json": 5}
    with pytest.raises(ValueError, match="positive weight"):
        build_families(2, seed=5, weights={"case": 0})


def test_deciding_kinds_are_balanced() -> None:
    """Each side of a contrast decides half of its family's pairs: with the default weights every kind
    but the two case kinds decides 1/9 of the pairs, and case none (see CONTRAST_WEIGHTS)."""
    share: Counter[str] = Counter()
    for name, weight in CONTRAST_WEIGHTS.items():
        for side in contrast_sides(name, ("rain", "sun"), random.Random(0)):
            share[side.kind] += weight / 2
    assert sum(share.values()) == 9
    assert {k: v for k, v in share.items() if v} == {
        k: 1.0 for k in ("max_words", "min_words", "include_keyword", "exclude_keyword", "end_with_question",
                         "no_commas", "num_bullets", "json_keys", "start_with")}


@pytest.mark.parametrize("name", sorted(CONTRAST_WEIGHTS))
def test_contrast_sides_differ(name: str) -> None:
    x, y = contrast_sides(name, ("rain", "sun"), random.Random(1))
    assert x != y
    if name in ("length", "case", "json", "start", "bullets", "bullets_json"):  # never both hold
        probes = ["- a\n- b", "rain is nice?", "IN SHORT: YES", "here is the answer, friend.", '{"a": 1}', ""]
        assert not any(x.check(t) and y.check(t) for t in probes)
    if name in ("include", "exclude"):  # two different topic words
        assert x.kind == y.kind == f"{name}_keyword" and {x.kwargs["keyword"], y.kwargs["keyword"]} == {"rain", "sun"}


def test_unknown_contrast() -> None:
    with pytest.raises(KeyError, match="unknown contrast"):
        contrast_sides("nope", ("a",), random.Random(0))
