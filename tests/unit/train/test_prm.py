"""``rewardkit train prm``: step encoding (label positions by hand, truncation), the step loss (known values),
save/reload with plain transformers, the CLI end to end (train -> score -> eval first-error), bad rows."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification, AutoTokenizer

from invariance import assert_same, logged_rows
from rewardkit.cli import main
from rewardkit.data.collate import MicroBatch
from rewardkit.models.prm import IGNORE_INDEX, build_prm, fit_steps, step_logits, step_targets
from rewardkit.scoring import build_scorer
from rewardkit.train.prm import PrmTrainConfig, load_step_file, make_step_loss, prm_loss, train_prm
from tiny_models import tiny_bert, tiny_llama

ROWS = [
    {"prompt": "Is 2+2 4?", "completions": ["2+2 = 4.", "Answer: yes"], "labels": [True, True]},
    {"prompt": "Is 3+3 7?", "completions": ["3+3 = 7.", "Answer: yes"], "labels": [False, False]},
    {"prompt": [{"role": "user", "content": "Is 1+1 2?"}], "completions": ["1+1 = 2.", "So 2.", "Answer: yes"],
     "labels": [True, True, True]},
    {"prompt": "Is 5-1 3?", "completions": ["5-1 = 4.", "4 is not 3.", "Answer: yes"], "labels": [True, True, False]},
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prm")
    tiny_bert(root / "bert")
    tiny_llama(root / "llama")
    (root / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS * 2), encoding="utf-8")
    return root


def test_label_positions_by_hand_bert(root: Path) -> None:
    """BERT drops '\\n', so [SEP] ends the prompt and every step; labels sit on each step's [SEP]."""
    prm = build_prm(str(root / "bert"), max_length=64)
    enc = prm.encoder.encode([{"role": "user", "content": "Is 2+2 4?"}], ["2+2 = 4.", "Answer: yes"], False)
    tokens = prm.tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert tokens == ["[CLS]", "is", "2", "+", "2", "4", "?", "[SEP]", "2", "+", "2", "=", "4", ".", "[SEP]",
                      "answer", ":", "yes", "[SEP]"]
    assert enc.label_positions == [14, 18]
    targets = step_targets(len(enc.input_ids), enc.label_positions, [True, False])
    assert [(i, t) for i, t in enumerate(targets) if t != IGNORE_INDEX] == [(14, 1), (18, 0)]


def test_label_positions_by_hand_llama(root: Path) -> None:
    """SmolLM2's BPE: '\\n' is token 198 ('Ċ'); plain prompt after the BOS; chat prompt through the template."""
    prm = build_prm(str(root / "llama"), max_length=128)
    assert prm.encoder.separator_ids == [198]
    enc = prm.encoder.encode([{"role": "user", "content": "Is 2+2 4?"}], ["2+2 = 4.", "Answer: yes"], False)
    tokens = prm.tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert tokens == ["<|im_start|>", "Is", "Ġ", "2", "+", "2", "Ġ", "4", "?", "Ċ", "2", "+", "2", "Ġ=", "Ġ", "4",
                      ".", "Ċ", "Answer", ":", "Ġyes", "Ċ"]
    assert enc.label_positions == [17, 21]
    chat = prm.encoder.encode([{"role": "user", "content": "Is 2+2 4?"}], ["2+2 = 4.", "Answer: yes"], True)
    head = prm.tokenizer.apply_chat_template([{"role": "user", "content": "Is 2+2 4?"}], tokenize=False,
                                             add_generation_prompt=True)
    n = len(prm.tokenizer(head, add_special_tokens=False)["input_ids"])
    assert chat.input_ids[n:] == enc.input_ids[10:]  # the same steps after the template's assistant header
    assert chat.label_positions == [n + 7, n + 11]


def test_truncation_keeps_the_prompt_end_and_whole_steps() -> None:
    prompt = list(range(100, 110))  # 10 tokens
    blocks = [[1, 2, 99], [3, 4, 5, 99], [6, 99]]  # 9 tokens of steps
    whole = fit_steps(prompt, blocks, 19)
    assert whole.input_ids == [*prompt, 1, 2, 99, 3, 4, 5, 99, 6, 99] and whole.label_positions == [12, 16, 18]
    assert not whole.truncated
    # 12 tokens: the prompt may keep >= 6; steps get 6 -> only the first (3) fits; its unused room goes back
    cut = fit_steps(prompt, blocks, 12)
    assert cut.input_ids == [*range(101, 110), 1, 2, 99]
    assert (cut.label_positions, cut.steps_total, cut.steps_dropped, cut.prompt_cut) == ([11], 3, 2, 1)
    # short steps, long prompt: all steps kept, the prompt's start dropped
    long_prompt = fit_steps(list(range(100, 130)), blocks, 20)
    assert long_prompt.input_ids == [*range(119, 130), 1, 2, 99, 3, 4, 5, 99, 6, 99]
    assert long_prompt.steps_dropped == 0 and long_prompt.prompt_cut == 19
    # a first step longer than its room keeps its end (the separator carries its label)
    first = fit_steps(prompt, [[1, 2, 3, 4, 5, 6, 7, 99]], 8)
    assert first.input_ids == [106, 107, 108, 109, 5, 6, 7, 99] and first.label_positions == [7] and first.step_cut


