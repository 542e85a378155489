"""ifeval-lite controlled edits: each edit alone, the shared and contrast edits of a family, its candidates."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rewardkit.synth import edits
from rewardkit.synth.prompts import BASE_REQUESTS, Family, SynthPrompt, build_families
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


def test_end_with_full_stop() -> None:
    assert edits.end_with_full_stop("Why not? ") == "Why not."
    assert edits.end_with_full_stop("Fine.") == "Fine."


def test_shared_plus_either_side_meets_that_prompt() -> None:
    """For every family, the shared edits plus side i's edits meet every instruction of prompt i, for
    short and long responses alike (truncation leaves room for the words the other edits add), and --
    but for "end with a question" vs "no commas", which a comma-free question meets both -- not all of
    the other prompt's."""
    long_text = " ".join([TEXT] * 5)
    for family in build_families(300, seed=1):
        shared, sides = edits.contrast_edits(family.shared, family.sides, random.Random(family.family_id),
                                             filler=TEXT)
        for text in ("Okay.", TEXT, long_text):
            for i, side_edits in enumerate(sides):
                out, source = edits.apply_edits(text, edits.in_fix_order([*shared.items(), *side_edits]))
                assert gold_reward(out, family.prompts[i].constraints) == 1.0, (family.prompts[i].text, out)
                if family.contrast != "question_commas":
                    assert gold_reward(out, family.prompts[1 - i].constraints) < 1.0, (family.prompts[1 - i].text, out)
                assert source.startswith("edit:")


def _family(shared: tuple[Constraint, ...], sides: tuple[Constraint, Constraint]) -> Family:
    a, b = (SynthPrompt(f"f{s}", f"Say something. {s}", (*shared, side), "request-000")
            for s, side in zip("ab", sides, strict=True))
    return Family("f", "test", shared, sides, (a, b))


def test_family_candidates_by_hand() -> None:
    """"Include rain" vs "include sun", no shared instruction: two bases (one per prompt's samples), each
    given one keyword and stripped of the other, so every edited candidate meets exactly one prompt."""
    family = _family((), (Constraint.make("include_keyword", keyword="rain"),
                          Constraint.make("include_keyword", keyword="sun")))
    samples = [["Rain falls."], ["Sun shines. It is warm."]]
    cands = edits.family_candidates(family, samples, random.Random(0))
    assert [(c.text, c.source, c.golds) for c in cands[:2]] == [
        ("Rain falls.", "sample", (1.0, 0.0)), ("Sun shines. It is warm.", "sample", (0.0, 1.0))]
    edited = cands[2:]
    assert len(edited) == 4 and {c.source for c in edited} == {"edit:remove_keyword+insert_keyword"}
    assert sorted(c.golds for c in edited) == [(0.0, 1.0), (0.0, 1.0), (1.0, 0.0), (1.0, 0.0)]
    texts = [c.text for c in edited]  # base 0 given rain / sun, then base 1 given rain / sun
    assert texts[0].startswith("Rain falls. ") and texts[1].startswith("falls. ")  # "Rain" removed
    assert texts[2].startswith("shines. ") and texts[2].endswith(" It is warm.")  # "Sun" removed
    assert texts[3].startswith("Sun shines. ") and texts[3].endswith(" It is warm.")


def test_question_commas_variants() -> None:
    """The question variant keeps the commas; the comma-free variant no longer ends with a question."""
    family = _family((), (Constraint.make("end_with_question"), Constraint.make("no_commas")))
    cands = edits.family_candidates(family, [["Rain, then sun?"], ["Wind, cold."]], random.Random(0), n_bases=1)
    by_source = {c.source: c for c in cands if c.source != "sample"}
    assert by_source["edit:strip_commas+end_with_full_stop"].text == "Rain then sun."
    assert by_source["edit:strip_commas+end_with_full_stop"].golds == (0.0, 1.0)
    assert by_source["edit:append_question"].golds == (1.0, 0.0)


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
    assert f["keyword_sentence"]("A. Keep rain in mind. B. Think about sun.") == 2.0
    assert f["stock_question"]("Nice. What do you think?") == 1.0 and f["stock_question"]("Why?") == 0.0
    assert f["start_phrase"]("In short: yes") == 1.0 and f["start_phrase"]("In short yes") == 0.0
    assert f["json_fence"]('```json\n{"a": 1}\n```') == 1.0


def test_inserted_words_are_never_topic_words() -> None:
    """Inserting a keyword sentence or a question never adds a word some prompt may exclude."""
    topic = {w for _, words in BASE_REQUESTS for w in words}
    inserted = {w.strip(".?").lower() for t in (*edits.KEYWORD_SENTENCES, *edits.QUESTIONS) for w in t.split()}
    assert not (inserted - {"{kw}"}) & topic
