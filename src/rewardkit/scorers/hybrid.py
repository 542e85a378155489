"""The verifier where an item is checkable, a reward model elsewhere (``hybrid:RM``; METHODS §9b).

Shen et al. (arXiv 2503.22230) reward RLHF with task-specific verifiers (RTV: instruction checks, math
answers, a code sandbox) on the prompts that have them and a learned reward model on the rest, because
verifiers resist reward hacking best. Here each item is routed by whether it carries a reference
(``constraints``, ``answer`` or ``tests``, see :mod:`rewardkit.scorers.verifier`): verifier rewards are
in [0, 1]; reward-model rewards are raw by default, or squashed into (0, 1) with ``rm_scale="sigmoid"``
when both kinds of prompt are mixed in one objective (Best-of-N and Speculative Rejection compare
responses of one prompt only, so for them the scale does not matter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.scorers.verifier import VerifierScorer, response_text
from rewardkit.scoring import ScoreOutput, ScorerOptions, build_scorer, is_pairwise
from rewardkit.verify.sandbox import SandboxLimits

RM_SCALES = ("raw", "sigmoid")


class HybridScorer:
    """``hybrid:RM_SPEC`` with ``items=``: verifier rewards for checkable items, ``RM_SPEC`` (any scorer
    spec: a reward-model folder, ``rm:PATH``, ``direction:...``, ``length``) for the rest.

    ``tokens_read`` counts the tokens the reward model read (the verifier reads none); ``routes`` says
    where each item of the last call went."""

    def __init__(
        self, path: str, *, items: str | Path | Iterable[Mapping[str, Any]] | None = None,
        sandbox: SandboxLimits | None = None, rm_scale: str = "raw", rm: Any | None = None,
        options: ScorerOptions | None = None,
    ) -> None:
        """``path`` is any scorer spec for the unverifiable items, built with ``options`` (or pass ``rm``)."""
        if rm_scale not in RM_SCALES:
            raise OptionError(f"rm_scale must be one of {RM_SCALES}, got {rm_scale!r}")
        self.verifier = VerifierScorer(items=items, sandbox=sandbox)
        self.rm = rm if rm is not None else build_scorer(path, options)
        if is_pairwise(self.rm):
            raise UnsupportedError(f"hybrid:{path}: a pairwise judge cannot score single responses")
        self.rm_scale = rm_scale
        self.name = f"hybrid(verifier, {getattr(self.rm, 'name', path)})"
        self.tokens_read = 0
        self.routes: list[str] = []

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> HybridScorer:
        if opts.items is None:
            raise UnsupportedError(f"hybrid:{path} needs the prompts' references (constraints, answer or tests): "
                                   "give the items file (serve: --items FILE)")
        return cls(path, items=opts.items, sandbox=opts.sandbox, rm_scale=opts.rm_scale, options=opts)

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        """Rewards (N,) float32: the verifier's where a reference exists, the reward model's elsewhere."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        refs = [self.verifier.reference_for(p) for p in prompts]
        checkable = [i for i, r in enumerate(refs) if r is not None]
        learned = [i for i, r in enumerate(refs) if r is None]
        rewards = np.zeros(len(prompts), dtype=np.float32)
        truncated = np.zeros(len(prompts), dtype=bool)
        if checkable:
            rewards[checkable] = self.verifier.score_references(
                [refs[i] for i in checkable], [response_text(responses[i]) for i in checkable])  # type: ignore[misc]
        if learned:
            flags = [conversational] * len(prompts) if isinstance(conversational, bool) else list(conversational)
            out = self._score_rm([prompts[i] for i in learned], [responses[i] for i in learned],
                                 [flags[i] for i in learned])
            rewards[learned] = out.rewards if self.rm_scale == "raw" else expit(out.rewards)
            truncated[learned] = out.truncated
        self.routes = ["verifier" if r is not None else "rm" for r in refs]
        return ScoreOutput(rewards, truncated)

    def _score_rm(self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
                  flags: Sequence[bool]) -> ScoreOutput:
        """Score with the reward model, counting the tokens it reads."""
        if hasattr(self.rm, "encode") and hasattr(self.rm, "score_batch_encoded"):
            encoded = self.rm.encode(prompts, responses, flags)
            self.tokens_read += sum(len(e.input_ids) for e in encoded)
            return self.rm.score_batch_encoded(encoded)
        before = getattr(self.rm, "tokens_read", 0)
        out = self.rm.score(prompts, responses, flags)
        self.tokens_read += getattr(self.rm, "tokens_read", 0) - before
        return out
