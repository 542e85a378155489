"""``rewardkit score`` takes every scorer kind through the one builder; a scorer that cannot do what the
command needs is refused with one line and exit 2; ``serve --model verifier`` without references too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rewardkit.cli import main
from rewardkit.models.causal_lm import naive_sequence_logps, response_mask_from_starts
from tiny_models import tiny_bert, tiny_llama

ROWS = [  # prompt, chosen, rejected, and what a verifier checks (all lowercase; answer 4)
    {"prompt": "say hi in lowercase.", "chosen": " hi there", "rejected": " HI THERE",
     "constraints": [{"kind": "lowercase", "params": {}}]},
    {"prompt": "What is 2 + 2?", "chosen": " It is 4.", "rejected": " It is 5, I think.", "answer": "4"},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score")
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    completions = root / "completions.jsonl"
    completions.write_text(json.dumps({"prompt": "hello", "completion": " world"}) + "\n", encoding="utf-8")
    lm = tiny_llama(root / "lm")
    bert = tiny_bert(root / "bert")
    multi = root / "multi"  # a plain HF model with two named outputs
    AutoModelForSequenceClassification.from_pretrained(
        bert, id2label={0: "helpful", 1: "short"}, ignore_mismatched_sizes=True).save_pretrained(multi)
    AutoTokenizer.from_pretrained(bert).save_pretrained(multi)
    return {"pairs": pairs, "completions": completions, "lm": lm, "bert": bert, "multi": multi, "root": root}


def _score(files: dict[str, Path], model: str, *extra: str, data: str = "pairs") -> list[dict]:
    out = files["root"] / f"out-{abs(hash((model, extra, data)))}.jsonl"
    assert main(["score", "--model", model, "--data", str(files[data]), "--out", str(out), "--device", "cpu",
                 *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_length(files: dict[str, Path]) -> None:
    rows = _score(files, "length")
    assert [(r["chosen_score"], r["rejected_score"]) for r in rows] == [(9.0, 9.0), (9.0, 18.0)]  # characters


def test_reward_model(files: dict[str, Path]) -> None:
    rows = _score(files, str(files["bert"]))
    assert all(np.isfinite([r["chosen_score"], r["rejected_score"]]).all() for r in rows)
    assert "chosen_objectives" not in rows[0]


def test_multi_output_reward_model_writes_objectives(files: dict[str, Path]) -> None:
    rows = _score(files, str(files["multi"]))
    obj = rows[0]["chosen_objectives"]
    assert set(obj) == {"helpful", "short"}
    assert rows[0]["chosen_score"] == pytest.approx((obj["helpful"] + obj["short"]) / 2, abs=1e-6)


def test_direction(files: dict[str, Path]) -> None:
    rows = _score(files, f"direction:{files['multi']}#short=1")
    assert rows[1]["chosen_score"] == pytest.approx(rows[1]["chosen_objectives"]["short"], abs=1e-6)


def test_verifier_reads_references_from_the_data(files: dict[str, Path]) -> None:
    rows = _score(files, "verifier")
    # lowercase met by " hi there" only; the answer 4 by " It is 4." only
    assert [(r["chosen_score"], r["rejected_score"]) for r in rows] == [(1.0, 0.0), (1.0, 0.0)]


def test_hybrid(files: dict[str, Path]) -> None:
    rows = _score(files, "hybrid:length")
    assert [(r["chosen_score"], r["rejected_score"]) for r in rows] == [(1.0, 0.0), (1.0, 0.0)]  # all checkable


def test_dpo_reference_free_average(files: dict[str, Path]) -> None:
    rows = _score(files, f"dpo:{files['lm']}", "--ref-free", "avg")
    # the reference: plain transformers' full log-softmax over the same tokens, averaged over the response
    from rewardkit.data.chat import PairEncoder
    from rewardkit.data.formats import reply

    tok = AutoTokenizer.from_pretrained(files["lm"])
    model = AutoModelForCausalLM.from_pretrained(files["lm"]).eval()
    enc = PairEncoder(tok, "chat", 2048).encode([{"role": "user", "content": ROWS[0]["prompt"]}],
                                                reply(ROWS[0]["chosen"]), True)
    ids = torch.tensor([enc.input_ids])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ref = naive_sequence_logps(model, ids, mask, response_mask_from_starts(mask, [enc.response_start]))
    assert rows[0]["chosen_score"] == pytest.approx(ref.means.item(), abs=1e-5)


def test_judge_scores_pairs_as_half_log_odds(files: dict[str, Path]) -> None:
    rows = _score(files, f"judge:{files['lm']}")
    assert all(r["chosen_score"] == pytest.approx(-r["rejected_score"]) for r in rows)


def test_judge_on_completions_is_refused_in_one_line(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["root"] / "judge-completions.jsonl"
    code = main(["score", "--model", f"judge:{files['lm']}", "--data", str(files["completions"]), "--out", str(out),
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "pairwise judge" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unknown_scorer_options_are_one_line(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["root"] / "dpo.jsonl"
    code = main(["score", "--model", f"dpo:{files['lm']}", "--data", str(files["pairs"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "reference" in err and "Traceback" not in err


def test_serve_verifier_without_references_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "verifier", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "references" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bug_is_a_traceback_and_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import rewardkit.scorers.files as files_module

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(files_module, "score_file", broken)
    assert main(["score", "--model", "length", "--data", "x", "--out", "y"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and "this is a bug" in err
