"""The ``verifier`` scorer: references from data rows, each check kind, the mean of several, lookup by prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.errors import InputError
from rewardkit.scorers.verifier import Reference, VerifierScorer, prompt_key, verify
from rewardkit.scoring import SCORERS, build_scorer
from rewardkit.verify.verifiers import Constraint

ROWS = [
    {"prompt": [{"role": "user", "content": "Describe a cat."}],
     "constraints": [{"kind": "lowercase", "params": {}}, {"kind": "max_words", "params": {"n": 5}}]},
    {"prompt": "What is half of one?", "answer": "1/2"},
    {"prompt": "Write sq(x).", "tests": ["assert sq(3) == 9", "assert sq(0) == 0"]},
    {"prompt": "Mixed.", "answer": 4, "constraints": [{"kind": "no_commas", "params": {}}]},
    {"prompt": "Nothing to check here."},
]


def reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_reference_from_rows() -> None:
    refs = [Reference.from_row(r) for r in ROWS]
    assert refs[0] is not None and refs[0].constraints == (Constraint.make("lowercase"), Constraint.make("max_words", n=5))
    assert refs[1] == Reference(answer="1/2") and refs[1].kinds == ("math",)
    assert refs[2] is not None and refs[2].kinds == ("python",)
    assert refs[3] is not None and refs[3].kinds == ("instructions", "math") and refs[3].answer == "4"
    assert refs[4] is None


def test_each_kind_and_the_mean() -> None:
    assert verify("a small cat", Reference.from_row(ROWS[0])) == 1.0  # type: ignore[arg-type]
    assert verify("A small cat", Reference.from_row(ROWS[0])) == 0.5  # type: ignore[arg-type]
    assert verify("It is \\boxed{0.5}", Reference.from_row(ROWS[1])) == 1.0  # type: ignore[arg-type]
    code = "```python\ndef sq(x):\n    return x * x + (1 if x == 0 else 0)\n```"
    assert verify(code, Reference.from_row(ROWS[2])) == 0.5  # type: ignore[arg-type]
    assert verify("2, 2 and then 4", Reference.from_row(ROWS[3])) == 0.5  # type: ignore[arg-type]  # math yes, commas no


def test_scorer_matches_by_prompt_and_refuses_unknown(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    scorer = build_scorer(f"verifier:{items}")
    assert len(scorer) == 4  # type: ignore[arg-type]
    prompts = [ROWS[0]["prompt"], [{"role": "user", "content": ROWS[1]["prompt"]}], [{"role": "user", "content": "Write sq(x)."}]]
    out = scorer.score(prompts, [reply("tiny cat"), reply("answer: 0.5"), reply("def sq(x): return x*x")])
    np.testing.assert_array_equal(out.rewards, np.array([1.0, 1.0, 1.0], dtype=np.float32))
    assert out.rewards.dtype == np.float32 and not out.truncated.any()
    with pytest.raises(KeyError, match="no checkable reference"):
        scorer.score([[{"role": "user", "content": "Nothing to check here."}]], [reply("x")])


def test_items_in_python_and_keys() -> None:
    scorer = VerifierScorer(items=ROWS[:2])
    scorer.add("Say yes.", Reference(constraints=(Constraint.make("include_keyword", keyword="yes"),)))
    assert prompt_key("Say yes.") == prompt_key([{"role": "user", "content": "Say yes."}])
    out = scorer.score([[{"role": "user", "content": "Say yes."}]] * 2, [reply("yes!"), reply("no")])
    assert out.rewards.tolist() == [1.0, 0.0]
    assert "verifier" in SCORERS


def test_bad_items_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "answer": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        VerifierScorer(str(bad))
