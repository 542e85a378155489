"""The instruction checkers of ``ifeval-lite``: positive, negative and edge cases, and gold by hand."""

from __future__ import annotations

import inspect

import pytest

from rewardkit.verify.verifiers import (
    VERIFIERS,
    Constraint,
    check_all,
    count_words,
    describe_all,
    gold_reward,
)


def check(kind: str, response: str, **params: object) -> bool:
    return Constraint.make(kind, **params).check(response)


# ---------------------------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", 0),
        ("   \n ", 0),
        ("one two  three", 3),
        ("- bullet item\n* another", 3),  # markers are not words
        ("well-known, it's 42 — fine.", 4),  # the dash alone is not a word
        ("trailing space   ", 2),
    ],
)
def test_count_words(text: str, words: int) -> None:
    assert count_words(text) == words


def test_max_words_is_strictly_fewer() -> None:
    assert check("max_words", "a b c", n=4)
    assert not check("max_words", "a b c d", n=4)  # 4 words is not fewer than 4
    assert check("max_words", "", n=1)
    assert check("max_words", "a b c   \n", n=4)  # trailing whitespace adds no word


def test_min_words_is_at_least() -> None:
    assert check("min_words", "a b c d", n=4)
    assert not check("min_words", "a b c", n=4)
    assert not check("min_words", "", n=1)
    assert not check("min_words", "- * - a b c", n=4)  # bullet markers do not pad the count


# ---------------------------------------------------------------------------------------------- case


def test_lowercase() -> None:
    assert check("lowercase", "all quiet here, 42 times!")
    assert not check("lowercase", "all quiet Here")
    assert not check("lowercase", "")  # no letters: not "in lowercase letters"
    assert not check("lowercase", "123 ...")
    assert check("lowercase", "émile à la plage")


def test_uppercase() -> None:
    assert check("uppercase", "ALL CAPS, 42 TIMES!")
    assert not check("uppercase", "ALL CAPs")
    assert not check("uppercase", "")
    assert not check("uppercase", "42 - 7")
    assert check("uppercase", "ÉCOLE\n")


# ---------------------------------------------------------------------------------------------- keywords


def test_include_keyword_whole_word_case_insensitive() -> None:
    assert check("include_keyword", "The Rain falls.", keyword="rain")
    assert check("include_keyword", "rain", keyword="RAIN")
    assert check("include_keyword", "rain's smell", keyword="rain")  # apostrophe ends the word
    assert not check("include_keyword", "It rained all day.", keyword="rain")  # substring of another word
    assert not check("include_keyword", "a brainy idea", keyword="rain")
    assert not check("include_keyword", "", keyword="rain")


def test_exclude_keyword() -> None:
    assert check("exclude_keyword", "It rained all day.", keyword="rain")
    assert check("exclude_keyword", "", keyword="rain")
    assert not check("exclude_keyword", "Rain, again.", keyword="rain")


# ---------------------------------------------------------------------------------------------- json


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ('{"title": "A", "tip": "B"}', True),
        ('  {"tip": 1, "title": [2]}  \n', True),  # key order and value types do not matter
        ('```json\n{"title": "A", "tip": "B"}\n```', True),
        ('```\n{"title": "A", "tip": "B"}\n```', True),
        ('```JSON\n{\n  "title": "A",\n  "tip": "B"\n}\n```  ', True),
        ('{"title": "A"}', False),  # a key missing
        ('{"title": "A", "tip": "B", "extra": 0}', False),  # exactly the keys
        ('Here it is: {"title": "A", "tip": "B"}', False),  # not the whole response
        ('```json\n{"title": "A", "tip": "B"}\n``` Hope this helps!', False),
        ('{"title": "A", "tip": "B"', False),  # malformed
        ("{'title': 'A', 'tip': 'B'}", False),  # single quotes are not JSON
        ('["title", "tip"]', False),  # not an object
        ("", False),
    ],
)
def test_json_keys(response: str, ok: bool) -> None:
    assert check("json_keys", response, keys=["title", "tip"]) is ok


# ---------------------------------------------------------------------------------------------- layout


