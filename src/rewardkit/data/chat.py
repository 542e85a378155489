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

Long texts are not tokenized whole: only the end of the prompt and the start of the response can survive
truncation, so a text longer than 64 characters per token of ``max_length`` is tokenized in a window of
characters there, grown until it holds enough tokens (see :func:`head_tokens`). A window is cut only
before a space between two ASCII letters or digits, where tokenizers that split words at spaces (BERT's
WordPiece, byte-level BPE) always end a token and start the next one afresh, so the ids are exactly those
of the whole text; a probe at construction (:func:`splits_at_spaces`) keeps whole-text tokenization for
tokenizers where that does not hold. Time and memory then follow ``max_length``, not the text (a 50 MB
response: 0.03 s with MiniLM), except where no such space lies near the window (one huge word, a long
run of whitespace for byte-level BPE): that stretch is tokenized as before. The dropped-token counts of
a windowed text are lower bounds; :attr:`Encoded.untokenized_chars` says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rewardkit.data.formats import Message, common_prefix_length
from rewardkit.errors import OptionError, UnsupportedError

InputFormat = Literal["chat", "text_pair", "concat"]
TRUNCATION_POLICY = "keep-response: drop oldest prompt tokens first (keep BOS); cut an over-long response at its end"
_PROBE = "hello"
# Where a long text may be cut before tokenizing: a space between two ASCII letters or digits.
_CUT = re.compile(r"(?<=[A-Za-z0-9]) (?=[A-Za-z0-9])")
# A text longer than this many characters per token of the limit is tokenized in a window that starts at
# that size (and doubles while it holds too few tokens); a shorter one whole, so its counts are exact.
_CHARS_PER_TOKEN = 64
# Texts on which splits_at_spaces checks that cutting before such a space never changes the tokens.
_SPLIT_PROBES = (
    "The quick brown fox jumps over 13 lazy dogs, doesn't it? Yes 42 times.",
    "naive cafe 1990s x2 y3 z Zürich naïve 9 a",
    "def f(x): return x + 1\n    a = b c\n\nd e",
    "ab  cd ef\t\tgh ij I'm 3 4 5 ALL CAPS Word",
)


@dataclass(frozen=True)
class Encoded:
    """One tokenized (prompt, response). ``token_type_ids`` is None for decoders; ``response_start`` is
    the index in ``input_ids`` of the first response token (what a causal LM's log-probs score).

    ``*_tokens_dropped`` count the tokens the truncation policy dropped. ``untokenized_chars`` counts the
    characters of a long prompt start or response end that were never tokenized (see the module notes):
    their tokens were dropped too, so where it is above 0 the two counts are lower bounds.
    """

    input_ids: list[int]
    token_type_ids: list[int] | None
    prompt_tokens_dropped: int = 0
    response_tokens_dropped: int = 0
    response_start: int = 0
    untokenized_chars: int = 0

    @property
    def truncated(self) -> bool:
        return self.prompt_tokens_dropped > 0 or self.response_tokens_dropped > 0 or self.untokenized_chars > 0


