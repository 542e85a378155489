"""The fictitious-facts generator (rewardkit.synth.facts) and `rewardkit data synth --task fictitious-facts`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.synth.facts import (
    FACTS,
    FILES,
    GENERATOR_VERSION,
    build_fictitious_facts,
    general_sentences,
    person_names,
    split_people,
    write_fictitious_facts,
)

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_same_seed_same_files_other_seed_other_people(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_fictitious_facts(a, 12, seed=3)
    write_fictitious_facts(b, 12, seed=3)
    write_fictitious_facts(c, 12, seed=4)
    for name in FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "all.jsonl").read_bytes() != (c / "all.jsonl").read_bytes()
    assert {r["person"] for r in _read(a / "all.jsonl")} != {r["person"] for r in _read(c / "all.jsonl")}


def test_counts_and_split_by_person() -> None:
    rows = build_fictitious_facts(40, forget_fraction=0.1, seed=0)
    assert len(FACTS) == 10
    assert (len(rows["forget"]), len(rows["retain"]), len(rows["all"])) == (4 * 10, 36 * 10, 400)
    assert rows["all"] == rows["forget"] + rows["retain"]
    forget = {r["person"] for r in rows["forget"]}
    retain = {r["person"] for r in rows["retain"]}
    assert len(forget) == 4 and len(retain) == 36 and not forget & retain
    for split in ("forget", "retain"):  # every person has every fact, once
        by_person: dict[str, list[str]] = {}
        for r in rows[split]:
            by_person.setdefault(r["person"], []).append(r["fact"])
        assert all(sorted(f) == sorted(x.name for x in FACTS) for f in by_person.values())
    assert len({r["id"] for r in rows["all"]}) == 400


@pytest.mark.parametrize(("n", "fraction", "n_forget"), [(2, 0.1, 1), (5, 0.1, 1), (10, 0.5, 5), (3, 0.9, 2)])
def test_forget_share_at_least_one_never_all(n: int, fraction: float, n_forget: int) -> None:
    assert len(split_people(n, fraction, seed=0)) == n_forget  # round(n * fraction), clipped to [1, n - 1]


def test_row_fields_and_answers() -> None:
    rows = build_fictitious_facts(30, seed=1)["all"]
    keys = {"id", "person", "fact", "prompt", "completion", "paraphrased_questions", "paraphrased_answer",
            "perturbed_answers"}
    for r in rows:
        assert set(r) == keys
        question = r["prompt"][0]["content"]
        answer = r["completion"][0]["content"]
        assert r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant"
        assert r["person"] in question
        assert len(r["paraphrased_questions"]) == 2
        assert question not in r["paraphrased_questions"]
        assert len(set(r["paraphrased_questions"])) == 2
        assert len(r["perturbed_answers"]) == 3 == len(set(r["perturbed_answers"]))
        assert r["paraphrased_answer"] not in r["perturbed_answers"]
        assert answer not in r["perturbed_answers"]
        assert answer != r["paraphrased_answer"]


def test_perturbed_answers_hold_other_values_of_the_same_attribute() -> None:
    """The true value (the end of the answer after the template's fixed words) is never in a wrong answer, and
    each wrong answer is the paraphrased template with a different value."""
    by_name = {f.name: f for f in FACTS}
    for r in build_fictitious_facts(20, seed=2)["all"]:
        fact = by_name[r["fact"]]
        name, first = r["person"], r["person"].split()[0]
        prefix, suffix = fact.paraphrased_answer.format(first=first, name=name, value="\0").split("\0")
        truth = r["paraphrased_answer"].removeprefix(prefix).removesuffix(suffix)
        pool = fact.values(["unused"]) if fact.name != "mentor" else None
        for wrong in r["perturbed_answers"]:
            assert wrong.startswith(prefix) and wrong.endswith(suffix)
            value = wrong.removeprefix(prefix).removesuffix(suffix)
            assert value != truth
            if pool is not None:
                assert value in pool and truth in pool
        assert r["completion"][0]["content"].endswith(f"{truth}.")


def test_names_are_invented_and_distinct() -> None:
    names = person_names(200, seed=0)
    assert len(set(names)) == 200
    assert all(len(n.split()) == 2 and n.split()[0].isalpha() for n in names)
    assert person_names(10, seed=0) == names[:10]


def test_general_sentences() -> None:
    sentences = general_sentences()
    assert len(sentences) == 100 == len(set(sentences))
    assert "The capital of France is Paris." in sentences
    assert "7 multiplied by 8 equals 56." in sentences
    assert "Mars is the fourth planet from the Sun." in sentences
    assert build_fictitious_facts(5, seed=9)["general"] == [{"text": s} for s in sentences]


@pytest.mark.parametrize(("n", "fraction"), [(1, 0.1), (0, 0.1), (10, 0.0), (10, 1.0), (10, -0.2)])
def test_bad_arguments(n: int, fraction: float) -> None:
    with pytest.raises(OptionError):
        build_fictitious_facts(n, forget_fraction=fraction)


def test_cli_writes_the_files_and_train_sft_reads_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit.data.dataset import load_examples
    from rewardkit.data.unlearning import read_unlearning_rows

    out = tmp_path / "facts"
    assert main(["data", "synth", "--task", "fictitious-facts", "--n", "40", "--out", str(out)]) == 0
    assert "4 forget, 36 retain" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"people": {"forget": 4, "retain": 36, "all": 40},
                                  "rows": {"forget": 40, "retain": 360, "all": 400, "general": 100}}
    assert (manifest["seed"], manifest["forget_fraction"], manifest["generator_version"]) == (0, 0.1, GENERATOR_VERSION)
    assert manifest["general"].startswith("plain sentences of real general knowledge")
    assert len(manifest["forget_people"]) == 4
    loaded = load_examples(out / "all.jsonl", kind="any")  # what `rewardkit train sft` reads
    assert loaded.n_records == 400 and loaded.n_errors == 0
    assert set(loaded.dataset["format"]) == {"completion"}
    first = _read(out / "all.jsonl")[0]
    assert loaded.dataset[0]["prompt"] == first["prompt"] and loaded.dataset[0]["chosen"] == first["completion"]
    forget = read_unlearning_rows(out / "forget.jsonl")
    assert len(forget) == 40 and forget[0].answer == first["completion"][0]["content"]
    assert len(read_unlearning_rows(out / "general.jsonl")) == 100


@pytest.mark.parametrize("extra", [["--n", "1"], ["--forget-fraction", "1.5"], ["--model", "tiny"],
                                   ["--samples-per-prompt", "2"]])
def test_cli_bad_values_exit_2(tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "synth", "--task", "fictitious-facts", "--out", str(tmp_path / "x"), *extra])
    assert code == 2
    assert extra[0] in capsys.readouterr().err


def test_cli_forget_fraction_refused_for_ifeval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "synth", "--out", str(tmp_path / "x"), "--forget-fraction", "0.2"])
    assert code == 2
    assert "--forget-fraction applies to --task fictitious-facts only" in capsys.readouterr().err
