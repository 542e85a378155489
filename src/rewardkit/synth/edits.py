"""Controlled edits of sampled responses for ``ifeval-lite``: each changes which constraints are met.

Every edit is a pure ``str -> str`` function (lowercase, truncate to N words, wrap as JSON, …).
:func:`family_candidates` turns the samples of a prompt family (:class:`~rewardkit.synth.prompts.Family`)
into its candidate set: the samples, and for a few of them the same *shared* edits (meeting every
instruction both prompts share) alone, plus the edit meeting one side of the contrast, plus the edit
meeting the other side. Edited candidates are thus edited alike, and each is right under one prompt
of the family and wrong under the other. Every candidate records how it was made (``"sample"`` or
``"edit:<name>+<name>"``) and its gold reward under each prompt of the family.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from rewardkit.synth.prompts import START_PHRASES, Family
from rewardkit.verify.verifiers import Constraint, count_words, gold_reward

QUESTIONS: tuple[str, ...] = (
    "What do you think?",
    "Does that help?",
    "Which part do you like best?",
    "What would you add?",
    "Have you tried this yourself?",
)
# No word of these (nor of QUESTIONS) is a topic word of a request, so inserting one never adds an
# excluded keyword.
KEYWORD_SENTENCES: tuple[str, ...] = ("It is all about {kw}.", "Think about {kw}.", "Keep {kw} in mind.")

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
    """One response to a prompt family: its text, how it was made, and its gold reward under each prompt."""

    text: str
    source: str
    golds: tuple[float, ...]


# Fixes are applied in this order: padding, deletions, truncation, additions, layout, then case.
FIX_ORDER: tuple[str, ...] = (
    "min_words", "exclude_keyword", "no_commas", "max_words", "include_keyword", "end_with_question",
    "num_bullets", "json_keys", "start_with", "lowercase", "uppercase",
)  # fmt: skip
LENGTH_KINDS = frozenset({"max_words", "min_words"})


def _keyword_sentence(keyword: str, rng: random.Random) -> str:
    return rng.choice(KEYWORD_SENTENCES).format(kw=keyword)


def _fix(c: Constraint, rng: random.Random) -> Edit | None:
    """The edit meeting ``c``, but for the length limits (:func:`_length_fix` makes those)."""
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


def _length_fix(c: Constraint, *, filler: str, room: int) -> Edit:
    """Truncation for ``max_words``, leaving ``room`` words for later edits; padding with sentences of
    ``filler`` for ``min_words``, with a few words to spare (a keyword deleted afterwards keeps the count)."""
    n = c.kwargs["n"]
    if c.kind == "max_words":
        return Edit("truncate", partial(truncate, n_words=max(1, n - 1 - room)))
    return Edit("extend", partial(extend, filler=filler, n_words=n + 5))


def fixes_for(constraints: Sequence[Constraint], rng: random.Random, *, filler: str = "",
              room: int = 0) -> dict[str, Edit]:
    """The edit that makes a response meet each constraint, by kind.

    ``min_words`` is met by appending sentences of ``filler`` (the family's samples), when it has any.
    Truncation leaves room for the words that the other fixes add, plus ``room`` more, so that applying
    all of them in :data:`FIX_ORDER` meets every constraint.
    """
    fixes = {c.kind: edit for c in constraints if (edit := _fix(c, rng)) is not None}
    added = sum(e.adds_words for e in fixes.values())
    for c in constraints:
        if c.kind in LENGTH_KINDS:
            fixes[c.kind] = _length_fix(c, filler=filler, room=added + room)
    return fixes


def end_with_full_stop(text: str) -> str:
    """The text with its closing ``?`` (and anything after it but spaces) replaced by a full stop."""
    body = text.rstrip()
    return body[:-1].rstrip() + "." if body.endswith("?") else text


def _break(c: Constraint, rng: random.Random) -> tuple[str, Edit] | None:
    """An edit that breaks ``c`` when the fix of another instruction may leave it met, with the kind whose
    place in :data:`FIX_ORDER` it takes: removing an included keyword, inserting an excluded one, ending a
    question with a full stop; None for the others (their other side's fix already breaks them)."""
    if c.kind == "include_keyword":
        return "exclude_keyword", Edit("remove_keyword", partial(remove_keyword, keyword=c.kwargs["keyword"]))
    if c.kind == "exclude_keyword":
        sentence = _keyword_sentence(c.kwargs["keyword"], rng)
        return "include_keyword", Edit("insert_keyword", partial(insert_keyword, sentence=sentence),
                                       count_words(sentence))
    if c.kind == "end_with_question":
        return "end_with_question", Edit("end_with_full_stop", end_with_full_stop)
    return None


def contrast_edits(shared: Sequence[Constraint], sides: Sequence[Constraint], rng: random.Random, *,
                   filler: str = "") -> tuple[dict[str, Edit], list[list[tuple[str, Edit]]]]:
    """The edits meeting every ``shared`` instruction (by kind), and for each of the two ``sides`` the
    ``(kind, edit)`` list meeting it and breaking the other side ("include rain" vs "include sun": insert
    rain and remove sun).

    The shared edits plus the edits of side ``i`` meet every instruction of that prompt: truncation, shared
    or a side's, leaves room for the words that the other edits add.
    """
    fixes = [_fix(s, rng) for s in sides]  # None for the length limits, made below
    breaks = [_break(s, rng) for s in reversed(sides)]  # side i breaks the other side
    side_room = max((sum(e.adds_words for e in (f, b[1] if b else None) if e is not None)
                     for f, b in zip(fixes, breaks, strict=True)), default=0)
    shared_fixes = fixes_for(shared, rng, filler=filler, room=side_room)
    shared_added = sum(e.adds_words for e in shared_fixes.values())
    out = []
    for side, fix, broken in zip(sides, fixes, breaks, strict=True):
        made = fix if fix is not None else _length_fix(side, filler=filler, room=shared_added)
        out.append([(side.kind, made), *([broken] if broken is not None else [])])
    return shared_fixes, out


def apply_edits(text: str, edits: Sequence[Edit]) -> tuple[str, str]:
    """Apply ``edits`` in order; return the new text and its source ``"edit:a+b"``."""
    for edit in edits:
        text = edit.fn(text)
    return text, "edit:" + "+".join(e.name for e in edits)


def in_fix_order(edits: Sequence[tuple[str, Edit]]) -> list[Edit]:
    """``(kind, edit)`` pairs sorted by :data:`FIX_ORDER` (stable for two edits of one kind)."""
    return [e for _, e in sorted(edits, key=lambda ke: FIX_ORDER.index(ke[0]))]


def family_candidates(family: Family, samples: Sequence[Sequence[str]], rng: random.Random, *,
                      n_bases: int = 2) -> list[Candidate]:
    """Both prompts' samples plus edited variants, deduplicated by text (first kept), graded under both.

    ``samples[i]`` are the samples of ``family.prompts[i]``. ``n_bases`` samples (drawn by ``rng``, taken
    from the two prompts in turn) are each edited three ways: the shared edits (every shared instruction
    met), the shared edits plus side 0's edits, the shared edits plus side 1's edits (in
    :data:`FIX_ORDER`; :func:`contrast_edits`). With no shared instruction the first is the sample itself.
    """
    pool = [s for prompt_samples in samples for s in prompt_samples]
    shared, sides = contrast_edits(family.shared, family.sides, rng, filler=" ".join(pool))
    made: list[tuple[str, str]] = [(s, "sample") for s in pool]
    for b in range(min(n_bases, len(pool))):
        own = [s for s in samples[b % len(samples)] if s] or pool
        base = rng.choice(own)
        common = list(shared.items())
        if common:
            made.append(apply_edits(base, in_fix_order(common)))
        for side_edits in sides:
            made.append(apply_edits(base, in_fix_order([*common, *side_edits])))
    seen: set[str] = set()
    candidates: list[Candidate] = []
    for text, source in made:
        if text not in seen:
            seen.add(text)
            golds = tuple(gold_reward(text, p.constraints) for p in family.prompts)
            candidates.append(Candidate(text, source, golds))
    return candidates


# ------------------------------------------------------------------------------ edit markers


def _keyword_sentence_count(text: str) -> float:
    """How many inserted keyword sentences (:data:`KEYWORD_SENTENCES`) the text holds."""
    return float(len(_KEYWORD_SENTENCE.findall(text)))


_KEYWORD_SENTENCE = re.compile(
    "|".join(re.escape(t).replace(re.escape("{kw}"), r"\w+") for t in KEYWORD_SENTENCES), re.IGNORECASE
)

# The traces ifeval-lite's edits leave in a response, as numbers the shortcut audit tries as rules
# ("the response holding more of this wins"); the generic ones (length, bullets, "?" …) are in audit.
SURFACE_FEATURES: dict[str, Callable[[str], float]] = {
    "keyword_sentence": _keyword_sentence_count,
    "stock_question": lambda t: float(t.rstrip().lower().endswith(tuple(q.lower() for q in QUESTIONS))),
    "start_phrase": lambda t: float(t.lstrip().lower().startswith(tuple(f"{p.lower()}:" for p in START_PHRASES))),
    "json_fence": lambda t: float(t.lstrip().startswith("```json")),
}