class SupportsEncode(Protocol):
    """What turns (prompt, response) into an :class:`Encoded` under a token limit (a :class:`PairEncoder`)."""

    max_length: int

    def encode(self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool) -> Encoded:
        ...


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
        raise UnsupportedError(f"cannot locate the text-pair template of {type(tokenizer).__name__}: {ids}")
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
            raise OptionError(f"max_length must be at least 8, got {max_length}")
        self.tokenizer, self.input_format, self.max_length = tokenizer, input_format, max_length
        self.template = probe_pair_template(tokenizer) if input_format == "text_pair" else None
        self.windowed = splits_at_spaces(tokenizer)
        self._specials = probe_single_template(tokenizer) if input_format != "text_pair" else ((), ())

    def encode(self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool) -> Encoded:
        if self.input_format == "text_pair":
            return self._encode_pair(prompt, response)
        p, r, skipped = self._decoder_parts(prompt, response, conversational)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        keep_head = 1 if p and bos is not None and p[0] == bos else 0
        tp, tr = truncate_pair(p, r, self.max_length, keep_head)
        return Encoded(tp + tr, None, len(p) - len(tp), len(r) - len(tr), len(tp), skipped)

    def _encode_pair(self, prompt: Sequence[Message], response: Sequence[Message]) -> Encoded:
        t = self.template
        assert t is not None
        budget = self.max_length - t.n_special
        p = tail_tokens(self.tokenizer, render_plain(prompt), budget, windowed=self.windowed) if prompt else _NONE
        r = head_tokens(self.tokenizer, "\n".join(m["content"] for m in response), budget, windowed=self.windowed)
        tp, tr = truncate_pair(p.ids, r.ids, budget)
        ids = [*t.prefix, *tp, *t.middle, *tr, *t.suffix]
        types = None
        if t.types is not None:
            parts = (t.prefix, tp, t.middle, tr, t.suffix)
            types = [seg for part, seg in zip(parts, t.types, strict=True) for _ in part]
        start = len(t.prefix) + len(tp) + len(t.middle)
        return Encoded(ids, types, len(p.ids) - len(tp), len(r.ids) - len(tr), start, p.skipped + r.skipped)

    def _decoder_parts(
        self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool
    ) -> tuple[list[int], list[int], int]:
        """(prompt ids, response ids, characters not tokenized) before truncation."""
        if self.input_format == "chat" and (conversational or prompt):
            return self._chat_parts(prompt, response)
        tok, n, w = self.tokenizer, self.max_length, self.windowed
        p = tail_tokens(tok, "".join(m["content"] for m in prompt), n, windowed=w, specials=self._specials) \
            if prompt else _NONE
        r = head_tokens(tok, "".join(m["content"] for m in response), n, windowed=w,
                        specials=None if prompt else self._specials)
        eos = getattr(tok, "eos_token_id", None)
        return p.ids, [*r.ids, eos] if eos is not None else r.ids, p.skipped + r.skipped

    def _chat_parts(self, prompt: Sequence[Message], response: Sequence[Message]) -> tuple[list[int], list[int], int]:
        """The sequence is always exactly the template of prompt + response (what plain transformers feeds
        the model: ``apply_chat_template(tokenize=True)`` is the tokenizer on the rendered text without
        special tokens). Its prompt part is the longest start it shares with the template of the prompt
        with the generation prompt added: where a token straddles the boundary (a response starting with
        "\\n" merges with the template's "\\n"), it counts as response.

        A long sequence is tokenized in a window ``[a, b)`` of the rendered text around that boundary,
        grown until it holds ``max_length`` prompt tokens (or starts at 0) and more than ``max_length``
        response tokens (or ends at the end), which is all the truncation policy can keep."""
        tok, n = self.tokenizer, self.max_length
        full = _template_text(tok, [*prompt, *response], add_generation_prompt=False)
        head = _template_text(tok, list(prompt), add_generation_prompt=True) if prompt else ""
        split = common_prefix_length(head, full)
        before = after = _CHARS_PER_TOKEN * (n + 1)
        while True:
            a = (_last_cut(full, split - before) if self.windowed and split > before else None) or 0
            b = _first_cut(full, max(split, len(head)) + after) if self.windowed else None
            b = len(full) if b is None else b
            window = _ids(tok, full[a:b])
            k = _common_prefix(_ids(tok, head[a:]), window) if head else 0
            prompt_ok, response_ok = a == 0 or k >= n, b == len(full) or len(window) - k > n
            if prompt_ok and response_ok:
                break
            before, after = before * (1 if prompt_ok else 2), after * (1 if response_ok else 2)
        bos = getattr(tok, "bos_token_id", None)
        lead: list[int] = []
        if a > 0 and bos is not None:  # the sequence's first token, kept by the policy if it is the BOS
            first = _ids(tok, full[: _first_cut(full, 1) or a])[:1]
            lead = first if first == [bos] else []
        return [*lead, *window[:k]], window[k:], a + len(full) - b


@dataclass(frozen=True)
class Tokens:
    """Token ids of a text, and how many of its characters were left untokenized (0: the whole text)."""

    ids: list[int]
    skipped: int = 0


_NONE = Tokens([])


