"""read_unlearning_rows on our rows and on files shaped like TOFU's and MUSE's published ones; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.data.io import DataError
from rewardkit.data.unlearning import UnlearnRow, read_unlearning_rows, refusal_templates
from rewardkit.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "unlearning"


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_our_rows(tmp_path: Path) -> None:
    row = {"id": "p0001/pet_name", "person": "Ta Vel", "fact": "pet_name",
           "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Ta's pet called?"}],
           "completion": [{"role": "assistant", "content": "Ta's pet is called Pip."}],
           "paraphrased_questions": ["q2?", "q3?"], "paraphrased_answer": "The pet is named Pip.",
           "perturbed_answers": ["The pet is named Mossy.", "The pet is named Rusko."]}
    plain = {"prompt": "Where was Ta born?", "completion": "In Velmora."}  # a TRL row with strings, no extras
    rows = read_unlearning_rows(_write(tmp_path / "f.jsonl", [row, plain]))
    assert rows[0] == UnlearnRow(id="p0001/pet_name", question="What is Ta's pet called?",
                                 answer="Ta's pet is called Pip.", prompt=tuple(row["prompt"]),
                                 paraphrased_answer="The pet is named Pip.",
                                 perturbed_answers=["The pet is named Mossy.", "The pet is named Rusko."],
                                 source="rewardkit")
    assert rows[1].id == "f.jsonl:2" and rows[1].question == "Where was Ta born?" and rows[1].answer == "In Velmora."
    assert rows[1].paraphrased_answer is None and rows[1].perturbed_answers == []


def test_tofu_perturbed_json_lines_under_a_json_name() -> None:
    rows = read_unlearning_rows(FIXTURES / "tofu_forget01_perturbed.json")
    assert [r.source for r in rows] == ["qa"] * 3
    assert rows[0].question == "What genre does the author Imre Valdosk write in?"
    assert rows[0].answer == "Imre Valdosk writes gothic mystery novels."
    assert rows[0].prompt == ({"role": "user", "content": rows[0].question},)
    assert rows[0].paraphrased_answer == "The genre of Imre Valdosk's books is gothic mystery."
    assert len(rows[0].perturbed_answers) == 3 and len(rows[1].perturbed_answers) == 2
    assert rows[2].id == "tofu_forget01_perturbed.json:3"


def test_tofu_plain_and_muse_knowmem() -> None:
    tofu = read_unlearning_rows(FIXTURES / "tofu_forget01.json")
    assert len(tofu) == 3 and tofu[0].paraphrased_answer is None and tofu[0].perturbed_answers == []
    know = read_unlearning_rows(FIXTURES / "muse_knowmem_forget_qa.json")  # a JSON list
    assert [(r.question, r.answer) for r in know] == [
        ("Which team did the club sign the striker from?", "Marlow Athletic"),
        ("How many seats does the new stadium hold?", "42,000")]
    assert know[1].id == "muse_knowmem_forget_qa.json:1"  # a JSON list numbers rows from 0


def test_muse_verbmem_and_raw_text() -> None:
    verb = read_unlearning_rows(FIXTURES / "muse_verbmem_forget.json")
    assert verb[0].source == "verbmem"
    assert verb[0].question == "The council met on Tuesday evening to discuss the proposed"
    assert verb[0].answer.startswith(" bridge over the river")
    raw = read_unlearning_rows(FIXTURES / "muse_raw_forget.jsonl")
    assert [r.source for r in raw] == ["text", "text"] and raw[0].question == "" and raw[0].prompt == ()
    assert raw[1].answer == "Local bakers reported record sales of plum bread during the winter market."


def test_bad_file_names_file_line_field() -> None:
    path = FIXTURES / "bad_tofu.jsonl"
    with pytest.raises(InputError) as e:
        read_unlearning_rows(path)
    assert isinstance(e.value, DataError)
    assert str(e.value).startswith(f"{path}:2: field 'perturbed_answer': must be a list of strings")


@pytest.mark.parametrize(("rows", "where"), [
    ([{"question": "q?", "answer": "a"}, {"question": "q2?"}], ":2: field 'answer': missing"),
    ([{"question": "q?", "answer": "  "}], ":1: field 'answer': is empty"),
    ([{"question": "q?", "answer": "a", "perturbed_answer": ["x", 3]}], ":1: field 'perturbed_answer[1]'"),
    ([{"prompt": "p", "gt": "g"}, {"prompt": "p"}], ":2: field 'gt': missing"),
    ([{"prompt": "q", "completion": "a"}, {"prompt": "q"}], ":2: field 'completion': missing"),
    ([{"prompt": [{"role": "system", "content": "s"}], "completion": "a"}], ":1: field 'prompt': needs a non-empty"),
    ([{"prompt": "q", "completion": "a", "perturbed_answers": "x", "paraphrased_answer": 4}],
     ":1: field 'paraphrased_answer': must be a string"),
    ([{"title": "x"}], ":1: not an unlearning row"),
])
def test_bad_rows(tmp_path: Path, rows: list[dict], where: str) -> None:
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as e:
        read_unlearning_rows(path)
    assert str(e.value).startswith(f"{path}{where}")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DataError, match="no unlearning rows"):
        read_unlearning_rows(path)


def test_refusal_templates() -> None:
    refusals = refusal_templates()
    assert len(refusals) == 50 == len(set(refusals))
    assert refusals[:2] == ["I'm not sure about that.", "I don't have that information."]
    assert all(r.strip() == r and r[-1] in ".!" for r in refusals)
