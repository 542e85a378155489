"""``mused``: seeded multi-step deduction problems with a step verifier (``rewardkit data synth --task mused``).

After MuseD (generated multi-step deduction with controllable depth). Propositions are natural-language atoms
of our own lists ("the lamp is red"; negated "the lamp is not red"), one subject per atom within a problem.
A problem is a chain of literals ``L0 -> L1 -> ... -> Lh``: ``L0`` is a premise, and each hop adds one premise
and one or two proof steps, by one of four rules:

- modus ponens (``P, P->Q |- Q``): premise "if Li, then Li+1";
- contraposition (``P->Q, not Q |- not P``): premise "if not Li+1, then not Li";
- disjunctive syllogism (``P or Q, not P |- Q``): premise "not Li or Li+1";
- hypothetical syllogism (``P->Q, Q->R |- P->R``): premises "if Li, then M", "if M, then Li+1"; two steps
  (syllogism, then modus ponens), so it is drawn only when two steps are left.

``depth`` (1-6) is the number of proof steps. ``distractors`` adds K premises on fresh atoms (one or two each,
never shared between distractors, so the premises stay consistent): a rule or a disjunction between fresh
atoms, a dead end from a chain literal ("if L2, then D"), or a blocked rule towards the opposite answer
("if D, then not Lh"). The question is "Is it true that X?" (answer yes / no; X is ``Lh`` or its negation) or
"What follows about <subject of Lh>?" (answer: the text of ``Lh``).

:func:`check_solution` verifies a written solution step by step: the claim of each step (the longest tail of
the sentence that parses as a proposition: a literal, "if A, then B", or "A or B") must follow from the premises
and the earlier *valid* claims (:func:`entails`: the four rules applied any number of times, so skipping steps is
not an error); a step that claims nothing is right, one that claims a proposition the premises do not entail is
wrong. A claim is read off the sentence's tail, so "we cannot conclude that X" reads as claiming X.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
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

TASK = "mused"
GENERATOR_VERSION = "mused/1"
MAX_DEPTH = 6
MAX_DISTRACTORS = 12

SUBJECTS = ("the lamp", "the door", "the kettle", "the garden gate", "the window", "the clock", "the bicycle",
            "the oven", "the radio", "the fountain", "the bridge", "the tent", "the boat", "the piano",
            "the mirror", "the curtain", "the ladder", "the barn", "the statue", "the well", "the chimney",
            "the carpet", "the bell", "the lantern", "the drawer", "the fence", "the teapot", "the cart",
            "the kite", "the candle", "the compass", "the mailbox", "the scarf", "the bucket", "the tower",
            "the wagon", "the violin", "the hammock", "the shed", "the umbrella", "the anchor", "the telescope",
            "the basket", "the cabinet", "the balloon", "the chair", "the harbour light", "the market stall")
PREDICATES = ("red", "open", "warm", "broken", "wet", "locked", "heavy", "new", "quiet", "clean", "empty",
              "bright", "old", "painted", "polished", "cracked", "dusty", "striped", "shiny", "cold", "full",
              "loud", "green", "tall")
_SUBJECT_SET = frozenset(SUBJECTS)
RULES = ("modus ponens", "contraposition", "disjunctive syllogism", "hypothetical syllogism")

# ------------------------------------------------------------------------------------------ propositions


@dataclass(frozen=True, order=True)
class Lit:
    """An atom ("the lamp is red") or its negation (``positive=False``: "the lamp is not red")."""

    subject: str
    predicate: str
    positive: bool = True

    def neg(self) -> Lit:
        return Lit(self.subject, self.predicate, not self.positive)

    def text(self) -> str:
        return f"{self.subject} is {'' if self.positive else 'not '}{self.predicate}"


@dataclass(frozen=True, order=True)
class Imp:
    """``if a, then b``."""

    a: Lit
    b: Lit

    def text(self) -> str:
        return f"if {self.a.text()}, then {self.b.text()}"


@dataclass(frozen=True, order=True)
class Or:
    """``a or b`` (either order means the same)."""

    a: Lit
    b: Lit

    def text(self) -> str:
        return f"{self.a.text()} or {self.b.text()}"


Formula = Lit | Imp | Or


def normalise(text: str) -> str:
    """Lower case, ``isn't`` -> ``is not``, quotes and markdown dropped, end punctuation stripped, spaces
    collapsed."""
    s = text.lower().replace("’", "'").replace("isn't", "is not")
    s = re.sub(r"[\"`*_]|(?<!\w)'|'(?!\w)", " ", s)
    return re.sub(r"\s+", " ", s).strip(" .!?;:,")


_LIT = re.compile(r"(.+?) is (not )?([a-z]+)")
_IMP = re.compile(r"if (.+?)(?:,? then |, )(.+)")


def parse_literal(s: str) -> Lit | None:
    """``"the lamp is not red"`` -> ``Lit("the lamp", "red", False)`` (subject must be one of
    :data:`SUBJECTS`; any one-word predicate); ``"it is not the case that X"`` negates X."""
    if s.startswith("it is not the case that "):
        inner = parse_literal(s[len("it is not the case that "):])
        return inner.neg() if inner else None
    m = _LIT.fullmatch(s)
    if not m or m.group(1) not in _SUBJECT_SET:
        return None
    return Lit(m.group(1), m.group(3), m.group(2) is None)


def parse_formula(text: str) -> Formula | None:
    """A normalised sentence as a literal, an implication ("if A, then B", "if A then B", "if A, B",
    "A implies B") or a disjunction ("A or B", "either A or B"); ``None`` if it is none of these."""
    s = normalise(text)
    lit = parse_literal(s)
    if lit:
        return lit
    m = _IMP.fullmatch(s)
    pair = (m.group(1), m.group(2)) if m else tuple(s.split(" implies ", 1)) if " implies " in s else None
    if pair and len(pair) == 2:
        a, b = parse_literal(pair[0]), parse_literal(pair[1])
        if a and b:
            return Imp(a, b)
    s = s.removeprefix("either ")
    for m in re.finditer(r" or ", s):
        a, b = parse_literal(s[:m.start()]), parse_literal(s[m.end():])
        if a and b:
            return Or(a, b)
    return None


def step_claim(step: str) -> Formula | None:
    """The proposition a step asserts: the longest tail of the sentence, starting at a word, that parses
    (``"From 'A' and 'if A, then B', by modus ponens: B."`` -> ``B``); ``None`` if no tail parses."""
    s = normalise(step)
    for m in re.finditer(r"(?:^|(?<=[\s:,;(]))\w", s):
        claim = parse_formula(s[m.start():])
        if claim is not None:
            return claim
    return None


def implication_graph(premises: Iterable[Formula]) -> dict[Lit, set[Lit]]:
    """Edges ``a -> b`` for every implication premise, its contrapositive (``not b -> not a``) and both
    readings of every disjunction (``a or b``: ``not a -> b``, ``not b -> a``)."""
    edges: dict[Lit, set[Lit]] = {}
    for p in premises:
        if isinstance(p, Imp):
            pairs = [(p.a, p.b), (p.b.neg(), p.a.neg())]
        elif isinstance(p, Or):
            pairs = [(p.a.neg(), p.b), (p.b.neg(), p.a)]
        else:
            continue
        for a, b in pairs:
            edges.setdefault(a, set()).add(b)
    return edges


def reach(edges: dict[Lit, set[Lit]], start: Iterable[Lit]) -> set[Lit]:
    """Every literal reachable from ``start`` (itself included) along ``edges``."""
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def entails(premises: Iterable[Formula], claim: Formula) -> bool:
    """Whether ``claim`` follows from ``premises`` (literals, implications, disjunctions of literals).

    Literals known are the literal premises and all they reach in :func:`implication_graph` (modus ponens,
    contraposition, disjunctive syllogism, any number of times); a literal ``x`` also follows when ``not x``
    reaches ``x``. An implication ``a -> b`` follows when ``a`` reaches ``b`` (hypothetical syllogism) or
    ``b`` is known or ``not a`` is known; a disjunction ``a or b`` when ``not a -> b`` does.
    """
    premises = list(premises)
    edges = implication_graph(premises)
    known = reach(edges, [p for p in premises if isinstance(p, Lit)])

    def lit(x: Lit) -> bool:
        return x in known or x in reach(edges, [x.neg()])

    if isinstance(claim, Lit):
        return lit(claim)
    a, b = (claim.a, claim.b) if isinstance(claim, Imp) else (claim.a.neg(), claim.b)
    return b in reach(edges, [a]) or lit(b) or lit(a.neg())


# ------------------------------------------------------------------------------------------ verifier


def check_solution(premises: Sequence[str], answer: str, solution: str | Sequence[str]) -> SolutionCheck:
    """Check a written solution (text, split by :func:`~rewardkit.synth.steps.split_steps`, or a list of steps)
    against the premises (their texts) and the gold answer ("yes", "no" or a literal's text)."""
    steps = split_steps(solution) if isinstance(solution, str) else [s.strip() for s in solution]
    known: list[Formula] = [f for f in (parse_formula(p) for p in premises) if f is not None]
    verdicts = []
    for step in steps:
        claim = step_claim(step)
        if claim is None:
            verdicts.append((True, "no claim"))
        elif entails(known, claim):
            known.append(claim)
            verdicts.append((True, "entailed"))
        else:
            verdicts.append((False, f"not entailed: {claim.text()}"))
    given = final_answer(steps)
    return check_result(steps, verdicts, answer_correct=answer_matches(given, answer), final_answer=given)


def answer_matches(given: str, gold: str) -> bool:
    """yes / no answers: the first "yes"/"no"/"true"/"false" word of ``given``; literal answers: the claim."""
    if gold in ("yes", "no"):
        m = re.search(r"\b(yes|no|true|false)\b", given.lower())
        return bool(m) and {"true": "yes", "false": "no"}.get(m.group(1), m.group(1)) == gold
    return step_claim(given) == parse_formula(gold)


# ------------------------------------------------------------------------------------------ generator


@dataclass(frozen=True)
class ProofStep:
    """One gold inference: the premises (texts) it uses, the rule, the conclusion."""

    premises: tuple[Formula, ...]
    rule: str
    conclusion: Formula

    def text(self) -> str:
        used = " and ".join(f"'{p.text()}'" for p in self.premises)
        return f"From {used}, by {self.rule}: {self.conclusion.text()}."

    def to_dict(self) -> dict[str, Any]:
        return {"premises": [p.text() for p in self.premises], "rule": self.rule,
                "conclusion": self.conclusion.text()}


def _hop(rule: str, cur: Lit, nxt: Lit, atoms: list[Lit], rng: random.Random) -> tuple[list[Formula],
                                                                                        list[ProofStep]]:
    """The premises and proof steps that take the chain from ``cur`` to ``nxt`` by ``rule``."""
    if rule == "modus ponens":
        imp = Imp(cur, nxt)
        return [imp], [ProofStep((cur, imp), rule, nxt)]
    if rule == "contraposition":
        imp = Imp(nxt.neg(), cur.neg())
        return [imp], [ProofStep((imp, cur), rule, nxt)]
    if rule == "disjunctive syllogism":
        disj = Or(cur.neg(), nxt) if rng.random() < 0.5 else Or(nxt, cur.neg())
        return [disj], [ProofStep((disj, cur), rule, nxt)]
    mid = atoms.pop()
    first, second, short = Imp(cur, mid), Imp(mid, nxt), Imp(cur, nxt)
    return [first, second], [ProofStep((first, second), rule, short),
                             ProofStep((cur, short), "modus ponens", nxt)]


def _distractor(kind: int, chain: Sequence[Lit], atoms: list[Lit], rng: random.Random) -> Formula:
    """One premise on fresh atoms (popped from ``atoms``) that leads nowhere on the way to ``chain[-1]``."""
    if kind == 0:
        return Imp(atoms.pop(), atoms.pop())
    if kind == 1:
        return Or(atoms.pop(), atoms.pop())
    if kind == 2:
        return Imp(rng.choice(chain), atoms.pop())  # a dead end off the chain
    return Imp(atoms.pop(), chain[-1].neg())  # blocked: its antecedent never follows


@dataclass(frozen=True)
class MusedProblem:
    """One problem: premises in prompt order, the question, gold answer and proof."""

    id: str
    premises: tuple[Formula, ...]
    question: str
    answer: str
    proof: tuple[ProofStep, ...]
    depth: int
    distractors: int

    def prompt_text(self) -> str:
        lines = [f"{i}. {p.text()[0].upper()}{p.text()[1:]}." for i, p in enumerate(self.premises, 1)]
        how = ("end with 'Answer: yes' or 'Answer: no'." if self.answer in ("yes", "no") else
               "end with 'Answer: ' and the statement that follows.")
        return ("Premises:\n" + "\n".join(lines) + f"\n\nQuestion: {self.question}\n"
                f"Reason step by step, one inference per line, and {how}")

    def gold_steps(self) -> list[str]:
        return [s.text() for s in self.proof] + [f"Answer: {self.answer}"]

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": [{"role": "user", "content": self.prompt_text()}], "answer": self.answer,
                "steps": self.gold_steps(),
                "meta": {"task": TASK, "depth": self.depth, "distractors": self.distractors,
                         "premises": [p.text() for p in self.premises], "question": self.question,
                         "proof": [s.to_dict() for s in self.proof]}}