def test_end_with_question() -> None:
    assert check("end_with_question", "Is it? ")
    assert check("end_with_question", "Done. Right?\n\n")
    assert not check("end_with_question", "Why? Because.")
    assert not check("end_with_question", "")
    assert not check("end_with_question", "Really?!")


@pytest.mark.parametrize(
    ("response", "bullets"),
    [
        ("- a\n- b\n- c", 3),
        ("* a\n* b\n- c", 3),
        ("Intro:\n- a\n  - nested\n- b\n\nOutro.", 3),  # indented bullets count
        ("-a\n- b", 1),  # a marker needs its space
        ("**bold** line\n--- \n- b", 1),  # bold text and rules are not bullets
        ("1. a\n2. b", 0),  # numbered lists are not bullets
        ("", 0),
    ],
)
def test_num_bullets(response: str, bullets: int) -> None:
    assert check("num_bullets", response, n=bullets)
    assert not check("num_bullets", response, n=bullets + 1)


def test_no_commas() -> None:
    assert check("no_commas", "No commas here.")
    assert check("no_commas", "")
    assert not check("no_commas", "One, two.")


def test_start_with() -> None:
    assert check("start_with", "In short: yes.", phrase="In short")
    assert check("start_with", "  \nIN SHORT yes", phrase="in short")
    assert not check("start_with", "Well, in short, yes.", phrase="In short")
    assert not check("start_with", "", phrase="In short")


# ---------------------------------------------------------------------------------------------- constraint


def test_constraint_is_hashable_and_round_trips() -> None:
    c = Constraint.make("json_keys", keys=["title", "tip"])
    assert c.params == (("keys", ("title", "tip")),)
    assert hash(c) == hash(Constraint.make("json_keys", keys=("title", "tip")))
    assert c.to_dict() == {"kind": "json_keys", "params": {"keys": ["title", "tip"]}}
    assert Constraint.from_dict(c.to_dict()) == c
    assert Constraint.from_dict({"kind": "lowercase"}) == Constraint("lowercase")


def test_describe() -> None:
    assert Constraint.make("max_words", n=40).describe() == "Answer in fewer than 40 words."
    assert Constraint.make("json_keys", keys=["a", "b"]).describe() == (
        'Reply with only a JSON object whose keys are exactly "a" and "b".'
    )
    assert Constraint.make("start_with", phrase="In short").describe() == 'Start your answer with "In short".'
    both = [Constraint.make("no_commas"), Constraint.make("end_with_question")]
    assert describe_all(both) == "Do not use any commas. End your answer with a question."


def test_every_verifier_has_a_description() -> None:
    values = {"n": 3, "keyword": "x", "keys": ["a"], "phrase": "Hi"}
    for kind in VERIFIERS.names():
        params = list(inspect.signature(VERIFIERS.get(kind)).parameters)[1:]  # after ``response``
        text = Constraint.make(kind, **{p: values[p] for p in params}).describe()
        assert text.endswith(".") and "{" not in text


def test_unknown_kind_raises() -> None:
    with pytest.raises(KeyError, match="unknown verifier"):
        Constraint.make("rhyme").check("a")


# ---------------------------------------------------------------------------------------------- gold


def test_gold_reward_by_hand() -> None:
    constraints = [
        Constraint.make("lowercase"),
        Constraint.make("max_words", n=5),
        Constraint.make("end_with_question"),
    ]
    # "is it raining?": lowercase yes, 3 words < 5 yes, ends with "?" yes -> 3/3
    assert gold_reward("is it raining?", constraints) == 1.0
    # "Is it raining?": capital I -> 2/3
    assert check_all("Is it raining?", constraints) == [False, True, True]
    assert gold_reward("Is it raining?", constraints) == pytest.approx(2 / 3)
    # "Is it raining today or not at all." -> upper I, 8 words, no "?" -> 0/3
    assert gold_reward("Is it raining today or not at all.", constraints) == 0.0
    # "Yes, no": has a comma (no), 2 words < 3 (yes) -> 1/2
    assert gold_reward("Yes, no", [Constraint.make("no_commas"), Constraint.make("max_words", n=3)]) == 0.5


def test_gold_reward_needs_constraints() -> None:
    with pytest.raises(ValueError, match="at least one"):
        gold_reward("x", [])
