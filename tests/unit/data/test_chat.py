"""Encoding (prompt, response) pairs: the keep-response truncation policy, the three input formats, and the
guarantee that nothing longer than ``max_length`` ever comes out."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rewardkit.data.chat import (
    PairEncoder,
    PairTemplate,
    input_format_for,
    probe_pair_template,
    render_plain,
    truncate_pair,
)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def chat_ids(tok: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def plain_ids(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------- truncate_pair by hand

P10 = list(range(100, 110))  # a 10-token prompt: 100 is the oldest token, 109 the newest
R3 = [1, 2, 3]
R20 = list(range(200, 220))


def test_fits_is_unchanged() -> None:
    assert truncate_pair([1, 2, 3], [4, 5], 5) == ([1, 2, 3], [4, 5])
    assert truncate_pair([], [4, 5], 8) == ([], [4, 5])


def test_long_prompt_drops_oldest_prompt_tokens_and_keeps_the_response_whole() -> None:
    # 10 + 3 > 8: the response (3) fits beside the 8 // 4 = 2 minimum prompt, so it stays whole
    # and the prompt keeps its newest 8 - 3 = 5 tokens.
    assert truncate_pair(P10, R3, 8) == ([105, 106, 107, 108, 109], R3)


def test_long_response_keeps_a_minimum_prompt_and_is_cut_at_its_end() -> None:
    # budget 8: the prompt keeps min(10, 8 // 4) = 2 newest tokens; the response gets 8 - 2 = 6, its first 6.
    assert truncate_pair(P10, R20, 8) == ([108, 109], R20[:6])
    # budget 20: min(10, 5) = 5 prompt tokens, 15 response tokens
    assert truncate_pair(P10, R20, 20) == (P10[-5:], R20[:15])


def test_short_prompt_is_kept_whole_when_the_response_is_cut() -> None:
    # min(len(prompt) = 1, 8 // 4 = 2) = 1: the whole prompt stays, the response gets 7
    assert truncate_pair([7], R20, 8) == ([7], R20[:7])
    assert truncate_pair([], R20, 8) == ([], R20[:8])


def test_keep_head_keeps_the_bos() -> None:
    bos = 0
    # head [BOS] + 10 body tokens, response 3, budget 8: room 7 for body + response, the response fits
    # beside min(10, 2) body tokens, so the body keeps 7 - 3 = 4 newest tokens.
    assert truncate_pair([bos, *P10], R3, 8, keep_head=1) == ([bos, 106, 107, 108, 109], R3)
    # long response: the body keeps min(10, 8 // 4) = 2, the response gets 7 - 2 = 5
    assert truncate_pair([bos, *P10], R20, 8, keep_head=1) == ([bos, 108, 109], R20[:5])
    # without keep_head the BOS is simply the oldest token and goes first
    assert truncate_pair([bos, *P10], R3, 8)[0] == [105, 106, 107, 108, 109]


def test_truncate_pair_property_over_random_lengths() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        budget = rng.randint(8, 80)
        n_p, n_r = rng.randint(0, 120), rng.randint(1, 120)
        keep_head = rng.choice([0, 1]) if n_p else 0
        prompt, response = list(range(n_p)), list(range(1000, 1000 + n_r))
        tp, tr = truncate_pair(prompt, response, budget, keep_head)
        if n_p + n_r <= budget:
            assert (tp, tr) == (prompt, response)
            continue
        assert len(tp) + len(tr) == budget  # never longer, and no budget wasted
        assert tp[:keep_head] == prompt[:keep_head]  # the BOS survives
        body = tp[keep_head:]
        assert body == (prompt[len(prompt) - len(body):] if body else [])  # newest prompt tokens
        assert tr == response[: len(tr)]  # the response is cut at its end only
        min_prompt = min(n_p - keep_head, budget // 4)
        assert len(body) >= min_prompt
        if len(tr) < n_r:  # the response is cut only when the minimum prompt leaves it no room
            assert len(body) == min_prompt


# ----------------------------------------------------------------------------- helpers


def test_render_plain() -> None:
    assert render_plain([user("What is 2+2?")]) == "What is 2+2?"
    assert render_plain([{"role": "system", "content": "Be brief."}, user("Hi")]) == "system: Be brief.\nuser: Hi"
    assert render_plain([user("a"), assistant("b"), user("c")]) == "user: a\nassistant: b\nuser: c"
    assert render_plain([assistant("only")]) == "assistant: only"
    assert render_plain([]) == ""


def test_probe_pair_template_of_bert(minilm_tokenizer: Any) -> None:
    cls, sep = minilm_tokenizer.cls_token_id, minilm_tokenizer.sep_token_id
    t = probe_pair_template(minilm_tokenizer)
    assert t == PairTemplate(prefix=(cls,), middle=(sep,), suffix=(sep,), types=(0, 0, 0, 1, 1))
    assert t.n_special == 3


def test_input_format_for(minilm_tokenizer: Any, smollm2_tokenizer: Any) -> None:
    assert input_format_for(smollm2_tokenizer, "llama") == "chat"
    assert input_format_for(minilm_tokenizer, "bert") == "text_pair"
    assert input_format_for(minilm_tokenizer, "gpt2") == "concat"


def test_max_length_below_8_is_rejected(minilm_tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="max_length must be at least 8, got 7"):
        PairEncoder(minilm_tokenizer, "text_pair", 7)


# ----------------------------------------------------------------------------- text_pair (MiniLM)

PROMPT = "What colour is the sky on a clear day?"
RESPONSE = "It is blue, because air scatters blue light more than red light."


def test_text_pair_matches_the_tokenizer_pair_encoding(minilm_tokenizer: Any) -> None:
    tok = minilm_tokenizer
    enc = PairEncoder(tok, "text_pair", 128).encode([user(PROMPT)], [assistant(RESPONSE)], False)
    ref = tok(PROMPT, RESPONSE)
    assert enc.input_ids == ref["input_ids"]
    assert enc.token_type_ids == ref["token_type_ids"]
    n_p = len(plain_ids(tok, PROMPT))
    # [CLS] prompt [SEP] response [SEP], segment 0 up to the first [SEP], 1 after
    assert enc.input_ids[0] == tok.cls_token_id
    assert enc.input_ids[n_p + 1] == tok.sep_token_id
    assert enc.input_ids[-1] == tok.sep_token_id
    assert enc.token_type_ids == [0] * (n_p + 2) + [1] * (len(enc.input_ids) - n_p - 2)
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped, enc.truncated) == (0, 0, False)


def test_text_pair_renders_multi_turn_prompts_and_joins_response_turns(minilm_tokenizer: Any) -> None:
    tok = minilm_tokenizer
    prompt = [{"role": "system", "content": "Be kind."}, user("Hi")]
    response = [assistant("Hello."), assistant("How are you?")]
    enc = PairEncoder(tok, "text_pair", 128).encode(prompt, response, True)
    assert enc.input_ids == tok("system: Be kind.\nuser: Hi", "Hello.\nHow are you?")["input_ids"]


def test_text_pair_without_prompt(minilm_tokenizer: Any) -> None:
    tok = minilm_tokenizer
    enc = PairEncoder(tok, "text_pair", 64).encode([], [assistant("Blue.")], False)
    assert enc.input_ids == [tok.cls_token_id, tok.sep_token_id, *plain_ids(tok, "Blue."), tok.sep_token_id]
    assert enc.token_type_ids == [0, 0, 1, 1, 1]


def test_text_pair_truncation(minilm_tokenizer: Any) -> None:
    tok = minilm_tokenizer
    prompt = "one two three four five six seven eight nine ten eleven twelve"
    response = " ".join(["word"] * 20)
    p, r = plain_ids(tok, prompt), plain_ids(tok, response)
    assert (len(p), len(r)) == (12, 20)  # one WordPiece token per word
    enc = PairEncoder(tok, "text_pair", 16).encode([user(prompt)], [assistant(response)], False)
    # budget 16 - 3 specials = 13; the prompt keeps min(12, 13 // 4) = 3 newest tokens, the response its first 10
    cls, sep = tok.cls_token_id, tok.sep_token_id
    assert enc.input_ids == [cls, *p[-3:], sep, *r[:10], sep]
    assert enc.token_type_ids == [0] * 5 + [1] * 11
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped) == (9, 10)
    assert enc.truncated

    # a shorter response fits beside the minimum prompt: only the oldest prompt tokens go
    enc = PairEncoder(tok, "text_pair", 16).encode([user(prompt)], [assistant("blue sky")], False)
    assert enc.input_ids == [cls, *p[-11:], sep, *plain_ids(tok, "blue sky"), sep]
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped) == (1, 0)


# ----------------------------------------------------------------------------- chat (SmolLM2)

CHAT_PROMPT = [{"role": "system", "content": "You answer briefly."}, user("What colour is the sky?"),
               assistant("Blue."), user("And at night?")]
CHAT_RESPONSE = [assistant("Mostly black, with stars.")]


def test_chat_matches_the_chat_template(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    enc = PairEncoder(tok, "chat", 512).encode(CHAT_PROMPT, CHAT_RESPONSE, True)
    prompt_part = chat_ids(tok, CHAT_PROMPT, add_generation_prompt=True)
    assert enc.input_ids[: len(prompt_part)] == prompt_part
    assert enc.input_ids == chat_ids(tok, CHAT_PROMPT + CHAT_RESPONSE)
    assert enc.token_type_ids is None
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped) == (0, 0)


def test_chat_truncation_counts(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    p = chat_ids(tok, CHAT_PROMPT, add_generation_prompt=True)
    full = chat_ids(tok, CHAT_PROMPT + CHAT_RESPONSE)
    r = full[len(p):]
    assert p[0] == tok.bos_token_id  # SmolLM2's BOS is <|im_start|>: kept by the policy
    assert len(p) > 16 and len(r) < 11
    enc = PairEncoder(tok, "chat", 16).encode(CHAT_PROMPT, CHAT_RESPONSE, True)
    # max_length 16 with the BOS kept: 15 for prompt body + response; the response fits beside
    # min(len(p) - 1, 16 // 4 = 4) prompt tokens, so the body keeps 15 - len(r) newest tokens.
    keep = 15 - len(r)
    assert enc.input_ids == [tok.bos_token_id, *p[len(p) - keep:], *r]
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped) == (len(p) - 1 - keep, 0)


def test_chat_long_response_is_cut_at_its_end(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    response = [assistant(" ".join(["stars"] * 40))]
    p = chat_ids(tok, CHAT_PROMPT, add_generation_prompt=True)
    r = chat_ids(tok, CHAT_PROMPT + response)[len(p):]
    enc = PairEncoder(tok, "chat", 16).encode(CHAT_PROMPT, response, True)
    # BOS + min(len(p) - 1, 4) = 4 newest prompt tokens + the first 16 - 1 - 4 = 11 response tokens
    assert enc.input_ids == [tok.bos_token_id, *p[-4:], *r[:11]]
    assert (enc.prompt_tokens_dropped, enc.response_tokens_dropped) == (len(p) - 5, len(r) - 11)


def test_chat_backbone_with_plain_text_prompt_uses_the_template(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    enc = PairEncoder(tok, "chat", 256).encode([user("The sky is")], [assistant(" blue.")], False)
    assert enc.input_ids == chat_ids(tok, [user("The sky is"), assistant(" blue.")])


def test_chat_backbone_without_prompt_or_conversation_concatenates(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    enc = PairEncoder(tok, "chat", 64).encode([], [assistant("Blue sky.")], False)
    assert enc.input_ids == tok("Blue sky.")["input_ids"] + [tok.eos_token_id]


def test_concat_format(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    enc = PairEncoder(tok, "concat", 64).encode([user("The sky is")], [assistant(" blue.")], False)
    assert enc.input_ids == tok("The sky is")["input_ids"] + plain_ids(tok, " blue.") + [tok.eos_token_id]
    assert enc.token_type_ids is None


# ----------------------------------------------------------------------------- never longer than max_length


def _random_text(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n))


WORDS = ["sky", "blue", "the", "reward", "model", "token", "très", "naïve", "1234", "?", "emoji🙂", "\n", "aligned"]


@pytest.mark.parametrize("fmt", ["text_pair", "chat"])
def test_encoded_length_never_exceeds_max_length(fmt: str, minilm_tokenizer: Any, smollm2_tokenizer: Any) -> None:
    tok = minilm_tokenizer if fmt == "text_pair" else smollm2_tokenizer
    rng = random.Random(7)
    untruncated = PairEncoder(tok, fmt, 100_000)
    encoders: dict[int, PairEncoder] = {}
    n_truncated = 0
    for _ in range(60):
        max_length = rng.randint(8, 96)
        n_turns = rng.randint(1, 3)
        prompt = []
        for i in range(n_turns):
            prompt.append(user(_random_text(rng, WORDS, rng.randint(0, 60))))
            if i < n_turns - 1:
                prompt.append(assistant(_random_text(rng, WORDS, rng.randint(1, 20))))
        response = [assistant(_random_text(rng, WORDS, rng.randint(1, 80)))]
        enc = encoders.setdefault(max_length, PairEncoder(tok, fmt, max_length)).encode(prompt, response, True)
        ref = untruncated.encode(prompt, response, True)
        assert not ref.truncated
        # the untruncated encoding is the backbone's own, token for token: the tokenizer's text pair, or
        # the chat template of prompt + response (even where a response starting with a newline merges
        # with the template's newline into one token)
        if fmt == "text_pair":
            assert ref.input_ids == tok(render_plain(prompt), response[0]["content"])["input_ids"]
        else:
            assert ref.input_ids == list(tok.apply_chat_template(prompt + response, return_dict=True)["input_ids"])
        assert len(enc.input_ids) == min(max_length, len(ref.input_ids))
        assert len(enc.input_ids) + enc.prompt_tokens_dropped + enc.response_tokens_dropped == len(ref.input_ids)
        if enc.truncated:
            n_truncated += 1
        else:
            assert enc.input_ids == ref.input_ids
        if enc.token_type_ids is not None:
            assert len(enc.token_type_ids) == len(enc.input_ids)
    assert 20 < n_truncated < 60  # both branches were exercised


def test_chat_response_starting_with_newline_is_the_template_token_for_token(smollm2_tokenizer: Any) -> None:
    # "assistant\n" + "\n\nHello" tokenizes "\n\n\n" as one token, so the prompt's ids are not a prefix of the
    # full ids; the encoding must still be exactly the template of prompt + response.
    tok = smollm2_tokenizer
    prompt, response = [user("Say hi.")], [assistant("\n\nHello there.")]
    full = list(tok.apply_chat_template(prompt + response, return_dict=True)["input_ids"])
    prompt_only = list(tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"])
    assert full[: len(prompt_only)] != prompt_only  # the merge really happens with this tokenizer
    enc = PairEncoder(tok, "chat", 512).encode(prompt, response, True)
    assert enc.input_ids == full
    short = PairEncoder(tok, "chat", len(full) - 3).encode(prompt, response, True)
    assert short.input_ids[-3:] == full[-3:] and short.prompt_tokens_dropped == 3  # response kept whole
