"""synthesize() end to end with a tiny model (deterministic from a seed), twin rows by hand, the shipped
set, and the shortcut audit of every shipped synthetic task."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewardkit.synth import TASKS, audit_task, load_embedded, synthesize
from rewardkit.synth.core import (
    EMBEDDED_FILES,
    OBJECTIVE_KINDS,
    SamplingSettings,
    build_rows,
    objective_record,
    objective_rows,
    read_jsonl,
    read_samples,
    split_families,
    write_samples,
)
from rewardkit.synth.edits import Candidate
from rewardkit.synth.prompts import Family, SynthPrompt
from rewardkit.verify.verifiers import Constraint, count_words, gold_reward
from tiny_models import tiny_llama

PAIR_FIELDS = {
    "prompt", "chosen", "rejected", "prompt_id", "family_id", "group", "twin", "contrast", "pair_type",
    "constraints", "chosen_gold", "rejected_gold", "chosen_source", "rejected_source",
}  # fmt: skip


def _families(n: int, contrasts: tuple[str, ...]) -> list[Family]:
    return [Family(f"f{i:03d}", contrasts[i % len(contrasts)], (), (), ()) for i in range(n)]


def test_split_families_is_stratified_by_contrast() -> None:
    families = _families(120, ("length", "include", "start"))  # 40 families per contrast
    test = split_families(families, test_fraction=0.2, seed=0)
    assert len(test) == 24 and test <= {f.family_id for f in families}
    for contrast in ("length", "include", "start"):
        assert sum(f.family_id in test for f in families if f.contrast == contrast) == 8
    assert split_families(list(reversed(families)), test_fraction=0.2, seed=0) == test  # order-free
    assert split_families(families, test_fraction=0.2, seed=1) != test
    two = _families(2, ("length",))
    assert len(split_families(two, test_fraction=0.01, seed=0)) == 1  # never empty, never all
    assert split_families(_families(1, ("length",)), test_fraction=0.5, seed=0) == set()


def _family(i: int, group: str) -> Family:
    sides = (Constraint.make("include_keyword", keyword="rain"), Constraint.make("exclude_keyword", keyword="rain"))
    a, b = (SynthPrompt(f"f{i}{s}", f"Talk {i}. {side.describe()}", (side,), group) for s, side in zip("ab", sides, strict=True))
    return Family(f"f{i}", "keyword", (), sides, (a, b))


def test_build_rows_by_hand() -> None:
    """Two candidates meeting opposite sides make one twin: two rows with the responses swapped; a third
    candidate that meets neither prompt... cannot exist here (include/exclude), so a duplicate-gold one."""
    cands = [Candidate("Rain.", "sample", (1.0, 0.0)), Candidate("Sun.", "edit:remove_keyword", (0.0, 1.0)),
             Candidate("Rain again.", "sample", (1.0, 0.0))]
    families = [_family(0, "r0"), _family(1, "r1")]
    rows = build_rows(families, [cands, cands[:2]], {"f1"}, twins_per_family=1, seed=0)
    assert len(rows["train"]) == len(rows["test"]) == 2
    first, second = rows["test"]
    assert set(first) == PAIR_FIELDS and first["twin"] == second["twin"] == "f1/0"
    assert (first["prompt_id"], first["chosen"][0]["content"], first["rejected"][0]["content"]) == ("f1a", "Rain.", "Sun.")
    assert (second["prompt_id"], second["chosen"][0]["content"], second["rejected"][0]["content"]) == ("f1b", "Sun.", "Rain.")
    assert (first["chosen_gold"], first["rejected_gold"], second["chosen_gold"], second["rejected_gold"]) == (1, 0, 1, 0)
    assert first["pair_type"] == "mixed" and first["group"] == "r1" and first["contrast"] == "keyword"
    assert [c["prompt_id"] for c in rows["candidates"]] == ["f1a", "f1b"]
    assert rows["candidates"][1]["gold"] == [0.0, 1.0] and rows["candidates"][1]["sources"][1] == "edit:remove_keyword"
    both = build_rows(families, [cands, cands[:2]], {"f1"}, twins_per_family=4, seed=0)
    assert len(both["train"]) == 4  # f0 has two twins: (Rain., Sun.) and (Rain again., Sun.)


def test_objective_rows_by_hand() -> None:
    """Per kind: the share of the prompt's instructions of that kind met (None if it has none), words."""
    shared = Constraint.make("no_commas")
    sides = (Constraint.make("max_words", n=5), Constraint.make("min_words", n=3))
    prompts = (SynthPrompt("fa", "Talk.", (shared, sides[0]), "r"), SynthPrompt("fb", "Talk!", (shared, sides[1]), "r"))
    family = Family("f", "length", (shared,), sides, prompts)
    short, long = Candidate("Hi, there.", "sample", (0.5, 0.0)), Candidate("One two three four five six", "sample", (0.5, 1.0))
    row = objective_record(family, 0, short)
    assert row["no_commas"] == 0.0 and row["max_words"] == 1.0 and row["min_words"] is None
    assert row["verbosity"] == 2 and row["gold"] == 0.5 and row["response"] == "Hi, there."
    assert row["prompt"] == [{"role": "user", "content": "Talk."}] and row["prompt_id"] == "fa"
    assert {k for k in OBJECTIVE_KINDS if row[k] is not None} == {"no_commas", "max_words"}
    other = objective_record(family, 1, long)
    assert (other["no_commas"], other["min_words"], other["max_words"], other["verbosity"]) == (1.0, 1.0, None, 6)
    rows = objective_rows([family], [[short, long]], set(), split="train")
    assert [(r["prompt_id"], r["response"]) for r in rows] == [("fa", short.text), ("fa", long.text),
                                                               ("fb", short.text), ("fb", long.text)]
    assert objective_rows([family], [[short, long]], set(), split="test") == []


