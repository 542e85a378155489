"""Con-J judge training (rewardkit.train.judge, `train judge`) and the rationale judge scorer.

Verdict parsing and pair construction are checked on hand-written judgments (the expected pairs are
listed in each test); a scripted sampler replaces the model where the judgments must be known; the tiny
random Llama (SmolLM2's tokenizer and chat template) runs sampling, one DPO step and the `judge:DIR` scorer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.scoring import ScorerOptions, build_scorer
from rewardkit.train import judge as tj
from rewardkit.train.judge import (
    ContrastivePair,
    JudgePrompt,
    JudgeTrainConfig,
    contrastive_pairs,
    hint_prompt,
    judge_prompts,
    judgment_rows,
    parse_verdict,
    rationale_of,
    sample_judgments,
)
from rewardkit.types import ScoreOutput
from tiny_models import tiny_llama

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("judge") / "lm")


def pairs_file(path: Path, n: int = 2) -> Path:
    rows = [("What is 2 + 2?", "4.", "22."), ("Name a colour.", "Red.", "A hammer.")][:n]
    path.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": p}],
                                        "chosen": [{"role": "assistant", "content": c}],
                                        "rejected": [{"role": "assistant", "content": r}]}) + "\n"
                            for p, c, r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize(("text", "verdict"), [
    ("A is right.\nBetter: A", "A"),
    ("better: b", "B"),
    ("Better:**B**", "B"),
    ("Better: Response A", "A"),
    ("Better: (B)", "B"),
    ("Better: A\nOn reflection...\nBetter: B", "B"),  # the last verdict counts
    ("I think A is better.", None),
    ("Better: AB", None),
    ("Better: C", None),
    ("", None),
])
def test_parse_verdict(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict


def test_rationale_of_cuts_the_last_verdict() -> None:
    assert rationale_of("Because it adds up.\nBetter: B") == "Because it adds up."
    assert rationale_of("no verdict here ") == "no verdict here"


# ------------------------------------------------------------------------------------------ pairs


def test_pairs_by_hand() -> None:
    samples = ["x\nBetter: A", "y\nBetter: B", "z", "w\nBetter: A", "v\nBetter: B", "u\nbetter: a",
               "t\nBetter: B", "s\nBetter: B"]
    # positives x, w, u; negatives y, v, t, s; unknown z
    pairs = contrastive_pairs(samples, "A", "Because it is right.\nBetter: A", "It is shorter.")
    assert pairs == [
        ContrastivePair("x\nBetter: A", "y\nBetter: B", "sample"),
        ContrastivePair("w\nBetter: A", "v\nBetter: B", "sample"),
        ContrastivePair("u\nbetter: a", "t\nBetter: B", "sample"),  # at most 3 (pos, neg) pairs
        ContrastivePair("x\nBetter: A", "z", "unknown"),
        # hint rationales with their final line set to the hinted letter
        ContrastivePair("Because it is right.\nBetter: A", "It is shorter.\nBetter: B", "hint"),
    ]


def test_pairs_when_b_is_right_and_fallback_without_hints() -> None:
    samples = ["p\nBetter: B", "q", "p\nBetter: B", "r\nBetter: B", "q2"]
    # positives p (once: duplicates dropped), r; no negative; unknowns q, q2; no hints -> fallback (r, q2)
    assert contrastive_pairs(samples, "B") == [ContrastivePair("p\nBetter: B", "q", "unknown"),
                                              ContrastivePair("r\nBetter: B", "q2", "fallback")]
    # an empty hint rationale also falls back
    assert contrastive_pairs(samples, "B", "Better: B", "bad")[-1].kind == "fallback"
    assert contrastive_pairs(["n\nBetter: A"], "B") == []  # a lone negative makes no pair


def test_hint_prompts_name_the_right_letter() -> None:
    rows = {"prompt": [[{"role": "user", "content": "Q?"}]], "chosen": [[{"role": "assistant", "content": "good"}]],
            "rejected": [[{"role": "assistant", "content": "bad"}]]}
    ab, ba = judge_prompts(rows)
    assert (ab.order, ab.correct, ba.order, ba.correct) == ("AB", "A", "BA", "B")
    assert ab.text.index("good") < ab.text.index("bad") and ba.text.index("bad") < ba.text.index("good")
    seen: list[str] = []

    def hint_sampler(prompts: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
        seen.extend(p[0]["content"] for p in prompts)
        return [["r"] for _ in prompts]

    sample_judgments([ab, ba], lambda p, k: [["s"] * k for _ in p], hint_sampler, 2)
    # per prompt: the hint with the true better letter (positive), then with the wrong one (negative)
    assert seen == [hint_prompt(ab.text, "A"), hint_prompt(ab.text, "B"), hint_prompt(ba.text, "B"),
                    hint_prompt(ba.text, "A")]
    assert "Response A is known to be better" in seen[0] and "Response B is known to be better" in seen[1]
    assert seen[2].endswith('"Better: B".') and seen[3].endswith('"Better: A".')


def test_judgment_rows_counts() -> None:
    prompts = [JudgePrompt(0, "AB", "judge me", "A")]
    rows, counts = judgment_rows(prompts, [["a\nBetter: A", "b\nBetter: B", "c"]], ["h+"], ["h-"])
    assert counts["positive"] == 1 and counts["negative"] == 1 and counts["unknown"] == 1
    assert counts["pairs"] == {"sample": 1, "unknown": 1, "hint": 1, "fallback": 0} and counts["rows"] == 3
    assert rows[0] == {"prompt": [{"role": "user", "content": "judge me"}],
                       "chosen": [{"role": "assistant", "content": "a\nBetter: A"}],
                       "rejected": [{"role": "assistant", "content": "b\nBetter: B"}],
                       "kind": "sample", "pair": 0, "order": "AB"}
    assert rows[2]["chosen"][0]["content"] == "h+\nBetter: A" and rows[2]["rejected"][0]["content"] == "h-\nBetter: B"


def test_score_output_keeps_rationales_through_concat_and_select() -> None:
    def out(*texts: tuple[str, ...]) -> ScoreOutput:
        r = np.empty(len(texts), dtype=object)
        for i, t in enumerate(texts):
            r[i] = t
        return ScoreOutput(np.arange(len(texts), dtype=np.float32), np.zeros(len(texts), dtype=bool), rationales=r)

    both = ScoreOutput.concat([out(("a", "b")), out(("c", "d"), ("e", "f"))])
    assert list(both.rationales) == [("a", "b"), ("c", "d"), ("e", "f")]
    assert list(both.select([2, 0]).rationales) == [("e", "f"), ("a", "b")]
    with pytest.raises(ValueError, match="rationales"):
        ScoreOutput(np.zeros(2, dtype=np.float32), np.zeros(2, dtype=bool), rationales=np.empty(3, dtype=object))


def test_config_refuses_sft_and_bad_samples() -> None:
    with pytest.raises(OptionError):
        JudgeTrainConfig(data="x", loss={"name": "sft"})  # type: ignore[arg-type]
    with pytest.raises(OptionError):
        JudgeTrainConfig(data="x", samples=0)


# ------------------------------------------------------------------------------------------ end to end

TRAIN = ["--max-steps", "1", "--lr", "1e-3", "--batch-size", "2", "--max-length", "256", "--device", "cpu",
         "--warmup-ratio", "0"]


def test_end_to_end_tiny_model(tmp_path: Path, lm_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pairs_file(tmp_path / "pairs.jsonl")
    out = tmp_path / "judge"
    assert main(["train", "judge", "--model", str(lm_path), "--data", str(data), "--out", str(out), "--samples", "2",
                 "--max-new-tokens", "6", *TRAIN]) == 0
    printed = capsys.readouterr().out
    assert "judgments:" in printed and f"judge:{out}" in printed
    counts = json.loads((out / "judgments.json").read_text())
    assert counts["judge_prompts"] == 4  # 2 pairs x 2 orders
    assert counts["positive"] + counts["negative"] + counts["unknown"] == 8  # K = 2 each
    rows = [json.loads(x) for x in (out / "judgments.jsonl").read_text().splitlines()]
    assert len(rows) == counts["rows"] >= 4  # at least the hint pair of each judge prompt
    assert all(r["chosen"][0]["content"] != r["rejected"][0]["content"] for r in rows)
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["kind"] == "judge" and meta["rationale"] is True and meta["template"] == tj.RATIONALE_TEMPLATE
    assert meta["rationale_tokens"] == 6 and meta["policy"]["beta"] == 0.1 and meta["training"]["steps"] == 1

    judge = build_scorer(f"judge:{out}", ScorerOptions(device="cpu", dtype="float32"))
    result = judge.compare([[{"role": "user", "content": "Q?"}]], [[{"role": "assistant", "content": "yes"}]],
                           [[{"role": "assistant", "content": "no"}]])
    assert result.rewards.shape == (1,) and np.isfinite(result.rewards).all()
    assert len(result.rationales[0]) == 2  # one rationale per order

    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", f"judge:{out}", "--data", str(data), "--out", str(scored), "--device", "cpu"]) == 0
    lines = [json.loads(x) for x in scored.read_text().splitlines()]
    assert all(len(r["judge_rationale"]) == 2 and r["chosen_score"] == -r["rejected_score"] for r in lines)


def test_rationale_logodds_match_a_hand_forward(tmp_path: Path, lm_path: Path) -> None:
    """judge:DIR's log-odds equal logit(' A') − logit(' B') after prompt + rationale + 'Better:', averaged over orders."""
    import shutil

    folder = tmp_path / "j"
    shutil.copytree(lm_path, folder)
    (folder / "rewardkit.json").write_text(json.dumps({"kind": "judge", "template": tj.RATIONALE_TEMPLATE,
                                                        "rationale": True, "rationale_tokens": 3}))
    judge = build_scorer(f"judge:{folder}", ScorerOptions(device="cpu", dtype="float32"))
    p, a, b = [{"role": "user", "content": "Q?"}], [{"role": "assistant", "content": "yes"}], [{"role": "assistant", "content": "no"}]
    out = judge.compare([p], [a], [b])
    tok, model = judge.lm.tokenizer, judge.lm.model
    ids_a, ids_b = tok(" A", add_special_tokens=False)["input_ids"], tok(" B", add_special_tokens=False)["input_ids"]
    values = []
    for first, second, rationale in ((a, b, out.rationales[0][0]), (b, a, out.rationales[0][1])):
        text = tj.judge_prompt(p, first, second)
        ids = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        ids += tok(f"{rationale}\nBetter:" if rationale else "Better:", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        values.append(float(logits[ids_a[0]] - logits[ids_b[0]]))
    assert float(out.rewards[0]) == pytest.approx((values[0] - values[1]) / 2, abs=1e-4)


def test_cli_with_scripted_sampler(tmp_path: Path, lm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def sampler(prompts: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
        return [["ok\nBetter: A", "no\nBetter: B", "hmm"][:k] for _ in prompts]

    monkeypatch.setattr(tj, "build_samplers", lambda cfg: (sampler, None))
    data = pairs_file(tmp_path / "pairs.jsonl", n=1)
    out = tmp_path / "judge"
    assert main(["train", "judge", "--model", str(lm_path), "--data", str(data), "--out", str(out), "--samples", "3",
                 "--no-hints", *TRAIN]) == 0
    counts = json.loads((out / "judgments.json").read_text())
    # order AB (A right): pos "ok", neg "no", unk "hmm" -> (ok, no), (ok, hmm); order BA (B right): pos "no",
    # neg "ok" -> (no, ok), (no, hmm); no hints and a single positive -> the fallback repeats (pos, unk): dropped
    assert counts["positive"] == 2 and counts["negative"] == 2 and counts["unknown"] == 2
    assert counts["pairs"] == {"sample": 2, "unknown": 2, "hint": 0, "fallback": 0}


def test_cli_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n')
    assert main(["train", "judge", "--model", "unused", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert main(["train", "judge", "--data", str(bad), "--out", str(tmp_path / "o"), "--samples", "0"]) == 2
    assert "samples" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "judge", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--samples", "--temperature", "--top-p", "--max-new-tokens", "--beta", "--hints", "Better: A"):
        assert flag in text
