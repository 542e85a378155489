"""Programmatic verifiers as a scorer (``verifier``): gold rewards for items that carry something checkable.

An item (a row of a jsonl file, or a dict given in Python) holds its ``prompt`` (messages or a string)
and at least one of:

- ``constraints`` — ifeval-lite instructions (:class:`rewardkit.verify.verifiers.Constraint` dicts);
  reward = the fraction met (:func:`~rewardkit.verify.verifiers.gold_reward`);
- ``answer`` — a math final answer; reward 1 if the response's final answer matches
  (:mod:`rewardkit.verify.math_answers`), else 0;
- ``tests`` — Python unit tests (a list of source strings, or one string); reward = the fraction that pass
  when run after the response's code in the sandbox (:mod:`rewardkit.verify.sandbox`).

An item with several of them gets the mean. Responses are matched to items by their prompt (the exact
messages), so ``rewardkit generate --reward verifier`` scores against the prompts file it samples.
Sandbox runs of one call go in parallel threads (each run is its own process).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.data.io import read_records
from rewardkit.errors import OptionError, UnsupportedError
from rewardkit.scoring import ScoreOutput, ScorerOptions
from rewardkit.verify.math_answers import math_reward
from rewardkit.verify.sandbox import SandboxLimits, check_python
from rewardkit.verify.verifiers import Constraint, gold_reward


@dataclass(frozen=True)
class Reference:
    """What an item can be checked against (any non-empty subset of the three)."""

    constraints: tuple[Constraint, ...] = ()
    answer: str | None = None
    tests: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Reference | None:
        """The reference of a data row (``constraints`` / ``answer`` / ``tests`` fields), or None."""
        constraints = tuple(c if isinstance(c, Constraint) else Constraint.from_dict(c)
                            for c in row.get("constraints") or ())
        answer = row.get("answer")
        tests = row.get("tests") or ()
        ref = cls(constraints, None if answer is None else str(answer),
                  (tests,) if isinstance(tests, str) else tuple(str(t) for t in tests))
        return ref if ref.kinds else None

    @property
    def kinds(self) -> tuple[str, ...]:
        """Which checks apply: ``instructions``, ``math``, ``python``."""
        return tuple(k for k, on in (("instructions", bool(self.constraints)), ("math", self.answer is not None),
                                     ("python", bool(self.tests))) if on)


def verify(response: str, ref: Reference, *, sandbox: SandboxLimits | None = None) -> float:
    """The gold reward of ``response`` against ``ref``: the mean over the checks it carries, in [0, 1]."""
    parts = []
    if ref.constraints:
        parts.append(gold_reward(response, ref.constraints))
    if ref.answer is not None:
        parts.append(math_reward(response, ref.answer))
    if ref.tests:
        parts.append(check_python(response, ref.tests, limits=sandbox).reward)
    if not parts:
        raise OptionError("a reference needs constraints, an answer or tests")
    return float(np.mean(parts))


def prompt_key(prompt: Sequence[Message] | str) -> str:
    """A canonical key of a prompt (its roles and contents; a string is one user turn)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)


def read_items(path: str | Path) -> list[dict[str, Any]]:
    """The rows of an items file (any format the data layer reads); an error names the file and line."""
    return [row for _, row in read_records(path, what="items")]


def response_text(response: Sequence[Message] | str) -> str:
    """The text of a response: a string, or its messages' contents joined by newlines."""
    return response if isinstance(response, str) else "\n".join(m["content"] for m in response)


class VerifierScorer:
    """``verifier:ITEMS.jsonl`` (or ``verifier`` with ``items=``): gold rewards from programmatic checks.

    Scoring a prompt with no reference raises ``KeyError`` (use ``hybrid`` to fall back to a reward
    model there)."""

    yields_uncertainty = False  # so --pessimism is refused when the scorer is built

    def __init__(self, path: str = "verifier", *, items: str | Path | Iterable[Mapping[str, Any]] | None = None,
                 sandbox: SandboxLimits | None = None, workers: int = 4) -> None:
        self.name = "verifier"
        self.sandbox = sandbox
        self.workers = max(1, workers)
        self.tokens_read = 0  # programmatic: no model reads any token
        self._refs: dict[str, Reference] = {}
        for source in (path if path not in ("", "verifier") else None, items):
            if source is not None:
                self.add_items(read_items(source) if isinstance(source, str | Path) else source)

    @classmethod
    def from_spec(cls, path: str, opts: ScorerOptions) -> VerifierScorer:
        """``verifier`` checks against ``opts.items`` (the data or prompts file); ``verifier:FILE`` against FILE.
        Without either there is nothing to check against: refused."""
        bare = path in ("", "verifier")
        if bare and opts.items is None:
            raise UnsupportedError("the verifier needs the prompts' references (constraints, answer or tests): "
                                   "use verifier:FILE or give the items file (serve: --items FILE)")
        return cls(path, items=opts.items if bare else None, sandbox=opts.sandbox)

    def add_items(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Register the references of ``rows`` (each with a ``prompt``); rows with nothing checkable are skipped."""
        for row in rows:
            ref = Reference.from_row(row)
            if ref is not None:
                self._refs[prompt_key(row["prompt"])] = ref

    def add(self, prompt: Sequence[Message] | str, ref: Reference) -> None:
        self._refs[prompt_key(prompt)] = ref

    def __len__(self) -> int:
        return len(self._refs)

    def reference_for(self, prompt: Sequence[Message] | str) -> Reference | None:
        return self._refs.get(prompt_key(prompt))

    def score(
        self, prompts: Sequence[Sequence[Message]], responses: Sequence[Sequence[Message]],
        conversational: Sequence[bool] | bool = True,
    ) -> ScoreOutput:
        """Gold rewards (N,) float32 in [0, 1]; ``truncated`` is all False (nothing is cut)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        refs = []
        for p in prompts:
            ref = self.reference_for(p)
            if ref is None:
                raise KeyError(f"no checkable reference (constraints, answer or tests) for prompt {prompt_key(p)[:120]}")
            refs.append(ref)
        return ScoreOutput(self.score_references(refs, [response_text(r) for r in responses]),
                           np.zeros(len(prompts), dtype=bool))

    def score_references(self, refs: Sequence[Reference], texts: Sequence[str]) -> np.ndarray:
        """Rewards (N,) float32 of ``texts`` against ``refs``; sandboxed checks run in parallel threads."""
        if any(r.tests for r in refs) and self.workers > 1 and len(refs) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                values = list(pool.map(lambda r, t: verify(t, r, sandbox=self.sandbox), refs, texts))
        else:
            values = [verify(t, r, sandbox=self.sandbox) for r, t in zip(refs, texts, strict=True)]
        return np.asarray(values, dtype=np.float32)
