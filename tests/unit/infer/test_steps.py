"""AdaptiveStep splitting and Monte-Carlo step labels (rewardkit.infer.steps, `data steps`, `data label-steps`).

Expected numbers are worked out by hand in the comments; scripted policies replace the sampler / the token
probabilities where the outcome must be known; the tiny random Llama (SmolLM2's real tokenizer) runs the
real model paths."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.cli.main import main
from rewardkit.cli.steps import checker_for, row_task
from rewardkit.data.io import Location
from rewardkit.errors import OptionError
from rewardkit.infer.sampler import Policy, Sample, SamplingConfig
from rewardkit.infer.steps import (
    LabelConfig,
    Sampler,
    SplitConfig,
    StepRow,
    boundaries_from_probs,
    char_cuts,
    encode_response,
    global_threshold,
    label_solution,
    labels_from_rollouts,
    newline_steps,
    response_token_probs,
    sidecar,
    solution_of,
    spans,
    split_solutions,
    step_prefixes,
)
from rewardkit.synth.steps import final_answer, split_steps

# ------------------------------------------------------------------------------------------ pure maths


def test_boundaries_from_a_hand_made_confidence_sequence() -> None:
    probs = [0.9, 0.1, 0.8, 0.05, 0.7, 0.2, 0.6, 0.01]
    # below 0.2: tokens 1, 3 and 7; token 5 equals τ (not strictly below); 7 is the last token (no boundary)
    assert boundaries_from_probs(probs, 0.2) == [1, 3]
    assert boundaries_from_probs(probs, 0.0) == []
    assert boundaries_from_probs(probs, 1.0) == [0, 1, 2, 3, 4, 5, 6]
    assert boundaries_from_probs([0.01], 0.5) == []


def test_global_threshold_by_hand() -> None:
    probs = [np.array([0.1, 0.5]), np.array([0.3, 0.9, 0.7])]
    # sorted: .1 .3 .5 .7 .9 (5 values, 4 gaps); q = .25 -> position 1 -> .3; q = .1 -> position .4 -> .1 + .4 * .2
    assert global_threshold(probs, 0.25) == pytest.approx(0.3)
    assert global_threshold(probs, 0.1) == pytest.approx(0.18)
    assert global_threshold(probs, 0.0) == pytest.approx(0.1)
    with pytest.raises(OptionError):
        global_threshold([np.zeros(0)], 0.02)


def test_labels_from_rollouts_hard_and_soft_by_hand() -> None:
    correct = [[False, False, False, False], [True, False, False, False], [True, True, False, True]]
    assert labels_from_rollouts(correct, "hard").tolist() == [False, True, True]
    assert labels_from_rollouts(correct, "soft").tolist() == [0.0, 0.25, 0.75]
    with pytest.raises(OptionError):
        labels_from_rollouts(correct, "median")
    with pytest.raises(OptionError):
        labels_from_rollouts(np.zeros((2, 0), dtype=bool))


def test_newline_split_and_step_prefixes() -> None:
    assert newline_steps("a = 1\n\nb = 2\n  \n Answer: 3\n") == ["a = 1", "b = 2", " Answer: 3"]
    assert step_prefixes(["a", "b"], "newline") == ["a\n", "a\nb\n"]
    assert step_prefixes(["a", "b"], None) == ["a\n", "a\nb\n"]  # TRL stepwise rows: the "\n" separator
    assert step_prefixes(["The c", "at sat"], "confidence") == ["The c", "The cat sat"]  # exact spans
    assert spans("abcdef", [2, 3]) == ["ab", "c", "def"]


def test_config_validation() -> None:
    with pytest.raises(OptionError):
        SplitConfig(split="sentences")
    with pytest.raises(OptionError):
        SplitConfig(quantile=1.0)
    with pytest.raises(OptionError):
        LabelConfig(rollouts=0)
    with pytest.raises(OptionError):
        LabelConfig(estimate="max")


def test_solution_rows_of_every_shape() -> None:
    loc = Location("f.jsonl", 1)
    msgs = [{"role": "user", "content": "q"}]
    assert solution_of(loc, {"prompt": "q", "response": "r"}) == ("q", "r")
    assert solution_of(loc, {"prompt": msgs, "completion": [{"role": "assistant", "content": "a\nb"}]}) == (msgs, "a\nb")
    assert solution_of(loc, {"prompt": msgs, "steps": ["a", "b"], "answer": "b"}) == (msgs, "a\nb")
    assert solution_of(loc, {"prompt": "q", "completions": ["a", "b"], "labels": [True, False]}) == ("q", "a\nb")


# ------------------------------------------------------------------------------------------ splitting


RESPONSE = "Café au lait costs 3 €.\nNaïve sum: 3 + 4 = 7 😀\n\nAnswer: 7"


def test_spans_concatenate_to_the_response_on_the_real_tokenizer(policy: Policy) -> None:
    ids = encode_response(policy, RESPONSE)
    cuts, skipped = char_cuts(policy.decode, ids, RESPONSE, list(range(len(ids) - 1)))  # a cut after every token
    pieces = spans(RESPONSE, cuts)
    assert "".join(pieces) == RESPONSE
    assert cuts == sorted(set(cuts))
    # byte-level BPE: "€" (3 bytes) and "😀" (4 bytes) may be split over tokens; those cuts are skipped, never
    # placed inside a character
    assert len(cuts) + skipped == len(ids) - 1
    # skipped: the cuts inside a character, and those that would leave a whitespace-only step (exactly which:
    # test_no_step_is_only_whitespace)
    assert skipped >= sum(1 for i in range(len(ids) - 1) if "\ufffd" in policy.decode(ids[: i + 1]))
    assert all(step.strip() for step in spans(RESPONSE, cuts))


def test_confidence_split_with_scripted_probabilities(policy: Policy) -> None:
    responses = ["x = 1\nso y = 2\nAnswer: 2", "Answer: 5"]
    ids = [encode_response(policy, r) for r in responses]
    low = {0: [2, 5], 1: []}  # tokens of solution 0 after which a step ends

    def scripted(_policy: Policy, _prompts: Sequence[str], resp: Sequence[str], **_: object) -> list[np.ndarray]:
        out = []
        for i, r in enumerate(resp):
            p = np.full(len(ids[i]), 0.9)
            p[low[i]] = 0.01
            assert len(p) == len(encode_response(policy, r))
            out.append(p)
        return out

    # 2 low among n tokens; sorted: .01 .01 .9 ...; q = 1.5 / (n - 1) sits halfway between sorted values 1 and 2
    n = sum(len(i) for i in ids)
    res = split_solutions(policy, ["q1", "q2"], responses, SplitConfig(quantile=1.5 / (n - 1)), probs_fn=scripted)
    assert res.threshold == pytest.approx(0.01 + 0.5 * (0.9 - 0.01))
    t = ids[0]
    assert res.steps[0] == [policy.decode(t[:3]), policy.decode(t[3:6]), policy.decode(t[6:])]
    assert res.steps[1] == ["Answer: 5"]
    assert ["".join(s) for s in res.steps] == responses
    assert res.skipped_boundaries == 0 and res.truncated == 0


def test_token_probs_match_a_full_softmax_and_do_not_depend_on_the_batch(policy: Policy) -> None:
    prompts = [[{"role": "user", "content": "What is 3 + 4?"}], "Say hi."]
    responses = ["3 + 4 = 7.\nAnswer: 7", "Hi!"]
    batched = response_token_probs(policy, prompts, responses, batch_size=2)
    alone = response_token_probs(policy, prompts, responses, batch_size=1)
    for i in range(2):
        p_ids = policy.encode_prompt(prompts[i])
        r_ids = encode_response(policy, responses[i])
        with torch.inference_mode():
            logits = policy.model(input_ids=torch.tensor([p_ids + r_ids])).logits[0].float()  # (T, V)
        ref = logits.softmax(-1)[len(p_ids) - 1: -1].gather(-1, torch.tensor(r_ids)[:, None])[:, 0]
        assert batched[i].shape == (len(r_ids),)
        np.testing.assert_allclose(batched[i], ref.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batched[i], alone[i], rtol=1e-4, atol=1e-6)
    cut = response_token_probs(policy, prompts[:1], responses[:1], max_length=len(policy.encode_prompt(prompts[0])) + 3)
    np.testing.assert_allclose(cut[0], batched[0][:3], rtol=1e-4, atol=1e-6)


def test_confidence_split_on_the_tiny_model(policy: Policy) -> None:
    prompts = ["Add 3 and 4.", "Add 1 and 1."]
    responses = ["First, 3 + 4 = 7.\nAnswer: 7", "1 + 1 = 2, so the answer is 2."]
    res = split_solutions(policy, prompts, responses, SplitConfig(quantile=0.25))
    probs = response_token_probs(policy, prompts, responses)
    assert res.threshold == pytest.approx(float(np.quantile(np.concatenate(probs), 0.25)))
    assert ["".join(s) for s in res.steps] == responses
    below = sum(int((p[:-1] < res.threshold).sum()) for p in probs)
    assert sum(len(s) - 1 for s in res.steps) == below - res.skipped_boundaries


# ------------------------------------------------------------------------------------------ labelling


def _checker(gold: str) -> Callable[[str], bool]:
    return lambda text: final_answer(split_steps(text)) == gold


def _scripted_sampler(script: dict[str, list[tuple[str, int]]],
                      calls: list[tuple[list[list[int]], list[str]]]) -> Sampler:
    """A policy whose rollouts from prefix key K are ``script[K]``: (text, tokens generated)."""

    def sampler(_policy: Policy, prefixes: Sequence[list[int]], n: int, _cfg: SamplingConfig,
                keys: Sequence[str]) -> list[list[Sample]]:
        calls.append(([list(p) for p in prefixes], list(keys)))
        return [[Sample(p, i, text, toks, "eos") for i, (text, toks) in enumerate(script[k][:n])]
                for p, k in enumerate(keys)]

    return sampler


STEPS = ["x = 1", "y = x + 1 = 2", "Answer: 2"]
SCRIPT = {
    "r/0": [("y = 5\nAnswer: 5", 6), ("Answer: 3", 3)],  # neither reaches 2 -> step 0 wrong
    "r/1": [("Answer: 7", 4), ("Answer: 2", 3)],  # one of two -> right (soft 0.5)
    "r/2": [("Answer: 2", 2), ("Answer: 2", 5)],  # used only with --last-step rollout
}


def test_mc_labels_with_a_scripted_policy(policy: Policy) -> None:
    calls: list[tuple[list[list[int]], list[str]]] = []
    cfg = LabelConfig(rollouts=2, estimate="soft", prefixes_per_batch=4)
    res = label_solution(policy, "Compute y.", STEPS, split="newline", check=_checker("2"), cfg=cfg, key="r",
                         sampler=_scripted_sampler(SCRIPT, calls))
    assert res.labels == [False, True, True]  # the last step: its written answer "2" is checked
    assert res.scores == [0.0, 0.5, 1.0]
    assert res.rollout_tokens == 6 + 3 + 4 + 3  # steps 0 and 1 only
    assert res.rolled == 2
    prompt_ids = policy.encode_prompt("Compute y.")
    assert calls == [([prompt_ids + encode_response(policy, "x = 1\n"),
                       prompt_ids + encode_response(policy, "x = 1\ny = x + 1 = 2\n")], ["r/0", "r/1"])]


def test_mc_labels_last_step_by_rollouts_and_batching(policy: Policy) -> None:
    calls: list[tuple[list[list[int]], list[str]]] = []
    cfg = LabelConfig(rollouts=2, last_step="rollout", prefixes_per_batch=1)
    res = label_solution(policy, "Compute y.", STEPS, split="newline", check=_checker("2"), cfg=cfg, key="r",
                         sampler=_scripted_sampler(SCRIPT, calls))
    assert res.labels == [False, True, True] and res.scores == [0.0, 0.5, 1.0]
    assert res.rollout_tokens == 6 + 3 + 4 + 3 + 2 + 5
    assert [keys for _, keys in calls] == [["r/0"], ["r/1"], ["r/2"]]
    # one rollout each: only the first scripted rollout counts
    one = label_solution(policy, "Compute y.", STEPS, split="newline", check=_checker("2"),
                         cfg=LabelConfig(rollouts=1), key="r", sampler=_scripted_sampler(SCRIPT, []))
    assert one.labels == [False, False, True] and one.rollout_tokens == 6 + 4


def test_mc_labels_with_the_real_sampler_are_seeded(policy: Policy) -> None:
    sampling = SamplingConfig(max_new_tokens=5, seed=3)
    cfg = LabelConfig(rollouts=3, sampling=sampling, estimate="soft")
    seen: list[str] = []

    def check(text: str) -> bool:
        seen.append(text)
        return text.rstrip().endswith("Answer: 2")

    a = label_solution(policy, "Compute y.", STEPS, split="newline", check=check, cfg=cfg, key="r")
    b = label_solution(policy, "Compute y.", STEPS, split="newline", check=check, cfg=cfg, key="r")
    assert a == b
    assert 2 * 3 <= a.rollout_tokens <= 2 * 3 * 5
    assert a.labels[-1] is True and a.scores[-1] == 1.0
    assert seen[:3] and all(t.startswith("x = 1\n") for t in seen[:3])


# ------------------------------------------------------------------------------------------ command line


def test_cli_steps_then_label_steps(tmp_path: Path, lm_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--task", "mused", "--n", "5", "--out", str(tmp_path / "m")]) == 0
    src = [json.loads(line) for line in (tmp_path / "m" / "train.jsonl").read_text().splitlines()]
    steps = tmp_path / "steps.jsonl"
    assert main(["data", "steps", "--policy", str(lm_path), "--data", str(tmp_path / "m" / "train.jsonl"),
                 "--out", str(steps), "--quantile", "0.05", "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in steps.read_text().splitlines()]
    assert ["".join(r["completions"]) for r in rows] == ["\n".join(s["steps"]) for s in src]
    assert all(r["labels"] is None and r["split"] == "confidence" for r in rows)
    assert [(r["id"], r["answer"], r["meta"]) for r in rows] == [(s["id"], s["answer"], s["meta"]) for s in src]
    summary = json.loads(sidecar(str(steps)).read_text())
    assert summary["threshold"] == rows[0]["threshold"] and summary["solutions"] == len(src)
    assert summary["steps"] == sum(len(r["completions"]) for r in rows)
    assert '"steps_per_solution"' in capsys.readouterr().out

    labeled = tmp_path / "labeled.jsonl"
    assert main(["data", "label-steps", "--policy", str(lm_path), "--data", str(steps), "--out", str(labeled),
                 "--rollouts", "2", "--max-new-tokens", "4", "--limit", "2", "--device", "cpu"]) == 0
    out = [json.loads(line) for line in labeled.read_text().splitlines()]
    assert len(out) == 2
    assert all(len(r["labels"]) == len(r["completions"]) and r["labels"][-1] is True for r in out)  # gold answers
    cost = json.loads(sidecar(str(labeled)).read_text())
    assert cost["rollout_tokens"] == sum(r["rollout_tokens"] for r in out)
    assert cost["steps_rolled_out"] == sum(len(r["completions"]) - 1 for r in out)
    assert cost["rollout_tokens"] <= cost["steps_rolled_out"] * 2 * 4

    newline = tmp_path / "newline.jsonl"
    assert main(["data", "steps", "--split", "newline", "--data", str(tmp_path / "m" / "stepwise.jsonl"),
                 "--out", str(newline)]) == 0
    sw = [json.loads(line) for line in (tmp_path / "m" / "stepwise.jsonl").read_text().splitlines()]
    assert [r["completions"] for r in map(json.loads, newline.read_text().splitlines())] == [
        s["completions"] for s in sw]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(("command", "row", "field"), [
    ("steps", {"prompt": "q", "answer": "1"}, "response"),
    ("steps", {"prompt": "", "response": "r"}, "prompt"),
    ("steps", {"prompt": "q", "steps": ["a", 3]}, "steps"),
    ("steps", {"prompt": "q", "completions": ["", " "]}, "completions"),
    ("steps", {"prompt": "q", "completion": [{"role": "assistant", "content": ""}]}, "completion"),
    ("label-steps", {"prompt": "q", "completions": ["a"]}, "answer"),
    ("label-steps", {"prompt": "q", "response": "a", "answer": "1"}, "completions"),
    ("label-steps", {"prompt": "q", "completions": ["Answer: 1"], "answer": "1"}, "meta"),  # --task auto, no task
])
def test_cli_bad_rows_exit_2(tmp_path: Path, lm_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                             row: dict[str, object], field: str) -> None:
    good = {"prompt": "q", "response": "Answer: 1", "completions": ["Answer: 1"], "answer": "1",
            "meta": {"task": "math"}}
    data = _write(tmp_path / "in.jsonl", [good, row])
    args = ["data", command, "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--device", "cpu"]
    args += ["--policy", str(lm_path)] + (["--split", "newline"] if command == "steps" else ["--rollouts", "1"])
    assert main(args) == 2
    assert f"in.jsonl:2: field '{field}'" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_confidence_needs_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "in.jsonl", [{"prompt": "q", "response": "r"}])
    assert main(["data", "steps", "--data", str(data), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "--policy" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["steps", "label-steps"])
def test_cli_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["data", command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--policy" in text and ("--quantile" in text if command == "steps" else "--rollouts" in text)


def _step_row(answer: str, meta: dict[str, object] | None) -> StepRow:
    row = {"prompt": "q", "completions": ["a"], "answer": answer, **({"meta": meta} if meta else {})}
    return StepRow(Location("f.jsonl", 3), row, "q", ["a"], answer)


def test_answer_checkers_by_task() -> None:
    mused = checker_for(_step_row("no", {"task": "mused"}), "auto")
    assert mused("From 'p' and 'q', by modus ponens: r.\nAnswer: no") is True
    assert mused("From 'p' and 'q', by modus ponens: r.\nAnswer: yes") is False
    two_hop = checker_for(_step_row("Quonell", {"task": "two-hop", "premises": []}), "auto")
    assert two_hop("Velzor's mentor is Tamsin.\nAnswer: Quonell") is True
    assert two_hop("Answer: Tamsin") is False
    math = checker_for(_step_row("7", {"task": "math-champ"}), "auto")
    assert math("3 + 4 = 7.\nAnswer: $7$") is True and math("Answer: $8$") is False
    assert checker_for(_step_row("7", None), "math")("so the answer is \\boxed{7}") is True
    assert row_task(_step_row("no", {"task": "two-hop"}), "mused") == "mused"  # an explicit --task wins


def test_no_step_is_only_whitespace() -> None:
    """A low-confidence newline would make a whitespace-only step, which train prm refuses: it joins the next
    step (and a whitespace-only tail joins the step before)."""
    text = "ab\n\ncd\n"
    ids = list(range(len(text)))  # one character per token

    def decode(prefix: list[int]) -> str:
        return text[: len(prefix)]

    # boundaries after "b" (ok), after the first "\n" (would leave "\n" alone: skipped), after "d" (would
    # leave the tail "\n": dropped)
    cuts, skipped = char_cuts(decode, ids, text, [1, 2, 5])
    assert spans(text, cuts) == ["ab", "\n\ncd\n"]
    assert skipped == 2
    assert "".join(spans(text, cuts)) == text
