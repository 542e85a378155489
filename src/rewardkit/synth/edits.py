"""Controlled edits of sampled responses for ``ifeval-lite``: each changes which constraints are met.

Every edit is a pure ``str -> str`` function (lowercase, truncate to N words, wrap as JSON, …).
:func:`expand` turns a prompt's model samples into a candidate set: the samples, each constraint's
fixing edit applied alone, all fixes together (usually gold 1.0), all fixes but one, and a fixed
response broken again on purpose, so that edited candidates are not always the better ones.
Every candidate records how it was made (``"sample"`` or ``"edit:<name>+<name>"``) and its gold reward.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from rewardkit.verify.verifiers import Constraint, count_words, gold_reward

QUESTIONS: tuple[str, ...] = (
    "What do you think?",
    "Does that help?",
    "Which part do you like best?",
    "What would you add?",
    "Have you tried this yourself?",
)
KEYWORD_SENTENCES: tuple[str, ...] = ("It is all about {kw}.", "Think about {kw}.", "Remember {kw}.")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"\S+")


def lowercase(text: str) -> str:
    return text.lower()


def uppercase(text: str) -> str:
    return text.upper()


def truncate(text: str, n_words: int) -> str:
    """Keep the first ``n_words`` words (as :func:`count_words` counts them), ending with a full stop."""
    seen, end = 0, 0
    for token in _TOKEN.finditer(text):
        if seen == n_words:
            break
        end = token.end()
        seen += any(ch.isalnum() for ch in token.group())
    cut = text[:end].rstrip(" ,;:-")
    return cut if not cut or cut.endswith((".", "!", "?")) else cut + "."


def extend(text: str, filler: str, n_words: int) -> str:
    """Append whole sentences of ``filler`` (cycling through them) until ``text`` has ``n_words`` words."""
    sentences = [s for s in _SENTENCE_END.split(filler.strip()) if count_words(s)]
    out = text.strip()
    for i in range(n_words if sentences else 0):
        if count_words(out) >= n_words:
            break
        out = f"{out} {sentences[i % len(sentences)]}".strip()
    return out


def append_question(text: str, question: str) -> str:
    return f"{text.rstrip()} {question}".lstrip()


def remove_keyword(text: str, keyword: str) -> str:
    """Delete whole-word occurrences of ``keyword`` (case-insensitive) and tidy the spaces left."""
    text = re.sub(rf"(?<!\w){re.escape(keyword)}(?!\w)", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([.,;:!?])", r"\1", text)
    return re.sub(r"[,;:]+([.!?])", r"\1", text).strip()  # "cold, rain!" -> "cold,!" -> "cold!"


def insert_keyword(text: str, sentence: str) -> str:
    """Insert ``sentence`` (which holds the keyword) after the first sentence of ``text``."""
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return " ".join([parts[0], sentence, *parts[1:]]).strip()


def strip_commas(text: str) -> str:
    return text.replace(",", "")


def _chunks(text: str, k: int) -> list[str]:
    """``text`` cut into ``k`` contiguous pieces: whole sentences when there are enough, else words."""
    units = [s for s in _SENTENCE_END.split(text.strip()) if s]
    if len(units) < k:
        units = text.split()
    groups = [units[i * len(units) // k : (i + 1) * len(units) // k] for i in range(k)]
    return [" ".join(" ".join(group).split()) for group in groups]


def to_bullets(text: str, n: int) -> str:
    """Exactly ``n`` ``- `` bullet lines holding the text, in order."""
    return "\n".join(f"- {chunk}" for chunk in _chunks(text, n))


def to_json(text: str, keys: Sequence[str], fenced: bool) -> str:
    """A JSON object with ``keys`` whose values are consecutive pieces of the text."""
    obj = dict(zip(keys, _chunks(text, len(keys)), strict=True))
    if fenced:
        return "```json\n" + json.dumps(obj, ensure_ascii=False, indent=2) + "\n```"
    return json.dumps(obj, ensure_ascii=False)


def prepend_start(text: str, phrase: str) -> str:
    """``phrase`` first; on its own line when the text is a bullet list, so no bullet is lost."""
    separator = ":\n" if text.lstrip().startswith(("- ", "* ")) else ": "
    return f"{phrase}{separator}{text.lstrip()}"


@dataclass(frozen=True)
class Edit:
    """A named text transformation with its params bound."""

    name: str
    fn: Callable[[str], str]
    adds_words: int = 0  # words it puts in (JSON keys count), so truncation can leave room


@dataclass(frozen=True)
class Candidate:
    """One response to a prompt: its text, how it was made, and its gold reward."""

    text: str
    source: str
    gold: float


# Fixes are applied in this order: padding, deletions, truncation, additions, layout, then case.
FIX_ORDER: tuple[str, ...] = (
    "min_words", "exclude_keyword", "no_commas", "max_words", "include_keyword", "end_with_question",
    "num_bullets", "json_keys", "start_with", "lowercase", "uppercase",
)  # fmt: skip


def _keyword_sentence(keyword: str, rng: random.Random) -> str:
    return rng.choice(KEYWORD_SENTENCES).format(kw=keyword)


def _fix(c: Constraint, rng: random.Random) -> Edit | None:
    """The edit meeting ``c``, but for the length limits (:func:`fixes_for` adds those)."""
    p = c.kwargs
    simple = {"lowercase": lowercase, "uppercase": uppercase, "no_commas": strip_commas}
    if c.kind in simple:
        name = "strip_commas" if c.kind == "no_commas" else c.kind
        return Edit(name, simple[c.kind])
    if c.kind == "include_keyword":
        sentence = _keyword_sentence(p["keyword"], rng)
        return Edit("insert_keyword", partial(insert_keyword, sentence=sentence), count_words(sentence))
    if c.kind == "exclude_keyword":
        return Edit("remove_keyword", partial(remove_keyword, keyword=p["keyword"]))
    if c.kind == "end_with_question":
        question = rng.choice(QUESTIONS)
        return Edit("append_question", partial(append_question, question=question), count_words(question))
    if c.kind == "json_keys":
        fenced = rng.random() < 0.5
        words = len(p["keys"]) + fenced  # the keys, and "```json" counts as a word
        return Edit("to_json", partial(to_json, keys=p["keys"], fenced=fenced), words)
    if c.kind == "num_bullets":
        return Edit("to_bullets", partial(to_bullets, n=p["n"]))
    if c.kind == "start_with":
        phrase = p["phrase"]
        return Edit("prepend_start", partial(prepend_start, phrase=phrase), count_words(phrase))
    return None


def fixes_for(constraints: Sequence[Constraint], rng: random.Random, *, filler: str = "") -> dict[str, Edit]:
    """The edit that makes a response meet each constraint, by kind.

    ``min_words`` is met by appending sentences of ``filler`` (the prompt's samples), when it has any.

    Truncation leaves room for the words that later fixes add, so that applying all of them in
    :data:`FIX_ORDER` meets every constraint.
    """
    fixes = {c.kind: edit for c in constraints if (edit := _fix(c, rng)) is not None}
    added = sum(e.adds_words for e in fixes.values())
    limit = next((c.kwargs["n"] for c in constraints if c.kind == "max_words"), None)
    if limit is not None:
        fixes["max_words"] = Edit("truncate", partial(truncate, n_words=max(1, limit - 1 - added)))
    floor = next((c.kwargs["n"] for c in constraints if c.kind == "min_words"), None)
    if floor is not None:
        # a few words to spare, so that deleting a keyword afterwards keeps the count
        fixes["min_words"] = Edit("extend", partial(extend, filler=filler, n_words=floor + 5))
    return fixes


def breaks_for(constraints: Sequence[Constraint], rng: random.Random) -> dict[str, Edit]:
    """By kind, the edit that breaks a constraint: a case flip, or removing / inserting the keyword."""
    breaks: dict[str, Edit] = {}
    for c in constraints:
        if c.kind == "lowercase":
            breaks[c.kind] = Edit("uppercase", uppercase)
        elif c.kind == "uppercase":
            breaks[c.kind] = Edit("lowercase", lowercase)
        elif c.kind == "include_keyword":
            breaks[c.kind] = Edit("remove_keyword", partial(remove_keyword, keyword=c.kwargs["keyword"]))
        elif c.kind == "exclude_keyword":
            sentence = _keyword_sentence(c.kwargs["keyword"], rng)
            breaks[c.kind] = Edit("insert_keyword", partial(insert_keyword, sentence=sentence))
    return breaks


def apply_edits(text: str, edits: Sequence[Edit]) -> tuple[str, str]:
    """Apply ``edits`` in order; return the new text and its source ``"edit:a+b"``."""
    for edit in edits:
        text = edit.fn(text)
    return text, "edit:" + "+".join(e.name for e in edits)


def _in_order(edits: dict[str, Edit], kinds: Sequence[str]) -> list[Edit]:
    return [edits[k] for k in FIX_ORDER if k in kinds and k in edits]


def expand(constraints: Sequence[Constraint], samples: Sequence[str], rng: random.Random) -> list[Candidate]:
    """Samples plus edited variants, deduplicated by text (first occurrence kept), each with its gold.

    Two samples (chosen by ``rng``) are edited: each fix alone, and all fixes together. The first also
    gets all fixes but one; the second gets all fixes with one of them swapped for its breaking edit
    (:func:`breaks_for`) when the prompt has a casing or keyword constraint.
    """
    made: list[tuple[str, str]] = [(s, "sample") for s in samples]
    fixes = fixes_for(constraints, rng, filler=" ".join(samples))
    breaks = breaks_for(constraints, rng)
    kinds = [c.kind for c in constraints]
    fixed = _in_order(fixes, kinds)
    for b, base in enumerate(rng.sample(list(samples), min(2, len(samples)))):
        made += [apply_edits(base, [fixes[k]]) for k in kinds if k in fixes]
        if len(fixed) > 1:
            made.append(apply_edits(base, fixed))
        if b == 0 and len(fixed) > 1:
            left_out = rng.choice(fixed)
            made.append(apply_edits(base, [e for e in fixed if e is not left_out]))
        if b == 1 and breaks:
            broken = rng.choice(sorted(breaks))
            made.append(apply_edits(base, _in_order({**fixes, broken: breaks[broken]}, kinds)))
    seen: set[str] = set()
    candidates: list[Candidate] = []
    for text, source in made:
        if text not in seen:
            seen.add(text)
            candidates.append(Candidate(text, source, gold_reward(text, constraints)))
    return candidates
