"""The server's view of a scorer: prepare items ahead of batching (tokenize, count tokens), score batches.

Scorers with an encoder (:class:`~rewardkit.scoring.EncodingScorer`, e.g. ``rm``) are tokenized when a
request arrives, so the batcher knows each item's length; the model thread then only runs forwards.
Other scorers (``length``) keep their messages and are charged a character-based estimate of tokens.

A scorer returns a :class:`~rewardkit.types.ScoreOutput`; besides ``rewards`` and ``truncated`` it may
carry named ``objectives`` (N, K) and ``uncertainty`` (N,), which the server reports per item. JSON has
no NaN or infinity: an item whose values are not all finite gets an ``error`` instead (see
:attr:`ItemResult.error`), and :func:`check_finite_rewards` refuses a model that gives a probe input a
non-finite reward before the server starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.data.chat import Encoded
from rewardkit.data.formats import Message
from rewardkit.errors import UnsupportedError
from rewardkit.scoring import Scorer
from rewardkit.serve.protocols import SplitQuery, assistant_marker, encode_templated
from rewardkit.types import ScoreOutput

CHARS_PER_TOKEN = 4  # the estimate for scorers without a tokenizer
DEFAULT_MAX_PADDING = 0.25


class ItemError(ValueError):
    """An item the model cannot encode (e.g. a chat template that rejects its roles): a client error."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(f"item {index}: {message}")


@dataclass(frozen=True)
class PreparedItem:
    """One (prompt, response) ready to batch: ``tokens`` is its sequence length (or estimate), ``encoded``
    its input ids for encoding scorers; the messages are kept for scorers without an encoder."""

    tokens: int
    encoded: Encoded | None
    prompt: tuple[Message, ...] = ()
    response: tuple[Message, ...] = ()
    conversational: bool = False

    @property
    def truncated(self) -> bool:
        return self.encoded is not None and self.encoded.truncated


@dataclass(frozen=True)
class ItemResult:
    """The reward of one item (and its per-objective rewards and uncertainty when the scorer gives them)."""

    reward: float
    truncated: bool
    tokens: int
    objectives: dict[str, float] | None = None
    uncertainty: float | None = None

    @property
    def error(self) -> str | None:
        """Why this item has no answer -- the model gave it a NaN or infinite value, which JSON cannot
        carry and no trainer should use -- or None when every value is finite."""
        values = [("reward", self.reward), *((f"objective {k!r}", v) for k, v in (self.objectives or {}).items())]
        if self.uncertainty is not None:
            values.append(("uncertainty", self.uncertainty))
        for what, value in values:
            if not math.isfinite(value):
                return f"the model produced a non-finite {what} ({value}) for this item"
        return None


