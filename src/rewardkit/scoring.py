"""Scoring: one forward path for training and inference, token-budget batching, and scorers.

A *scorer* is anything with ``score(prompts, responses, conversational) -> ScoreOutput``; they are
registered by name in :data:`SCORERS` (``rm``: a rewardkit or HF sequence-classification RM folder;
``length``: a tiny dummy that scores by response length, for fast end-to-end tests).

Scores do not depend on the batch size: sequences are right-padded with a pad token distinct from EOS
and attention masks are exact, so batch 1 and batch 64 agree to float precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rewardkit.data.chat import Encoded
from rewardkit.data.collate import pad_sequences, token_budget_batches
from rewardkit.data.formats import Message
from rewardkit.models.reward_model import RewardModel, load_reward_model
from rewardkit.registry import Registry
from rewardkit.types import ScoreOutput

DEFAULT_MAX_TOKENS = 16_384
DEFAULT_MAX_BATCH = 256


class Scorer(Protocol):
    """Anything that maps (prompt, response) message lists to scalar rewards."""

    name: str

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput: ...


class EncodingScorer(Scorer, Protocol):
    """A scorer that can tokenize first and score later, so a caller (the server's batcher) can count
    each item's tokens and group items from many requests into token-budget batches in between.
    ``score(p, r, c)`` equals ``score_batch_encoded(encode(p, r, c))``."""

    def encode(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> list[Encoded]: ...

    def score_batch_encoded(self, encoded: Sequence[Encoded]) -> ScoreOutput: ...


SCORERS: Registry[Callable[..., Scorer]] = Registry("scorer")


def forward_rewards(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards of a padded batch: ``batch`` has ``input_ids``/``attention_mask`` (N, T) and optionally
    ``token_type_ids``; returns (N,) in the model's dtype. The model pools as it does under plain
    transformers (BERT: pooler on [CLS]; decoders: last non-pad token)."""
    return model(**batch).logits[:, 0]


@torch.inference_mode()
def score_token_ids(
    model: Any, pad_id: int, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None,
    *, max_tokens: int = DEFAULT_MAX_TOKENS, max_batch: int = DEFAULT_MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Score tokenized sequences, longest first, in batches of at most ``max_tokens`` padded tokens;
    returns (N,) float32 in input order. ``token_type_ids`` may hold empty lists (decoders)."""
    device = next(model.parameters()).device
    out = np.zeros(len(input_ids), dtype=np.float32)
    for idx in token_budget_batches([len(s) for s in input_ids], max_tokens, max_batch):
        types = [token_type_ids[i] for i in idx] if token_type_ids is not None else None
        batch = pad_sequences([input_ids[i] for i in idx], types, pad_id)
        rewards = forward_rewards(model, {k: v.to(device) for k, v in batch.items()})
        out[idx] = rewards.float().cpu().numpy()
        if progress is not None:
            progress(len(idx))
    return out


def score_encoded(rm: RewardModel, encoded: Sequence[Encoded], **kwargs: Any) -> np.ndarray:
    """:func:`score_token_ids` for :class:`~rewardkit.data.chat.Encoded` inputs of ``rm``."""
    ids = [e.input_ids for e in encoded]
    types = [e.token_type_ids or [] for e in encoded]
    return score_token_ids(rm.model, rm.pad_token_id, ids, types, **kwargs)


def _broadcast(flag: Sequence[bool] | bool, n: int) -> list[bool]:
    return [flag] * n if isinstance(flag, bool) else list(flag)


@SCORERS.register("rm")
class RewardModelScorer:
    """A scalar reward model folder (rewardkit or any HF sequence-classification RM) as a scorer."""

    def __init__(
        self, path: str, *, max_length: int | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
        device: str = "cpu",
    ) -> None:
        self.rm = load_reward_model(path, max_length=max_length, device=device)
        self.name = path
        self.max_tokens = max_tokens

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        return self.score_batch_encoded(self.encode(prompts, responses, conversational))

    def encode(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> list[Encoded]:
        """Tokenize (prompt, response) pairs with the model's encoder and truncation policy."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        flags = _broadcast(conversational, len(prompts))
        return [self.rm.encoder.encode(p, r, c) for p, r, c in zip(prompts, responses, flags, strict=True)]

    def score_batch_encoded(self, encoded: Sequence[Encoded]) -> ScoreOutput:
        """Score already-encoded inputs (longest first, in batches of ``max_tokens`` padded tokens)."""
        rewards = score_encoded(self.rm, encoded, max_tokens=self.max_tokens)
        return ScoreOutput(rewards, np.array([e.truncated for e in encoded], dtype=bool))


@SCORERS.register("length")
class LengthScorer:
    """Dummy scorer: reward = number of characters of the response (fast tests; 'longer wins')."""

    def __init__(self, path: str = "length", **_: Any) -> None:
        self.name = "length"

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        rewards = np.array([sum(len(m["content"]) for m in r) for r in responses], dtype=np.float32)
        return ScoreOutput(rewards, np.zeros(len(responses), dtype=bool))


def load_scorer(spec: str, **kwargs: Any) -> Scorer:
    """``spec`` is ``kind:path`` (e.g. ``rm:runs/rm``, ``length``) or a path, which means ``rm:path``."""
    kind, sep, path = spec.partition(":")
    if sep and kind in SCORERS:
        return SCORERS.get(kind)(path, **kwargs)
    if spec in SCORERS:
        return SCORERS.get(spec)(spec, **kwargs)
    return SCORERS.get("rm")(spec, **kwargs)


@dataclass(frozen=True)
class ScoreFileResult:
    """What ``rewardkit score`` wrote and measured; ``seconds`` covers tokenization (which ``datasets``
    caches, so a re-run is faster) and scoring, not model or data loading."""

    out: str
    pairs: int
    completions: int
    invalid: int
    sequences: int
    truncated_sequences: int
    seconds: float

    @property
    def sequences_per_s(self) -> float:
        return self.sequences / max(self.seconds, 1e-9)


def score_file(
    model: str, data: str, out: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, max_length: int | None = None,
    skip_invalid: bool = False, device: str = "cpu",
) -> ScoreFileResult:
    """Score every record of ``data`` with the reward model ``model`` and write ``out`` (jsonl).

    Each output line is the input record with every field kept, plus ``chosen_score``/``rejected_score``
    (pairs) or ``score`` (prompt/completion rows), and ``truncated`` (whether the truncation policy cut
    either input). Lines keep input order. With ``skip_invalid`` an invalid record is written back with
    ``"error"`` set and null scores instead of stopping the run.
    """
    import time

    from tqdm.auto import tqdm

    from rewardkit.data.dataset import load_examples, tokenize_examples

    rm = load_reward_model(model, max_length=max_length, device=device)
    loaded = load_examples(data, kind="any", skip_invalid=skip_invalid)
    t0 = time.perf_counter()
    tok = tokenize_examples(loaded.dataset, rm.encoder).select_columns(
        ["chosen_input_ids", "rejected_input_ids", "chosen_token_type_ids", "rejected_token_type_ids",
         "chosen_prompt_dropped", "chosen_response_dropped", "rejected_prompt_dropped",
         "rejected_response_dropped"])[:]
    pair_rows = [i for i, r in enumerate(tok["rejected_input_ids"]) if r]
    ids = tok["chosen_input_ids"] + [tok["rejected_input_ids"][i] for i in pair_rows]
    types = tok["chosen_token_type_ids"] + [tok["rejected_token_type_ids"][i] for i in pair_rows]
    with tqdm(total=len(ids), desc="score", unit="seq", dynamic_ncols=True) as bar:
        scores = score_token_ids(rm.model, rm.pad_token_id, ids, types, max_tokens=max_tokens, progress=bar.update)
    seconds = time.perf_counter() - t0
    n = len(tok["chosen_input_ids"])
    rejected = dict(zip(pair_rows, scores[n:].tolist(), strict=True))
    cut = [tok["chosen_prompt_dropped"][i] + tok["chosen_response_dropped"][i] + tok["rejected_prompt_dropped"][i]
           + tok["rejected_response_dropped"][i] > 0 for i in range(n)]
    _write_scored(data, out, scores[:n].tolist(), rejected, cut)
    return ScoreFileResult(out, len(pair_rows), n - len(pair_rows), loaded.n_errors, len(ids),
                           int(sum(cut)), seconds)


def _write_scored(data: str, out: str, chosen: list[float], rejected: dict[int, float], cut: list[bool]) -> None:
    """Stream the raw records of ``data`` again, attach scores in order, write ``out`` atomically."""
    import json
    import os
    from pathlib import Path

    from rewardkit.data.formats import DataError, iter_records, parse_record

    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    k = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for loc, record in iter_records(data):
            error = record if isinstance(record, DataError) else None
            if error is None:
                try:
                    parse_record(record, loc)  # type: ignore[arg-type]
                except DataError as e:
                    error = e
            if error is not None:
                row = {**(record if isinstance(record, dict) else {}), "error": str(error), "score": None}
            elif k in rejected:
                row = {**record, "chosen_score": chosen[k], "rejected_score": rejected[k], "truncated": cut[k]}
                k += 1
            else:
                row = {**record, "score": chosen[k], "truncated": cut[k]}
                k += 1
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, target)


# Scorers that live in their own modules, imported on first use (see rewardkit.scorers).
SCORERS.register_lazy("dpo", "rewardkit.scorers.implicit:ImplicitRewardScorer")
SCORERS.register_lazy("judge", "rewardkit.scorers.judge:GenerativeJudge")
SCORERS.register_lazy("verifier", "rewardkit.scorers.verifier:VerifierScorer")
SCORERS.register_lazy("hybrid", "rewardkit.scorers.hybrid:HybridScorer")
SCORERS.register_lazy("direction", "rewardkit.scorers.direction:DirectionScorer")