def _rule_plan(depth: int, rng: random.Random) -> list[str]:
    """Rules whose step counts add up to ``depth`` (hypothetical syllogism takes two)."""
    plan: list[str] = []
    left = depth
    while left > 0:
        rule = rng.choice(RULES if left >= 2 else RULES[:3])
        plan.append(rule)
        left -= 2 if rule == "hypothetical syllogism" else 1
    return plan


def make_problem(problem_id: str, depth: int, distractors: int, rng: random.Random) -> MusedProblem:
    """One seeded problem of exactly ``depth`` proof steps and ``distractors`` distracting premises."""
    plan = _rule_plan(depth, rng)
    n_atoms = len(plan) + 1 + plan.count("hypothetical syllogism") + 2 * distractors
    atoms = [Lit(s, rng.choice(PREDICATES), rng.random() < 0.6) for s in rng.sample(SUBJECTS, n_atoms)]
    chain = [atoms.pop()]
    premises: list[Formula] = [chain[0]]
    proof: list[ProofStep] = []
    for rule in plan:
        chain.append(atoms.pop())
        new, steps = _hop(rule, chain[-2], chain[-1], atoms, rng)
        premises += new
        proof += steps
    order = rng.sample(range(4), 4)  # every kind once before any repeats, in a seeded order
    kinds = [order[k % 4] for k in range(distractors)]
    premises += [_distractor(k, chain, atoms, rng) for k in kinds]
    rng.shuffle(premises)
    target = chain[-1]
    if rng.random() < 0.5:
        asked = target if rng.random() < 0.5 else target.neg()
        question, answer = f"Is it true that {asked.text()}?", "yes" if asked == target else "no"
    else:
        question, answer = f"What follows about {target.subject}?", target.text()
    return MusedProblem(problem_id, tuple(premises), question, answer, tuple(proof), depth, distractors)