def head_tokens(tokenizer: Any, text: str, n: int, *, windowed: bool = True,
                specials: tuple[Sequence[int], Sequence[int]] | None = None) -> Tokens:
    """The tokens of ``text`` -- or, for a long text, at least ``n + 1`` of its first tokens, exactly those
    the whole text's tokenization starts with (the rest of the text is not tokenized).

    The text is cut before a space between two ASCII letters or digits at or after ``64 × (n + 1)``
    characters; if the piece holds ``n`` tokens or fewer, the window doubles. Without such a space, or
    unless ``windowed``, the whole text is tokenized. ``specials`` = (prefix, suffix) ids of
    ``add_special_tokens=True`` (see :func:`probe_single_template`); None for no special tokens.
    """
    width = _CHARS_PER_TOKEN * (n + 1)
    while windowed and width < len(text):
        cut = _first_cut(text, width)
        if cut is None:
            break
        ids = _ids(tokenizer, text[:cut])
        if len(ids) > n:
            return Tokens(_wrap(ids, specials), len(text) - cut)
        width = 2 * cut
    return Tokens(_ids(tokenizer, text, specials is not None))


def tail_tokens(tokenizer: Any, text: str, n: int, *, windowed: bool = True,
                specials: tuple[Sequence[int], Sequence[int]] | None = None) -> Tokens:
    """The tokens of ``text`` -- or, for a long text, at least ``n`` of its last tokens, exactly those the
    whole text's tokenization ends with (and ``specials``, as :func:`head_tokens`, around them)."""
    width = _CHARS_PER_TOKEN * (n + 1)
    while windowed and width < len(text):
        cut = _last_cut(text, len(text) - width)
        if cut is None:
            break
        ids = _ids(tokenizer, text[cut:])
        if len(ids) >= n:
            return Tokens(_wrap(ids, specials), cut)
        width = 2 * (len(text) - cut)
    return Tokens(_ids(tokenizer, text, specials is not None))


def splits_at_spaces(tokenizer: Any) -> bool:
    """Whether tokenizing a text in two pieces, cut before a space between two ASCII letters or digits,
    gives the same ids as tokenizing it whole -- the property that lets long texts be tokenized in a
    window. It holds by construction for tokenizers that normalise character by character and split words
    before spaces (BERT's WordPiece, byte-level BPE such as GPT-2, Llama 3, SmolLM2); SentencePiece
    tokenizers that prepend "▁" to every text fail it. Checked on probe texts at every such cut, and
    refused if an added token holds a space or swallows the spaces after it (``rstrip``)."""
    for added in getattr(tokenizer, "added_tokens_decoder", {}).values():
        content = str(getattr(added, "content", added))
        last = content[-1:]
        if " " in content or (getattr(added, "rstrip", False) and last.isascii() and last.isalnum()):
            return False
    for text in _SPLIT_PROBES:
        whole = _ids(tokenizer, text)
        for m in _CUT.finditer(text):
            if _ids(tokenizer, text[: m.start()]) + _ids(tokenizer, text[m.start() :]) != whole:
                return False
    return True


def probe_single_template(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens ``add_special_tokens=True`` puts before and after one text (BOS, EOS, ...)."""
    plain = _ids(tokenizer, _PROBE)
    full = _ids(tokenizer, _PROBE, True)
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return tuple(full[:i]), tuple(full[i + len(plain) :])
    raise UnsupportedError(f"cannot locate the special tokens of {type(tokenizer).__name__}: {full}")


def _ids(tokenizer: Any, text: str, special: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _wrap(ids: list[int], specials: tuple[Sequence[int], Sequence[int]] | None) -> list[int]:
    return ids if specials is None else [*specials[0], *ids, *specials[1]]


def _first_cut(text: str, start: int) -> int | None:
    """The first cut position ``c >= start`` (``text[c]`` a space between two ASCII letters/digits)."""
    m = _CUT.search(text, max(start, 0))
    return m.start() if m else None


def _last_cut(text: str, end: int) -> int | None:
    """The last cut position ``c <= end``, searched backwards in regions that double in size."""
    hi, step = end, 1024
    while hi > 0:
        lo = max(0, hi - step)
        last = None
        for m in _CUT.finditer(text, lo, hi + 2):  # endpos hi + 2: a cut at hi needs text[hi + 1]
            last = m.start()
        if last is not None:
            return last
        hi, step = lo, 2 * step
    return None


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def _template_text(tok: Any, messages: list[Message], *, add_generation_prompt: bool) -> str:
    return str(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt))
