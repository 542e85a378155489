"""ifeval-lite controlled edits: each edit alone, the shared and contrast edits of a family, its candidates."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rewardkit.synth import edits
from rewardkit.synth.prompts import Family, SynthPrompt, build_families
from rewardkit.verify.verifiers import Constraint, count_words, gold_reward

TEXT = (
    "Rain falls on the city, and the streets shine. People hurry past with umbrellas. "
    "A bus splashes through a puddle! Why does everyone look so calm?"
)


def met(kind: str, text: str, **params: Any) -> bool:
    return Constraint.make(kind, **params).check(text)


def test_case_edits() -> None:
    assert met("lowercase", edits.lowercase(TEXT)) and not met("lowercase", TEXT)
    assert met("uppercase", edits.uppercase(TEXT)) and not met("uppercase", TEXT)


@pytest.mark.parametrize("n", [1, 5, 12])
def test_truncate(n: int) -> None:
    cut = edits.truncate(TEXT, n)
    assert count_words(cut) == n and met("max_words", cut, n=n + 1)
    assert TEXT.startswith(cut[:-1]) and cut.endswith(".")
    assert edits.truncate("Short one.", 10) == "Short one."
    assert edits.truncate("", 3) == ""


def test_question_and_commas() -> None:
    assert not met("end_with_question", TEXT + " Done.")
    assert met("end_with_question", edits.append_question(TEXT + " Done.", "What do you think?"))
    assert met("no_commas", edits.strip_commas(TEXT)) and not met("no_commas", TEXT)


def test_keyword_edits() -> None:
    text = "Rain falls. It rained again; the rain is cold, Rain!"
    removed = edits.remove_keyword(text, "rain")
    assert met("exclude_keyword", removed, keyword="rain")
    assert removed == "falls. It rained again; the is cold!"  # "rained" is another word, kept
    inserted = edits.insert_keyword("The bus is late. It rains.", "Think about umbrella.")
    assert inserted == "The bus is late. Think about umbrella. It rains."
    assert met("include_keyword", inserted, keyword="umbrella")


@pytest.mark.parametrize("fenced", [False, True])
def test_to_json(fenced: bool) -> None:
    out = edits.to_json(TEXT, ["title", "summary"], fenced)
    assert met("json_keys", out, keys=["title", "summary"])
    assert out.startswith("```json\n") is fenced
    one_word = edits.to_json("Hi", ["a", "b", "c"], fenced)  # fewer words than keys: empty values
    assert met("json_keys", one_word, keys=["a", "b", "c"])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_to_bullets(n: int) -> None:
    listed = "Intro:\n* one\n* two\n- three"
    for text in (TEXT, listed, "Just four words here"):
        out = edits.to_bullets(text, n)
        assert met("num_bullets", out, n=n), out
        assert count_words(out) == count_words(text)  # only layout changes


def test_prepend_start_keeps_bullets() -> None:
    assert edits.prepend_start("  the answer.", "In short") == "In short: the answer."
    out = edits.prepend_start(edits.to_bullets(TEXT, 3), "In short")
    assert met("start_with", out, phrase="In short") and met("num_bullets", out, n=3)


def test_extend() -> None:
    out = edits.extend("Hi.", TEXT, 20)
    assert met("min_words", out, n=20) and not met("min_words", out, n=30)  # whole sentences, then stop
    assert out.startswith("Hi. Rain falls on the city")
    assert edits.extend("Hi.", "Rain.", 5) == "Hi. Rain. Rain. Rain. Rain."  # cycles through the filler
    assert edits.extend("Hi.", " ... ", 5) == "Hi."  # nothing to pad with


def test_in_fix_order() -> None:
    a, b, c = (edits.Edit(n, str.strip) for n in "abc")
    assert edits.in_fix_order([("uppercase", a), ("min_words", b), ("num_bullets", c)]) == [b, c, a]


def test_shared_plus_either_side_meets_that_prompt() -> None:
    """For every family, the shared edits plus side i's edit meet every instruction of prompt i, for
    short and long responses alike (truncation leaves room for the words the other edits add)."""
    long_text = " ".join([TEXT] * 5)
    for family in build_families(300, seed=1):
        shared, sides = edits.contrast_edits(family.shared, family.sides, random.Random(family.family_id),
                                             filler=TEXT)
        for text in ("Okay.", TEXT, long_text):
            for prompt, side, edit in zip(family.prompts, family.sides, sides, strict=True):
                out, source = edits.apply_edits(text, edits.in_fix_order([*shared.items(), (side.kind, edit)]))
                assert gold_reward(out, prompt.constraints) == 1.0, (prompt.text, out)
                assert source.startswith("edit:")


def _family(shared: tuple[Constraint, ...], sides: tuple[Constraint, Constraint]) -> Family:
    a, b = (SynthPrompt(f"f{s}", f"Say something. {s}", (*shared, side), "request-000")
            for s, side in zip("ab", sides, strict=True))
    return Family("f", "test", shared, sides, (a, b))


def test_family_candidates_by_hand() -> None:
    """Keyword contrast, no shared instruction: two bases (one per prompt's samples), each given the
    keyword and stripped of it."""
    family = _family((), (Constraint.make("include_keyword", keyword="rain"),
                          Constraint.make("exclude_keyword", keyword="rain")))
    samples = [["Rain falls."], ["Sun shines. It is warm."]]
    cands = edits.family_candidates(family, samples, random.Random(0))
    by_text = {c.text: c for c in cands}
    assert [c.source for c in cands[:2]] == ["sample", "sample"]
    assert by_text["Rain falls."].golds == (1.0, 0.0)
    assert by_text["Sun shines. It is warm."].golds == (0.0, 1.0)
    assert by_text["falls."].source == "edit:remove_keyword" and by_text["falls."].golds == (0.0, 1.0)
    inserted = [c for c in cands if c.source == "edit:insert_keyword"]
    assert len(inserted) == 2 and all(c.golds == (1.0, 0.0) for c in inserted)
    assert any(c.text.startswith("Rain falls. ") for c in inserted)  # "Rain falls." + a keyword sentence
    assert any(c.text.startswith("Sun shines. ") and c.text.endswith(" It is warm.") for c in inserted)
    # removing "rain" from the second sample changes nothing: deduplicated
    assert len(cands) == len({c.text for c in cands}) == 5


def test_family_candidates_are_edited_alike() -> None:
    """Shared instruction uppercase, contrast 2 vs 4 bullets: every edited candidate is uppercase, and
    the two contrast variants of a base differ only in their bullets."""
    family = _family((Constraint.make("uppercase"),), (Constraint.make("num_bullets", n=2),
                                                      Constraint.make("num_bullets", n=4)))
    cands = edits.family_candidates(family, [[TEXT], ["One. Two. Three. Four."]], random.Random(0))
    edited = [c for c in cands if c.source != "sample"]
    assert {c.source for c in edited} == {"edit:uppercase", "edit:to_bullets+uppercase"}
    assert all(met("uppercase", c.text) for c in edited)
    assert sorted(c.golds for c in edited if "to_bullets" in c.source) == [(0.5, 1.0)] * 2 + [(1.0, 0.5)] * 2
    assert all(c.golds == (0.5, 0.5) for c in edited if c.source == "edit:uppercase")
    assert all(c.golds == (0.0, 0.0) for c in cands if c.source == "sample")


def test_surface_features_spot_the_edits() -> None:
    f = edits.SURFACE_FEATURES
    assert f["keyword_sentence"]("A. Remember rain. B. Think about sun.") == 2.0
    assert f["stock_question"]("Nice. What do you think?") == 1.0 and f["stock_question"]("Why?") == 0.0
    assert f["start_phrase"]("In short: yes") == 1.0 and f["start_phrase"]("In short yes") == 0.0
    assert f["json_fence"]('```json\n{"a": 1}\n```') == 1.0