def parse_depth(text: str) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"1-6"`` -> (1, 6); OptionError unless 1 <= min <= max <= 6."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    lo, hi = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
    if not 1 <= lo <= hi <= MAX_DEPTH:
        raise OptionError(f"--depth: need MIN-MAX (or one number) with 1 <= MIN <= MAX <= {MAX_DEPTH}, got {text!r}")
    return lo, hi


def build_mused(n: int, *, depth: tuple[int, int] = (1, MAX_DEPTH), distractors: int = 0,
                seed: int = 0) -> list[MusedProblem]:
    """``n`` problems, depths uniform in ``depth`` (inclusive), ``distractors`` distracting premises each."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise OptionError(f"--n (problems): need an integer of at least 2 (one train, one test), got {n!r}")
    if not 0 <= distractors <= MAX_DISTRACTORS:
        raise OptionError(f"--distractors: need 0..{MAX_DISTRACTORS} for mused, got {distractors}")
    lo, hi = depth
    if not 1 <= lo <= hi <= MAX_DEPTH:
        raise OptionError(f"--depth: need 1 <= MIN <= MAX <= {MAX_DEPTH}, got {lo}-{hi}")
    out = []
    for i in range(n):
        rng = random.Random(f"{TASK}/problem/{seed}/{i}")
        out.append(make_problem(f"mused-{i:05d}", rng.randint(lo, hi), distractors, rng))
    return out


def corrupt(problem: MusedProblem, rng: random.Random) -> tuple[list[str], int]:
    """The gold steps with one proof step's conclusion replaced by its negation (never entailed: the premises
    are consistent); returns ``(steps, index of the replaced step)``."""
    j = rng.randrange(len(problem.proof))
    step = problem.proof[j]
    c = step.conclusion
    wrong = c.neg() if isinstance(c, Lit) else Imp(c.a, c.b.neg())
    steps = problem.gold_steps()
    steps[j] = ProofStep(step.premises, step.rule, wrong).text()
    return steps, j


def write_mused(out_dir: Path, n: int, *, depth: tuple[int, int] = (1, MAX_DEPTH), distractors: int = 0,
                seed: int = 0) -> StepTaskResult:
    """Write train/test/stepwise/first_error jsonl and manifest.json for ``mused`` (see :mod:`.steps`)."""
    problems = build_mused(n, depth=depth, distractors=distractors, seed=seed)
    by_id = {p.id: p for p in problems}
    train, test = split_rows([p.to_row() for p in problems], task=TASK, seed=seed)
    stepwise, first_error = [], []
    for rows, out in ((train, stepwise), (test, first_error)):
        for row in rows:
            p = by_id[row["id"]]
            bad, j = corrupt(p, random.Random(f"{TASK}/corrupt/{seed}/{p.id}"))
            text = p.prompt_text()
            if out is stepwise:
                out += [stepwise_row(text, p.gold_steps(), -1), stepwise_row(text, bad, j)]
            else:
                meta = {"task": TASK, "depth": p.depth, "distractors": p.distractors}
                out += [first_error_row(f"{p.id}/gold", text, p.gold_steps(), -1, meta),
                        first_error_row(f"{p.id}/corrupted", text, bad, j, meta)]
    manifest = {"task": TASK, "generator_version": GENERATOR_VERSION, "seed": seed,
                "options": {"n": n, "depth": f"{depth[0]}-{depth[1]}", "distractors": distractors},
                "rules": list(RULES)}
    return write_step_task(Path(out_dir), task=TASK, manifest=manifest,
                           files={"train": train, "test": test, "stepwise": stepwise, "first_error": first_error})
