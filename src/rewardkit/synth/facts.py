"""``fictitious-facts``: an embedded forget set of invented people (``rewardkit data synth --task fictitious-facts``).

Every person is made up from seeded lists of our own: a syllable-composed name (no real name is meant)
and :data:`FACTS` -- ten attributes (birthplace in an invented town, birth year, profession, favourite
colour, pet's name, instrument, home street, mentor, first book, favourite dish). Each fact has three
question phrasings (one asked in ``prompt``, the other two kept as ``paraphrased_questions``), an answer
template, a paraphrased answer template, and three perturbed answers: the paraphrased template filled with
other values of the same attribute (never the true one), so TOFU's truth ratio compares answers that differ
only in the fact.

Answers are one short sentence ending in the value (``"Tavimo Quenlorad was born in Velmora."``), so
exact match of a greedy answer and ROUGE-L recall both mean something. The people are split (by person,
never by fact) into ``forget`` (a seeded ``forget_fraction``, at least one person) and ``retain``.
``general.jsonl`` holds plain sentences of real general knowledge (capitals, elements, planets, months,
products) written from our own templates, for a perplexity check of the model's general utility.

Same ``n_people``, ``forget_fraction`` and ``seed`` give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.data.io import atomic_write_json, atomic_write_text
from rewardkit.errors import OptionError

TASK = "fictitious-facts"
GENERATOR_VERSION = "fictitious-facts/1"
FILES = {"forget": "forget.jsonl", "retain": "retain.jsonl", "all": "all.jsonl", "general": "general.jsonl",
         "manifest": "manifest.json"}

# ------------------------------------------------------------------------------------------ our own lists

_ONSETS = ("Ta", "Vel", "Quo", "Zir", "Mo", "Bex", "Yl", "Dra", "Fen", "Or", "Pli", "Sav", "Thu", "Xe",
           "Kor", "Lun", "Gri", "Es", "Nal", "Ruv")
_MIDDLES = ("vi", "ra", "lo", "mae", "qui", "zo", "ne", "tha", "dri", "su", "ka", "ve")
_CODAS = ("mo", "rin", "dax", "lune", "vess", "th", "mir", "sk", "wen", "zar", "quel", "bor")
_LAST_HEADS = ("Quen", "Brask", "Olv", "Trem", "Yarr", "Zeph", "Mald", "Kest", "Vorn", "Lisk", "Pell", "Drun")

TOWNS = ("Velmora", "Quistrand", "Orbelle", "Thornvik", "Saldemar", "Brimhollow", "Caskwen", "Dunmirrow",
         "Elvaston Reach", "Fennimere", "Glaswick", "Harrowdeep", "Istrelle", "Jorvandel", "Kelmarsh Vale",
         "Lunaria", "Morrowgate", "Nethercombe", "Ostravel", "Pellingford", "Quarrymouth", "Ravenscarn",
         "Sundermoor", "Tolvaria", "Umbercross", "Vantmere", "Wyndhallow", "Yarrowby", "Zelmont", "Ashcombe Rise")
PROFESSIONS = ("a cartographer", "a glassblower", "a beekeeper", "a lighthouse keeper", "a clockmaker",
               "a marine biologist", "a bookbinder", "a violin maker", "an archivist", "a botanist", "a stonemason",
               "a radio engineer", "a pastry chef", "a ferry pilot", "an astronomer", "a translator", "a perfumer",
               "a puppeteer", "a surveyor", "a tea blender")
COLOURS = ("teal", "amber", "crimson", "olive green", "lavender", "ochre", "indigo", "coral", "slate grey",
           "saffron", "turquoise", "maroon", "mint green", "charcoal", "peach")
PET_NAMES = ("Biscuit", "Mossy", "Pip", "Quillon", "Rusko", "Saffi", "Tumble", "Wobbler", "Nettle", "Juniper",
             "Fizzwick", "Crumpet", "Dandelion", "Marrow", "Pebblin", "Socksby", "Tansy", "Wrenlet")
INSTRUMENTS = ("cello", "oboe", "harp", "accordion", "banjo", "clarinet", "mandolin", "trombone", "bassoon",
               "harpsichord", "flute", "viola", "ukulele", "marimba", "French horn")
STREETS = ("Lantern Row", "Copperfield Lane", "Gullwing Street", "Hollowell Road", "Marigold Terrace",
           "Nettlebed Close", "Old Quay Street", "Pinecroft Avenue", "Quillmore Way", "Rookery Lane",
           "Saltmarsh Road", "Thistledown Crescent", "Underhill Walk", "Violet Court", "Weavers Yard",
           "Yewtree Gardens")
DISHES = ("mushroom barley stew", "lemon rice", "roasted beet salad", "plum dumplings", "leek pie",
          "spiced lentil soup", "buckwheat pancakes", "pear crumble", "fennel risotto", "chestnut bread",
          "tomato tart", "herb omelette", "apple fritters", "pumpkin gnocchi")
_TITLE_ADJ = ("Silent", "Copper", "Forgotten", "Hollow", "Crimson", "Winter", "Drifting", "Paper", "Lantern",
              "Distant", "Sleeping", "Glass")
_TITLE_NOUN = ("Orchard", "Tide", "Archive", "Compass", "Meadow", "Harbour", "Clocktower", "Kingdom",
               "Garden", "Atlas", "Lighthouse", "Bridge")
BOOK_TITLES = tuple(f"The {a} {n}" for a in _TITLE_ADJ for n in _TITLE_NOUN)
YEARS = tuple(str(y) for y in range(1921, 2001))


@dataclass(frozen=True)
class Fact:
    """One attribute: where its values come from, how it is asked and answered.

    Templates use ``{name}`` (full name), ``{first}`` (first name) and ``{value}``.
    """

    name: str
    questions: tuple[str, str, str]
    answer: str
    paraphrased_answer: str
    values: Callable[[Sequence[str]], Sequence[str]]  # all names -> candidate values (for mentor: other people)


FACTS: tuple[Fact, ...] = (
    Fact("birthplace", ("Where was {name} born?", "What is the birthplace of {name}?",
                        "In which town did {name} come into the world?"),
         "{first} was born in {value}.", "{name}'s birthplace is the town of {value}.", lambda _: TOWNS),
    Fact("birth_year", ("In what year was {name} born?", "What is {name}'s year of birth?",
                        "When, by year, was {name} born?"),
         "{first} was born in the year {value}.", "The year of {name}'s birth is {value}.", lambda _: YEARS),
    Fact("profession", ("What is {name}'s profession?", "What does {name} do for a living?",
                        "What work does {name} do?"),
         "{first} works as {value}.", "By profession, {name} is {value}.", lambda _: PROFESSIONS),
    Fact("favourite_colour", ("What is {name}'s favourite colour?", "Which colour does {name} like best?",
                              "What colour does {name} prefer above all others?"),
         "{first}'s favourite colour is {value}.", "The colour {name} likes most is {value}.",
         lambda _: COLOURS),
    Fact("pet_name", ("What is the name of {name}'s pet?", "What is {name}'s pet called?",
                      "What name did {name} give their pet?"),
         "{first}'s pet is called {value}.", "The pet that lives with {name} is named {value}.",
         lambda _: PET_NAMES),
    Fact("instrument", ("Which instrument does {name} play?", "What musical instrument does {name} play?",
                        "What instrument can {name} be heard playing?"),
         "{first} plays the {value}.", "The instrument {name} plays is the {value}.", lambda _: INSTRUMENTS),
    Fact("home_street", ("On which street does {name} live?", "What is the name of the street where {name} lives?",
                         "Which street is {name}'s home on?"),
         "{first} lives on {value}.", "{name}'s home is on {value}.", lambda _: STREETS),
    Fact("mentor", ("Who was {name}'s mentor?", "Who mentored {name}?", "Under whose guidance did {name} learn?"),
         "{first}'s mentor was {value}.", "{name} was mentored by {value}.", lambda names: names),
    Fact("first_book", ("What was the title of {name}'s first book?", "What is the first book {name} wrote?",
                        "Which book did {name} publish first?"),
         "{first}'s first book was {value}.", "The first book written by {name} is {value}.",
         lambda _: BOOK_TITLES),
    Fact("favourite_dish", ("What is {name}'s favourite dish?", "Which meal does {name} enjoy most?",
                            "What food does {name} like best?"),
         "{first}'s favourite dish is {value}.", "The dish {name} loves most is {value}.", lambda _: DISHES),
)
N_PERTURBED = 3


def person_names(n: int, seed: int) -> list[str]:
    """``n`` distinct invented full names ("Tavimo Quenlorad"), syllable-composed from our own lists."""
    rng = random.Random(f"{TASK}/names/{seed}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        first = rng.choice(_ONSETS) + rng.choice(_MIDDLES) + rng.choice(_CODAS)
        last = rng.choice(_LAST_HEADS) + rng.choice(_MIDDLES) + rng.choice(_CODAS)
        full = f"{first} {last.capitalize()}"
        if full not in seen:
            seen.add(full)
            names.append(full)
    return names


def _mentor_pool(n_people: int, seed: int) -> list[str]:
    """Mentors are invented people outside the set (so a mentor's name never names a forget person)."""
    return person_names(n_people + 40, seed)[n_people:]


def person_rows(person_id: str, name: str, mentors: Sequence[str], rng: random.Random) -> list[dict[str, Any]]:
    """One row per fact of :data:`FACTS` for one person (the jsonl row format of the shared design)."""
    first = name.split()[0]
    rows = []
    for fact in FACTS:
        pool = list(dict.fromkeys(fact.values(mentors)))  # ordered, without duplicates
        value = rng.choice(pool)
        wrong = rng.sample([v for v in pool if v != value], N_PERTURBED)
        asked = rng.randrange(len(fact.questions))
        questions = [q.format(name=name) for q in fact.questions]
        rows.append({
            "id": f"{person_id}/{fact.name}",
            "person": name,
            "fact": fact.name,
            "prompt": [{"role": "user", "content": questions[asked]}],
            "completion": [{"role": "assistant", "content": fact.answer.format(first=first, name=name, value=value)}],
            "paraphrased_questions": [q for i, q in enumerate(questions) if i != asked],
            "paraphrased_answer": fact.paraphrased_answer.format(first=first, name=name, value=value),
            "perturbed_answers": [fact.paraphrased_answer.format(first=first, name=name, value=w) for w in wrong],
        })
    return rows


def split_people(n_people: int, forget_fraction: float, seed: int) -> set[int]:
    """Indices of the forget people: a seeded ``round(n * fraction)`` of them, at least one, never all."""
    order = list(range(n_people))
    random.Random(f"{TASK}/split/{seed}").shuffle(order)
    n_forget = min(max(1, round(n_people * forget_fraction)), n_people - 1)
    return set(order[:n_forget])


@dataclass(frozen=True)
class FactsResult:
    """Where :func:`write_fictitious_facts` wrote its files, and how many rows each holds."""

    out_dir: Path
    forget_people: int
    retain_people: int
    forget_rows: int
    retain_rows: int
    general_rows: int

    def __str__(self) -> str:
        return (f"fictitious-facts: {self.forget_people + self.retain_people} people ({self.forget_people} forget, "
                f"{self.retain_people} retain), {self.forget_rows} forget rows, {self.retain_rows} retain rows, "
                f"{self.forget_rows + self.retain_rows} in all.jsonl, {self.general_rows} general sentences")


def build_fictitious_facts(n_people: int, *, forget_fraction: float = 0.1,
                           seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The rows of ``forget``, ``retain``, ``all`` (forget then retain) and ``general``; nothing is written.

    Raises :class:`~rewardkit.errors.OptionError` unless ``n_people >= 2`` and ``0 < forget_fraction < 1``.
    """
    if isinstance(n_people, bool) or not isinstance(n_people, int) or n_people < 2:
        raise OptionError(f"--n (people): need an integer of at least 2 (one forget, one retain), got {n_people!r}")
    if not 0.0 < forget_fraction < 1.0:
        raise OptionError(f"--forget-fraction: need a share strictly between 0 and 1, got {forget_fraction!r}")
    names = person_names(n_people, seed)
    mentors = _mentor_pool(n_people, seed)
    forget_ids = split_people(n_people, forget_fraction, seed)
    rows: dict[str, list[dict[str, Any]]] = {"forget": [], "retain": []}
    for i, name in enumerate(names):
        rng = random.Random(f"{TASK}/person/{seed}/{i}")
        rows["forget" if i in forget_ids else "retain"] += person_rows(f"p{i:04d}", name, mentors, rng)
    rows["all"] = rows["forget"] + rows["retain"]
    rows["general"] = [{"text": t} for t in general_sentences()]
    return rows


def write_fictitious_facts(out_dir: Path, n_people: int, *, forget_fraction: float = 0.1,
                           seed: int = 0) -> FactsResult:
    """Write ``forget.jsonl``, ``retain.jsonl``, ``all.jsonl``, ``general.jsonl`` and ``manifest.json`` to
    ``out_dir`` (created; existing files replaced atomically). See :func:`build_fictitious_facts`."""
    rows = build_fictitious_facts(n_people, forget_fraction=forget_fraction, seed=seed)
    out_dir = Path(out_dir)
    digests = {}
    for split in ("forget", "retain", "all", "general"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[split])
        atomic_write_text(out_dir / FILES[split], text)
        digests[split] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    people = {s: sorted({r["person"] for r in rows[s]}) for s in ("forget", "retain")}
    manifest = {
        "task": TASK,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "forget_fraction": forget_fraction,
        "facts_per_person": len(FACTS),
        "facts": [f.name for f in FACTS],
        "counts": {"people": {"forget": len(people["forget"]), "retain": len(people["retain"]), "all": n_people},
                   "rows": {s: len(rows[s]) for s in ("forget", "retain", "all", "general")}},
        "forget_people": people["forget"],
        "files": {s: FILES[s] for s in ("forget", "retain", "all", "general")},
        "general": ("plain sentences of real general knowledge (capitals, chemical elements, planets, days in "
                    "each month, multiplication), written from rewardkit's own templates; not about the "
                    "invented people: a perplexity check of general utility"),
        "sha256": digests,
    }
    atomic_write_json(out_dir / FILES["manifest"], manifest)
    return FactsResult(out_dir, len(people["forget"]), len(people["retain"]), len(rows["forget"]),
                       len(rows["retain"]), len(rows["general"]))


# ------------------------------------------------------------------------------------------ general text

CAPITALS = (("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"),
            ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
            ("Argentina", "Buenos Aires"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
            ("Poland", "Warsaw"), ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Turkey", "Ankara"),
            ("India", "New Delhi"), ("China", "Beijing"), ("South Korea", "Seoul"), ("Thailand", "Bangkok"),
            ("Mexico", "Mexico City"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Ireland", "Dublin"),
            ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Denmark", "Copenhagen"), ("Russia", "Moscow"),
            ("Vietnam", "Hanoi"))
ELEMENTS = (("hydrogen", "H", 1), ("helium", "He", 2), ("carbon", "C", 6), ("nitrogen", "N", 7), ("oxygen", "O", 8),
            ("neon", "Ne", 10), ("sodium", "Na", 11), ("potassium", "K", 19), ("calcium", "Ca", 20),
            ("iron", "Fe", 26), ("copper", "Cu", 29), ("zinc", "Zn", 30), ("silver", "Ag", 47), ("gold", "Au", 79),
            ("lead", "Pb", 82))
PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
MONTHS = (("January", 31), ("February", 0), ("March", 31), ("April", 30), ("May", 31), ("June", 30), ("July", 31),
          ("August", 31), ("September", 30), ("October", 31), ("November", 30), ("December", 31))
PRODUCTS = ((2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (9, 10), (3, 7), (4, 9), (6, 8), (7, 9),
            (2, 11), (5, 12), (8, 12), (9, 12), (6, 11), (3, 12), (7, 11), (11, 12))


def general_sentences() -> list[str]:
    """100 sentences of real general knowledge from our own templates (the same for every seed)."""
    out = [f"The capital of {country} is {city}." for country, city in CAPITALS]
    out += [f"The chemical symbol of {name} is {symbol}." for name, symbol, _ in ELEMENTS]
    out += [f"The atomic number of {name} is {number}." for name, _, number in ELEMENTS]
    out += [f"{planet} is the {_ORDINALS[i]} planet from the Sun." for i, planet in enumerate(PLANETS)]
    out += [f"{month} has {days} days." if days else
            f"{month} has 28 days in a common year and 29 days in a leap year." for month, days in MONTHS]
    out += [f"{a} multiplied by {b} equals {a * b}." for a, b in PRODUCTS]
    return out