def test_samples_file_round_trip(tmp_path: Path) -> None:
    prompts = [SynthPrompt("p0", "Hi.", ()), SynthPrompt("p1", "Bye.", ())]
    settings = SamplingSettings(2, 8, 1.0, 1.0, 50, 4)
    write_samples(tmp_path / "s.jsonl", prompts, [["a", "b"], ["c", "d"]], settings)
    assert read_samples(tmp_path / "s.jsonl", prompts[::-1], settings) == [["c", "d"], ["a", "b"]]
    with pytest.raises(ValueError, match="p1"):
        read_samples(tmp_path / "s.jsonl", [SynthPrompt("p1", "Other.", ())], settings)
    with pytest.raises(ValueError, match="p0"):
        read_samples(tmp_path / "s.jsonl", prompts, SamplingSettings(3, 8, 1.0, 1.0, 50, 4))


# ---------------------------------------------------------------------------------------------- files


def check_set(files: dict[str, Path]) -> dict[str, Any]:
    """Schema, twins, split and gold provenance of a synthesized set; returns the manifest."""
    train, test, cands = (read_jsonl(files[name]) for name in ("train", "test", "candidates"))
    manifest = json.loads(files["manifest"].read_text(encoding="utf-8"))
    for split in (train, test):
        twins: dict[str, list[dict[str, Any]]] = {}
        for r in split:
            assert set(r) == PAIR_FIELDS
            assert [m["role"] for m in r["prompt"] + r["chosen"] + r["rejected"]] == ["user", "assistant", "assistant"]
            constraints = [Constraint.from_dict(c) for c in r["constraints"]]
            assert r["chosen_gold"] == gold_reward(r["chosen"][0]["content"], constraints)
            assert r["rejected_gold"] == gold_reward(r["rejected"][0]["content"], constraints)
            assert r["chosen_gold"] > r["rejected_gold"]
            twins.setdefault(r["twin"], []).append(r)
        for one, other in twins.values():  # the same two responses, each preferred under one prompt
            assert one["family_id"] == other["family_id"] and one["prompt_id"] != other["prompt_id"]
            assert (one["chosen"], one["rejected"]) == (other["rejected"], other["chosen"])
    for r in cands:
        constraints = [Constraint.from_dict(c) for c in r["constraints"]]
        assert r["gold"] == [gold_reward(t, constraints) for t in r["responses"]]
        assert len(set(r["responses"])) == len(r["responses"]) == len(r["sources"])
    train_families = {r["family_id"] for r in train}
    assert not train_families & {r["family_id"] for r in test}
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in cands}
    assert {r["prompt_id"] for r in test} <= {r["prompt_id"] for r in cands}
    counts = manifest["counts"]
    assert (counts["pairs"]["train"], counts["pairs"]["test"]) == (len(train), len(test))
    assert counts["prompts"]["test"] == len(cands)
    assert counts["candidates"]["test"] == sum(len(r["responses"]) for r in cands)
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256(files[name].read_bytes()).hexdigest() == digest
    return manifest


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny random Llama with the SmolLM2 tokenizer; one torch thread while it samples (tiny matmuls
    only lose to thread synchronisation, badly so on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield str(tiny_llama(tmp_path_factory.mktemp("tiny_llama")))
    torch.set_num_threads(threads)


def test_synthesize_end_to_end_is_reproducible(tiny_lm: str, tmp_path: Path) -> None:
    # 12 families x 2 prompts x 2 samples, 3 prompts per rollout
    kwargs: dict[str, Any] = dict(n_prompts=24, seed=7, model=tiny_lm, samples_per_prompt=2, max_new_tokens=6,
                                  prompts_per_batch=3, twins_per_family=3)  # fmt: skip
    first = synthesize(out_dir=tmp_path / "a", **kwargs)
    second = synthesize(out_dir=tmp_path / "b", **kwargs)
    reused = synthesize(out_dir=tmp_path / "c", samples_file=first.samples, **kwargs)  # no sampling
    names = ("train", "test", "candidates", "manifest", "samples")
    for name in names:
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes(), name
        assert getattr(first, name).read_bytes() == getattr(reused, name).read_bytes(), name
    for split in ("objectives_train", "objectives_test"):
        data = (tmp_path / "a" / EMBEDDED_FILES[split]).read_bytes()
        assert data == (tmp_path / "b" / EMBEDDED_FILES[split]).read_bytes() == (tmp_path / "c" / EMBEDDED_FILES[split]).read_bytes()
    objectives = read_jsonl(tmp_path / "a" / EMBEDDED_FILES["objectives_train"])
    train_prompts = {r["prompt_id"] for r in read_jsonl(first.train)}
    assert objectives and train_prompts <= {r["prompt_id"] for r in objectives}
    for r in objectives:
        values = [r[k] for k in OBJECTIVE_KINDS if r[k] is not None]
        assert values and set(values) <= {0.0, 0.5, 1.0} and r["verbosity"] == count_words(r["response"])
    manifest = check_set({**{name: getattr(first, name) for name in names},
                          **{split: tmp_path / "a" / EMBEDDED_FILES[split] for split in ("objectives_train", "objectives_test")}})
    assert first.n_pairs_train == manifest["counts"]["pairs"]["train"] > 0 and first.n_pairs_test > 0
    assert manifest["seed"] == 7 and manifest["task"] == "ifeval-lite"
    assert manifest["sampling"]["samples_per_prompt"] == 2 and manifest["generator"]["model"] == tiny_lm
    assert set(manifest["versions"]) == {"rewardkit", "torch", "transformers"}
    for split in ("train", "test"):  # every pair has its twin: no rule on the responses alone beats chance
        assert manifest["audit"][split]["prompt_blind_ceiling"] == 0.5
        assert manifest["audit"][split]["longer_wins"] == manifest["audit"][split]["edited_wins"] == 0.5


def test_unknown_task_fails_before_loading_a_model(tmp_path: Path) -> None:
    assert "ifeval-lite" in TASKS
    with pytest.raises(KeyError, match="unknown synth task"):
        synthesize(task="nope", n_prompts=4, out_dir=tmp_path, model="/does/not/exist")


def test_shipped_set() -> None:
    """The set in ``rewardkit/resources/ifeval_lite`` (issue 17's rebuilt set): schema, twins, split by
    family, the verifiers' gold and the manifest's checksums (:func:`check_set`), made by SmolLM2 from
    seed 0, and small enough to ship."""
    files = {name: load_embedded(name) for name in EMBEDDED_FILES}
    manifest = check_set(files)
    assert manifest["generator"]["model"] == "smollm2-135m" and manifest["seed"] == 0
    assert manifest["counts"]["pairs"]["test"] >= 200  # a 95% interval of about +-0.06 at 0.75
    assert sum(p.stat().st_size for p in files.values()) < 3_500_000
    objectives = read_jsonl(files["objectives_test"])
    assert {r["prompt_id"] for r in objectives} == {r["prompt_id"] for r in read_jsonl(files["candidates"])}
    with pytest.raises(KeyError, match="unknown split"):
        load_embedded("validation")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_task_has_no_surface_shortcut(task: str) -> None:
    """Issue 17: on the pairs every synthetic task ships, no rule that ignores the prompt beats chance
    by much. (0.1's ifeval-lite set failed this: "the edited one wins" scored 0.84, 0.974 on the pairs it
    decided, and a prompt-blind scorer could have ordered every pair right; benchmarks/testbed.py.)"""
    out = audit_task(task)
    assert out["pairs"] >= 200
    for rule in ("edited_wins", "more_edits_wins", "longer_wins", "shorter_wins", "surface_probe"):
        assert 0.4 <= out[rule] <= 0.6, rule
    assert out["worst_surface_rule"]["accuracy"] <= 0.6
    assert out["prompt_blind_ceiling"] <= 0.6


def test_synth_cli_refuses_a_samples_file_that_does_not_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A samples.jsonl of other prompts, or a file that is not one: one line naming the file, exit 2, nothing
    written to --out (the check comes before any file is written)."""
    from rewardkit.cli import main

    other = tmp_path / "other.jsonl"
    write_samples(other, [SynthPrompt("p0", "Hi.", ())], [["a"]], SamplingSettings(6, 64, 1.0, 1.0, 50, 4))
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{not json\n")
    for path, expected in ((other, "no samples of prompt"), (garbage, "not a samples.jsonl")):
        out = tmp_path / f"out-{path.stem}"
        assert main(["data", "synth", "--n", "4", "--out", str(out), "--samples-file", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"--samples-file {path}" in err and expected in err and len(err.strip().splitlines()) == 1
        assert not any(out.glob("*.jsonl"))
