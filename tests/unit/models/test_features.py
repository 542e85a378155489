"""Features of a frozen backbone: the gating position is the token before the chat template's generation
prompt (found from the template, not hard-coded ids); the classifier layer is found for decoders and encoders."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.data.chat import PairEncoder
from rewardkit.data.formats import reply
from rewardkit.models.features import classifier_layer, generation_prompt_length
from rewardkit.models.heads import head_inputs
from tiny_models import tiny_bert, tiny_llama


def test_gating_position_is_the_last_token_before_the_assistant_header(smollm2_tokenizer: object) -> None:
    tok = smollm2_tokenizer
    offset = generation_prompt_length(tok)
    prompt = [{"role": "user", "content": "How do I boil an egg?"}]
    header = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)[
        len(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=False)):]
    assert header.startswith("<|im_start|>assistant")  # ChatML's generation prompt
    assert offset == len(tok(header, add_special_tokens=False)["input_ids"])
    enc = PairEncoder(tok, "chat", 128).encode(prompt, reply("Boil it."), True)
    import torch

    _, at = head_inputs(torch.ones(1, len(enc.input_ids)), "last", torch.tensor([enc.response_start]),
                        prompt_offset=offset)
    bare = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=False),
               add_special_tokens=False)["input_ids"]
    assert int(at[0]) == len(bare) - 1 and enc.input_ids[: len(bare)] == bare  # the prompt's own last token


def test_no_chat_template_means_no_offset(minilm_tokenizer: object) -> None:
    assert generation_prompt_length(minilm_tokenizer) == 0


@pytest.mark.parametrize(("make", "name"), [(tiny_llama, "score"), (tiny_bert, "classifier")])
def test_classifier_layer_of_decoders_and_encoders(make: object, name: str, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    labels = {0: "a", 1: "b", 2: "c"}
    model = AutoModelForSequenceClassification.from_pretrained(  # type: ignore[operator]
        make(tmp_path / "m"), id2label=labels, label2id={v: k for k, v in labels.items()}, ignore_mismatched_sizes=True)
    assert classifier_layer(model) is getattr(model, name)
