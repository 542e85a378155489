"""The mused generator and step verifier (rewardkit.synth.mused) and `rewardkit data synth --task mused`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.synth.mused import (
    RULES,
    Imp,
    Lit,
    Or,
    build_mused,
    check_solution,
    corrupt,
    entails,
    parse_depth,
    parse_formula,
    step_claim,
    write_mused,
)
from rewardkit.synth.steps import FILES, split_steps


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


LAMP, DOOR, KETTLE = Lit("the lamp", "red"), Lit("the door", "open"), Lit("the kettle", "warm")
PREMISES = ["The lamp is red.", "If the lamp is red, then the door is open.",
            "If the door is open, then the kettle is warm.", "The bell is loud or the door is not open.",
            "If the clock is broken, then the barn is wet.", "If the tent is new, then the well is full.",
            "The well is not full."]


def test_parse_formulas() -> None:
    assert parse_formula("The lamp is red.") == LAMP
    assert parse_formula("the door isn't open") == DOOR.neg()
    assert parse_formula("It is not the case that the door is open") == DOOR.neg()
    assert parse_formula("If the lamp is red, then the door is open.") == Imp(LAMP, DOOR)
    assert parse_formula("if the lamp is red the door is open") is None  # no "then" and no comma
    assert parse_formula("If the lamp is red, the door is open.") == Imp(LAMP, DOOR)
    assert parse_formula("the lamp is red implies the door is open") == Imp(LAMP, DOOR)
    assert parse_formula("Either the lamp is red or the door is not open") == Or(LAMP, DOOR.neg())
    assert parse_formula("the moon is red") is None  # not one of our subjects
    assert parse_formula("Let us think.") is None
    # a step's claim is the longest tail that parses
    assert step_claim("From 'the lamp is red' and 'if the lamp is red, then the door is open', "
                      "by modus ponens: the door is open.") == DOOR
    assert step_claim("By hypothetical syllogism: if the lamp is red, then the kettle is warm.") == Imp(LAMP, KETTLE)
    assert step_claim("The lamp is red, so the door is open.") == DOOR
    assert step_claim("Answer: yes") is None


def test_entails_by_the_four_rules() -> None:
    prem = [parse_formula(p) for p in PREMISES]
    assert entails(prem, DOOR)  # modus ponens
    assert entails(prem, KETTLE)  # twice
    assert entails(prem, Imp(LAMP, KETTLE))  # hypothetical syllogism
    assert entails(prem, Lit("the bell", "loud"))  # disjunctive syllogism after modus ponens
    assert entails(prem, Lit("the tent", "new", False))  # contraposition
    assert not entails(prem, Lit("the barn", "wet"))  # antecedent never follows
    assert not entails(prem, Lit("the clock", "broken", False))
    assert not entails(prem, KETTLE.neg())
    assert not entails(prem, Imp(KETTLE, Lit("the clock", "broken")))


# Hand-written solutions to "Is it true that the kettle is warm?" (gold: yes) with the expected first wrong step.
CASES = [
    ("correct, one inference per line",
     ["The lamp is red, so by modus ponens the door is open.", "Since the door is open, the kettle is warm.",
      "Answer: yes"], -1, True),
    ("skipping steps is not an error", ["The kettle is warm.", "Answer: yes"], -1, True),
    ("a step with no claim is fine", ["Let us reason step by step.", "The door is open.",
                                      "By hypothetical syllogism, if the lamp is red, then the kettle is warm.",
                                      "Answer: yes"], -1, True),
    ("wrong conclusion at step 1", ["The door is open.", "Therefore the kettle is not warm.", "Answer: no"], 1, False),
    ("unfounded fact first", ["The clock is broken.", "So the barn is wet.", "The kettle is warm.", "Answer: yes"],
     0, True),
    ("affirming the consequent at step 2", ["The door is open.", "The bell is loud.",
                                            "If the kettle is warm, then the clock is broken.", "Answer: yes"], 2, True),
    ("contraposition used backwards", ["The well is not full.", "By contraposition, the tent is new.",
                                       "Answer: yes"], 1, True),
    ("right steps, wrong answer", ["The door is open.", "The kettle is warm.", "Answer: no"], -1, False),
]


@pytest.mark.parametrize(("name", "steps", "first_wrong", "answer_ok"), CASES, ids=[c[0] for c in CASES])
def test_hand_written_solutions(name: str, steps: list[str], first_wrong: int, answer_ok: bool) -> None:
    check = check_solution(PREMISES, "yes", steps)
    assert check.first_wrong == first_wrong, check
    assert check.answer_correct is answer_ok
    assert all(check.valid[:first_wrong]) if first_wrong >= 0 else all(check.valid)


def test_denying_the_antecedent_is_wrong() -> None:
    premises = [*PREMISES, "The clock is not broken."]
    check = check_solution(premises, "yes", "The clock is not broken. So the barn is not wet.\nAnswer: yes")
    assert check.steps == ("The clock is not broken.", "So the barn is not wet.", "Answer: yes")
    assert check.valid == (True, False, True) and check.first_wrong == 1
    assert check.reasons[1] == "not entailed: the barn is not wet"


def test_literal_answers_and_text_split() -> None:
    text = "The lamp is red. So the door is open.\nThe kettle is warm!\n\nAnswer: the kettle is warm"
    assert split_steps(text) == ["The lamp is red.", "So the door is open.", "The kettle is warm!",
                                 "Answer: the kettle is warm"]
    assert check_solution(PREMISES, "the kettle is warm", text).answer_correct
    assert not check_solution(PREMISES, "the kettle is warm", "Answer: the kettle is not warm").answer_correct
    assert check_solution(PREMISES, "no", "The answer is No.").answer_correct


def test_generator_depth_distractors_and_consistency() -> None:
    problems = build_mused(120, depth=(2, 5), distractors=3, seed=7)
    rules_seen = set()
    for p in problems:
        assert 2 <= p.depth <= 5 and len(p.proof) == p.depth
        used = {f for s in p.proof for f in s.premises if f in p.premises}
        assert len(p.premises) - len(used) == 3  # exactly the distractors are never used
        target = p.proof[-1].conclusion
        assert isinstance(target, Lit)
        assert entails(p.premises, target) and not entails(p.premises, target.neg())
        assert len({a.subject for f in p.premises for a in ((f,) if isinstance(f, Lit) else (f.a, f.b))}) == \
            len({(a.subject, a.predicate) for f in p.premises for a in ((f,) if isinstance(f, Lit) else (f.a, f.b))})
        rules_seen |= {s.rule for s in p.proof}
        assert p.answer in ("yes", "no", target.text())
    assert rules_seen == set(RULES)
    kinds = set()  # one distractor: each of the four kinds turns up
    for p in build_mused(80, depth=(2, 2), distractors=1, seed=0):
        (d,) = set(p.premises) - {f for s in p.proof for f in s.premises}
        chain = {s.conclusion for s in p.proof} | {f for f in p.premises if isinstance(f, Lit)}
        kinds.add("or" if isinstance(d, Or) else "dead end" if d.a in chain else
                  "blocked" if d.b == p.proof[-1].conclusion.neg() else "orphan rule")
    assert kinds == {"or", "dead end", "blocked", "orphan rule"}
    assert {p.depth for p in build_mused(60, depth=(4, 4), seed=1)} == {4}


def test_every_gold_proof_passes_and_corruptions_fail_at_their_step() -> None:
    for p in build_mused(150, depth=(1, 6), distractors=4, seed=3):
        premises = [f.text() for f in p.premises]
        gold = check_solution(premises, p.answer, p.gold_steps())
        assert gold.all_valid and gold.answer_correct, gold
        assert check_solution(premises, p.answer, "\n".join(p.gold_steps())).valid == gold.valid
        bad, j = corrupt(p, random.Random(p.id))
        assert check_solution(premises, p.answer, bad).first_wrong == j


def test_same_seed_same_bytes_other_seed_other_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        write_mused(out, 30, depth=(1, 6), distractors=2, seed=seed)
    for name in FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()


def test_written_files(tmp_path: Path) -> None:
    result = write_mused(tmp_path, 20, depth=(3, 3), distractors=1, seed=0)
    assert result.counts == {"train": 16, "test": 4, "stepwise": 32, "first_error": 8}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["options"] == {"n": 20, "depth": "3-3", "distractors": 1}
    assert manifest["counts"] == result.counts
    train, test = _read(tmp_path / "train.jsonl"), _read(tmp_path / "test.jsonl")
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    row = train[0]
    assert row["prompt"][0]["role"] == "user" and row["meta"]["depth"] == 3 and row["meta"]["distractors"] == 1
    assert row["steps"][-1] == f"Answer: {row['answer']}" and len(row["meta"]["proof"]) == 3
    for s in _read(tmp_path / "stepwise.jsonl"):
        assert len(s["completions"]) == len(s["labels"]) == 4
        assert s["labels"] == sorted(s["labels"], reverse=True)  # True ... then False from the corrupted step on
    labels = [r["label"] for r in _read(tmp_path / "first_error.jsonl")]
    assert labels[0::2] == [-1] * 4 and all(0 <= x < 3 for x in labels[1::2])


@pytest.mark.parametrize("text", ["0", "1-7", "5-2", "x", "2-"])
def test_parse_depth_refuses(text: str) -> None:
    with pytest.raises(OptionError, match="--depth"):
        parse_depth(text)


def test_parse_depth() -> None:
    assert parse_depth("3") == (3, 3) and parse_depth("1-6") == (1, 6) and parse_depth(" 2 - 4 ") == (2, 4)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert main(["data", "synth", "--task", "mused", "--n", "10", "--depth", "2-3", "--distractors", "2",
                 "--seed", "1", "--out", str(out)]) == 0
    assert "mused: 8 train and 2 test problems" in capsys.readouterr().out
    rows = _read(out / "train.jsonl") + _read(out / "test.jsonl")
    assert len(rows) == 10 and {r["meta"]["depth"] for r in rows} <= {2, 3}
    assert {r["meta"]["distractors"] for r in rows} == {2}


@pytest.mark.parametrize("extra", [["--forget-fraction", "0.2"], ["--model", "tiny"], ["--depth", "9"],
                                   ["--distractors", "13"], ["--n", "1"]])
def test_cli_refuses_bad_or_inapplicable_options(tmp_path: Path, extra: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--task", "mused", "--out", str(tmp_path / "x"), *extra]) == 2
    assert extra[0] in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
