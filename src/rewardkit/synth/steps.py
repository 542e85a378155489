"""Shared pieces of the step-level verifiable tasks (``mused``, ``two-hop``, ``math-champ``).

A task writes, into ``--out DIR``:

- ``train.jsonl`` / ``test.jsonl``: a seeded split of rows ``{id, prompt (chat messages), answer, steps (the
  gold solution, one string per step), meta {...}}``;
- ``stepwise.jsonl``: TRL's stepwise-supervision format (``prompt`` string, ``completions`` = list of step
  strings, ``labels`` = list of bools) for the *train* problems -- every gold solution and, where the task can
  make them, corrupted ones (one step replaced by a wrong derivation: labels False from that step on);
- ``first_error.jsonl``: ProcessBench-style rows ``{id, problem, steps, label, meta}`` (``label`` = index of the
  first wrong step, ``-1`` when every step is right) for the *test* problems (math-champ: the package's
  annotated model solutions), read by ``eval --benchmark first-error``;
- ``manifest.json``: task, seed, options, counts and sha256 of every file; byte-identical per seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.data.io import atomic_write_json, atomic_write_text

FILES = {"train": "train.jsonl", "test": "test.jsonl", "stepwise": "stepwise.jsonl",
         "first_error": "first_error.jsonl", "manifest": "manifest.json"}
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class SolutionCheck:
    """A step verifier's verdict on one written solution.

    ``valid[i]`` says whether step ``i`` is right (a step that claims nothing checkable counts as right);
    ``first_wrong`` is the index of the first wrong step or ``-1``; ``answer_correct`` whether the final answer
    equals the gold one; ``reasons[i]`` is a short note on step ``i`` ("entailed", "no claim", "not entailed: ...").
    """

    steps: tuple[str, ...]
    valid: tuple[bool, ...]
    reasons: tuple[str, ...]
    first_wrong: int
    answer_correct: bool
    final_answer: str

    @property
    def all_valid(self) -> bool:
        return self.first_wrong == -1


def check_result(steps: Sequence[str], verdicts: Sequence[tuple[bool, str]], *, answer_correct: bool,
                 final_answer: str) -> SolutionCheck:
    """Pack per-step ``(valid, reason)`` verdicts into a :class:`SolutionCheck`."""
    valid = tuple(v for v, _ in verdicts)
    return SolutionCheck(tuple(steps), valid, tuple(r for _, r in verdicts), first_wrong(valid),
                         answer_correct, final_answer)


def first_wrong(valid: Sequence[bool]) -> int:
    """Index of the first ``False`` in ``valid``, ``-1`` if none."""
    return next((i for i, v in enumerate(valid) if not v), -1)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def split_steps(text: str) -> list[str]:
    """A written solution as steps: one per non-empty line, and a line of several sentences split at each
    sentence end (``". "``, ``"! "``, ``"? "``). Whitespace around each step is stripped."""
    out: list[str] = []
    for line in text.splitlines():
        out += [s.strip() for s in _SENTENCE_END.split(line.strip()) if s.strip()]
    return out


_ANSWER = re.compile(r"\banswer\b\s*(?:is\b)?\s*[:=]?\s*(.*)$", re.IGNORECASE)


def final_answer(steps: Sequence[str]) -> str:
    """The solution's final answer: the text after "Answer:" (or "the answer is") in the last step that has
    one, else the whole last step; ``""`` for no steps."""
    for step in reversed(steps):
        m = _ANSWER.search(step)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return steps[-1].strip() if steps else ""


def stepwise_row(prompt: str, steps: Sequence[str], wrong_from: int) -> dict[str, Any]:
    """One TRL stepwise-supervision row: labels True before ``wrong_from``, False from it on (-1: all True)."""
    labels = [wrong_from < 0 or i < wrong_from for i in range(len(steps))]
    return {"prompt": prompt, "completions": list(steps), "labels": labels}


def first_error_row(row_id: str, problem: str, steps: Sequence[str], label: int,
                    meta: Mapping[str, Any]) -> dict[str, Any]:
    """One ProcessBench-style row: ``label`` is the first wrong step's index, -1 if none."""
    return {"id": row_id, "problem": problem, "steps": list(steps), "label": label, "meta": dict(meta)}


def seeded_split(n: int, task: str, seed: int, test_fraction: float = TEST_FRACTION) -> set[int]:
    """Indices of the test problems: a seeded ``round(n * test_fraction)`` of ``range(n)`` (at least one when
    ``n >= 2``, never all)."""
    if n < 2:
        return set()
    order = list(range(n))
    random.Random(f"{task}/split/{seed}").shuffle(order)
    return set(order[:min(max(1, round(n * test_fraction)), n - 1)])


@dataclass(frozen=True)
class StepTaskResult:
    """Where a step task wrote its files and how many rows each holds."""

    task: str
    out_dir: Path
    counts: dict[str, int]

    def __str__(self) -> str:
        c = self.counts
        return (f"{self.task}: {c['train']} train and {c['test']} test problems, {c['stepwise']} stepwise "
                f"solutions (TRL), {c['first_error']} first-error rows")


def jsonl_text(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_step_task(out_dir: Path, *, task: str, manifest: Mapping[str, Any],
                    files: Mapping[str, Sequence[Mapping[str, Any]]]) -> StepTaskResult:
    """Write ``files`` (key -> rows; the keys of :data:`FILES` except ``manifest``) as jsonl into ``out_dir``,
    then ``manifest.json`` = ``manifest`` plus ``files``, ``counts`` and ``sha256`` of each file."""
    out_dir = Path(out_dir)
    digests, counts = {}, {}
    for key, rows in files.items():
        text = jsonl_text(rows)
        atomic_write_text(out_dir / FILES[key], text)
        digests[key] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        counts[key] = len(rows)
    full = {**manifest, "files": {k: FILES[k] for k in files}, "counts": counts, "sha256": digests}
    atomic_write_json(out_dir / FILES["manifest"], full)
    return StepTaskResult(task, out_dir, counts)


def split_rows(rows: Sequence[dict[str, Any]], *, task: str, seed: int) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
    """``(train, test)``: rows in their order, the test ones chosen by :func:`seeded_split`."""
    test_ids = seeded_split(len(rows), task, seed)
    return ([r for i, r in enumerate(rows) if i not in test_ids], [r for i, r in enumerate(rows) if i in test_ids])
