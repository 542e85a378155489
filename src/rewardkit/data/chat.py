"""Turn (prompt, response) messages into model input ids, with one stated truncation policy.

Input formats, chosen from the backbone (see :func:`input_format_for`):

- ``chat``       decoders with a chat template: the template applied to prompt + response; the prompt
                 part is the template of the prompt with the generation prompt added.
- ``text_pair``  encoders (BERT-like): ``[CLS] prompt [SEP] response [SEP]`` with segment ids, where the
                 prompt is rendered as ``"role: content"`` lines and the response is its text.
- ``concat``     decoders without a chat template: prompt text + response text + EOS.

Truncation policy (``keep-response``): when prompt + response exceed ``max_length``, the oldest prompt
tokens are dropped first (a leading BOS is kept); the prompt keeps at least its newest
``min(len(prompt), max_length // 4)`` tokens, and a response longer than what is left is cut at its end.
Nothing is ever dropped: every example is encoded and each cut is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rewardkit.data.formats import Message

InputFormat = Literal["chat", "text_pair", "concat"]
TRUNCATION_POLICY = "keep-response: drop oldest prompt tokens first (keep BOS); cut an over-long response at its end"
_PROBE = "hello"


@dataclass(frozen=True)
class Encoded:
    """One tokenized (prompt, response). ``token_type_ids`` is None for decoders; ``response_start`` is
    the index in ``input_ids`` of the first response token (what a causal LM's log-probs score)."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    prompt_tokens_dropped: int = 0
    response_tokens_dropped: int = 0
    response_start: int = 0

    @property
    def truncated(self) -> bool:
        return self.prompt_tokens_dropped > 0 or self.response_tokens_dropped > 0


@dataclass(frozen=True)
class PairTemplate:
    """Where an encoder's special tokens go around two segments, and each part's segment id."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    types: tuple[int, int, int, int, int] | None  # prefix, prompt, middle, response, suffix

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def input_format_for(tokenizer: Any, model_type: str) -> InputFormat:
    """``chat`` if the tokenizer has a chat template, ``text_pair`` for masked-LM encoders, else ``concat``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if getattr(tokenizer, "chat_template", None):
        return "chat"
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "text_pair"
    return "concat"



def probe_pair_template(tokenizer: Any) -> PairTemplate:
    """Find the special tokens an encoder tokenizer puts around a text pair (transformers 5 has no
    ``build_inputs_with_special_tokens``), by encoding a probe pair and locating its two segments."""
    probe = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    enc = tokenizer(_PROBE, _PROBE, add_special_tokens=True)
    ids, k = list(enc["input_ids"]), len(probe)
    starts = [i for i in range(len(ids) - k + 1) if ids[i : i + k] == probe]
    if len(starts) != 2:
        raise ValueError(f"cannot locate the text-pair template of {type(tokenizer).__name__}: {ids}")
    a, b = starts
    types = enc.get("token_type_ids")
    seg = None
    if types is not None:
        seg = (types[0] if a else 0, types[a], types[a + k] if a + k < b else types[a], types[b],
               types[-1] if b + k < len(ids) else types[b])
    return PairTemplate(tuple(ids[:a]), tuple(ids[a + k : b]), tuple(ids[b + k :]), seg)


def render_plain(messages: Sequence[Message]) -> str:
    """Messages as ``"role: content"`` lines (the encoders' prompt text); a lone user turn is its text."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def truncate_pair(prompt: list[int], response: list[int], budget: int, keep_head: int = 0) -> tuple[list[int], list[int]]:
    """Apply the ``keep-response`` policy to token lists so that ``len(p) + len(r) <= budget``.

    ``keep_head`` leading prompt tokens (a BOS) are always kept and count against the budget.
    """
    if len(prompt) + len(response) <= budget:
        return prompt, response
    head, body = prompt[:keep_head], prompt[keep_head:]
    room = budget - len(head)
    min_prompt = min(len(body), budget // 4)
    if len(response) > room - min_prompt:
        response = response[: max(room - min_prompt, 0)]
    keep = room - len(response)
    return head + (body[len(body) - keep :] if keep > 0 else []), response


class PairEncoder:
    """Encodes (prompt, response) for one tokenizer and input format under ``max_length`` tokens."""

    def __init__(self, tokenizer: Any, input_format: InputFormat, max_length: int) -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        self.tokenizer, self.input_format, self.max_length = tokenizer, input_format, max_length
        self.template = probe_pair_template(tokenizer) if input_format == "text_pair" else None

    def encode(self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool) -> Encoded:
        if self.input_format == "text_pair":
            return self._encode_pair(prompt, response)
        p, r = self._decoder_parts(prompt, response, conversational)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        keep_head = 1 if p and bos is not None and p[0] == bos else 0
        tp, tr = truncate_pair(p, r, self.max_length, keep_head)
        return Encoded(tp + tr, None, len(p) - len(tp), len(r) - len(tr), len(tp))

    def _encode_pair(self, prompt: Sequence[Message], response: Sequence[Message]) -> Encoded:
        t = self.template
        assert t is not None
        tok = self.tokenizer
        p = tok(render_plain(prompt), add_special_tokens=False)["input_ids"] if prompt else []
        r = tok("\n".join(m["content"] for m in response), add_special_tokens=False)["input_ids"]
        tp, tr = truncate_pair(p, r, self.max_length - t.n_special)
        ids = [*t.prefix, *tp, *t.middle, *tr, *t.suffix]
        types = None
        if t.types is not None:
            parts = (t.prefix, tp, t.middle, tr, t.suffix)
            types = [seg for part, seg in zip(parts, t.types, strict=True) for _ in part]
        start = len(t.prefix) + len(tp) + len(t.middle)
        return Encoded(ids, types, len(p) - len(tp), len(r) - len(tr), start)

    def _decoder_parts(
        self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool
    ) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        if self.input_format == "chat" and (conversational or prompt):
            p = _template_ids(tok, list(prompt), add_generation_prompt=True) if prompt else []
            full = _template_ids(tok, [*prompt, *response], add_generation_prompt=False)
            # The sequence is always exactly the template of prompt + response (what plain transformers
            # feeds the model). Where a token straddles the boundary (a response starting with "\n"
            # merges with the template's "\n"), it counts as response.
            k = 0
            while k < min(len(p), len(full)) and p[k] == full[k]:
                k += 1
            return full[:k], full[k:]
        p = tok("".join(m["content"] for m in prompt), add_special_tokens=True)["input_ids"] if prompt else []
        r = tok("".join(m["content"] for m in response), add_special_tokens=not prompt)["input_ids"]
        eos = getattr(tok, "eos_token_id", None)
        return p, [*r, eos] if eos is not None else r


def _template_ids(tok: Any, messages: list[Message], *, add_generation_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)