class ScoringEngine:
    """Wraps one scorer for the server (prepare in request threads, score in the model thread)."""

    def __init__(self, scorer: Scorer, *, max_padding: float = DEFAULT_MAX_PADDING) -> None:
        self.scorer, self.max_padding = scorer, max_padding
        self.encodes = callable(getattr(scorer, "encode", None)) and callable(
            getattr(scorer, "score_batch_encoded", None))
        rm = self.rm = getattr(scorer, "rm", None)
        self.tokenizer = getattr(rm, "tokenizer", None)
        encoder = getattr(rm, "encoder", None)
        self.input_format: str | None = getattr(encoder, "input_format", None)
        self.max_length: int | None = getattr(encoder, "max_length", None)
        self.metadata: dict[str, Any] = dict(getattr(rm, "metadata", None) or {})
        chat = self.input_format == "chat" and self.tokenizer is not None
        self.marker = assistant_marker(self.tokenizer) if chat else None
        pad = getattr(self.tokenizer, "pad_token", None)
        self.pad_tokens: tuple[str, ...] = (pad,) if isinstance(pad, str) and pad else ()

    @property
    def model_id(self) -> str:
        return str(self.scorer.name)

    def prepare(self, units: Sequence[tuple[tuple[Message, ...], tuple[Message, ...], bool]]) -> list[PreparedItem]:
        """Tokenize (prompt, response, conversational) units; raises :class:`ItemError` naming a bad one."""
        if not self.encodes:
            return [_estimated(p, r, c) for p, r, c in units]
        out = []
        for i, (p, r, c) in enumerate(units):
            try:
                (enc,) = self.scorer.encode([p], [r], c)  # type: ignore[attr-defined]
            except Exception as e:  # the template or tokenizer refused this input
                raise ItemError(i, f"cannot encode it: {e}") from e
            out.append(PreparedItem(_length(i, enc), enc, p, r, c))
        return out

    def prepare_texts(self, splits: Sequence[SplitQuery]) -> list[PreparedItem]:
        """Prepare split OpenRLHF queries (see :mod:`rewardkit.serve.protocols`)."""
        if self.marker is not None and self.tokenizer is not None and self.max_length is not None:
            out = []
            for i, s in enumerate(splits):
                try:
                    enc = encode_templated(self.tokenizer, self.max_length, s.prompt, s.response)
                except Exception as e:
                    raise ItemError(i, f"cannot tokenize it: {e}") from e
                out.append(PreparedItem(_length(i, enc), enc))
            return out
        units = [(({"role": "user", "content": s.prompt},) if s.prompt else (),
                  ({"role": "assistant", "content": s.response},), False) for s in splits]
        return self.prepare(units)

    def score(self, items: Sequence[PreparedItem]) -> list[ItemResult]:
        """Score one batch (runs in the model thread): one forward per group of similar lengths."""
        results: list[ItemResult | None] = [None] * len(items)
        groups = length_groups([it.tokens for it in items], self.max_padding) if self.encodes else [
            list(range(len(items)))]
        for group in groups:
            out = self._forward([items[i] for i in group])
            for j, i in enumerate(group):
                results[i] = _result(out, j, items[i])
        return results  # type: ignore[return-value]

    def _forward(self, items: Sequence[PreparedItem]) -> ScoreOutput:
        if self.encodes:
            return self.scorer.score_batch_encoded([it.encoded for it in items])  # type: ignore[attr-defined]
        return self.scorer.score([it.prompt for it in items], [it.response for it in items],
                                 [it.conversational for it in items])

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says about the served model."""
        return {
            "id": self.model_id,
            "input_format": self.input_format,
            "max_length": self.max_length,
            "truncation_policy": self.metadata.get("truncation_policy"),
            "objectives": list(self.metadata.get("objectives") or ["reward"]),
            "chat_marker": self.marker,
            "uncertainty": _uncertainty_kind(self.rm),
            "pessimism": float(getattr(self.scorer, "k", 0.0)),
        }


def _uncertainty_kind(rm: Any) -> str | None:
    """``last-layer``, ``gaussian`` or None: what a reward model's ``uncertainty`` output is."""
    if rm is None:
        return None
    if getattr(rm.net, "uncertainty", None) is not None:
        return "last-layer"
    return "gaussian" if rm.head.cfg.kind == "gaussian" else None


def length_groups(lengths: Sequence[int], max_padding: float) -> list[list[int]]:
    """Indices by decreasing length, cut into groups whose padded size (items x longest) is at most
    ``1 + max_padding`` times their real tokens: a batch of mixed lengths becomes a few forwards that
    waste little compute on padding (on CPUs padding costs as much as real tokens)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        if current and lengths[current[0]] * (len(current) + 1) > (real + lengths[i]) * (1 + max_padding):
            groups.append(current)
            current, real = [], 0
        current.append(i)
        real += lengths[i]
    if current:
        groups.append(current)
    return groups


def _result(out: ScoreOutput, j: int, item: PreparedItem) -> ItemResult:
    """Item ``j`` of a scorer output (with its objectives and uncertainty when the output has them)."""
    return ItemResult(float(out.rewards[j]), bool(out.truncated[j]) or item.truncated, item.tokens,
                      out.objectives_of(j), float(out.uncertainty[j]) if out.uncertainty is not None else None)


PROBE: tuple[tuple[Message, ...], tuple[Message, ...], bool] = (
    ({"role": "user", "content": "What is 2 + 2?"},), ({"role": "assistant", "content": "4."},), True)


def check_finite_rewards(scorer: Scorer) -> None:
    """Score one probe conversation; raise :class:`~rewardkit.errors.UnsupportedError` when its reward is
    NaN or infinite (broken weights, an overflowing dtype): such a model would answer every request with
    errors, so the server refuses it at start instead."""
    prompt, response, conversational = PROBE
    reward = float(scorer.score([prompt], [response], conversational).rewards[0])
    if not math.isfinite(reward):
        raise UnsupportedError(f"model {scorer.name!r} gives a probe conversation a non-finite reward ({reward}): "
                               "its weights or dtype are broken; refusing to serve it")


def _length(index: int, encoded: Encoded) -> int:
    if not encoded.input_ids:
        raise ItemError(index, "it is empty: there are no tokens to score")
    return len(encoded.input_ids)


def _estimated(prompt: tuple[Message, ...], response: tuple[Message, ...], conv: bool) -> PreparedItem:
    chars = sum(len(m["content"]) for m in (*prompt, *response))
    return PreparedItem(chars // CHARS_PER_TOKEN + 1, None, prompt, response, conv)
