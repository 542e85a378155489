"""A generative judge (registered as scorer ``judge``): an instruct LM asked which of two responses is better.

For a prompt ``x`` and responses ``a``, ``b`` the model reads :data:`TEMPLATE` (as a user turn of its
chat template) with ``a`` in slot A and ``b`` in slot B, and at the answer position we read the logits
of the two answer tokens ``A`` and ``B``: ``L(a, b) = logit_A − logit_B``, the log-odds of a 2-way
softmax. A judge prefers whatever sits in slot A by some bias ``β``: ``L(a, b) = d + β`` and
``L(b, a) = −d + β``. Averaging the log-odds over both orders, ``ℓ(a ≻ b) = (L(a, b) − L(b, a)) / 2 = d``,
cancels it exactly; ``P(a ≻ b) = σ(ℓ)``. With ``both_orders=False`` each comparison is asked once, in an
order drawn from a generator seeded by ``seed`` and the inputs (so the same data gives the same orders).

Benchmarks compare responses through per-response scores. For an item with n responses the judge is
run round-robin on all n(n−1)/2 pairs, and response i scores ``s_i = (1/n) Σ_j ℓ(i ≻ j)`` -- the
least-squares Bradley--Terry strengths of the log-odds matrix (for n = 2: ``s_0 − s_1 = ℓ(0 ≻ 1)``,
so σ(Δ) is the judge's own probability). Each benchmark's rule (best-of-n, RM-Bench's 3×3 matrix, ...)
is then applied to these scores.

Inputs over ``max_length`` tokens are cut: the conversation keeps its newest tokens (at least a quarter
of the room), then each response is cut at its end to an equal share of what is left; such
comparisons are counted as truncated.

A judge trained by ``rewardkit train judge`` (Con-J) says so in its folder's ``rewardkit.json``
(``{"kind": "judge", "template": ..., "rationale": true, "rationale_tokens": n}``): its own template is
used, and for each order asked it first writes a rationale greedily (at most ``n`` tokens, stopped at
:data:`VERDICT_PREFIX`), then the logits of `` A`` / `` B`` are read after ``<rationale>\nBetter:``. The
rationales come back in :attr:`ScoreOutput.rationales` (one tuple per comparison, one text per order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.data.chat import render_plain
from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.causal_lm import left_pad, load_causal_lm
from rewardkit.scorers.lm import DEFAULT_LM_TOKENS, CachingTokenizer, model_fingerprint, sorted_batches
from rewardkit.scoring import ScoreOutput, ScorerOptions

TEMPLATE = (
    "You are judging two responses to the same conversation. Decide which response is better: more helpful, "
    "correct, honest and harmless.\n\n[Conversation]\n{conversation}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
    "Which response is better? Answer with a single letter: A or B."
)
DEFAULT_MAX_LENGTH = 2048
VERDICT_PREFIX = "Better:"  # a rationale judge's final line: "Better: A" / "Better: B"
DEFAULT_RATIONALE_TOKENS = 128


def judge_metadata(path: str) -> dict[str, Any]:
    """The ``rewardkit.json`` of a judge folder made by ``train judge`` (``kind: judge``), else {}."""
    from pathlib import Path

    meta_path = Path(path) / "rewardkit.json"
    if not meta_path.is_file():
        return {}
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return meta if isinstance(meta, dict) and meta.get("kind") == "judge" else {}


def round_robin_scores(logodds: np.ndarray) -> np.ndarray:
    """Least-squares Bradley--Terry strengths (n,) from an antisymmetric log-odds matrix (n, n):
    ``s_i = (1/n) Σ_j L[i, j]`` minimises ``Σ_{i<j} (s_i − s_j − L[i, j])²`` with ``Σ s = 0``."""
    n = logodds.shape[0]
    return logodds.sum(axis=1) / n


def split_budget(conversation: int, a: int, b: int, room: int) -> tuple[int, int, int]:
    """Tokens kept of the conversation (its newest), response A and response B (their first) so that
    they fit in ``room``: the conversation keeps at least a quarter of the room, the responses share the
    rest equally (a short one leaves its unused share to the other)."""
    room = max(room, 3)
    if conversation + a + b <= room:
        return conversation, a, b
    keep_c = min(conversation, max(room // 4, room - a - b))
    left = room - keep_c
    keep_a = min(a, max(left // 2, left - b))
    return keep_c, keep_a, min(b, left - keep_a)


def _seeded_flip(seed: int, key: str) -> bool:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return bool(digest[0] & 1)


class GenerativeJudge:
    """``judge:MODEL`` -- pairwise preferences from an instruct LM's answer-token logits."""

    yields_uncertainty = False  # so --pessimism is refused when the scorer is built

    def __init__(self, path: str, *, max_length: int | None = None, max_tokens: int = DEFAULT_LM_TOKENS,
                 dtype: str = "auto", device: str = "auto", seed: int = 0, both_orders: bool = True) -> None:
        self.lm = load_causal_lm(path, dtype=dtype, device=device)
        self.tok = CachingTokenizer(self.lm.tokenizer)
        self.name = f"judge:{path}"
        self.max_length = int(max_length or DEFAULT_MAX_LENGTH)
        self.max_tokens, self.dtype, self.seed, self.both_orders = max_tokens, dtype, seed, both_orders
        meta = judge_metadata(self.lm.path)
        self.template = str(meta.get("template", TEMPLATE))
        rationale = bool(meta.get("rationale"))
        self.rationale_tokens = int(meta.get("rationale_tokens", DEFAULT_RATIONALE_TOKENS)) if rationale else 0
        space = "" if self.lm.has_chat_template and not self.rationale_tokens else " "
        self.answer_ids = tuple(self._single_token(space + c) for c in "AB")

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> GenerativeJudge:
        return cls(path, max_length=opts.max_length, max_tokens=opts.batch_tokens or DEFAULT_LM_TOKENS,
                   dtype=opts.dtype, device=opts.device, seed=opts.seed, both_orders=opts.judge_both_orders)

    def _single_token(self, text: str) -> int:
        ids = self.lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise OptionError(f"{self.name}: the answer {text!r} is {len(ids)} tokens; a judge needs one token each")
        return int(ids[0])

    def identity(self) -> dict[str, Any]:
        """Everything that changes a score (the score cache's namespace)."""
        return {"kind": "judge", "model": self.lm.name, "fingerprint": model_fingerprint(self.lm.path),
                "template": self.template, "rationale_tokens": self.rationale_tokens,
                "max_length": self.max_length, "dtype": self.dtype,
                "both_orders": self.both_orders, "seed": None if self.both_orders else self.seed}

    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
              conversational: Sequence[bool] | bool = True) -> ScoreOutput:
        raise TypeError(f"{self.name} is a pairwise judge: it compares two responses (use .compare, or "
                        "`rewardkit eval`, which scores each item round-robin)")

    def compare(self, prompts: Sequence[Sequence[Message]], first: Sequence[Sequence[Message]],
                second: Sequence[Sequence[Message]], *, progress: Callable[[int], None] | None = None,
                ) -> ScoreOutput:
        """Log-odds (N,) float32 that ``first[i]`` is better than ``second[i]``, and truncation flags (N,)."""
        asks: list[tuple[int, bool]] = []  # (comparison, swapped?)
        for i, (p, a, b) in enumerate(zip(prompts, first, second, strict=True)):
            if self.both_orders:
                asks += [(i, False), (i, True)]
            else:
                asks.append((i, _seeded_flip(self.seed, json.dumps([p, a, b], sort_keys=True))))
        encoded = [self._encode(prompts[i], *((second[i], first[i]) if swap else (first[i], second[i])))
                   for i, swap in asks]
        seqs = [e[0] for e in encoded]
        written: list[str] = []
        if self.rationale_tokens:
            written = self._rationales(seqs)
            seqs = [s + self._verdict_ids(r) for s, r in zip(seqs, written, strict=True)]
        raw = self._logodds(seqs, progress)
        out = np.zeros(len(prompts), dtype=np.float64)
        cut = np.zeros(len(prompts), dtype=bool)
        for (i, swap), value, (_, truncated) in zip(asks, raw, encoded, strict=True):
            out[i] += (-value if swap else value) / (2 if self.both_orders else 1)
            cut[i] |= truncated
        if not self.rationale_tokens:
            return ScoreOutput(out.astype(np.float32), cut)
        per_item: list[list[str]] = [[] for _ in prompts]
        for (i, _), text in zip(asks, written, strict=True):
            per_item[i].append(text)
        rationales = np.empty(len(prompts), dtype=object)
        for i, texts in enumerate(per_item):
            rationales[i] = tuple(texts)
        return ScoreOutput(out.astype(np.float32), cut, rationales=rationales)

    def _verdict_ids(self, rationale: str) -> list[int]:
        """Ids of ``<rationale>\nBetter:`` (the answer token `` A`` / `` B`` comes next)."""
        text = f"{rationale}\n{VERDICT_PREFIX}" if rationale else VERDICT_PREFIX
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def _rationales(self, seqs: Sequence[list[int]]) -> list[str]:
        """A greedy rationale per judge input (at most ``rationale_tokens`` tokens, cut before ``Better:``)."""
        out = [""] * len(seqs)
        pad = self.lm.pad_id
        for batch in sorted_batches([len(s) + self.rationale_tokens for s in seqs], self.max_tokens):
            inputs = left_pad([seqs[i] for i in batch], pad, self.lm.device)
            width = inputs["input_ids"].shape[1]
            generated = self.lm.model.generate(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], do_sample=False,
                max_new_tokens=self.rationale_tokens, pad_token_id=pad, stop_strings=[VERDICT_PREFIX],
                tokenizer=self.lm.tokenizer, temperature=None, top_p=None, top_k=None)
            for row, i in enumerate(batch):
                text = self.lm.tokenizer.decode(generated[row, width:], skip_special_tokens=True)
                out[i] = text.split(VERDICT_PREFIX)[0].strip()
        return out

    def _encode(self, prompt: Sequence[Message], a: Sequence[Message], b: Sequence[Message]) -> tuple[list[int], bool]:
        """The judge's input ids for (prompt, a in slot A, b in slot B), and whether it was cut."""
        tok = self.tok
        parts = [render_plain(prompt), "\n".join(m["content"] for m in a), "\n".join(m["content"] for m in b)]
        ids = [list(tok(t, add_special_tokens=False)["input_ids"]) for t in parts]
        overhead = len(self._wrap(self.template.format(conversation="", a="", b="")))
        # slack: re-tokenizing the joined text may shift a few tokens; a rationale judge also writes its rationale
        room = self.max_length - overhead - 8 - self.rationale_tokens
        keep_c, keep_a, keep_b = split_budget(len(ids[0]), len(ids[1]), len(ids[2]), room)
        truncated = (keep_c, keep_a, keep_b) != tuple(map(len, ids))
        if truncated:
            kept = [ids[0][len(ids[0]) - keep_c:], ids[1][:keep_a], ids[2][:keep_b]]
            parts = [tok.decode(x) for x in kept]
        return self._wrap(self.template.format(conversation=parts[0], a=parts[1], b=parts[2])), truncated

    def _wrap(self, text: str) -> list[int]:
        if self.lm.has_chat_template:
            out = self.tok.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                               add_generation_prompt=True)
            return list(out["input_ids"] if hasattr(out, "keys") else out)
        if self.rationale_tokens:
            return list(self.tok(text, add_special_tokens=True)["input_ids"])
        return list(self.tok(text + "\nAnswer:", add_special_tokens=True)["input_ids"])

    @torch.inference_mode()
    def _logodds(self, seqs: Sequence[list[int]], progress: Callable[[int], None] | None) -> np.ndarray:
        """``logit_A − logit_B`` (N,) at the position after each sequence, in length-sorted batches."""
        out = np.zeros(len(seqs), dtype=np.float64)
        pad = self.lm.pad_id
        a, b = self.answer_ids
        for batch in sorted_batches([len(s) for s in seqs], self.max_tokens):
            inputs = left_pad([seqs[i] for i in batch], pad, self.lm.device)
            logits = self.lm.model(**inputs, logits_to_keep=1).logits[:, -1].float()  # (B, V)
            out[batch] = (logits[:, a] - logits[:, b]).cpu().numpy()
            if progress is not None:
                progress(len(batch))
        return out
