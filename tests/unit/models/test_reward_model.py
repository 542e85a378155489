"""Saved reward models load with plain transformers and score exactly as rewardkit does; pad is never
EOS; LoRA is merged with the head kept; scores do not depend on the batch size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardkit.cli import main
from rewardkit.models.reward_model import build_reward_model, load_reward_model
from rewardkit.scoring import RewardModelScorer, score_encoded
from tiny_models import PAIRS, tiny_bert, tiny_llama, write_pairs

TRAIN = ["--max-steps", "2", "--lr", "1e-3", "--warmup-ratio", "0", "--batch-size", "4", "--max-length", "64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rm")
    data = write_pairs(root / "pairs.jsonl")
    out = {}
    for name, builder in (("bert", tiny_bert), ("llama", tiny_llama)):
        backbone = builder(root / f"{name}-backbone")
        assert main(["train", "rm", "--data", str(data), "--model", str(backbone), "--out", str(root / name),
                     *TRAIN]) == 0
        out[name] = root / name
    out["data"] = data
    return out


def _plain_scores(folder: Path, kind: str) -> np.ndarray:
    """Scores computed with nothing but transformers, following rewardkit.json's documented input format."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    scores = []
    with torch.no_grad():
        for prompt, chosen, rejected in PAIRS:
            for response in (chosen, rejected):
                if kind == "bert":  # text_pair: tokenizer(prompt, response)
                    enc = tok(prompt, response, return_tensors="pt")
                else:  # chat: the chat template of prompt + response
                    msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
                    enc = tok.apply_chat_template(msgs, return_tensors="pt", return_dict=True)
                scores.append(model(**enc).logits[0, 0].item())
    return np.array(scores)


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_plain_transformers_scores_equal_rewardkit_score(trained: dict[str, Path], kind: str, tmp_path: Path) -> None:
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", str(trained[kind]), "--data", str(trained["data"]), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ours = np.array([s for r in rows for s in (r["chosen_score"], r["rejected_score"])])
    np.testing.assert_allclose(ours, _plain_scores(trained[kind], kind), atol=1e-5)
    assert len(set(ours.tolist())) == len(ours)  # a random head still separates every input


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_scores_do_not_depend_on_batch_size(trained: dict[str, Path], kind: str) -> None:
    rm = load_reward_model(trained[kind])
    texts = [(p, r) for p, c, rj in PAIRS for r in (c, rj)]
    enc = [rm.encoder.encode([{"role": "user", "content": p}], [{"role": "assistant", "content": r}], True)
           for p, r in texts]
    one = score_encoded(rm, enc, max_tokens=1)          # batch of 1 everywhere
    big = score_encoded(rm, enc, max_tokens=100_000)    # everything in one padded batch
    mid = score_encoded(rm, enc, max_tokens=200)
    np.testing.assert_allclose(one, big, atol=1e-5)
    np.testing.assert_allclose(one, mid, atol=1e-5)


def test_pad_is_never_eos_and_pooling_uses_the_last_real_token(trained: dict[str, Path]) -> None:
    tok = AutoTokenizer.from_pretrained(trained["llama"])
    model = AutoModelForSequenceClassification.from_pretrained(trained["llama"]).eval()
    assert tok.pad_token_id != tok.eos_token_id
    assert model.config.pad_token_id == tok.pad_token_id
    rm = load_reward_model(trained["llama"])
    enc = rm.encoder.encode([{"role": "user", "content": "Hi"}], [{"role": "assistant", "content": "Hello."}], True)
    assert tok.eos_token_id in enc.input_ids  # the chat template ends turns with EOS (<|im_end|>)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        hidden = model.model(input_ids=ids).last_hidden_state[0, -1]       # (H,) at the last real token
        expected = model.score(hidden).item()
        padded = torch.tensor([enc.input_ids + [tok.pad_token_id] * 5])
        mask = torch.tensor([[1] * len(enc.input_ids) + [0] * 5])
        got = model(input_ids=padded, attention_mask=mask).logits[0, 0].item()
    assert got == pytest.approx(expected, abs=1e-5)


def test_llama_backbone_with_pad_equal_eos_gets_a_distinct_pad(tmp_path: Path) -> None:
    backbone = tiny_llama(tmp_path / "llama")
    raw = AutoTokenizer.from_pretrained(backbone)
    assert raw.pad_token_id == raw.eos_token_id  # SmolLM2 ships pad == eos: the trap
    rm = build_reward_model(str(backbone))
    assert rm.tokenizer.pad_token_id != rm.tokenizer.eos_token_id
    assert rm.tokenizer.pad_token == "<|endoftext|>"
    assert rm.model.config.pad_token_id == rm.tokenizer.pad_token_id


def test_lora_is_merged_and_the_trained_head_kept(trained: dict[str, Path], tmp_path: Path) -> None:
    backbone = tiny_bert(tmp_path / "bert")
    out = tmp_path / "lora"
    assert main(["train", "rm", "--data", str(trained["data"]), "--model", str(backbone), "--out", str(out),
                 *TRAIN, "--lr", "1e-2", "--set", "lora.r=4"]) == 0
    files = {p.name for p in out.iterdir()}
    assert "adapter_config.json" not in files and "model.safetensors" in files
    plain = AutoModelForSequenceClassification.from_pretrained(out)
    init = AutoModelForSequenceClassification.from_pretrained(backbone)
    assert not any("lora" in name for name, _ in plain.named_parameters())
    head_moved = (plain.classifier.weight - init.classifier.weight).abs().max().item()
    body_moved = (plain.bert.encoder.layer[0].attention.self.query.weight
                  - init.bert.encoder.layer[0].attention.self.query.weight).abs().max().item()
    assert head_moved > 1e-4 and body_moved > 1e-6  # head trained in full, body through merged adapters
    scorer = RewardModelScorer(str(out))
    res = scorer.score([[{"role": "user", "content": "Hi"}]], [[{"role": "assistant", "content": "Hello"}]])
    enc = AutoTokenizer.from_pretrained(out)("Hi", "Hello", return_tensors="pt")
    with torch.no_grad():
        assert res.rewards[0] == pytest.approx(plain.eval()(**enc).logits[0, 0].item(), abs=1e-5)
