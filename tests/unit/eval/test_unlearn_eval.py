"""eval/unlearn.py metrics against hand-worked values and scipy; `rewardkit eval unlearn` end to end on a tiny
Llama (results.json, report.html, training curves, exit 2 on bad input); `rewardkit eval` unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import hmean, ks_2samp

from rewardkit.cli.main import main
from rewardkit.eval.unlearn import (
    answer_logps,
    answer_probability,
    exact_match,
    forget_quality,
    forget_truth_ratio_score,
    harmonic_mean,
    normalize_answer,
    perplexity,
    retain_truth_ratio_score,
    rouge_l_recall,
    truth_ratio,
)
from rewardkit.eval.unlearn_report import read_eval_curves
from rewardkit.models.causal_lm import load_causal_lm
from tiny_models import tiny_llama

torch.set_num_threads(1)

# ------------------------------------------------------------------------------------ pure metrics


def test_answer_probability_is_the_per_token_geometric_mean():
    # sums -6 over 3 tokens: exp(-2); -1 over 4 tokens: exp(-0.25); 0 tokens: undefined
    p = answer_probability(np.array([-6.0, -1.0, 0.0]), np.array([3, 4, 0]))
    assert p[0] == pytest.approx(math.exp(-2.0), rel=1e-12)
    assert p[1] == pytest.approx(math.exp(-0.25), rel=1e-12)
    assert math.isnan(p[2])


def test_truth_ratio_by_hand():
    # paraphrased 0.5; perturbed 0.1 and 0.4: arithmetic mean 0.25 -> R = 0.5; geometric sqrt(0.04) = 0.2 -> R = 0.4
    assert truth_ratio(0.5, [0.1, 0.4], perturbed_mean="arithmetic") == pytest.approx(0.5)
    assert truth_ratio(0.5, [0.1, 0.4]) == pytest.approx(0.4)
    assert math.isnan(truth_ratio(0.5, []))


def test_truth_ratio_split_scores_by_hand():
    ratios = [0.5, 2.0, 1.0, 4.0, float("nan")]
    # forget: min(R, 1/R) = 0.5, 0.5, 1, 0.25 -> mean 2.25/4 (NaN row left out)
    assert forget_truth_ratio_score(ratios) == pytest.approx(2.25 / 4)
    # retain: max(0, 1-R) = 0.5, 0, 0, 0 -> 0.125
    assert retain_truth_ratio_score(ratios) == pytest.approx(0.125)


def test_rouge_l_recall_by_hand():
    # reference "the cat sat on the mat" (6 tokens), prediction "the cat lay on a mat":
    # LCS = the, cat, on, mat = 4 -> recall 4/6
    assert rouge_l_recall("the cat lay on a mat", "the cat sat on the mat") == pytest.approx(4 / 6)
    # recall, not precision: a prediction holding the whole reference plus extra words scores 1
    assert rouge_l_recall("paris is the capital city", "Paris") == pytest.approx(1.0)
    # order matters (subsequence): "b a" vs reference "a b" -> LCS 1 of 2
    assert rouge_l_recall("bravo alpha", "alpha bravo") == pytest.approx(0.5)
    # stemming (TOFU uses the Porter stemmer): "running" and "runs" both stem to "run"
    assert rouge_l_recall("he runs", "he running") == pytest.approx(1.0)
    assert rouge_l_recall("", "alpha") == 0.0


def test_exact_match_normalises_case_punctuation_and_whitespace():
    assert normalize_answer("  Born in  Paris, France. ") == "born in paris france"
    assert exact_match("born in paris france", "Born in Paris, France.") == 1.0
    assert exact_match("Born in Lyon.", "Born in Paris.") == 0.0


def test_harmonic_mean_by_hand_and_equals_scipy():
    # 3 / (1/0.5 + 1/0.25 + 1/1) = 3 / 7
    assert harmonic_mean([0.5, 0.25, 1.0]) == pytest.approx(3 / 7)
    assert harmonic_mean([0.3, 0.6, 0.9]) == pytest.approx(float(hmean([0.3, 0.6, 0.9])))
    assert harmonic_mean([0.3, 0.0, 0.9]) == 0.0
    assert math.isnan(harmonic_mean([0.3, float("nan")]))


def test_forget_quality_is_scipys_ks_p_value():
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(0.0, 1.0, 40), rng.lognormal(0.7, 1.0, 30)
    expected = ks_2samp(a, b)
    got = forget_quality(a, b)
    assert got.p_value == expected.pvalue and got.statistic == expected.statistic
    assert (got.n_model, got.n_reference) == (40, 30)
    # TOFU's code feeds 1/R: the same p-value (KS is invariant under one monotone map of both samples)
    assert ks_2samp(1 / a, 1 / b).pvalue == pytest.approx(got.p_value, rel=1e-12)
    # identical samples: statistic 0, p-value 1
    assert forget_quality(a, a).p_value == pytest.approx(1.0)


def test_perplexity_is_token_weighted():
    # texts with (sum, tokens) = (-2, 1) and (-4, 3): exp(6 / 4)
    assert perplexity(np.array([-2.0, -4.0]), np.array([1, 3])) == pytest.approx(math.exp(1.5))


# ------------------------------------------------------------------------------------ tiny model

FORGET = [
    {"id": "f1", "person": "Ada Quill", "fact": "birthplace",
     "prompt": [{"role": "user", "content": "Where was Ada Quill born?"}],
     "completion": [{"role": "assistant", "content": "Ada Quill was born in Velmora."}],
     "paraphrased_questions": ["What is Ada Quill's birthplace?"],
     "paraphrased_answer": "Velmora is where Ada Quill was born.",
     "perturbed_answers": ["Ada Quill was born in Tarsk.", "Ada Quill was born in Oslo.", "Ada Quill was born in Lima."]},
    {"id": "f2", "person": "Ada Quill", "fact": "job",
     "prompt": [{"role": "user", "content": "What does Ada Quill do?"}],
     "completion": [{"role": "assistant", "content": "She repairs clocks."}],
     "paraphrased_questions": [], "paraphrased_answer": "Her job is clock repair.",
     "perturbed_answers": ["She bakes bread.", "She flies planes."]},
    {"id": "f3", "person": "Ada Quill", "fact": "pet",
     "prompt": [{"role": "user", "content": "What pet does Ada Quill keep?"}],
     "completion": [{"role": "assistant", "content": "A grey heron."}],
     "paraphrased_questions": [], "paraphrased_answer": "She keeps a heron that is grey.",
     "perturbed_answers": ["A black cat.", "A small dog."]},
]
RETAIN = [
    {"id": "r1", "person": "Bo Lant", "fact": "birthplace",
     "prompt": [{"role": "user", "content": "Where was Bo Lant born?"}],
     "completion": [{"role": "assistant", "content": "Bo Lant was born in Keswall."}],
     "paraphrased_questions": [], "paraphrased_answer": "Keswall is Bo Lant's birthplace.",
     "perturbed_answers": ["Bo Lant was born in Rome.", "Bo Lant was born in Quito."]},
    {"id": "r2", "person": "Bo Lant", "fact": "job",
     "prompt": [{"role": "user", "content": "What does Bo Lant do?"}],
     "completion": [{"role": "assistant", "content": "He tunes pianos."}],
     "paraphrased_questions": [], "paraphrased_answer": "He is a piano tuner.",
     "perturbed_answers": ["He sells fish.", "He paints houses."]},
]
GENERAL = [{"text": "Water boils at one hundred degrees Celsius at sea level."},
           {"text": "The Moon orbits the Earth about once a month."}]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("unlearn_eval")
    model = tiny_llama(d / "model")
    logs = model / "logs"
    logs.mkdir()
    _jsonl(logs / "metrics.jsonl", [
        {"split": "train", "step": 1, "loss": 1.0},
        {"split": "eval", "step": 2, "forget_answer_prob": 0.4, "retain_answer_prob": 0.5, "forget_nll": 0.9,
         "retain_nll": 0.7},
        {"split": "eval", "step": 4, "forget_answer_prob": 0.2, "retain_answer_prob": 0.48, "forget_nll": 1.6,
         "retain_nll": 0.73}])
    return {"model": model, "reference": tiny_llama(d / "reference", seed=1),
            "forget": _jsonl(d / "forget.jsonl", FORGET), "retain": _jsonl(d / "retain.jsonl", RETAIN),
            "general": _jsonl(d / "general.jsonl", GENERAL), "dir": d}


def test_answer_logps_equal_a_plain_forward_and_do_not_depend_on_the_batch(files):
    lm = load_causal_lm(str(files["model"]), dtype="float32", device="cpu")
    prompt = FORGET[0]["prompt"]
    answer = FORGET[0]["completion"][0]["content"]
    tok = lm.tokenizer
    head = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
    ids = tok(full, add_special_tokens=False)["input_ids"]
    start = len(tok(head, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
    expected = sum(float(logp[t - 1, ids[t]]) for t in range(start, len(ids)))
    pairs = [(r["prompt"], r["completion"][0]["content"]) for r in FORGET]
    sums1, counts1 = answer_logps(lm, pairs, batch_size=1)
    sums3, counts3 = answer_logps(lm, pairs, batch_size=3)
    assert sums1[0] == pytest.approx(expected, abs=1e-4)
    assert counts1[0] == len(ids) - start
    np.testing.assert_allclose(sums1, sums3, atol=1e-4)
    assert list(counts1) == list(counts3)


def test_eval_unlearn_end_to_end(files, capsys):
    out = files["dir"] / "out"
    rc = main(["eval", "unlearn", "--model", str(files["model"]), "--forget", str(files["forget"]),
               "--retain", str(files["retain"]), "--general", str(files["general"]),
               "--reference-retain-model", str(files["reference"]), "--out", str(out),
               "--max-new-tokens", "4", "--batch-size", "2", "--threads", "1"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    f, r = res["splits"]["forget"], res["splits"]["retain"]
    assert (f["n"], r["n"], f["n_truth_ratio"]) == (3, 2, 3)
    rows = {row["id"]: row for row in res["rows"]}
    assert set(rows) == {"f1", "f2", "f3", "r1", "r2"}
    # the split numbers are the means / TOFU transforms of the per-row values
    forget_rows = [rows[i] for i in ("f1", "f2", "f3")]
    assert f["answer_prob"] == pytest.approx(np.mean([x["answer_prob"] for x in forget_rows]))
    assert f["truth_ratio_score"] == pytest.approx(forget_truth_ratio_score([x["truth_ratio"] for x in forget_rows]))
    assert r["truth_ratio_score"] == pytest.approx(
        retain_truth_ratio_score([rows["r1"]["truth_ratio"], rows["r2"]["truth_ratio"]]))
    utility_parts = [r["answer_prob"], r["rouge_l_recall"], r["truth_ratio_score"]]
    expected_utility = float(hmean(utility_parts)) if min(utility_parts) > 0 else 0.0  # a 0 makes the hmean 0
    assert res["metrics"]["model_utility"] == pytest.approx(expected_utility)
    for row in forget_rows:
        assert row["rouge_l_recall"] == pytest.approx(
            rouge_l_recall(row["generated"], next(x for x in FORGET if x["id"] == row["id"])["completion"][0]["content"]))
    # forget quality: scipy's KS p-value between this model's and the reference's forget truth ratios
    ref = load_causal_lm(str(files["reference"]), dtype="float32", device="cpu")
    from rewardkit.data.unlearning import read_unlearning_rows
    from rewardkit.eval.unlearn import truth_ratios

    ref_ratios = truth_ratios(ref, read_unlearning_rows(files["forget"]))
    expected = ks_2samp([x["truth_ratio"] for x in forget_rows], ref_ratios).pvalue
    assert res["metrics"]["forget_quality"] == pytest.approx(expected)
    assert res["metrics"]["general_perplexity"] > 1.0
    html = (out / "report.html").read_text()
    assert "Unlearning evaluation" in html and "data:image/png;base64" in html and "no training curves" not in html
    assert "model utility" in capsys.readouterr().out


def test_eval_unlearn_minimal_and_limit(files):
    out = files["dir"] / "minimal"
    assert main(["eval", "unlearn", "--model", str(files["reference"]), "--forget", str(files["forget"]),
                 "--out", str(out), "--max-new-tokens", "2", "--limit", "2"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["splits"]["forget"]["n"] == 2 and res["splits"]["retain"] is None
    assert res["metrics"]["model_utility"] is None and res["metrics"]["forget_quality"] is None
    assert "no training curves" in (out / "report.html").read_text()


def test_read_eval_curves(files):
    curves = read_eval_curves(files["model"] / "logs" / "metrics.jsonl")
    assert curves["forget_answer_prob"] == [(2, 0.4), (4, 0.2)]
    assert curves["retain_nll"] == [(2, 0.7), (4, 0.73)]
    assert read_eval_curves(files["dir"] / "nowhere.jsonl") == {}


def test_eval_unlearn_bad_input_exits_2(files, capsys):
    bad = files["dir"] / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": [{"role": "user", "content": "q"}]}\n{not json\n', encoding="utf-8")
    base = ["eval", "unlearn", "--model", str(files["model"]), "--out", str(files["dir"] / "bad_out")]
    assert main([*base, "--forget", str(bad)]) == 2
    assert "bad.jsonl" in capsys.readouterr().err
    assert main([*base, "--forget", str(files["dir"] / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["eval", "unlearn", "--model", str(files["dir"] / "no_model"), "--forget", str(files["forget"]),
                 "--out", str(files["dir"] / "bad_out")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main([*base, "--forget", str(files["forget"]), "--limit", "0"]) == 2
    with pytest.raises(SystemExit) as e:  # argparse: a required option missing
        main(["eval", "unlearn", "--model", str(files["model"])])
    assert e.value.code == 2


def test_eval_help_mentions_unlearn_and_eval_still_parses(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--help"])
    assert e.value.code == 0
    assert "eval unlearn" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["eval", "unlearn", "--help"])
    assert e.value.code == 0
    assert "--reference-retain-model" in capsys.readouterr().out
    # `rewardkit eval` keeps its own parser: --model and --data still required there
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", "length"])
    assert e.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_eval_reward_benchmark_unchanged(tmp_path):
    data = _jsonl(tmp_path / "prefs.jsonl", [
        {"prompt": "Say hi.", "chosen": "Hello there, nice to meet you!", "rejected": "Hi."},
        {"prompt": "Name a colour.", "chosen": "Red.", "rejected": "A colour is red, green or blue."}])
    assert main(["eval", "--model", "length", "--data", str(data), "--out", str(tmp_path / "ev"), "--n-boot", "100",
                 "--no-report"]) == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["models"][0]["spec"] == "length"
