"""Long texts are tokenized in a window (only the prompt's end and the response's start can survive the
truncation policy): the ids must be exactly those of tokenizing everything and then truncating, for a BERT
WordPiece encoder and a byte-level BPE chat decoder, including long runs of whitespace and texts with no
place to cut."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from rewardkit.data.chat import (
    Encoded,
    PairEncoder,
    head_tokens,
    probe_pair_template,
    render_plain,
    splits_at_spaces,
    tail_tokens,
    truncate_pair,
)

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Zürich", "naïve", "42", "x7", "don't",
         "(a)", "b,", "-", "日本", "🙂", "\n", "\t", "  "]


def text(rng: random.Random, n_words: int) -> str:
    """Words, numbers, punctuation, non-ASCII letters, emoji and whitespace of several kinds."""
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _ids(tok: Any, s: str, special: bool = False) -> list[int]:
    return list(tok(s, add_special_tokens=special)["input_ids"])


def reference(tok: Any, fmt: str, max_length: int, prompt: Sequence[dict[str, str]],
              response: Sequence[dict[str, str]], conversational: bool) -> tuple[list[int], list[int] | None, int]:
    """The whole-text encoding (what PairEncoder did before windows): tokenize everything, then truncate.
    Returns (input_ids, token_type_ids, response_start)."""
    if fmt == "text_pair":
        t = probe_pair_template(tok)
        p = _ids(tok, render_plain(prompt)) if prompt else []
        r = _ids(tok, "\n".join(m["content"] for m in response))
        tp, tr = truncate_pair(p, r, max_length - t.n_special)
        ids = [*t.prefix, *tp, *t.middle, *tr, *t.suffix]
        assert t.types is not None
        types = [seg for part, seg in zip((t.prefix, tp, t.middle, tr, t.suffix), t.types, strict=True) for _ in part]
        return ids, types, len(t.prefix) + len(tp) + len(t.middle)
    if fmt == "chat" and (conversational or prompt):
        def chat(msgs: list[dict[str, str]], gen: bool) -> list[int]:
            out = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen)
            return list(out["input_ids"] if hasattr(out, "keys") else out)

        q = chat(list(prompt), True) if prompt else []
        full = chat([*prompt, *response], False)
        k = 0
        while k < min(len(q), len(full)) and q[k] == full[k]:
            k += 1
        p, r = full[:k], full[k:]
    else:
        p = _ids(tok, "".join(m["content"] for m in prompt), True) if prompt else []
        r = [*_ids(tok, "".join(m["content"] for m in response), not prompt), tok.eos_token_id]
    keep_head = 1 if p and p[0] == tok.bos_token_id else 0
    tp, tr = truncate_pair(p, r, max_length, keep_head)
    return tp + tr, None, len(tp)


def assert_same(enc: Encoded, expected: tuple[list[int], list[int] | None, int], name: str = "") -> None:
    assert (enc.input_ids, enc.token_type_ids, enc.response_start) == expected, name


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, list[dict[str, str]], list[dict[str, str]]]]:
    """(name, prompt, response): long on either side, whitespace runs at and around the window edges."""
    rng = random.Random(0)
    long_p, long_r = text(rng, 3000), text(rng, 3000)
    spaces = " " * 5000
    return [
        ("long prompt, short response", [user(long_p)], [assistant("Fine, thanks.")]),
        ("short prompt, long response", [user("Hi?")], [assistant(long_r)]),
        ("both long", [user(long_p)], [assistant(long_r)]),
        ("several long turns", [user(long_p[:6000]), assistant(long_r[:6000]), user(long_p[6000:])],
         [assistant(long_r[:7000]), assistant(long_r[7000:])]),
        ("response opens with a long run of spaces", [user("Q?")], [assistant(spaces + long_r)]),
        ("prompt ends with a long run of spaces", [user(long_p + spaces)], [assistant("ok then")]),
        ("runs of spaces inside", [user(long_p[:3000] + spaces + long_p[3000:])],
         [assistant(long_r[:2500] + "\n" * 3000 + long_r[2500:])]),
        ("one huge word", [user("x" * 30000)], [assistant("y" * 30000)]),
    ]


MAX_LENGTHS = (16, 64)


def test_both_tokenizers_split_before_spaces(minilm_tokenizer: Any, smollm2_tokenizer: Any) -> None:
    assert splits_at_spaces(minilm_tokenizer) and splits_at_spaces(smollm2_tokenizer)


@pytest.mark.parametrize("max_length", MAX_LENGTHS)
def test_text_pair_windows_give_the_whole_text_ids(minilm_tokenizer: Any, cases: Any, max_length: int) -> None:
    enc = PairEncoder(minilm_tokenizer, "text_pair", max_length)
    windowed = 0
    for name, prompt, response in cases:
        out = enc.encode(prompt, response, True)
        assert_same(out, reference(minilm_tokenizer, "text_pair", max_length, prompt, response, True), name)
        windowed += out.untokenized_chars > 0
    assert windowed >= 5  # the long cases really were cut before tokenizing


@pytest.mark.parametrize("max_length", MAX_LENGTHS)
@pytest.mark.parametrize(("fmt", "conversational"), [("chat", True), ("concat", False)])
def test_decoder_windows_give_the_whole_text_ids(smollm2_tokenizer: Any, cases: Any, max_length: int, fmt: str,
                                                 conversational: bool) -> None:
    enc = PairEncoder(smollm2_tokenizer, fmt, max_length)
    windowed = 0
    for name, prompt, response in cases:
        out = enc.encode(prompt, response, conversational)
        assert_same(out, reference(smollm2_tokenizer, fmt, max_length, prompt, response, conversational), name)
        windowed += out.untokenized_chars > 0
    assert windowed >= 4


def test_chat_without_prompt_and_plain_response(smollm2_tokenizer: Any) -> None:
    rng = random.Random(1)
    response = [assistant(text(rng, 4000))]
    enc = PairEncoder(smollm2_tokenizer, "chat", 32)
    for conversational in (True, False):
        out = enc.encode([], response, conversational)
        assert_same(out, reference(smollm2_tokenizer, "chat", 32, [], response, conversational))
        assert out.untokenized_chars > 0


def test_counts_of_a_windowed_text_are_lower_bounds(minilm_tokenizer: Any) -> None:
    """Tokens dropped from the window are counted; the characters never tokenized are counted apart."""
    response = " ".join(["word"] * 10000)  # 10000 tokens, 49999 characters
    out = PairEncoder(minilm_tokenizer, "text_pair", 16).encode([user("hi")], [assistant(response)], True)
    assert out.input_ids == [101, *_ids(minilm_tokenizer, "hi"), 102, *[2773] * 12, 102]
    assert 0 < out.response_tokens_dropped < 10000 - 12
    assert out.untokenized_chars > 0
    assert out.truncated


def test_short_texts_are_tokenized_whole(minilm_tokenizer: Any) -> None:
    """Up to 64 characters per token of max_length, nothing is windowed and the counts are exact."""
    response = " ".join(["word"] * 150)  # 749 characters < 64 × (13 + 1)
    out = PairEncoder(minilm_tokenizer, "text_pair", 16).encode([user("hi")], [assistant(response)], True)
    assert (out.untokenized_chars, out.prompt_tokens_dropped, out.response_tokens_dropped) == (0, 0, 150 - 12)


def test_head_and_tail_tokens_match_the_whole_text(smollm2_tokenizer: Any) -> None:
    rng = random.Random(2)
    s = text(rng, 5000)
    whole = _ids(smollm2_tokenizer, s)
    head, tail = head_tokens(smollm2_tokenizer, s, 40), tail_tokens(smollm2_tokenizer, s, 40)
    assert head.skipped > 0 and tail.skipped > 0
    assert len(head.ids) > 40 and head.ids == whole[: len(head.ids)]
    assert len(tail.ids) >= 40 and tail.ids == whole[len(whole) - len(tail.ids):]


class PrependingTokenizer:
    """A SentencePiece-like toy: every text gets a leading "▁" token, so tokens of two pieces differ from
    the whole text's -- the case the probe must catch (windows would change the ids)."""

    bos_token_id = eos_token_id = None
    chat_template = None
    added_tokens_decoder: ClassVar[dict[int, Any]] = {}

    def __call__(self, s: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [0, *(ord(c) for c in s.replace(" ", "▁"))]}


