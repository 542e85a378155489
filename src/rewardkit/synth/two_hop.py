"""``two-hop``: two-hop fact composition with distracting premises (``rewardkit data synth --task two-hop``).

Facts "A's X is B." and "B's Y is C." over invented one-word names (syllables of our own) and relation words
of our own list; the query "Who is A's X's Y?" has the one answer C, in two gold steps ("A's X is B.",
"B's Y is C, so A's X's Y is C."). ``distractors`` adds exactly K more facts, each about fresh entities but
sharing a name or a relation with the query, so that a shortcut guess picks a wrong one:

- ``A's Y is D`` (skips the first hop), ``B's X is E`` (the relations in the wrong order),
- ``F's Y is G`` (the second relation, another owner), ``H's X is I`` (the first relation, another owner).

Every (owner, relation) pair appears at most once and every distractor value is a fresh name, so the query
always resolves to C alone. :func:`check_solution` reads every claim "N's r1's r2 ... is M" in each step and
checks it by following the facts; a step with no claim is right, one with a false or unfounded claim is wrong.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import OptionError
from rewardkit.synth.steps import (
    SolutionCheck,
    StepTaskResult,
    check_result,
    final_answer,
    first_error_row,
    split_rows,
    split_steps,
    stepwise_row,
    write_step_task,
)

TASK = "two-hop"
GENERATOR_VERSION = "two-hop/1"
MAX_DISTRACTORS = 16

_ONSETS = ("Ta", "Vel", "Quo", "Zir", "Mo", "Bex", "Yl", "Dra", "Fen", "Or", "Pli", "Sav", "Thu", "Xe", "Kor",
           "Lun", "Gri", "Nal", "Ruv", "Es")
_CODAS = ("vim", "rak", "lone", "dex", "quin", "zor", "nell", "thas", "drik", "sul", "kav", "ven", "mira", "bos")
RELATIONS = ("mentor", "neighbour", "landlord", "tutor", "rival", "dentist", "cousin", "banker", "coach",
             "editor", "tailor", "barber", "lawyer", "doctor")
_RELATION_SET = frozenset(RELATIONS)


@dataclass(frozen=True)
class TwoHopProblem:
    """One problem: facts ``(owner, relation, value)`` in prompt order, the query and the answer."""

    id: str
    facts: tuple[tuple[str, str, str], ...]
    subject: str
    relations: tuple[str, str]
    bridge: str
    answer: str
    distractors: int

    @property
    def question(self) -> str:
        return f"Who is {self.subject}'s {self.relations[0]}'s {self.relations[1]}?"

    def prompt_text(self) -> str:
        lines = [fact_text(*f) for f in self.facts]
        return ("Facts:\n" + "\n".join(lines) + f"\n\nQuestion: {self.question}\n"
                "Reason step by step, one fact per line, and end with 'Answer: ' and the name.")

    def gold_steps(self) -> list[str]:
        a, (x, y) = self.subject, self.relations
        return [fact_text(a, x, self.bridge),
                f"{self.bridge}'s {y} is {self.answer}, so {a}'s {x}'s {y} is {self.answer}.",
                f"Answer: {self.answer}"]

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": [{"role": "user", "content": self.prompt_text()}], "answer": self.answer,
                "steps": self.gold_steps(),
                "meta": {"task": TASK, "distractors": self.distractors, "premises": [fact_text(*f) for f in self.facts],
                         "question": self.question, "subject": self.subject, "relations": list(self.relations),
                         "bridge": self.bridge}}


def fact_text(owner: str, relation: str, value: str) -> str:
    return f"{owner}'s {relation} is {value}."


def names(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct invented one-word names ("Velzor")."""
    pool = [a + b for a in _ONSETS for b in _CODAS]
    return rng.sample(pool, n)


def make_problem(problem_id: str, distractors: int, rng: random.Random) -> TwoHopProblem:
    """One seeded problem with exactly ``distractors`` distracting facts."""
    n_names = 3 + 2 * distractors
    people = names(n_names, rng)
    a, b, c = people[:3]
    fresh = people[3:]
    x, y = rng.sample(RELATIONS, 2)
    facts = [(a, x, b), (b, y, c)]
    order = rng.sample(range(4), 4)  # every kind once before any repeats, in a seeded order
    kinds = [order[k % 4] for k in range(distractors)]
    others = [r for r in RELATIONS if r not in (x, y)]
    for k in kinds:
        owner, value = fresh.pop(), fresh.pop()
        facts.append(((a, y, value), (b, x, value), (owner, y, value), (owner, x, value))[k])
        if k < 2 and any(f[:2] == facts[-1][:2] for f in facts[:-1]):  # A's Y / B's X taken: another relation
            facts[-1] = (facts[-1][0], rng.choice([r for r in others if (facts[-1][0], r) not in
                                                   {f[:2] for f in facts}]), value)
    rng.shuffle(facts)
    return TwoHopProblem(problem_id, tuple(facts), a, (x, y), b, c, distractors)


