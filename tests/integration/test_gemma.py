"""The ``gemma3-270m`` alias: Gemma-3 270M base, shipped on PyPI as a Q4_K_M GGUF in 4 part wheels,
dequantised once into the rewardkit cache. Marked slow; CI runs them (the first conversion takes
~2 min on 2 cores; later runs reuse the cache)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma3ForCausalLM

from rewardkit.models.backbones import GGUF_ALIASES, assemble_gguf, resolve_backbone
from rewardkit.models.causal_lm import (
    load_causal_lm,
    naive_sequence_logps,
    response_mask_from_starts,
    right_pad,
    sequence_logps,
)

pytestmark = pytest.mark.slow

# llama.cpp's Gemma-3 tensor names -> Gemma3ForCausalLM's (llama.cpp's convert_hf_to_gguf.py, Gemma3Model)
_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def _hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, part, _ = gguf_name.split(".")  # blk.N.<part>.weight
    return f"model.layers.{layer}.{_LAYER_NAMES[part]}.weight"


def _state_dict_from_gguf(path: Path) -> dict[str, torch.Tensor]:
    """An independent reference: every tensor dequantised by the ``gguf`` package itself (not through
    transformers' GGUF loader); llama.cpp stores Gemma's RMSNorm weights as ``1 + w``."""
    from gguf import GGUFReader, dequantize

    out = {}
    for t in GGUFReader(str(path)).tensors:
        w = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))  # a writable copy
        out[_hf_name(t.name)] = w - 1 if "norm" in t.name else w
    return out


@pytest.fixture(scope="module")
def gemma_path() -> str:
    return resolve_backbone("gemma3-270m")


def test_gemma3_cache_reloads_in_plain_transformers_with_the_gguf_weights_and_logits(gemma_path: str) -> None:
    plain = AutoModelForCausalLM.from_pretrained(gemma_path).eval()  # no gguf_file: a normal folder
    assert isinstance(plain, Gemma3ForCausalLM)
    c = plain.config  # against the GGUF's metadata (gemma3.block_count, embedding_length, ...)
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
            c.sliding_window, c.vocab_size) == (18, 640, 4, 1, 256, 512, 262144)
    assert c.final_logit_softcapping is None and c.tie_word_embeddings
    assert not hasattr(c, "quantization_config")
    assert plain.lm_head.weight.data_ptr() == plain.model.embed_tokens.weight.data_ptr()

    alias = GGUF_ALIASES["gemma3-270m"]
    with tempfile.TemporaryDirectory() as tmp:
        reference = _state_dict_from_gguf(assemble_gguf(alias, Path(tmp) / alias.gguf_file))
    ref_model = Gemma3ForCausalLM(c).eval()
    missing, unexpected = ref_model.load_state_dict(reference, strict=False)
    assert missing == ["lm_head.weight"] and unexpected == []  # tied to the embeddings
    for name, tensor in reference.items():
        assert torch.equal(plain.state_dict()[name], tensor), name

    ids = torch.tensor([[2, 818, 5279, 529, 7001, 563]])  # <bos>The capital of France is
    with torch.no_grad():
        ours, ref = plain(input_ids=ids).logits, ref_model(input_ids=ids).logits
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


def test_gemma3_loads_as_a_base_model_and_chunked_logps_match_the_naive_reference(gemma_path: str) -> None:
    lm = load_causal_lm("gemma3-270m", dtype="float32", device="cpu")
    assert lm.path == gemma_path and not lm.has_chat_template  # a base model: prompt + response + EOS
    tok = lm.tokenizer
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (2, 1, 0)  # pad is not EOS
    assert tok("The capital of France is").input_ids == [2, 818, 5279, 529, 7001, 563]

    prompts, responses = ["The capital of France is", "2 + 2 ="], [" Paris, a city on the Seine.", " 4"]
    seqs = [tok(p).input_ids + tok(r, add_special_tokens=False).input_ids + [tok.eos_token_id]
            for p, r in zip(prompts, responses, strict=True)]
    ids, mask = right_pad(seqs, lm.pad_id)
    response = response_mask_from_starts(mask, [len(tok(p).input_ids) for p in prompts])
    for cap in (None, 30.0):  # Gemma-3 has no final softcap; 30.0 (Gemma-2's) exercises the capped path
        lm.model.config.final_logit_softcapping = cap
        with torch.no_grad():
            chunked = sequence_logps(lm.model, ids, mask, response, chunk_tokens=3)
            naive = naive_sequence_logps(lm.model, ids, mask, response)
        torch.testing.assert_close(chunked.tokens, naive.tokens, rtol=0, atol=1e-4)
        # sums of ~10 fp32 log-probs over a 262k vocabulary: the per-token bound times the count
        torch.testing.assert_close(chunked.sums, naive.sums, rtol=0, atol=1e-4 * int(naive.counts.max()))
        assert chunked.counts.tolist() == [len(s) - len(tok(p).input_ids) for s, p in zip(seqs, prompts, strict=True)]
    lm.model.config.final_logit_softcapping = None

    with torch.no_grad():
        out = lm.model.generate(**tok("def fibonacci(n):", return_tensors="pt"), max_new_tokens=12, do_sample=False)
    assert "return" in tok.decode(out[0]) or "if n" in tok.decode(out[0])  # a sane LM continues the code
