"""``train unlearn`` on a tiny Llama: first-step losses by hand (NPO's (2/β)·log 2, GA's −NLL of a plain
forward, the retain NLL and a zero retain KL), the forget answer's probability falling under GA, NPO and
FLAT, the loop's invariances (accumulation, resume, two processes), the merged LoRA save, the chunked
KL against a full softmax, and the CLI's errors."""

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
from invariance import logged_rows as _logged
from invariance import one_and_two_processes
from rewardkit.cli import main
from rewardkit.models.causal_lm import naive_sequence_kl, response_mask_from_starts, right_pad, sequence_kl
from rewardkit.train.unlearn import UnlearnTrainConfig, pick_templates, train_unlearn
from tiny_models import PAIRS, tiny_llama

SGD_LIKE = {"adam_epsilon": 1.0, "lr": 0.5}  # update ≈ lr·g: runs compare gradients (as test_policy_job)
FORGET = PAIRS[:4]
RETAIN = PAIRS[4:10]


def _rows(pairs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant",
             "content": a}], "perturbed_answers": [w]} for i, (q, a, w) in enumerate(pairs)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("unlearn")
    for name, pairs in (("forget", FORGET), ("retain", RETAIN)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(pairs)))
    return tiny_llama(root / "llama"), root / "forget.jsonl", root / "retain.jsonl"


def _train(setup: tuple[Path, Path, Path], out: Path, **kw: Any) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    model, forget, retain = setup
    settings = {"max_steps": 3, "lr": 1e-3, "warmup_ratio": 0.0, "scheduler": "constant", "batch_size": 4,
                "max_length": 64, "logging_steps": 1, "seed": 3, "retain": str(retain), **kw}
    train_unlearn(UnlearnTrainConfig(forget=str(forget), model=str(model), out=str(out), **settings))
    return load_file(out / "model.safetensors"), _logged(out)








def _chat_ids(tok: Any, prompt: str, response: str) -> tuple[list[int], int]:
    user = [{"role": "user", "content": prompt}]
    p = tok.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full = tok.apply_chat_template([*user, {"role": "assistant", "content": response}], tokenize=True,
                                   return_dict=True)["input_ids"]
    assert full[: len(p)] == p
    return list(full), len(p)


def _plain_token_logps(model_dir: Path, pairs: list[tuple[str, str]]) -> list[torch.Tensor]:
    """log p of each answer token (n,) per (question, answer), from a plain full-logits forward."""
    lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    out = []
    for q, a in pairs:
        ids, start = _chat_ids(tok, q, a)
        with torch.no_grad():
            logits = lm(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
        logp = F.log_softmax(logits[:-1], dim=-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]  # (T-1,)
        out.append(logp[start - 1:])
    return out


def _plain_logps(model_dir: Path, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
    """(Σ log p of the answer's tokens, their number) per (question, answer)."""
    return [(float(t.sum()), len(t)) for t in _plain_token_logps(model_dir, pairs)]


def _answer_prob(model_dir: Path, pairs: list[tuple[str, str, str]]) -> float:
    """Mean over rows of exp(mean token log-prob of the answer)."""
    return sum(math.exp(s / n) for s, n in _plain_logps(model_dir, [(q, a) for q, a, _ in pairs])) / len(pairs)


def test_sequence_kl_equals_a_full_softmax_kl(tmp_path: Path) -> None:
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "a", seed=0), dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "b", seed=1), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    seqs = [_chat_ids(tok, q, a) for q, a, _ in PAIRS[:3]]
    ids, mask = right_pad([s for s, _ in seqs], 0)
    response = response_mask_from_starts(mask, [st for _, st in seqs])
    chunked = sequence_kl(policy, ref, ids, mask, response, chunk_tokens=5)
    naive = naive_sequence_kl(policy, ref, ids, mask, response)
    assert torch.allclose(chunked.sums, naive.sums, atol=1e-5) and chunked.sums.min() > 0.01
    assert chunked.counts.tolist() == [len(s) - st for s, st in seqs]
    g_chunked = torch.autograd.grad(chunked.sums.sum(), policy.lm_head.weight)[0]
    g_naive = torch.autograd.grad(naive.sums.sum(), policy.lm_head.weight)[0]
    assert torch.allclose(g_chunked, g_naive, atol=1e-6)
    with torch.no_grad():
        assert float(sequence_kl(ref, ref, ids, mask, response).sums.abs().max()) < 1e-5  # KL(p‖p) = 0


