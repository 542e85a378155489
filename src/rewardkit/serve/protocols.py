"""OpenRLHF's remote reward protocol: split each decoded ``query`` into prompt and response text.

OpenRLHF posts ``{"query": [prompt + response text], "prompts": [prompt text], "labels": [...]}`` and
reads ``{"rewards", "scores", "extra_logs"}``. Each query is split by the first rule that applies:

1. ``prompt``:   ``prompts[i]`` is given and occurs in ``query[i]``: the response is what follows it;
2. ``template``: the model has a chat template: the response follows the last assistant-turn marker,
                 learned by rendering a probe conversation (e.g. ``<|im_start|>assistant\\n``);
3. ``whole``:    otherwise the whole query is scored as a response without a prompt (counted in
                 ``extra_logs["unsplit"]``, so a mis-configured run shows up in the trainer's logs).

Leading and trailing pad tokens of the reward model's tokenizer are stripped first, as OpenRLHF's own
reference server does. For chat-template models the split texts are tokenized as they are (they already
carry the template); for other models they become a user turn and an assistant turn, encoded as
``rewardkit score`` encodes ``{"prompt": text, "completion": text}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from rewardkit.data.chat import Encoded, truncate_pair

SplitRule = Literal["prompt", "template", "whole"]
_PROBE_USER, _PROBE_ASSISTANT = "rewardkit probe question", "rewardkit probe answer"


class SplitQuery(NamedTuple):
    """One query split into prompt and response text, and the rule that split it."""

    prompt: str
    response: str
    rule: SplitRule


def assistant_marker(tokenizer: Any) -> str | None:
    """The text a chat template puts before an assistant reply, or None without a chat template.

    It is the generation prompt (template with vs without ``add_generation_prompt``); for templates that
    add none, the text between the rendered user turn and the assistant reply.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    user = [{"role": "user", "content": _PROBE_USER}]
    try:
        plain = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=False)
        with_gen = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": _PROBE_ASSISTANT}],
                                             tokenize=False)
    except Exception:  # templates that refuse the probe: fall back to the other rules
        return None
    if with_gen.startswith(plain) and with_gen[len(plain):].strip():
        return with_gen[len(plain):]
    end_user = full.find(_PROBE_USER) + len(_PROBE_USER)
    start = full.find(_PROBE_ASSISTANT, end_user)
    between = full[end_user:start] if start > 0 else ""
    return between if between.strip() else None


def strip_tokens(text: str, tokens: Sequence[str]) -> str:
    """``text`` without leading or trailing repeats of any of ``tokens`` (pad tokens)."""
    changed = True
    while changed:
        changed = False
        for t in tokens:
            if t and text.startswith(t):
                text, changed = text[len(t):], True
            if t and text.endswith(t):
                text, changed = text[: -len(t)], True
    return text


def split_query(query: str, prompt: str | None, marker: str | None) -> SplitQuery:
    """Split one OpenRLHF query by the rules in the module docstring."""
    if prompt:
        at = query.find(prompt)
        if at >= 0:
            cut = at + len(prompt)
            return SplitQuery(query[:cut], query[cut:], "prompt")
    if marker:
        at = query.rfind(marker)
        if at >= 0:
            cut = at + len(marker)
            return SplitQuery(query[:cut], query[cut:], "template")
    return SplitQuery("", query, "whole")


def encode_templated(tokenizer: Any, max_length: int, prompt: str, response: str) -> Encoded:
    """Tokenize already-templated prompt and response text as they are (no template applied again) under
    the ``keep-response`` truncation policy (a leading BOS is kept)."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    r = tokenizer(response, add_special_tokens=False)["input_ids"] if response else []
    bos = getattr(tokenizer, "bos_token_id", None)
    keep_head = 1 if p and bos is not None and p[0] == bos else 0
    tp, tr = truncate_pair(list(p), list(r), max_length, keep_head)
    return Encoded(tp + tr, None, len(p) - len(tp), len(r) - len(tr), len(tp))


def openrlhf_scores(rewards: np.ndarray, mode: str) -> np.ndarray:
    """OpenRLHF's ``scores`` (used for dynamic filtering, which expects 0-1): the rewards themselves, or
    their logistic sigmoid (a Bradley-Terry reward r maps to P(better than a reward-0 response))."""
    if mode == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * rewards.astype(np.float64)))  # = 1 / (1 + exp(-r)), no overflow
    return rewards.astype(np.float64)


def split_counts(rules: Sequence[SplitRule]) -> str:
    """``"prompt=3,template=1,whole=0"`` for the ``X-Rewardkit-Split`` response header."""
    return ",".join(f"{r}={sum(1 for x in rules if x == r)}" for r in ("prompt", "template", "whole"))
