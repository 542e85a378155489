"""The two-hop generator and verifier (rewardkit.synth.two_hop) and `rewardkit data synth --task two-hop`."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.synth.steps import FILES
from rewardkit.synth.two_hop import (
    build_two_hop,
    check_solution,
    corrupt,
    fact_text,
    parse_facts,
    resolve,
    step_claims,
    write_two_hop,
)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# Query: Who is Velzor's mentor's landlord? (gold: Tadex)
PREMISES = ["Velzor's mentor is Quonell.", "Quonell's landlord is Tadex.", "Velzor's landlord is Morak.",
            "Bexvim's mentor is Fenvim.", "Quonell's mentor is Lunbos."]

CASES = [
    ("correct", "Velzor's mentor is Quonell.\nQuonell's landlord is Tadex.\nAnswer: Tadex", -1, True),
    ("composed in one step", "Velzor's mentor's landlord is Tadex. The answer is Tadex.", -1, True),
    ("shortcut: A's Y taken for A's X's Y",
     "Velzor's landlord is Morak.\nSo Velzor's mentor's landlord is Morak.\nAnswer: Morak", 1, False),
    ("wrong bridge", "Velzor's mentor is Fenvim.\nFenvim's landlord is Tadex.\nAnswer: Tadex", 0, True),
    ("relation reversed", "Quonell's mentor is Velzor.\nAnswer: Tadex", 0, True),
    ("relations in the wrong order", "Velzor's mentor is Quonell.\nQuonell's mentor is Lunbos.\n"
     "So Velzor's mentor's landlord is Lunbos.\nAnswer: Lunbos", 2, False),
    ("no claims, wrong answer", "I am not sure.\nAnswer: Quonell", -1, False),
]


@pytest.mark.parametrize(("name", "text", "first_wrong", "answer_ok"), CASES, ids=[c[0] for c in CASES])
def test_hand_written_solutions(name: str, text: str, first_wrong: int, answer_ok: bool) -> None:
    check = check_solution(PREMISES, "Tadex", text)
    assert check.first_wrong == first_wrong, check
    assert check.answer_correct is answer_ok


def test_claims_and_resolution() -> None:
    facts = parse_facts(PREMISES)
    assert facts[("Velzor", "mentor")] == "Quonell" and len(facts) == 5
    assert resolve(facts, "Velzor", ["mentor", "landlord"]) == "Tadex"
    assert resolve(facts, "Velzor", ["landlord", "mentor"]) is None
    assert step_claims("So Velzor’s mentor’s landlord is Tadex, and Bexvim's mentor is Fenvim.") == [
        ("Velzor", ("mentor", "landlord"), "Tadex"), ("Bexvim", ("mentor",), "Fenvim")]
    check = check_solution(PREMISES, "Tadex", ["Velzor's mentor is Quonell and Velzor's mentor is Morak."])
    assert check.valid == (False,) and check.reasons == ("false: Velzor's mentor is Morak",)


@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_distractor_counts_and_unique_answers(k: int) -> None:
    for p in build_two_hop(80, distractors=k, seed=k):
        assert len(p.facts) == 2 + k and p.distractors == k
        keys = Counter(f[:2] for f in p.facts)
        assert max(keys.values()) == 1  # every (owner, relation) once: each chain has one end
        facts = parse_facts([fact_text(*f) for f in p.facts])
        x, y = p.relations
        assert resolve(facts, p.subject, [x, y]) == p.answer and facts[(p.subject, x)] == p.bridge
        assert [f[2] for f in p.facts].count(p.answer) == 1  # no distractor names the answer
        assert len({p.subject, p.bridge, p.answer}) == 3
        distractors = [f for f in p.facts if f not in ((p.subject, x, p.bridge), (p.bridge, y, p.answer))]
        if k <= 4:  # each shares a name or a relation with the query (4 kinds, without repeats up to 4)
            assert all(f[0] in (p.subject, p.bridge) or f[1] in (x, y) for f in distractors)


def test_one_distractor_kinds_all_appear() -> None:
    kinds: Counter[str] = Counter()
    for p in build_two_hop(200, distractors=1, seed=0):
        (owner, rel, _), = [f for f in p.facts if f[2] not in (p.bridge, p.answer)]
        kinds[("A's Y" if owner == p.subject else "B's X" if owner == p.bridge else
               "other's Y" if rel == p.relations[1] else "other's X")] += 1
    assert set(kinds) == {"A's Y", "B's X", "other's Y", "other's X"} and min(kinds.values()) >= 30


def test_gold_passes_and_corruptions_fail_at_their_step() -> None:
    for p in build_two_hop(200, distractors=3, seed=2):
        premises = [fact_text(*f) for f in p.facts]
        gold = check_solution(premises, p.answer, p.gold_steps())
        assert gold.all_valid and gold.answer_correct
        bad, j = corrupt(p, random.Random(p.id))
        assert check_solution(premises, p.answer, bad).first_wrong == j


def test_same_seed_same_bytes_other_seed_other_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 1), (b, 1), (c, 2)):
        write_two_hop(out, 25, distractors=3, seed=seed)
    for name in FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "test.jsonl").read_bytes() != (c / "test.jsonl").read_bytes()


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t"
    assert main(["data", "synth", "--task", "two-hop", "--n", "20", "--distractors", "3", "--out", str(out)]) == 0
    assert "two-hop: 16 train and 4 test problems, 32 stepwise solutions" in capsys.readouterr().out
    rows = _read(out / "train.jsonl")
    assert {len(r["meta"]["premises"]) for r in rows} == {5} and rows[0]["steps"][-1] == f"Answer: {rows[0]['answer']}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "two-hop" and manifest["options"] == {"n": 20, "distractors": 3}
    stepwise = _read(out / "stepwise.jsonl")
    assert stepwise[0]["labels"] == [True, True, True] and False in stepwise[1]["labels"]


@pytest.mark.parametrize("extra", [["--depth", "2"], ["--forget-fraction", "0.2"], ["--samples-file", "x"],
                                   ["--distractors", "-1"]])
def test_cli_refuses_bad_or_inapplicable_options(tmp_path: Path, extra: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--task", "two-hop", "--out", str(tmp_path / "x"), *extra]) == 2
    assert extra[0] in capsys.readouterr().err
