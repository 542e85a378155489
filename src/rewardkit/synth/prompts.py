"""Seeded prompts for the ``ifeval-lite`` task: a base request plus 1–3 compatible constraints.

Each base request carries topic words; keyword constraints draw from them, so that "include the word
X" is sometimes met by the model unprompted and "do not use the word X" is often broken.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rewardkit.verify.verifiers import Constraint, describe_all

# (request, topic words). The words are ones a model answering the request is likely to use.
BASE_REQUESTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Describe a rainy day in a city.", ("rain", "umbrella", "street")),
    ("Give advice for a first job interview.", ("confidence", "questions", "prepare")),
    ("Explain how a bicycle works.", ("pedals", "chain", "wheel")),
    ("Describe your ideal weekend.", ("relax", "friends", "morning")),
    ("Explain why the sky is blue.", ("light", "sunlight", "scattering")),
    ("Give tips for learning a new language.", ("practice", "vocabulary", "speaking")),
    ("Describe a walk through a forest.", ("trees", "leaves", "birds")),
    ("Explain how to make a cup of tea.", ("water", "kettle", "leaves")),
    ("Write a short note thanking a teacher.", ("thank", "lessons", "grateful")),
    ("Explain what a computer does.", ("data", "program", "memory")),
    ("Describe the ocean at night.", ("waves", "moon", "dark")),
    ("Give advice for sleeping better.", ("bed", "screens", "routine")),
    ("Explain how plants grow.", ("sunlight", "water", "roots")),
    ("Describe a busy market.", ("people", "food", "noise")),
    ("Give tips for saving money.", ("budget", "spending", "save")),
    ("Explain how a refrigerator keeps food cold.", ("heat", "cold", "food")),
    ("Describe your favorite season.", ("autumn", "weather", "leaves")),
    ("Explain why exercise is healthy.", ("heart", "muscles", "energy")),
    ("Write a short story about a lost cat.", ("cat", "home", "night")),
    ("Give advice for a student starting university.", ("friends", "classes", "study")),
    ("Explain how the internet works.", ("computers", "network", "data")),
    ("Describe a mountain village.", ("houses", "snow", "quiet")),
    ("Explain what photosynthesis is.", ("plants", "sunlight", "energy")),
    ("Give tips for cooking pasta.", ("water", "salt", "sauce")),
    ("Describe a thunderstorm.", ("lightning", "thunder", "rain")),
    ("Explain how a library is organized.", ("books", "shelves", "catalog")),
    ("Give advice for running a first marathon.", ("training", "water", "pace")),
    ("Describe a childhood memory of summer.", ("summer", "sun", "friends")),
    ("Explain why recycling matters.", ("waste", "plastic", "environment")),
    ("Write a short poem about the moon.", ("moon", "night", "light")),
    ("Explain how vaccines work.", ("immune", "body", "virus")),
    ("Describe a train journey.", ("window", "station", "landscape")),
    ("Give tips for keeping a plant alive.", ("water", "light", "soil")),
    ("Explain what gravity is.", ("mass", "force", "earth")),
    ("Describe a good friend.", ("trust", "kind", "listen")),
    ("Give advice for public speaking.", ("audience", "practice", "nervous")),
    ("Explain how bees make honey.", ("flowers", "nectar", "hive")),
    ("Describe a bakery in the morning.", ("bread", "smell", "oven")),
    ("Explain why people need sleep.", ("brain", "rest", "memory")),
    ("Give tips for writing a good email.", ("subject", "clear", "short")),
    ("Describe a snowy day.", ("snow", "cold", "white")),
    ("Explain how a camera takes a picture.", ("lens", "light", "sensor")),
    ("Give advice for working from home.", ("desk", "breaks", "schedule")),
    ("Describe a visit to a museum.", ("art", "history", "paintings")),
    ("Explain how rain forms.", ("clouds", "water", "vapor")),
    ("Give tips for a long car trip.", ("snacks", "music", "breaks")),
    ("Describe the perfect breakfast.", ("coffee", "eggs", "fruit")),
    ("Explain what a volcano is.", ("lava", "magma", "eruption")),
    ("Give advice for making new friends.", ("listen", "interests", "open")),
    ("Describe a city park in spring.", ("flowers", "grass", "children")),
    ("Explain how money works.", ("value", "banks", "trade")),
    ("Write a short letter to a future self.", ("future", "hope", "remember")),
    ("Explain why the seasons change.", ("earth", "tilt", "sun")),
    ("Give tips for studying for an exam.", ("notes", "practice", "sleep")),
    ("Describe a campfire.", ("fire", "warm", "stories")),
    ("Explain how airplanes fly.", ("wings", "lift", "air")),
    ("Give advice for adopting a dog.", ("dog", "walks", "training")),
    ("Describe a quiet library.", ("books", "silence", "reading")),
    ("Explain what a healthy diet is.", ("vegetables", "protein", "balance")),
    ("Give tips for staying focused.", ("distractions", "goals", "breaks")),
    ("Describe a beach at sunrise.", ("sand", "waves", "sun")),
    ("Explain how a battery stores energy.", ("chemical", "energy", "charge")),
    ("Give advice for a first day at a new job.", ("colleagues", "questions", "listen")),
    ("Describe a garden after rain.", ("flowers", "soil", "fresh")),
    ("Explain why reading is useful.", ("books", "knowledge", "imagination")),
    ("Give tips for planning a birthday party.", ("guests", "cake", "invitations")),
)

START_PHRASES: tuple[str, ...] = ("Here is", "In short", "Great question", "To begin", "My answer")
JSON_KEYS: tuple[str, ...] = ("title", "summary", "answer", "reason", "details", "tip")
CONSTRAINT_COUNTS: tuple[int, ...] = (1, 2, 2, 3, 3)  # drawn uniformly: 1 (20%), 2 (40%), 3 (40%)

# Pairs of kinds never combined in one prompt: they contradict each other (lowercase/uppercase), or
# make each other unreachable in practice (a JSON object cannot end with "?" or hold bullets; an
# uppercase JSON object would need uppercase keys; two keys need a comma).
INCOMPATIBLE: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in (
        ("lowercase", "uppercase"),
        ("max_words", "min_words"),
        ("include_keyword", "exclude_keyword"),
        ("json_keys", "num_bullets"),
        ("json_keys", "end_with_question"),
        ("json_keys", "start_with"),
        ("json_keys", "uppercase"),
        ("json_keys", "no_commas"),
    )
)
KINDS: tuple[str, ...] = (
    "max_words", "min_words", "lowercase", "uppercase", "include_keyword", "exclude_keyword",
    "json_keys", "end_with_question", "num_bullets", "no_commas", "start_with",
)  # fmt: skip


@dataclass(frozen=True)
class SynthPrompt:
    """One task prompt: the user message text and the constraints it carries."""

    prompt_id: str
    text: str
    constraints: tuple[Constraint, ...]


def compatible(kinds: set[str] | frozenset[str], kind: str) -> bool:
    """Whether ``kind`` can join a prompt already holding ``kinds``."""
    return kind not in kinds and all(frozenset((kind, k)) not in INCOMPATIBLE for k in kinds)


def sample_constraint(kind: str, topic_words: tuple[str, ...], rng: random.Random) -> Constraint:
    """A constraint of ``kind`` with params drawn from ``rng``."""
    if kind == "max_words":
        return Constraint.make(kind, n=rng.choice((20, 30, 40, 50)))
    if kind == "min_words":
        return Constraint.make(kind, n=rng.choice((20, 30, 40)))
    if kind in ("include_keyword", "exclude_keyword"):
        return Constraint.make(kind, keyword=rng.choice(topic_words))
    if kind == "json_keys":
        return Constraint.make(kind, keys=rng.sample(JSON_KEYS, 2))
    if kind == "num_bullets":
        return Constraint.make(kind, n=rng.choice((2, 3, 4)))
    if kind == "start_with":
        return Constraint.make(kind, phrase=rng.choice(START_PHRASES))
    return Constraint.make(kind)


def sample_constraints(topic_words: tuple[str, ...], rng: random.Random) -> tuple[Constraint, ...]:
    """1–3 mutually compatible constraints, in the order drawn."""
    count = rng.choice(CONSTRAINT_COUNTS)
    kinds: list[str] = []
    while len(kinds) < count:
        options = [k for k in KINDS if compatible(set(kinds), k)]
        kinds.append(rng.choice(options))
    return tuple(sample_constraint(k, topic_words, rng) for k in kinds)


def build_prompts(n: int, seed: int) -> list[SynthPrompt]:
    """``n`` prompts, deterministic in ``seed``; base requests cycle through the bank in shuffled order."""
    rng = random.Random(f"ifeval-lite/prompts/{seed}")
    prompts: list[SynthPrompt] = []
    seen: set[str] = set()
    order: list[int] = []
    while len(prompts) < n:
        if not order:
            order = list(range(len(BASE_REQUESTS)))
            rng.shuffle(order)
        request, words = BASE_REQUESTS[order.pop()]
        constraints = sample_constraints(words, rng)
        text = f"{request} {describe_all(constraints)}"
        if text in seen:  # identical prompts could otherwise land in both train and test
            continue
        seen.add(text)
        prompts.append(SynthPrompt(f"ifeval-lite-{seed}-{len(prompts):05d}", text, constraints))
    return prompts