def build_two_hop(n: int, *, distractors: int = 0, seed: int = 0) -> list[TwoHopProblem]:
    """``n`` problems, each with exactly ``distractors`` distracting facts."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise OptionError(f"--n (problems): need an integer of at least 2 (one train, one test), got {n!r}")
    if not 0 <= distractors <= MAX_DISTRACTORS:
        raise OptionError(f"--distractors: need 0..{MAX_DISTRACTORS} for two-hop, got {distractors}")
    return [make_problem(f"two-hop-{i:05d}", distractors, random.Random(f"{TASK}/problem/{seed}/{i}"))
            for i in range(n)]


# ------------------------------------------------------------------------------------------ verifier

_CLAIM = re.compile(r"\b([A-Z][a-z]+)((?:'s [a-z]+)+) is ([A-Z][a-z]+)\b")
_FACT = re.compile(r"([A-Z][a-z]+)'s ([a-z]+) is ([A-Z][a-z]+)\.?")


def parse_facts(premises: Sequence[str]) -> dict[tuple[str, str], str]:
    """``{(owner, relation): value}`` from fact sentences ("Velzor's mentor is Quonell.")."""
    out = {}
    for p in premises:
        m = _FACT.fullmatch(p.strip())
        if m:
            out[(m.group(1), m.group(2))] = m.group(3)
    return out


def resolve(facts: dict[tuple[str, str], str], owner: str, relations: Sequence[str]) -> str | None:
    """Follow ``relations`` from ``owner`` through ``facts``; ``None`` where a link is missing."""
    cur: str | None = owner
    for r in relations:
        cur = facts.get((cur, r)) if cur is not None else None
    return cur


def step_claims(step: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Every claim "N's r1's r2 ... is M" in a step, as ``(N, (r1, r2, ...), M)`` (names capitalised,
    ``'s`` normalised from a curly apostrophe)."""
    text = step.replace("’", "'")
    return [(m.group(1), tuple(m.group(2).split("'s ")[1:]), m.group(3)) for m in _CLAIM.finditer(text)]


def check_solution(premises: Sequence[str], answer: str, solution: str | Sequence[str]) -> SolutionCheck:
    """Check a written solution (text or list of steps) against the fact sentences and the gold answer."""
    steps = split_steps(solution) if isinstance(solution, str) else [s.strip() for s in solution]
    facts = parse_facts(premises)
    verdicts = []
    for step in steps:
        claims = step_claims(step)
        wrong = [f"{n}'s {' '.join(r + chr(39) + 's' for r in rels)[:-2]} is {v}"
                 for n, rels, v in claims if resolve(facts, n, rels) != v]
        verdicts.append((not wrong, "no claim" if not claims else "true" if not wrong else f"false: {wrong[0]}"))
    given = final_answer(steps)
    ok = re.sub(r"[^a-z]", "", given.lower()) == answer.lower()
    return check_result(steps, verdicts, answer_correct=ok, final_answer=given)


def corrupt(problem: TwoHopProblem, rng: random.Random) -> tuple[list[str], int]:
    """The gold steps with one hop stating a wrong value (another name of the problem, never the true one);
    returns ``(steps, index of the wrong step)``. A wrong first hop follows the wrong bridge to its end."""
    a, (x, y) = problem.subject, problem.relations
    everyone = sorted({f[0] for f in problem.facts} | {f[2] for f in problem.facts})
    j = rng.randrange(2)
    steps = problem.gold_steps()
    if j == 0:
        wrong = rng.choice([p for p in everyone if p not in (problem.bridge, a)])
        steps[0] = fact_text(a, x, wrong)
        steps[1] = f"{wrong}'s {y} is {problem.answer}, so {a}'s {x}'s {y} is {problem.answer}."
    else:
        wrong = rng.choice([p for p in everyone if p not in (problem.answer, problem.bridge)])
        steps[1] = f"{problem.bridge}'s {y} is {wrong}, so {a}'s {x}'s {y} is {wrong}."
        steps[2] = f"Answer: {wrong}"
    return steps, j


def write_two_hop(out_dir: Path, n: int, *, distractors: int = 0, seed: int = 0) -> StepTaskResult:
    """Write train/test/stepwise/first_error jsonl and manifest.json for ``two-hop`` (see :mod:`.steps`)."""
    problems = build_two_hop(n, distractors=distractors, seed=seed)
    by_id = {p.id: p for p in problems}
    train, test = split_rows([p.to_row() for p in problems], task=TASK, seed=seed)
    stepwise, first_error = [], []
    for row in train:
        p = by_id[row["id"]]
        bad, j = corrupt(p, random.Random(f"{TASK}/corrupt/{seed}/{p.id}"))
        stepwise += [stepwise_row(p.prompt_text(), p.gold_steps(), -1), stepwise_row(p.prompt_text(), bad, j)]
    for row in test:
        p = by_id[row["id"]]
        bad, j = corrupt(p, random.Random(f"{TASK}/corrupt/{seed}/{p.id}"))
        meta = {"task": TASK, "distractors": p.distractors}
        first_error += [first_error_row(f"{p.id}/gold", p.prompt_text(), p.gold_steps(), -1, meta),
                        first_error_row(f"{p.id}/corrupted", p.prompt_text(), bad, j, meta)]
    manifest = {"task": TASK, "generator_version": GENERATOR_VERSION, "seed": seed,
                "options": {"n": n, "distractors": distractors}, "relations": list(RELATIONS)}
    return write_step_task(Path(out_dir), task=TASK, manifest=manifest,
                           files={"train": train, "test": test, "stepwise": stepwise, "first_error": first_error})
