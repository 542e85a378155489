"""``train policy`` / ``train sft`` on a tiny Llama: known first-step losses, reference modes, the loop's
invariances (accumulation, resume, two processes), the merged LoRA save, and the CLI's errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from invariance import assert_same as _assert_same
from invariance import assert_trained as _assert_trained
from invariance import logged_rows as _rows
from invariance import one_and_two_processes
from rewardkit.cli import main
from rewardkit.losses import LOSSES, ResponseLogps
from rewardkit.models.causal_lm import response_mask_from_starts, right_pad, sequence_logps
from rewardkit.train.config import PolicyTrainConfig
from rewardkit.train.policy import train_policy
from tiny_models import PAIRS, tiny_llama, write_pairs

# As in test_invariants.py: a large Adam epsilon makes the update ≈ lr·g, so runs compare gradients.
SGD_LIKE = {"adam_epsilon": 1.0, "lr": 0.5}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("policy")
    return tiny_llama(root / "llama"), write_pairs(root / "pairs.jsonl")


def _train(model: Path, data: Path, out: Path, **kw: Any) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Train; return the saved weights and the logged rows."""
    settings = {"max_steps": 4, "lr": 1e-3, "warmup_ratio": 0.0, "scheduler": "constant", "batch_size": 4,
                "max_length": 64, "logging_steps": 1, "seed": 3, **kw}
    train_policy(PolicyTrainConfig(data=str(data), model=str(model), out=str(out), **settings))
    return load_file(out / "model.safetensors"), _rows(out)








