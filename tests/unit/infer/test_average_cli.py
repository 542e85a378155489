"""``rewardkit average`` end to end on two tiny random Llamas (tests/tiny_models.py, seeds 0 and 1):
the saved folders, the HMA search, the sweep with the ``length`` scorer, and bad options (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from rewardkit.cli import main
from rewardkit.infer.averaging import evaluate_point, load_pair, model_layers
from rewardkit.infer.sampler import SamplingConfig
from rewardkit.models.averaging import AveragingPlan, average_models, encode_lm_rows, read_lm_rows
from rewardkit.scoring import build_scorer
from tiny_models import tiny_llama

ROWS = [{"prompt": "Name a fruit.", "response": "An apple."},
        {"prompt": [{"role": "user", "content": "Where is Paris?"}], "response": "Paris is in France."},
        {"prompt": "Count to three.", "response": "One, two, three."},
        {"text": "The quick brown fox jumps over the lazy dog."}]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return tiny_llama(root / "base", seed=0), tiny_llama(root / "tuned", seed=1)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _state(path: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_global_and_grouped_alpha_folders(models: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base, tuned = models
    b, t = _state(base), _state(tuned)
    assert main(["average", "--base", str(base), "--tuned", str(tuned), "--alpha", "0.25", "--out",
                 str(tmp_path / "g"), "--device", "cpu"]) == 0
    got = _state(tmp_path / "g")
    for k in ("model.layers.0.mlp.down_proj.weight", "lm_head.weight"):
        torch.testing.assert_close(got[k], 0.25 * b[k] + 0.75 * t[k], rtol=0, atol=1e-7)
    assert AutoTokenizer.from_pretrained(tmp_path / "g").get_vocab() == AutoTokenizer.from_pretrained(tuned).get_vocab()
    assert main(["average", "--base", str(base), "--tuned", str(tuned), "--groups", "2", "--alphas", "1,0",
                 "--out", str(tmp_path / "k"), "--device", "cpu"]) == 0
    got = _state(tmp_path / "k")
    assert torch.equal(got["model.layers.0.self_attn.v_proj.weight"], b["model.layers.0.self_attn.v_proj.weight"])
    assert torch.equal(got["model.layers.1.self_attn.v_proj.weight"], t["model.layers.1.self_attn.v_proj.weight"])
    torch.testing.assert_close(got["model.norm.weight"], 0.5 * b["model.norm.weight"] + 0.5 * t["model.norm.weight"],
                               rtol=0, atol=1e-7)  # rest: the mean of the group alphas
    record = json.loads((tmp_path / "k" / "rewardkit.json").read_text())
    assert record["groups"] == [{"group": 0, "layers": [0, 0], "alpha": 1.0}, {"group": 1, "layers": [1, 1], "alpha": 0.0}]
    assert record["rest_alpha"] == 0.5
    # the in-memory average equals the saved folder, loaded by plain transformers
    bl, tl = load_pair(str(base), str(tuned))
    mem = average_models(bl.model, tl.model, AveragingPlan.grouped([1.0, 0.0], model_layers(tl.model)))
    assert all(torch.equal(got[k], v) for k, v in mem.state_dict().items())
    capsys.readouterr()


def test_search_writes_history_and_lowers_nll(models: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    base, tuned = models
    data = _jsonl(tmp_path / "collected.jsonl", ROWS)
    assert main(["average", "--base", str(base), "--tuned", str(tuned), "--search", "--data", str(data),
                 "--groups", "2", "--steps", "4", "--lr", "0.5", "--batch-size", "4", "--out", str(tmp_path / "h"),
                 "--device", "cpu"]) == 0
    record = json.loads((tmp_path / "h" / "rewardkit.json").read_text())
    alphas = [g["alpha"] for g in record["groups"]]
    assert sum(alphas) / 2 == pytest.approx(0.2, abs=1e-6) and abs(alphas[0] - 0.2) > 1e-3
    assert len(record["search"]["history"]) == 4
    assert record["search"]["nll_per_token_after"] < record["search"]["nll_per_token_before"]
    assert record["settings"]["lr"] == 0.5 and record["rest_alpha"] == 0.2
    b, t, got = _state(base), _state(tuned), _state(tmp_path / "h")
    k = "model.layers.1.mlp.up_proj.weight"
    torch.testing.assert_close(got[k], alphas[1] * b[k] + (1 - alphas[1]) * t[k], rtol=0, atol=1e-6)
    capsys.readouterr()


def test_sweep_writes_table_and_plot(models: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    base, tuned = models
    prompts = _jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Say hi."}, {"prompt": "Name a colour."}])
    tax = _jsonl(tmp_path / "tax.jsonl", ROWS)
    out = tmp_path / "sweep"
    assert main(["average", "--base", str(base), "--tuned", str(tuned), "--sweep", "0,1", "--reward", "length",
                 "--prompts", str(prompts), "--tax-data", str(tax), "--n", "2", "--max-new-tokens", "6",
                 "--out", str(out), "--device", "cpu"]) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert [r["alpha"] for r in table["rows"]] == [0.0, 1.0]
    assert all(r["samples"] == 4 and r["reward_low"] <= r["reward"] <= r["reward_high"] for r in table["rows"])
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # α = 0 is the tuned model and α = 1 the base: their tax NLL is each model's own
    bl, tl = load_pair(str(base), str(tuned))
    tax_texts = encode_lm_rows(tl.tokenizer, read_lm_rows(str(tax)))
    sampling = SamplingConfig(max_new_tokens=6, seed=0)
    for row, model in zip(table["rows"], (tl.model, bl.model), strict=True):
        point = evaluate_point(model, tl.tokenizer, alpha=row["alpha"], prompts=["Say hi.", "Name a colour."],
                               scorer=build_scorer("length"), tax=tax_texts, n=2, sampling=sampling)
        assert point.tax_nll == pytest.approx(row["tax_nll"], rel=1e-6)
        assert point.reward == pytest.approx(row["reward"])
    capsys.readouterr()


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_options_exit_2(models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, tuned = models
    common = ["average", "--base", str(base), "--tuned", str(tuned), "--out", str(tmp_path / "x"), "--device", "cpu"]
    assert "--alphas has 3 value(s) but --groups is 2" in _bad([*common, "--groups", "2", "--alphas", "0.1,0.2,0.3"], capsys)
    assert "must be in [0, 1]" in _bad([*common, "--alpha", "1.5"], capsys)
    assert "numbers separated by commas" in _bad([*common, "--alphas", "0.1,x"], capsys)
    assert "between 1 and the model's 2 layers" in _bad([*common, "--alphas", "0.1,0.2,0.3"], capsys)
    assert "--search needs --data" in _bad([*common, "--search"], capsys)
    assert "--sweep needs --reward, --prompts, --tax-data" in _bad([*common, "--sweep", "0,1"], capsys)
    assert "--reward only apply with --sweep" in _bad([*common, "--alpha", "0.5", "--reward", "length"], capsys)
    assert "--groups only apply with --alphas or --search" in _bad([*common, "--alpha", "0.5", "--groups", "2"], capsys)
    assert "--rest-alpha only apply with --alphas" in _bad([*common, "--search", "--rest-alpha", "0.1"], capsys)
    data = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "hi"}])
    assert "bad.jsonl:1: field 'response'" in _bad([*common, "--search", "--data", str(data)], capsys)
    torch.manual_seed(0)
    three = tmp_path / "three"
    LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                 num_key_value_heads=2, intermediate_size=64)).save_pretrained(three)
    AutoTokenizer.from_pretrained(tuned).save_pretrained(three)
    err = _bad(["average", "--base", str(three), "--tuned", str(tuned), "--alpha", "0.5", "--out", str(tmp_path / "y"),
                "--device", "cpu"], capsys)
    assert "different architectures" in err and f"--base {three}" in err
    with pytest.raises(SystemExit) as e:  # no mode: argparse's usage error
        main(common)
    assert e.value.code == 2
