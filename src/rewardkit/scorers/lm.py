"""Helpers of the causal-LM scorers: tokenizing each prompt once, model fingerprints, length-sorted batches.

Shared by the DPO implicit reward (:mod:`rewardkit.scorers.implicit`) and the generative judge
(:mod:`rewardkit.scorers.judge`).
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rewardkit.data.collate import token_budget_batches

DEFAULT_LM_TOKENS = 2048  # padded tokens per batch: the (B, T, vocab) logits dominate memory


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


@functools.lru_cache(maxsize=32)
def model_fingerprint(path: str) -> str:
    """sha256 of a local model folder's files (``hub:NAME`` for a hub name that is not a local path)."""
    from rewardkit.data.dataset import file_fingerprint

    return file_fingerprint(path) if Path(path).exists() else f"hub:{path}"


def sorted_batches(lengths: Sequence[int], max_tokens: int, max_batch: int = 256) -> Iterator[list[int]]:
    """Indices in batches of similar length, longest first, within ``max_tokens`` padded tokens."""
    yield from token_budget_batches(list(lengths), max_tokens, max_batch)