def test_prm_loss_known_values() -> None:
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    out = prm_loss(logits, torch.tensor([1, 1, 0]), torch.tensor([0, 0, 1]), 2)
    ce = [math.log(1 + math.exp(-1)), math.log(1 + math.exp(2)), math.log(2)]  # -log softmax by hand
    np.testing.assert_allclose(out.per_example.numpy(), [(ce[0] + ce[1]) / 2, ce[2]], rtol=1e-6)
    np.testing.assert_allclose(out.metrics["step_accuracy"].numpy(), [0.5, 1.0])  # argmax([0, 0]) = 0 = label


def test_zero_head_loss_is_log_2(root: Path) -> None:
    prm = build_prm(str(root / "bert"), max_length=64)
    with torch.no_grad():
        prm.model.classifier.weight.zero_()
        prm.model.classifier.bias.zero_()
    data = load_step_file(str(root / "steps.jsonl"), prm)
    step_loss = make_step_loss(prm.model, data, prm.pad_token_id)
    loss, sums = step_loss({"solutions": MicroBatch([0, 1, 2], [1.0, 1.0, 1.0])}, {"solutions": 1 / 3})
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)
    assert sums["examples"].item() == 3.0


@pytest.mark.parametrize("backbone", ["bert", "llama"])
def test_save_reload_with_plain_transformers(root: Path, backbone: str) -> None:
    out = root / f"prm-{backbone}"
    cfg = PrmTrainConfig(model=str(root / backbone), data=str(root / "steps.jsonl"), out=str(out), max_steps=2,
                         batch_size=4, lr=1e-3, max_length=64, device="cpu", logging_steps=1)
    train_prm(cfg)
    meta = json.loads((out / "rewardkit.json").read_text())
    assert meta["kind"] == "prm" and meta["separator"] == "\n"
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    first = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    sep = meta["separator_ids"]
    steps = ["3+3 = 7.", "Answer: yes"]
    ids = [first, *tok("Is 3+3 7?", add_special_tokens=False)["input_ids"], *sep]
    positions = []
    for s in steps:
        ids += tok(s, add_special_tokens=False)["input_ids"] + sep
        positions.append(len(ids) - 1)
    with torch.no_grad():
        plain = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, positions], -1)[:, 1].numpy()
    scorer = build_scorer(f"prm:{out}", None)
    ours = scorer.step_scores([[{"role": "user", "content": "Is 3+3 7?"}]],  # type: ignore[attr-defined]
                              [[{"role": "assistant", "content": "\n".join(steps)}]], False)[0]
    np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-6)
    logs = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if r["split"] == "train"] == [1, 2]


def _train(root: Path, out: Path, **kw: object) -> tuple[dict[str, torch.Tensor], list[dict[str, object]]]:
    """Train the tiny BERT PRM (adam_epsilon 1: the update is about lr·g, so runs compare gradients)."""
    settings = {"max_steps": 4, "lr": 0.5, "adam_epsilon": 1.0, "warmup_ratio": 0.0, "scheduler": "constant",
                "batch_size": 4, "max_length": 64, "logging_steps": 1, "seed": 3, "device": "cpu", **kw}
    train_prm(PrmTrainConfig(model=str(root / "bert"), data=str(root / "steps.jsonl"), out=str(out), **settings))
    return load_file(out / "model.safetensors"), logged_rows(out)


def test_grad_accumulation_matches_one_large_batch(root: Path, tmp_path: Path) -> None:
    big, rows_big = _train(root, tmp_path / "b4", batch_size=4, grad_accum=1)
    accum, rows_acc = _train(root, tmp_path / "b2x2", batch_size=2, grad_accum=2)
    start = load_file(root / "bert" / "model.safetensors")
    assert max((big[k] - start[k]).abs().max().item() for k in start if k in big and big[k].shape == start[k].shape) > 1e-4
    assert_same(big, accum)
    assert [r["loss"] for r in rows_big] == pytest.approx([r["loss"] for r in rows_acc], abs=1e-5)


