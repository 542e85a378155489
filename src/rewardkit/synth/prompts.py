"""Seeded prompt families for ``ifeval-lite``: one request, the same instructions, one contrast.

A :class:`Family` is two prompts for one base request. Both carry the same *shared* instructions
(0 or 1) and each carries one side of a *contrast*: "fewer than 15 words" / "at least 30 words",
"end with a question" / "no commas", "exactly 3 bullet points" / "a JSON object with keys ...",
"include the word rain" / "include the word umbrella", "do not use the word rain" / "do not use the
word umbrella", start with "In short" / with "Here is". A response that meets one side of the contrast
and not the other wins under one prompt and loses under the other (a counterfactual twin,
:mod:`rewardkit.synth.pairs`): only the prompt tells which response is better.

Each base request carries topic words; keyword instructions draw from them, so that "include the word
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
    ("Describe a busy airport.", ("flights", "travelers", "luggage")),
    ("Explain how a bridge carries weight.", ("steel", "load", "support")),
    ("Give advice for learning to swim.", ("water", "breathing", "pool")),
    ("Describe a farm in the countryside.", ("animals", "fields", "barn")),
    ("Explain why we have day and night.", ("earth", "sun", "rotation")),
    ("Give tips for a good night of camping.", ("tent", "fire", "stars")),
    ("Describe a rainy afternoon at home.", ("window", "tea", "book")),
    ("Explain how a clock measures time.", ("hands", "gears", "minutes")),
    ("Give advice for taking care of a cat.", ("food", "litter", "play")),
    ("Describe a winter morning.", ("frost", "cold", "breath")),
    ("Explain what electricity is.", ("current", "energy", "wires")),
    ("Give tips for learning to cook.", ("recipes", "kitchen", "practice")),
    ("Describe a school classroom.", ("desks", "teacher", "students")),
    ("Explain how fish breathe underwater.", ("gills", "oxygen", "water")),
    ("Give advice for keeping a journal.", ("writing", "thoughts", "daily")),
    ("Describe a lighthouse by the sea.", ("light", "ships", "storm")),
    ("Explain why the moon changes shape.", ("phases", "sunlight", "orbit")),
    ("Give tips for riding a bike in a city.", ("helmet", "traffic", "lane")),
    ("Describe an old bookshop.", ("books", "dust", "shelves")),
    ("Explain how a seed becomes a tree.", ("roots", "soil", "growth")),
    ("Give advice for a long flight.", ("sleep", "water", "seat")),
    ("Describe a family dinner.", ("table", "food", "conversation")),
    ("Explain what a rainbow is.", ("light", "colors", "rain")),
    ("Give tips for keeping a room tidy.", ("clutter", "storage", "cleaning")),
    ("Describe a football match.", ("goal", "players", "crowd")),
    ("Explain how the heart pumps blood.", ("blood", "muscle", "veins")),
    ("Give advice for growing tomatoes.", ("sun", "water", "soil")),
    ("Describe a night sky full of stars.", ("stars", "dark", "sky")),
    ("Explain why bread rises.", ("yeast", "dough", "gas")),
    ("Give tips for drinking more water.", ("bottle", "thirst", "habit")),
    ("Describe a river in a valley.", ("water", "stones", "current")),
    ("Explain how a phone sends a message.", ("signal", "network", "tower")),
    ("Give advice for a job in a new city.", ("neighborhood", "friends", "rent")),
    ("Describe a birthday celebration.", ("cake", "candles", "gifts")),
)

START_PHRASES: tuple[str, ...] = ("Here is", "In short", "Great question", "To begin", "My answer")
JSON_KEYS: tuple[str, ...] = ("title", "summary", "answer", "reason", "details", "tip")
MAX_WORDS: tuple[int, ...] = (15, 20)  # "fewer than n words": above the shortest samples, below most
MIN_WORDS: tuple[int, ...] = (30, 40)  # "at least n words": the length of many, not all, 64-token samples
BULLETS: tuple[int, ...] = (2, 3, 4, 5)
SHARED_COUNTS: tuple[int, ...] = (0, 0, 1)  # shared instructions per family, drawn uniformly

# A contrast's two sides decide the pairs of its family. A contrast between two kinds (length:
# max_words / min_words) gives each kind half its pairs, one within a kind (include: "rain" vs "sun")
# all of them; weights 2 and 1 give each of the nine kinds below the same share of deciding instructions
# (1/9 of the pairs). Weight 0 keeps a contrast available without drawing it by default:
# - case (lowercase / uppercase): the default reward-model backbone (MiniLM) lowercases its input, so an
#   all-lowercase and an all-capitals version of one response are one input to it -- a tie, which
#   pairwise accuracy counts as wrong. Case instructions still appear as shared instructions (both
#   responses of a pair uppercased alike); a case-aware backbone can be given case pairs with
#   ``build_families(..., weights={..., "case": 1})``;
# - bullets (3 vs 5 bullets) and json (keys a+b vs c+d): replaced by bullets_json (bullets vs a JSON
#   object), which MiniLM learns in two epochs where it does not learn to count bullets.
CONTRAST_WEIGHTS: dict[str, int] = {
    "length": 2, "question_commas": 2, "bullets_json": 2, "include": 1, "exclude": 1, "start": 1,
    "bullets": 0, "json": 0, "case": 0,
}  # fmt: skip

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
    """One task prompt: the user message text, the constraints it carries, and its request group
    (prompts of one group share samples, so a train/test split keeps a group together)."""

    prompt_id: str
    text: str
    constraints: tuple[Constraint, ...]
    group: str = ""


@dataclass(frozen=True)
class Family:
    """Two prompts for one request: the same ``shared`` instructions, and ``sides[i]`` in ``prompts[i]``."""

    family_id: str
    contrast: str
    shared: tuple[Constraint, ...]
    sides: tuple[Constraint, Constraint]
    prompts: tuple[SynthPrompt, SynthPrompt]

    @property
    def group(self) -> str:
        return self.prompts[0].group


def compatible(kinds: set[str] | frozenset[str], kind: str) -> bool:
    """Whether ``kind`` can join a prompt already holding ``kinds``."""
    return kind not in kinds and all(frozenset((kind, k)) not in INCOMPATIBLE for k in kinds)


def sample_constraint(kind: str, topic_words: tuple[str, ...], rng: random.Random) -> Constraint:
    """A constraint of ``kind`` with params drawn from ``rng``."""
    if kind == "max_words":
        return Constraint.make(kind, n=rng.choice(MAX_WORDS))
    if kind == "min_words":
        return Constraint.make(kind, n=rng.choice(MIN_WORDS))
    if kind in ("include_keyword", "exclude_keyword"):
        return Constraint.make(kind, keyword=rng.choice(topic_words))
    if kind == "json_keys":
        return Constraint.make(kind, keys=rng.sample(JSON_KEYS, 2))
    if kind == "num_bullets":
        return Constraint.make(kind, n=rng.choice(BULLETS))
    if kind == "start_with":
        return Constraint.make(kind, phrase=rng.choice(START_PHRASES))
    return Constraint.make(kind)


def contrast_sides(contrast: str, topic_words: tuple[str, ...], rng: random.Random) -> tuple[Constraint, Constraint]:
    """The two contrasting instructions of ``contrast`` (a name in :data:`CONTRAST_WEIGHTS`)."""
    if contrast == "length":
        return sample_constraint("max_words", topic_words, rng), sample_constraint("min_words", topic_words, rng)
    if contrast in ("include", "exclude"):
        kind = f"{contrast}_keyword"
        first, second = rng.sample(topic_words, 2)
        return Constraint.make(kind, keyword=first), Constraint.make(kind, keyword=second)
    if contrast == "case":
        return Constraint.make("lowercase"), Constraint.make("uppercase")
    if contrast == "question_commas":
        return Constraint.make("end_with_question"), Constraint.make("no_commas")
    if contrast == "bullets_json":
        return sample_constraint("num_bullets", topic_words, rng), sample_constraint("json_keys", topic_words, rng)
    if contrast == "bullets":
        n, m = rng.sample(BULLETS, 2)
        return Constraint.make("num_bullets", n=n), Constraint.make("num_bullets", n=m)
    if contrast == "json":
        keys = rng.sample(JSON_KEYS, 4)
        return Constraint.make("json_keys", keys=keys[:2]), Constraint.make("json_keys", keys=keys[2:])
    if contrast == "start":
        a, b = rng.sample(START_PHRASES, 2)
        return Constraint.make("start_with", phrase=a), Constraint.make("start_with", phrase=b)
    raise KeyError(f"unknown contrast {contrast!r}; known: {', '.join(CONTRAST_WEIGHTS)}")


def shared_constraints(sides: tuple[Constraint, Constraint], topic_words: tuple[str, ...],
                       rng: random.Random) -> tuple[Constraint, ...]:
    """0-1 instructions (:data:`SHARED_COUNTS`) that go with both sides of the contrast and with each
    other, in the order drawn."""
    count = rng.choice(SHARED_COUNTS)
    kinds: list[str] = []
    while len(kinds) < count:
        options = [k for k in KINDS if all(compatible({*kinds, s.kind}, k) for s in sides)]
        if not options:
            break
        kinds.append(rng.choice(options))
    return tuple(sample_constraint(k, topic_words, rng) for k in kinds)


def _deck(weights: dict[str, int], rng: random.Random) -> list[str]:
    deck = [name for name, w in sorted(weights.items()) for _ in range(w)]
    if not deck:
        raise ValueError("contrast weights must give at least one contrast a positive weight")
    rng.shuffle(deck)
    return deck


def build_families(n: int, seed: int, *, weights: dict[str, int] | None = None) -> list[Family]:
    """``n`` families, deterministic in ``seed``. Base requests cycle through the bank in shuffled order
    and contrasts through a shuffled deck holding each contrast ``weights[name]`` times, so both are
    balanced exactly; the contrasting instruction sits at the same random position in both prompts."""
    weights = dict(CONTRAST_WEIGHTS if weights is None else weights)
    rng = random.Random(f"ifeval-lite/families/{seed}")
    families: list[Family] = []
    seen: set[str] = set()
    requests: list[int] = []
    contrasts: list[str] = []
    while len(families) < n:
        requests = requests or rng.sample(range(len(BASE_REQUESTS)), len(BASE_REQUESTS))
        contrasts = contrasts or _deck(weights, rng)
        index, contrast = requests.pop(), contrasts.pop()
        request, words = BASE_REQUESTS[index]
        sides = contrast_sides(contrast, words, rng)
        shared = shared_constraints(sides, words, rng)
        slot = rng.randrange(len(shared) + 1)
        family_id = f"ifeval-lite-{seed}-{len(families):05d}"
        prompts = []
        for side, suffix in zip(sides, "ab", strict=True):
            constraints = (*shared[:slot], side, *shared[slot:])
            prompts.append(SynthPrompt(f"{family_id}{suffix}", f"{request} {describe_all(constraints)}",
                                       constraints, group=f"request-{index:03d}"))
        if any(p.text in seen for p in prompts):  # the same prompt twice could straddle the split
            contrasts.append(contrast)
            continue
        seen.update(p.text for p in prompts)
        families.append(Family(family_id, contrast, shared, sides, (prompts[0], prompts[1])))
    return families
