"""Causal language models as scorers: loading, tokenizing each prompt once, and length-sorted batches.

Shared by the DPO implicit reward (:mod:`rewardkit.scorers.implicit`) and the generative judge
(:mod:`rewardkit.scorers.judge`).
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.data.collate import token_budget_batches
from rewardkit.models.backbones import resolve_backbone

DEFAULT_LM_TOKENS = 2048  # padded tokens per batch: the (B, T, vocab) logits dominate memory
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CachingTokenizer:
    """Wraps a tokenizer so that repeated calls with the same text (or the same chat messages) are
    tokenized once: every response of an item shares its prompt, so the prompt is tokenized once per
    item whatever the number of responses. Everything else is passed through unchanged."""

    def __init__(self, tokenizer: Any, maxsize: int = 8192) -> None:
        self._tok = tokenizer
        self._memo: OrderedDict[str, Any] = OrderedDict()
        self._maxsize = maxsize
        self.hits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key in self._memo:
            self._memo.move_to_end(key)
            self.hits += 1
            return self._memo[key]
        value = compute()
        self._memo[key] = value
        if len(self._memo) > self._maxsize:
            self._memo.popitem(last=False)
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not all(isinstance(a, str) for a in args) or kwargs.get("return_tensors"):
            return self._tok(*args, **kwargs)
        key = "call:" + json.dumps([args, sorted(kwargs.items())], default=str)
        return self._cached(key, lambda: self._tok(*args, **kwargs))

    def apply_chat_template(self, conversation: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("return_tensors") or kwargs.get("return_dict"):
            return self._tok.apply_chat_template(conversation, *args, **kwargs)
        key = "chat:" + json.dumps([conversation, args, sorted(kwargs.items())], default=str)
        return self._cached(key, lambda: self._tok.apply_chat_template(conversation, *args, **kwargs))


@dataclass
class LoadedLM:
    """A causal LM in eval mode, its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    path: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def load_causal_lm(name: str, *, dtype: str = "float32", device: str = "cpu") -> LoadedLM:
    """Load ``name`` (an offline alias such as ``smollm2-135m``, a folder or a hub name) for scoring."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)}")
    path = resolve_backbone(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype]).to(device).eval()
    return LoadedLM(model, tokenizer, name, path)


@functools.lru_cache(maxsize=32)
def model_fingerprint(path: str) -> str:
    """sha256 of a local model folder's files (``hub:NAME`` for a hub name that is not a local path)."""
    from rewardkit.data.dataset import file_fingerprint

    return file_fingerprint(path) if Path(path).exists() else f"hub:{path}"


def sorted_batches(lengths: Sequence[int], max_tokens: int, max_batch: int = 256) -> Iterator[list[int]]:
    """Indices in batches of similar length, longest first, within ``max_tokens`` padded tokens."""
    yield from token_budget_batches(list(lengths), max_tokens, max_batch)


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` (B, T) int64, right-padded."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids``/``attention_mask``/``position_ids`` (B, T): positions count real tokens
    only, so every row sees the same positions as it would alone (batch-size invariant)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}


def pad_id_of(tokenizer: Any) -> int:
    """A token id to fill padding with (masked out, so any id works): pad, else EOS, else 0."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0