def test_a_tokenizer_that_fails_the_probe_is_tokenized_whole() -> None:
    tok = PrependingTokenizer()
    assert not splits_at_spaces(tok)
    enc = PairEncoder(tok, "concat", 16)
    assert not enc.windowed
    long = "ab " * 2000
    out = enc.encode([user(long)], [assistant(long)], False)
    assert out.untokenized_chars == 0
    p, r = [0, *(ord(c) for c in long.replace(" ", "▁"))], [0, *(ord(c) for c in long.replace(" ", "▁"))]
    tp, tr = truncate_pair(p, r, 16)
    assert out.input_ids == tp + tr


def random_piece(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return rng.choice([" ", "\n", "\t", "\u3000"]) * rng.randint(50, 3000)  # a long run of whitespace
    if kind < 0.15:
        return rng.choice("ab9") * rng.randint(50, 2000)  # a long word
    return text(rng, rng.randint(1, 400))


@pytest.mark.parametrize("seed", range(6))
def test_random_long_inputs_match_the_whole_text(minilm_tokenizer: Any, smollm2_tokenizer: Any, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        max_length = rng.choice([8, 12, 33])
        prompt = [user("".join(random_piece(rng) for _ in range(rng.randint(0, 12))) or "q")]
        response = [assistant("".join(random_piece(rng) for _ in range(rng.randint(1, 12))))]
        for tok, fmt, conv in ((minilm_tokenizer, "text_pair", True), (smollm2_tokenizer, "chat", True),
                               (smollm2_tokenizer, "concat", False)):
            out = PairEncoder(tok, fmt, max_length).encode(prompt, response, conv)
            assert_same(out, reference(tok, fmt, max_length, prompt, response, conv), f"{seed} {fmt} {max_length}")
