"""A DPO-trained policy as an implicit reward model (registered as scorer ``dpo``).

DPO's policy defines a reward up to a per-prompt constant: ``r(x, y) = β·[log π(y|x) − log π_ref(y|x)]``.
With a reference model (``ref_model``) the score is, as in reward-bench, the summed log-ratio over the
response tokens (β = 1; scale changes no ranking, only the calibration read off σ(Δ)):

    ``ratio``: Σ_t log π(y_t | x, y_<t) − Σ_t log π_ref(y_t | x, y_<t)

Reference-free variants (``ref_free``) use the policy alone:

    ``sum``:  Σ_t log π(y_t | x, y_<t)                    (favours short responses)
    ``avg``:  (1/|y|) Σ_t log π(y_t | x, y_<t)            (length-normalised, as SimPO's reward)
    ``norm``: −‖(log π(y_t | x, y_<t))_t‖₂                (reward-bench's ``norm``: the negative L2 norm of
              the per-token log-probabilities; grows like √|y| instead of |y| for a steady per-token loss)

The prompt is rendered with the model's chat template (generation prompt added); the response tokens are
everything the template adds after it (for ChatML, the reply and its end-of-turn token). Inputs longer
than ``max_length`` are cut by rewardkit's keep-response policy (oldest prompt tokens first) and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.data.chat import PairEncoder
from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.causal_lm import load_causal_lm, response_mask_from_starts, right_pad, sequence_logps
from rewardkit.scorers.lm import DEFAULT_LM_TOKENS, CachingTokenizer, model_fingerprint, sorted_batches
from rewardkit.scoring import ScoreOutput, ScorerOptions

MODES = ("ratio", "sum", "avg", "norm")
DEFAULT_MAX_LENGTH = 2048


def reduce_logps(token_logps: torch.Tensor, mode: str) -> float:
    """One response's score from its per-token log-probabilities (T,) under ``mode`` (not ``ratio``)."""
    if token_logps.numel() == 0:
        return 0.0
    if mode in ("sum", "ratio"):
        return float(token_logps.sum())
    if mode == "avg":
        return float(token_logps.mean())
    if mode == "norm":
        return float(-torch.linalg.vector_norm(token_logps, ord=2))
    raise OptionError(f"unknown implicit-reward mode {mode!r}; use one of {MODES}")


class ImplicitRewardScorer:
    """``dpo:POLICY`` -- the implicit reward of a DPO policy, against ``ref_model`` or reference-free."""

    yields_uncertainty = False  # so --pessimism is refused when the scorer is built

    def __init__(self, path: str, *, ref_model: str | None = None, ref_free: str | None = None,
                 max_length: int | None = None, max_tokens: int = DEFAULT_LM_TOKENS, dtype: str = "auto",
                 device: str = "auto") -> None:
        if ref_model is None and ref_free is None:
            raise OptionError("a DPO implicit reward needs a reference model (--ref-model) or a reference-free "
                             "variant (--ref-free avg|sum|norm)")
        if ref_model is not None and ref_free is not None:
            raise OptionError("give either --ref-model or --ref-free, not both")
        self.mode = "ratio" if ref_model is not None else str(ref_free)
        if self.mode not in MODES:
            raise OptionError(f"unknown --ref-free {ref_free!r}; use avg, sum or norm")
        self.policy = load_causal_lm(path, dtype=dtype, device=device)
        self.ref = load_causal_lm(ref_model, dtype=dtype, device=device) if ref_model else None
        if self.ref is not None and self.ref.tokenizer.get_vocab() != self.policy.tokenizer.get_vocab():
            raise OptionError(f"{ref_model}: the reference model's tokenizer differs from the policy's")
        self.name = f"dpo:{path}" + (f" (ref {ref_model})" if ref_model else f" (ref-free {self.mode})")
        self.max_length = int(max_length or DEFAULT_MAX_LENGTH)
        self.max_tokens, self.dtype = max_tokens, dtype
        fmt = "chat" if self.policy.has_chat_template else "concat"
        self.encoder = PairEncoder(CachingTokenizer(self.policy.tokenizer), fmt, self.max_length)

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> ImplicitRewardScorer:
        return cls(path, ref_model=opts.ref_model, ref_free=opts.ref_free, max_length=opts.max_length,
                   max_tokens=opts.batch_tokens or DEFAULT_LM_TOKENS, dtype=opts.dtype, device=opts.device)

    def identity(self) -> dict[str, Any]:
        """Everything that changes a score (the score cache's namespace)."""
        return {"kind": "dpo", "policy": self.policy.name, "policy_fingerprint": model_fingerprint(self.policy.path),
                "ref": self.ref.name if self.ref else None,
                "ref_fingerprint": model_fingerprint(self.ref.path) if self.ref else None,
                "mode": self.mode, "max_length": self.max_length, "dtype": self.dtype,
                "input_format": self.encoder.input_format}

    def encode(self, prompt: Sequence[Message], response: Sequence[Message], conversational: bool
               ) -> tuple[list[int], int, bool]:
        """(input ids, index of the first response token, truncated?) under the keep-response policy."""
        e = self.encoder.encode(prompt, response, conversational)
        return e.input_ids, e.response_start, e.truncated

    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
              conversational: Sequence[bool] | bool = True, *, progress: Callable[[int], None] | None = None,
              ) -> ScoreOutput:
        flags = [conversational] * len(prompts) if isinstance(conversational, bool) else list(conversational)
        encoded = [self.encode(p, r, c) for p, r, c in zip(prompts, responses, flags, strict=True)]
        ids = [e[0] for e in encoded]
        starts = [e[1] for e in encoded]
        logps = self._response_logps(self.policy.model, ids, starts, progress)
        if self.ref is not None:
            ref = self._response_logps(self.ref.model, ids, starts, None)
            rewards = [reduce_logps(a, "sum") - reduce_logps(b, "sum") for a, b in zip(logps, ref, strict=True)]
        else:
            rewards = [reduce_logps(a, self.mode) for a in logps]
        return ScoreOutput(np.asarray(rewards, dtype=np.float32), np.array([e[2] for e in encoded], dtype=bool))

    @torch.inference_mode()
    def _response_logps(self, model: Any, ids: Sequence[list[int]], starts: Sequence[int],
                        progress: Callable[[int], None] | None) -> list[torch.Tensor]:
        """Per-token log-probabilities (T_i,) float32 of each sequence's response tokens ``ids[i][starts[i]:]``
        (a first token with no context before it is not scored), via the shared
        :func:`~rewardkit.models.causal_lm.sequence_logps`."""
        out: list[torch.Tensor] = [torch.zeros(0)] * len(ids)
        device = next(model.parameters()).device
        for batch in sorted_batches([len(s) for s in ids], self.max_tokens):
            input_ids, mask = right_pad([ids[i] for i in batch], self.policy.pad_id, device)
            scored = response_mask_from_starts(mask, [starts[i] for i in batch])
            logps = sequence_logps(model, input_ids, mask, scored).tokens  # (B, T)
            for row, i in enumerate(batch):
                out[i] = logps[row, max(starts[i], 1) : len(ids[i])].cpu()
            if progress is not None:
                progress(len(batch))
        return out
