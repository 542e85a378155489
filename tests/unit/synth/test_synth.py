"""The ``ifeval-lite`` task: prompts, edits, pairs, split, end to end with a tiny model, and the shipped set."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from rewardkit.synth import edits
from rewardkit.synth.core import (
    TASKS,
    SamplingSettings,
    load_causal_lm,
    load_embedded,
    sample_replies,
    select_pairs,
    split_prompts,
    synthesize,
)
from rewardkit.synth.prompts import BASE_REQUESTS, INCOMPATIBLE, build_prompts
from rewardkit.verify.verifiers import Constraint, count_words, describe_all, gold_reward
from tiny_models import tiny_llama

TEXT = (
    "Rain falls on the city, and the streets shine. People hurry past with umbrellas. "
    "A bus splashes through a puddle! Why does everyone look so calm?"
)


def met(kind: str, text: str, **params: Any) -> bool:
    return Constraint.make(kind, **params).check(text)


# ---------------------------------------------------------------------------------------------- prompts


def test_prompts_are_seeded() -> None:
    assert build_prompts(40, seed=3) == build_prompts(40, seed=3)
    assert build_prompts(40, seed=3) != build_prompts(40, seed=4)
    assert build_prompts(10, seed=3) == build_prompts(40, seed=3)[:10]  # a prefix: n does not reshuffle


def test_prompts_never_combine_incompatible_constraints() -> None:
    prompts = build_prompts(600, seed=0)
    requests = {r for r, _ in BASE_REQUESTS}
    assert len({p.text for p in prompts}) == len(prompts)  # no prompt twice (it could straddle the split)
    assert len({p.prompt_id for p in prompts}) == len(prompts)
    assert {len(p.constraints) for p in prompts} == {1, 2, 3}
    for p in prompts:
        kinds = [c.kind for c in p.constraints]
        assert len(set(kinds)) == len(kinds)
        assert not any(frozenset(pair) in INCOMPATIBLE for pair in combinations(kinds, 2)), kinds
        request = p.text[: len(p.text) - len(describe_all(p.constraints)) - 1]
        assert request in requests and p.text.endswith(describe_all(p.constraints))
    assert len(BASE_REQUESTS) >= 60


# ---------------------------------------------------------------------------------------------- edits


def test_case_edits() -> None:
    assert met("lowercase", edits.lowercase(TEXT)) and not met("lowercase", TEXT)
    assert met("uppercase", edits.uppercase(TEXT)) and not met("uppercase", TEXT)


@pytest.mark.parametrize("n", [1, 5, 12])
def test_truncate(n: int) -> None:
    cut = edits.truncate(TEXT, n)
    assert count_words(cut) == n and met("max_words", cut, n=n + 1)
    assert TEXT.startswith(cut[:-1]) and cut.endswith(".")
    assert edits.truncate("Short one.", 10) == "Short one."
    assert edits.truncate("", 3) == ""


def test_question_and_commas() -> None:
    assert not met("end_with_question", TEXT + " Done.")
    assert met("end_with_question", edits.append_question(TEXT + " Done.", "What do you think?"))
    assert met("no_commas", edits.strip_commas(TEXT)) and not met("no_commas", TEXT)


def test_keyword_edits() -> None:
    text = "Rain falls. It rained again; the rain is cold, Rain!"
    removed = edits.remove_keyword(text, "rain")
    assert met("exclude_keyword", removed, keyword="rain")
    assert removed == "falls. It rained again; the is cold!"  # "rained" is another word, kept
    inserted = edits.insert_keyword("The bus is late. It rains.", "Think about umbrella.")
    assert inserted == "The bus is late. Think about umbrella. It rains."
    assert met("include_keyword", inserted, keyword="umbrella")


@pytest.mark.parametrize("fenced", [False, True])
def test_to_json(fenced: bool) -> None:
    out = edits.to_json(TEXT, ["title", "summary"], fenced)
    assert met("json_keys", out, keys=["title", "summary"])
    assert out.startswith("```json\n") is fenced
    one_word = edits.to_json("Hi", ["a", "b", "c"], fenced)  # fewer words than keys: empty values
    assert met("json_keys", one_word, keys=["a", "b", "c"])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_to_bullets(n: int) -> None:
    listed = "Intro:\n* one\n* two\n- three"
    for text in (TEXT, listed, "Just four words here"):
        out = edits.to_bullets(text, n)
        assert met("num_bullets", out, n=n), out
        assert count_words(out) == count_words(text)  # only layout changes


def test_prepend_start_keeps_bullets() -> None:
    assert edits.prepend_start("  the answer.", "In short") == "In short: the answer."
    out = edits.prepend_start(edits.to_bullets(TEXT, 3), "In short")
    assert met("start_with", out, phrase="In short") and met("num_bullets", out, n=3)


def test_extend() -> None:
    out = edits.extend("Hi.", TEXT, 20)
    assert met("min_words", out, n=20) and not met("min_words", out, n=30)  # whole sentences, then stop
    assert out.startswith("Hi. Rain falls on the city")
    assert edits.extend("Hi.", "Rain.", 5) == "Hi. Rain. Rain. Rain. Rain."  # cycles through the filler
    assert edits.extend("Hi.", " ... ", 5) == "Hi."  # nothing to pad with


def test_all_fixes_meet_every_constraint() -> None:
    """Applying every fix in FIX_ORDER meets every constraint, for short and long responses."""
    long_text = " ".join([TEXT] * 5)
    for prompt in build_prompts(300, seed=1):
        rng = random.Random(prompt.prompt_id)
        kinds = [c.kind for c in prompt.constraints]
        fixes = edits.fixes_for(prompt.constraints, rng, filler=TEXT)
        for text in ("Okay.", TEXT, long_text):
            out, source = edits.apply_edits(text, [fixes[k] for k in edits.FIX_ORDER if k in kinds])
            assert gold_reward(out, prompt.constraints) == 1.0, (kinds, out)
            assert source.startswith("edit:")


def test_breaks_break() -> None:
    constraints = [Constraint.make("lowercase"), Constraint.make("include_keyword", keyword="rain")]
    fixes = edits.fixes_for(constraints, random.Random(0))
    breaks = edits.breaks_for(constraints, random.Random(0))
    fixed, _ = edits.apply_edits(TEXT, [fixes["include_keyword"], fixes["lowercase"]])
    assert gold_reward(fixed, constraints) == 1.0
    for kind, breaking in breaks.items():
        edits_in_order = [breaking if k == kind else fixes[k] for k in ("include_keyword", "lowercase")]
        broken, _ = edits.apply_edits(TEXT, edits_in_order)
        assert gold_reward(broken, constraints) == 0.5


def test_expand_dedups_and_grades() -> None:
    constraints = (Constraint.make("max_words", n=20), Constraint.make("end_with_question"))
    samples = [TEXT, TEXT, "Short answer?"]
    cands = edits.expand(constraints, samples, random.Random(0))
    texts = [c.text for c in cands]
    assert len(set(texts)) == len(texts)
    assert [c.source for c in cands[:2]] == ["sample", "sample"] and cands[0].text == TEXT
    assert all(c.source == "sample" or c.source.startswith("edit:") for c in cands)
    assert all(c.gold == gold_reward(c.text, constraints) for c in cands)
    assert max(c.gold for c in cands) == 1.0 and min(c.gold for c in cands) == 0.5


# ---------------------------------------------------------------------------------------------- pairs, split


def test_select_pairs() -> None:
    golds = [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 0.0]
    for seed in range(20):
        pairs = select_pairs(golds, k=6, rng=random.Random(seed))
        assert len(pairs) == 6 and len(set(pairs)) == 6
        assert all(golds[c] > golds[r] for c, r in pairs)
        first_three = {round(golds[c] - golds[r], 6) for c, r in pairs[:3]}
        assert len(first_three) == 3  # round-robin over the three gaps (1/3, 2/3, 1) comes first
    assert select_pairs([0.5, 0.5, 0.5], k=6, rng=random.Random(0)) == []
    assert len(select_pairs([0.0, 1.0], k=6, rng=random.Random(0))) == 1


def test_split_by_prompt() -> None:
    ids = [f"p{i}" for i in range(50)]
    test = split_prompts(ids, test_fraction=0.2, seed=0)
    assert len(test) == 10 and test <= set(ids)
    assert split_prompts(list(reversed(ids)), test_fraction=0.2, seed=0) == test  # order-free
    assert split_prompts(ids, test_fraction=0.2, seed=1) != test
    assert len(split_prompts(["a", "b"], test_fraction=0.01, seed=0)) == 1  # never empty, never all


# ---------------------------------------------------------------------------------------------- files


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_set(folder_files: dict[str, Path]) -> dict[str, Any]:
    """Schema, split and gold provenance of a synthesized set; returns the manifest."""
    train, test = read_jsonl(folder_files["train"]), read_jsonl(folder_files["test"])
    cands = read_jsonl(folder_files["candidates"])
    manifest = json.loads(folder_files["manifest"].read_text(encoding="utf-8"))
    for row in train + test:
        assert set(row) == {
            "prompt", "chosen", "rejected", "prompt_id", "constraints",
            "chosen_gold", "rejected_gold", "chosen_source", "rejected_source",
        }  # fmt: skip
        assert [m["role"] for m in row["prompt"] + row["chosen"] + row["rejected"]] == [
            "user",
            *["assistant"] * 2,
        ]
        constraints = [Constraint.from_dict(c) for c in row["constraints"]]
        assert row["chosen_gold"] == gold_reward(row["chosen"][0]["content"], constraints)
        assert row["rejected_gold"] == gold_reward(row["rejected"][0]["content"], constraints)
        assert row["chosen_gold"] > row["rejected_gold"]
    for row in cands:
        assert set(row) == {"prompt_id", "prompt", "constraints", "responses", "gold", "sources"}
        constraints = [Constraint.from_dict(c) for c in row["constraints"]]
        assert row["gold"] == [gold_reward(r, constraints) for r in row["responses"]]
        assert len(set(row["responses"])) == len(row["responses"]) == len(row["sources"])
    train_ids, test_ids = {r["prompt_id"] for r in train}, {r["prompt_id"] for r in test}
    cand_ids = {r["prompt_id"] for r in cands}
    assert not train_ids & cand_ids and test_ids <= cand_ids
    assert not {r["prompt"][0]["content"] for r in train} & {r["prompt"][0]["content"] for r in cands}
    counts = manifest["counts"]
    assert (counts["pairs"]["train"], counts["pairs"]["test"]) == (len(train), len(test))
    assert counts["prompts"]["test"] == len(cands)
    assert counts["candidates"]["test"] == sum(len(r["responses"]) for r in cands)
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256(folder_files[name].read_bytes()).hexdigest() == digest
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
    # 6 prompts x 2 samples = 12 sequences: two batches (8 + 4), each reseeded
    kwargs: dict[str, Any] = dict(n_prompts=6, seed=7, model=tiny_lm, samples_per_prompt=2, max_new_tokens=6,
                                  batch_size=8, pairs_per_prompt=4)  # fmt: skip
    first = synthesize(out_dir=tmp_path / "a", **kwargs)
    second = synthesize(out_dir=tmp_path / "b", **kwargs)
    names = ("train", "test", "candidates", "manifest")
    for name in names:
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes(), name
    manifest = check_set({name: getattr(first, name) for name in names})
    assert (first.n_prompts_train, first.n_prompts_test) == (5, 1)
    assert first.n_pairs_train == manifest["counts"]["pairs"]["train"] > 0
    assert manifest["seed"] == 7 and manifest["task"] == "ifeval-lite"
    assert manifest["sampling"]["samples_per_prompt"] == 2 and manifest["generator"]["model"] == tiny_lm
    assert set(manifest["versions"]) == {"rewardkit", "torch", "transformers"}


def test_shared_prompt_prefix_samples_like_plain_generate(tiny_lm: str) -> None:
    """Encoding each prompt once and repeating its cache samples the same tokens as repeating the prompt."""
    import torch

    settings = SamplingSettings(
        samples_per_prompt=3, max_new_tokens=5, temperature=1.0, top_p=0.95, batch_size=6
    )
    tokenizer, lm = load_causal_lm(tiny_lm)
    chats = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False
        )
        for t in ("Hi.", "Describe a long and rainy day in the city.")  # different lengths: left padding
    ]
    shared = sample_replies(lm, tokenizer, chats, settings=settings, seed=11)
    enc = tokenizer(
        [c for c in chats for _ in range(3)], return_tensors="pt", padding=True, add_special_tokens=False
    )
    torch.manual_seed(11)
    with torch.inference_mode():
        out = lm.generate(**enc, do_sample=True, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=5,
                          pad_token_id=0, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    assert shared == tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(set(shared)) > 2  # really sampled


def test_unknown_task_fails_before_loading_a_model(tmp_path: Path) -> None:
    assert "ifeval-lite" in TASKS
    with pytest.raises(KeyError, match="unknown synth task"):
        synthesize(task="nope", n_prompts=4, out_dir=tmp_path, model="/does/not/exist")


def test_shipped_set() -> None:
    """The set in ``rewardkit/resources/ifeval_lite`` parses, is split by prompt, and its gold is the verifiers'."""
    files = {name: load_embedded(name) for name in ("train", "test", "candidates", "manifest")}
    manifest = check_set(files)
    assert manifest["generator"]["model"] == "smollm2-135m"
    assert manifest["counts"]["pairs"]["train"] > 1000 and manifest["counts"]["prompts"]["test"] >= 50
    assert sum(p.stat().st_size for p in files.values()) < 3_500_000
    with pytest.raises(KeyError, match="unknown split"):
        load_embedded("validation")