def test_npo_first_step_is_2_over_beta_log2_and_the_forget_prob_falls(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    _, pre = _train(setup, tmp_path / "pre", max_steps=4, lr=1e-2)
    _, live = _train(setup, tmp_path / "live", max_steps=4, lr=1e-2, reference_mode="live")
    # reference = the starting model: log π − log π_ref = 0, so −(2/β)·logσ(0) = (2/0.1)·log 2 per example
    assert pre[0]["forget_loss"] == pytest.approx(20 * math.log(2), abs=1e-4)
    assert pre[0]["npo_weight"] == pytest.approx(1.0, abs=1e-6)
    # retain nll (npo's default): a mean over 4 of the 6 retain rows' per-token NLLs (exact values: next test)
    retain_nll = [-s / n for s, n in _plain_logps(model, [(q, a) for q, a, _ in RETAIN])]
    assert min(retain_nll) - 1e-4 <= pre[0]["retain_loss"] <= max(retain_nll) + 1e-4
    assert pre[0]["loss"] == pytest.approx(pre[0]["forget_loss"] + pre[0]["retain_loss"], abs=1e-5)
    assert [r["loss"] for r in pre] == pytest.approx([r["loss"] for r in live], abs=1e-5)
    final = _logged(tmp_path / "pre", "eval")[-1]
    assert final["forget_answer_prob"] < 0.7 * _answer_prob(model, FORGET)
    assert final["retain_answer_prob"] == pytest.approx(_answer_prob(tmp_path / "pre", RETAIN), rel=1e-4)
    meta = json.loads((tmp_path / "pre" / "rewardkit.json").read_text())
    assert meta["unlearn"]["reference"] == str(model) and meta["unlearn"]["retain_term"] == "nll"
    assert meta["unlearn"]["forget"]["examples"] == 4 and len(meta["unlearn"]["forget"]["sha256"]) == 64


def test_retain_nll_with_the_whole_retain_set_in_one_batch(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    _, rows = _train(setup, tmp_path / "gd", max_steps=1, batch_size=6, loss={"name": "grad_diff"})
    forget = _plain_logps(model, [(q, a) for q, a, _ in FORGET])
    retain = _plain_logps(model, [(q, a) for q, a, _ in RETAIN])
    # 6 forget slots hold the 4 forget rows (the loop repeats none: a global batch of the 4), 6 retain rows
    expected_forget = sum(s / n for s, n in forget) / len(forget)  # ga: mean token log-prob (= −CE)
    expected_retain = sum(-s / n for s, n in retain) / len(retain)
    assert rows[0]["forget_loss"] == pytest.approx(expected_forget, abs=1e-4)
    assert rows[0]["retain_loss"] == pytest.approx(expected_retain, abs=1e-4)
    assert rows[0]["loss"] == pytest.approx(expected_forget + expected_retain, abs=1e-4)


def test_ga_first_step_is_minus_the_plain_nll_and_the_forget_prob_falls(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    out = tmp_path / "ga"
    _, rows = _train(setup, out, max_steps=4, lr=1e-2, loss={"name": "ga"}, eval_steps=2)
    plain = _plain_logps(model, [(q, a) for q, a, _ in FORGET])
    assert rows[0]["loss"] == pytest.approx(sum(s / n for s, n in plain) / len(plain), abs=1e-4)
    assert "retain_loss" not in rows[0]  # ga: retain none
    before = _answer_prob(model, FORGET)
    evals = _logged(out, "eval")
    assert [e["step"] for e in evals] == [2, 4]
    assert evals[-1]["forget_answer_prob"] == pytest.approx(_answer_prob(out, FORGET), rel=1e-4)
    assert evals[-1]["forget_answer_prob"] < 0.5 * before, (before, [e["forget_answer_prob"] for e in evals])
    assert evals[-1]["forget_nll"] > evals[0]["forget_nll"]
    assert {"retain_answer_prob", "retain_nll"} <= set(evals[-1])


def test_flat_raises_the_template_and_lowers_the_forget_prob(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    out = tmp_path / "flat"
    templates = tmp_path / "idk.jsonl"
    templates.write_text('{"text": "I do not know."}\n"No idea, sorry."\n')
    _, rows = _train(setup, out, max_steps=4, lr=3e-3, loss={"name": "flat"}, templates=str(templates), retain=None)
    # step 1: P_e, P_f are each example's mean answer-token probability under the starting model
    # (TV: per example −½tanh(P_e) + ½tanh(P_f), P the mean probability of the answer's tokens; row i's
    # template is pick_templates' seeded choice)
    chosen = pick_templates(["I do not know.", "No idea, sorry."], 4, 3)
    p_e = [float(t.exp().mean()) for t in _plain_token_logps(model, [(q, c) for (q, _, _), c in
                                                                     zip(FORGET, chosen, strict=True)])]
    p_f = [float(t.exp().mean()) for t in _plain_token_logps(model, [(q, a) for q, a, _ in FORGET])]
    assert rows[0]["template_prob"] == pytest.approx(sum(p_e) / 4, rel=1e-4)
    assert rows[0]["forget_prob"] == pytest.approx(sum(p_f) / 4, rel=1e-4)
    tv = [-0.5 * math.tanh(e) + 0.5 * math.tanh(f) for e, f in zip(p_e, p_f, strict=True)]
    assert rows[0]["forget_loss"] == pytest.approx(sum(tv) / 4, rel=1e-3, abs=1e-12)
    assert rows[-1]["template_prob"] > rows[0]["template_prob"]
    assert rows[-1]["forget_prob"] < rows[0]["forget_prob"]
    assert _logged(out, "eval")[-1]["forget_answer_prob"] < _answer_prob(model, FORGET)


def test_idk_first_step_is_log2_and_retain_kl_starts_at_zero(setup: Any, tmp_path: Path) -> None:
    _, rows = _train(setup, tmp_path / "idk", max_steps=2, loss={"name": "idk", "retain": "kl"})
    assert rows[0]["forget_loss"] == pytest.approx(math.log(2), abs=1e-5)  # DPO at π = π_ref
    assert rows[0]["retain_loss"] == pytest.approx(0.0, abs=1e-6)  # KL(π_ref‖π_θ) = 0 before the first update
    assert rows[1]["retain_loss"] > 1e-6


def test_grad_accumulation_matches_one_large_batch(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    big, rows_big = _train(setup, tmp_path / "b4", batch_size=4, grad_accum=1, **SGD_LIKE)
    accum, rows_acc = _train(setup, tmp_path / "b1x4", batch_size=1, grad_accum=4, **SGD_LIKE)
    _assert_trained(big, model)
    _assert_same(big, accum)
    for key in ("loss", "forget_loss", "retain_loss"):
        assert [r[key] for r in rows_big] == pytest.approx([r[key] for r in rows_acc], abs=1e-5), key


def test_resume_continues_to_the_same_result(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    full, _ = _train(setup, tmp_path / "full", max_steps=4, save_steps=2)
    resumed_out = tmp_path / "resumed"
    (resumed_out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-0000002", resumed_out / "checkpoints" / "step-0000002")
    resumed, rows = _train(setup, resumed_out, max_steps=4, save_steps=2, resume="latest")
    _assert_trained(full, model)
    _assert_same(full, resumed, atol=1e-6)
    assert [r["step"] for r in rows] == [3, 4]


def test_two_processes_match_one(setup: Any, tmp_path: Path) -> None:
    model, forget, retain = setup
    args = ["train", "unlearn", "--loss", "npo", "--forget", str(forget), "--retain", str(retain), "--model",
            str(model), "--max-steps", "3", "--lr", "0.5", "--adam-epsilon", "1.0", "--warmup-ratio", "0",
            "--max-length", "64", "--seed", "3", "--logging-steps", "1", "--set", "loss.retain=kl"]
    one, two = one_and_two_processes(args, tmp_path, 29537)
    _assert_trained(one, model)
    _assert_same(one, two)
    for key in ("loss", "forget_loss", "retain_loss"):
        assert [r[key] for r in _logged(tmp_path / "one")] == pytest.approx(
            [r[key] for r in _logged(tmp_path / "two")], abs=1e-5), key
    e1, e2 = _logged(tmp_path / "one", "eval")[-1], _logged(tmp_path / "two", "eval")[-1]
    for key in ("forget_answer_prob", "retain_answer_prob", "forget_nll", "retain_nll"):
        assert e1[key] == pytest.approx(e2[key], rel=1e-4), key


def test_lora_save_is_merged_and_loads_in_plain_transformers(setup: Any, tmp_path: Path) -> None:
    model, _, _ = setup
    out = tmp_path / "lora"
    _train(setup, out, max_steps=3, lr=5e-2, loss={"name": "ga"}, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    assert not (out / "adapter_config.json").exists()
    weights = load_file(out / "model.safetensors")
    assert not any("lora" in k for k in weights)
    _assert_trained(weights, model)
    # the final evaluation ran on the unmerged LoRA model; the merged folder gives the same probabilities
    final = _logged(out, "eval")[-1]
    assert _answer_prob(out, FORGET) == pytest.approx(final["forget_answer_prob"], rel=1e-4)
    assert _answer_prob(out, RETAIN) == pytest.approx(final["retain_answer_prob"], rel=1e-4)


def test_cli_lists_losses_and_refuses_bad_input(setup: Any, tmp_path: Path, write_jsonl: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    model, forget, retain = setup
    with pytest.raises(SystemExit) as e:
        main(["train", "unlearn", "--help"])
    assert e.value.code == 0
    assert "unlearning loss: flat, ga, grad_diff, idk, npo, simnpo (default npo)" in \
        " ".join(capsys.readouterr().out.split())
    base = ["train", "unlearn", "--model", str(model), "--out", str(tmp_path / "o"), "--max-steps", "1",
            "--max-length", "64"]
    assert main([*base, "--forget", str(forget), "--loss", "npo"]) == 2
    err = capsys.readouterr().err
    assert "--retain" in err and "loss.retain=nll" in err
    assert main([*base, "--forget", str(forget), "--loss", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main([*base, "--forget", str(forget), "--loss", "dpo"]) == 2
    assert "not an unlearning loss" in capsys.readouterr().err
    assert main([*base, "--retain", str(retain)]) == 2
    assert "--forget is required" in capsys.readouterr().err
    bad = write_jsonl([*_rows(FORGET[:1]), {"id": "x", "prompt": [{"role": "user", "content": "q"}]}], "bad.jsonl")
    assert main([*base, "--forget", str(bad), "--loss", "ga"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "completion" in err
    out = tmp_path / "ok"
    assert main(["train", "unlearn", "--model", str(model), "--forget", str(forget), "--loss", "simnpo", "--set",
                 "loss.retain=none", "--out", str(out), "--max-steps", "1", "--max-length", "64"]) == 0
    printed = capsys.readouterr().out
    assert "1·simnpo" in printed and "forget answer prob" in printed and str(out) in printed
