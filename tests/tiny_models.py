"""Tiny random reward-model backbones for fast tests, saved as local folders (no hub, no weights download).

They reuse the real local tokenizers of the offline backbones (MiniLM: BERT WordPiece, no chat template;
SmolLM2: byte-level BPE with a chat template and pad == eos), so tokenization is realistic while the
models have ~1M parameters. Dropout is off so runs with different batch splits are exactly comparable.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
)

from rewardkit.models.backbones import resolve_backbone


def tiny_bert(path: Path, *, dropout: float = 0.0, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT encoder with the MiniLM tokenizer, saved to ``path``."""
    tok = AutoTokenizer.from_pretrained(resolve_backbone("minilm"))
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout, num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_llama(path: Path, *, seed: int = 0) -> Path:
    """A 2-layer, 32-wide Llama decoder with the SmolLM2 tokenizer (chat template; pad == eos), saved to ``path``."""
    tok = AutoTokenizer.from_pretrained(resolve_backbone("smollm2-135m"))
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


PAIRS = [
    ("How do I boil an egg?", "Put it in boiling water for about nine minutes, then cool it.", "Eggs are oval."),
    ("Name a primary colour.", "Red is a primary colour.", "Bananas."),
    ("What is 2 + 2?", "2 + 2 = 4.", "It is 22."),
    ("Say hello politely.", "Hello! It is nice to meet you.", "Go away."),
    ("Give a synonym for big.", "Large.", "Small, tiny, miniature, little and minute are all words."),
    ("Translate 'gato' to English.", "Cat.", "Gato is a Spanish word that I cannot translate right now, sorry."),
    ("What colour is the sky on a clear day?", "Blue.", "The sky is usually green or purple at noon."),
    ("Is fire hot?", "Yes, fire is hot and can burn you.", "No."),
    ("Count to three.", "One, two, three.", "Three, two, one, zero, minus one."),
    ("What do bees make?", "Honey and wax.", "Bees make cars."),
    ("Name a fruit.", "An apple.", "A hammer is a fruit."),
    ("Where is Paris?", "Paris is in France.", "Paris is on the Moon."),
]


def write_pairs(path: Path, *, conversational: bool = True, repeat: int = 1) -> Path:
    """Write the toy pairs as a TRL jsonl file (conversational or explicit text)."""
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            for prompt, chosen, rejected in PAIRS:
                if conversational:
                    row = {"prompt": [{"role": "user", "content": prompt}],
                           "chosen": [{"role": "assistant", "content": chosen}],
                           "rejected": [{"role": "assistant", "content": rejected}]}
                else:
                    row = {"prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected}
                f.write(json.dumps(row) + "\n")
    return path