def test_resume_continues_to_the_same_result(root: Path, tmp_path: Path) -> None:
    full, _ = _train(root, tmp_path / "full", save_steps=2)
    resumed_out = tmp_path / "resumed"
    (resumed_out / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-0000002", resumed_out / "checkpoints" / "step-0000002")
    resumed, rows = _train(root, resumed_out, save_steps=2, resume="latest")
    assert_same(full, resumed, atol=1e-6)
    assert [r["step"] for r in rows] == [3, 4]


def test_lora_save_is_merged_with_the_trained_head(root: Path, tmp_path: Path) -> None:
    """LoRA on the backbone, the head trained in full; the saved folder is plain (no adapter weights) and
    scores as the training model did at its end."""
    from rewardkit.train.config import LoraSection

    out = tmp_path / "lora"
    weights, _ = _train(root, out, max_steps=2, lr=1e-2, adam_epsilon=1e-8, lora=LoraSection(r=4))
    assert not any("lora" in k for k in weights)
    from accelerate.utils import set_seed

    set_seed(3)  # the run's seed: the same fresh head as the run started from
    start = build_prm(str(root / "bert"), max_length=64).model.state_dict()
    assert (weights["classifier.weight"] - start["classifier.weight"]).abs().max().item() > 1e-4  # head trained
    query = "bert.encoder.layer.0.attention.self.query.weight"
    backbone = load_file(root / "bert" / "model.safetensors")[query]
    assert torch.equal(start[query], backbone)
    assert (weights[query] - backbone).abs().max().item() > 1e-6  # the adapters were merged into the weights
    plain = AutoModelForTokenClassification.from_pretrained(out).eval()
    assert plain.config.num_labels == 2


def test_step_logits_match_one_at_a_time(root: Path) -> None:
    """Right padding and exact masks: a batch gives each row's logits as scored alone."""
    prm = build_prm(str(root / "llama"), max_length=64)
    data = load_step_file(str(root / "steps.jsonl"), prm)
    encs = data.encodings[:4]
    with torch.no_grad():
        batch, rows = step_logits(prm.model, [e.input_ids for e in encs], [e.label_positions for e in encs],
                                  prm.pad_token_id)
        alone = torch.cat([step_logits(prm.model, [e.input_ids], [e.label_positions], prm.pad_token_id)[0]
                           for e in encs])
    np.testing.assert_allclose(batch.numpy(), alone.numpy(), rtol=1e-4, atol=1e-5)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]


def test_cli_train_score_eval_first_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, data = root / "cli-prm", root / "steps.jsonl"
    assert main(["train", "prm", "--model", str(root / "bert"), "--data", str(data), "--eval-data", str(data),
                 "--out", str(out), "--max-steps", "2", "--batch-size", "4", "--max-length", "64",
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "held-out step accuracy" in text and f"prm:{out}" in text
    pairs = root / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Is 2+2 4?", "chosen": "2+2 = 4.\nAnswer: yes",
                                 "rejected": "2+2 = 5.\n\nAnswer: no"}) + "\n", encoding="utf-8")
    scores = root / "scores.jsonl"
    assert main(["score", "--model", f"prm:{out}#agg=last", "--data", str(pairs), "--out", str(scores),
                 "--device", "cpu"]) == 0
    row = json.loads(scores.read_text().splitlines()[0])
    probs = build_scorer(f"prm:{out}").step_scores(  # type: ignore[attr-defined]
        [[{"role": "user", "content": "Is 2+2 4?"}]], [[{"role": "assistant", "content": "2+2 = 5.\n\nAnswer: no"}]],
        False)[0]
    assert len(probs) == 2 and row["rejected_score"] == pytest.approx(float(probs[-1]), rel=1e-5)
    fe = root / "fe.jsonl"
    fe.write_text("".join(json.dumps({"id": f"r{i}", "problem": r["prompt"] if isinstance(r["prompt"], str)
                                      else r["prompt"][0]["content"], "steps": r["completions"],
                                      "label": next((k for k, v in enumerate(r["labels"]) if not v), -1)}) + "\n"
                          for i, r in enumerate(ROWS)), encoding="utf-8")
    assert main(["eval", "--benchmark", "first-error", "--model", f"prm:{out}", "--data", str(fe),
                 "--out", str(root / "fe-out"), "--device", "cpu", "--n-boot", "50"]) == 0
    result = json.loads((root / "fe-out" / "results.json").read_text())
    items = [json.loads(line) for line in (root / "fe-out" / "items.jsonl").read_text().splitlines()]
    assert result["items"] == 4 and len(items) == 4
    ok = [it["predicted"] == -1 for it in items if it["label"] == -1]
    assert result["metrics"]["correct_accuracy"]["value"] == pytest.approx(np.mean(ok))
    assert "accuracy on erroneous samples" in capsys.readouterr().out


def test_bad_rows_exit_2_naming_file_line_field(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = root / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "labels": [True]}) + "\n", encoding="utf-8")
    code = main(["train", "prm", "--model", str(root / "bert"), "--data", str(bad), "--out", str(root / "bad-out"),
                 "--max-steps", "1", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: field 'labels'" in err and "1 labels for 2 completions" in err
    unlabelled = root / "unlabelled.jsonl"
    unlabelled.write_text(json.dumps({**ROWS[0], "labels": None}) + "\n", encoding="utf-8")
    assert main(["train", "prm", "--model", str(root / "bert"), "--data", str(unlabelled), "--out",
                 str(root / "bad-out"), "--max-steps", "1", "--device", "cpu"]) == 2
    assert f"{unlabelled}:1: field 'labels'" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "prm", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "process reward model" in text and "--eval-data" in text and "--threshold" in text
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "first-error" in capsys.readouterr().out