def test_dpo_first_step_is_log2_and_the_loss_falls(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    _, rows = _train(model, data, tmp_path / "dpo", max_steps=6, lr=3e-3)
    # reference = the starting policy, so h = 0 at step 1 and -logσ(0) = log 2 for every pair
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert rows[0]["margin"] == pytest.approx(0.0, abs=1e-5)
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.05, [r["loss"] for r in rows]
    meta = json.loads((tmp_path / "dpo" / "rewardkit.json").read_text())
    assert meta["policy"]["reference"] == str(model) and meta["policy"]["reference_mode"] == "precompute"
    assert meta["policy"]["beta"] == 0.1 and meta["job"] == "policy"


def test_precomputed_and_live_reference_give_the_same_losses(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    w_pre, pre = _train(model, data, tmp_path / "pre", reference_mode="precompute", eval_data=str(data))
    w_live, live = _train(model, data, tmp_path / "live", reference_mode="live", eval_data=str(data))
    assert [r["loss"] for r in pre] == pytest.approx([r["loss"] for r in live], abs=1e-5)
    _assert_same(w_pre, w_live, atol=1e-5)
    e_pre, e_live = _rows(tmp_path / "pre", "eval")[-1], _rows(tmp_path / "live", "eval")[-1]
    for key in ("accuracy", "margin", "logps_chosen", "logps_rejected"):
        assert e_pre[key] == pytest.approx(e_live[key], abs=1e-4), key
    assert e_pre["pairs"] == len(PAIRS)


def test_grad_accumulation_matches_one_large_batch(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    big, rows_big = _train(model, data, tmp_path / "b4", batch_size=4, grad_accum=1, **SGD_LIKE)
    accum, rows_acc = _train(model, data, tmp_path / "b1x4", batch_size=1, grad_accum=4, **SGD_LIKE)
    _assert_trained(big, model)
    _assert_same(big, accum)
    assert [r["loss"] for r in rows_big] == pytest.approx([r["loss"] for r in rows_acc], abs=1e-5)


def test_resume_continues_to_the_same_result(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    full, _ = _train(model, data, tmp_path / "full", save_steps=2)
    resumed_out = tmp_path / "resumed"
    (resumed_out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-0000002", resumed_out / "checkpoints" / "step-0000002")
    resumed, rows = _train(model, data, resumed_out, save_steps=2, resume="latest")
    _assert_trained(full, model)
    _assert_same(full, resumed, atol=1e-6)
    assert [r["step"] for r in rows] == [3, 4]


def test_two_processes_match_one(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    args = ["train", "policy", "--loss", "dpo", "--data", str(data), "--model", str(model), "--max-steps", "3",
            "--lr", "0.5", "--adam-epsilon", "1.0", "--warmup-ratio", "0", "--max-length", "64", "--seed", "3",
            "--logging-steps", "1", "--eval-data", str(data)]
    one, two = one_and_two_processes(args, tmp_path, 29531)
    _assert_trained(one, model)
    _assert_same(one, two)
    assert [r["loss"] for r in _rows(tmp_path / "one")] == pytest.approx([r["loss"] for r in _rows(tmp_path / "two")],
                                                                          abs=1e-5)
    eval_one, eval_two = _rows(tmp_path / "one", "eval")[-1], _rows(tmp_path / "two", "eval")[-1]
    assert eval_one["logps_chosen"] == pytest.approx(eval_two["logps_chosen"], abs=1e-4)
    meta = json.loads((tmp_path / "two" / "rewardkit.json").read_text())
    assert meta["training"]["processes"] == 2 and meta["training"]["global_batch"] == 4


def _chat_ids(tok: Any, prompt: str, response: str) -> tuple[list[int], int]:
    """Token ids of prompt + response under the chat template, and where the response starts."""
    user = [{"role": "user", "content": prompt}]
    p = tok.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full = tok.apply_chat_template([*user, {"role": "assistant", "content": response}], tokenize=True,
                                   return_dict=True)["input_ids"]
    assert full[: len(p)] == p
    return list(full), len(p)


def _plain_logps(model: Any, ids: list[int], start: int) -> tuple[float, int]:
    """Σ log p(response tokens) from a plain full-logits forward, and their number."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
    logp = F.log_softmax(logits[:-1], dim=-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]  # (T-1,)
    return float(logp[start - 1:].sum()), len(ids) - start


def test_lora_save_is_merged_and_gives_the_trained_logps(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = setup
    out = tmp_path / "lora"
    cfg = PolicyTrainConfig(data=str(data), model=str(model), out=str(out), max_steps=3, lr=5e-2, warmup_ratio=0.0,
                            batch_size=4, max_length=64, logging_steps=1, eval_data=str(data),
                            lora={"r": 4, "alpha": 8, "dropout": 0.0})
    train_policy(cfg)
    assert not (out / "adapter_config.json").exists() and not (out / "adapter_model.safetensors").exists()
    assert not any("lora" in k for k in load_file(out / "model.safetensors"))
    _assert_trained(load_file(out / "model.safetensors"), model)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(out)
    # the final evaluation ran on the trained (unmerged LoRA) model: mean chosen log-prob over the pairs
    trained_mean = _rows(out, "eval")[-1]["logps_chosen"]
    seqs = [_chat_ids(tok, p, c) for p, c, _ in PAIRS]
    ids, mask = right_pad([s for s, _ in seqs], tok.pad_token_id)
    reloaded = sequence_logps(merged, ids, mask, response_mask_from_starts(mask, [st for _, st in seqs])).sums
    assert float(reloaded.detach().mean()) == pytest.approx(trained_mean, abs=1e-4)
    assert float(reloaded[0].detach()) == pytest.approx(_plain_logps(merged, *seqs[0])[0], abs=1e-4)


def test_sft_first_step_is_the_mean_nll_of_a_plain_forward(setup: tuple[Path, Path], tmp_path: Path,
                                                           write_jsonl: Any) -> None:
    model, _ = setup
    rows = [{"prompt": [{"role": "user", "content": p}], "completion": [{"role": "assistant", "content": c}]}
            for p, c, _ in PAIRS[:4]]
    data = write_jsonl(rows, "sft.jsonl")
    out = tmp_path / "sft"
    assert main(["train", "sft", "--data", str(data), "--model", str(model), "--out", str(out), "--max-steps", "2",
                 "--batch-size", "4", "--max-length", "64", "--logging-steps", "1", "--lr", "1e-2",
                 "--eval-data", str(data)]) == 0
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model)
    plain = [_plain_logps(lm, *_chat_ids(tok, p, c)) for p, c, _ in PAIRS[:4]]
    sums, counts = torch.tensor([s for s, _ in plain]), torch.tensor([float(n) for _, n in plain])
    expected = float(LOSSES.get("sft")(ResponseLogps(sums, counts)).loss)  # mean over rows of −Σlogp/|y|
    assert expected == pytest.approx(float(torch.mean(-sums / counts)), abs=1e-6)
    logged = _rows(out)
    assert logged[0]["loss"] == pytest.approx(expected, abs=1e-5)
    assert logged[1]["loss"] < logged[0]["loss"]
    final = _rows(out, "eval")[-1]
    assert final["perplexity"] == pytest.approx(math.exp(final["nll"]), rel=1e-6)
    assert json.loads((out / "rewardkit.json").read_text())["job"] == "sft"


def test_cli_lists_losses_and_refuses_bad_input(setup: tuple[Path, Path], tmp_path: Path, write_jsonl: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    model, data = setup
    with pytest.raises(SystemExit) as e:
        main(["train", "policy", "--help"])
    assert e.value.code == 0
    assert "policy loss: apo_zero, dpo, hinge, ipo, robust, sft, simpo (default dpo)" in \
        " ".join(capsys.readouterr().out.split())
    bad = write_jsonl([{"prompt": "a", "chosen": "b", "rejected": "c"},
                           {"prompt": "x", "chosen": "y"}], "bad.jsonl")
    base = ["train", "policy", "--model", str(model), "--out", str(tmp_path / "o"), "--max-steps", "1"]
    assert main([*base, "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "rejected" in err
    assert main([*base, "--data", str(data), "--loss", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--loss", "bt"]) == 2
    assert "not a policy loss" in capsys.readouterr().err
    assert main(["train", "sft", "--model", str(tmp_path / "nowhere"), "--data", str(data), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "no such model folder" in capsys.readouterr().err
