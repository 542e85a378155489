"""``math-champ``: CHAMP competition-math problems with step-by-step solutions and real first-wrong-step labels
(``rewardkit data synth --task math-champ``).

Reads the ``champ-dataset`` package (PyPI, MIT; Mao et al., "CHAMP: A Competition-level Dataset for
Fine-Grained Analyses of LLMs' Mathematical Reasoning Capabilities"), which ships one JSON file,
``champ_dataset/dataset_files/v0.json``: 270 problems, each with an answer, a gold solution as a list of steps,
and ``fws_annotations`` -- 540 model solutions (GPT-3.5, GPT-4, GPT-4 Turbo, PaLM 2 Medium; two prompt
settings each) annotated by hand with the span of the first wrong step (``start_idx`` / ``end_idx`` in the
solution text; none when the solution has no mistake).

We read the JSON ourselves (the package's own loader is not needed). A model solution is split into steps at
blank lines (paragraphs, as ProcessBench does) and its label is the index of the paragraph where the annotated
first-wrong span starts, or -1. Nothing is generated, so there are no corrupted solutions; ``--seed`` only
chooses the train/test split of the problems.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardkit.errors import InputError, MissingInputError
from rewardkit.synth.steps import (
    StepTaskResult,
    first_error_row,
    split_rows,
    stepwise_row,
    write_step_task,
)

TASK = "math-champ"
GENERATOR_VERSION = "math-champ/1"
SOURCE = "champ-dataset (PyPI, MIT license), dataset_files/v0.json"
INSTRUCTION = "\n\nSolve the problem step by step, one step per paragraph, and end with 'Answer: ' and the answer."


def champ_json_path() -> Path:
    """The installed package's ``v0.json``; :class:`MissingInputError` if ``champ-dataset`` is not installed."""
    spec = importlib.util.find_spec("champ_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError("--task math-champ reads the champ-dataset package: pip install champ-dataset")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset_files" / "v0.json"
    if not path.is_file():
        raise MissingInputError(f"{path}: not found in the installed champ-dataset package")
    return path


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the non-empty paragraphs of ``text`` (separated by blank lines)."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S(?:(?!\n[ \t]*\n).)*", text, re.DOTALL)]


def first_error_label(text: str, start_idx: int | None) -> tuple[list[str], int]:
    """``(paragraph steps, index of the paragraph where the first wrong span starts)``; -1 when ``start_idx``
    is None (no mistake). A span starting between paragraphs belongs to the next one."""
    spans = paragraph_spans(text)
    steps = [text[a:b].strip() for a, b in spans]
    if start_idx is None:
        return steps, -1
    label = next((i for i, (_, end) in enumerate(spans) if start_idx < end), len(spans) - 1)
    return steps, label


def _field(record: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise InputError(f"{where}: field {key!r} missing")
    return record[key]


def read_champ(path: Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(problems, first_errors)`` from a CHAMP JSON file (default: the installed package's).

    problems: ``{id, prompt, answer, steps, meta {category, source}}`` in file order; first_errors:
    ``{id, problem, steps, label, meta {problem_id, model, setting, wrong_span}}``. Raises
    :class:`InputError` naming the file and field on a malformed record.
    """
    path = champ_json_path() if path is None else Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read CHAMP JSON ({e})") from e
    problems, first_errors = [], []
    for pid, p in _field(data, "problems", str(path)).items():
        where = f"{path}: problems.{pid}"
        steps = [_field(s, "_text", f"{where}.solution.steps") for s in _field(_field(p, "solution", where),
                                                                                 "steps", where)]
        text = _field(p, "_text", where)
        problems.append({"id": pid, "prompt": [{"role": "user", "content": text + INSTRUCTION}],
                         "answer": _field(p, "_answer", where), "steps": steps,
                         "meta": {"task": TASK, "category": p.get("category"), "source": SOURCE}})
        for key, ann in (p.get("fws_annotations") or {}).items():
            model, _, setting = key.partition("|")
            solution = _field(ann, "text", f"{where}.fws_annotations.{key}")
            start, end = ann.get("start_idx"), ann.get("end_idx")
            sol_steps, label = first_error_label(solution, start)
            span = None if start is None else solution[start:end]
            first_errors.append(first_error_row(f"{pid}/{key}", text, sol_steps, label,
                                                {"problem_id": pid, "model": model, "setting": setting,
                                                 "wrong_span": span}))
    return problems, first_errors


def write_champ(out_dir: Path, *, seed: int = 0, path: Path | None = None) -> StepTaskResult:
    """Write train/test (problems split by ``seed``), stepwise.jsonl (gold solutions and annotated model
    solutions of the *train* problems), first_error.jsonl (all annotated model solutions, with ``meta.split``)
    and manifest.json."""
    problems, first_errors = read_champ(path)
    train, test = split_rows(problems, task=TASK, seed=seed)
    train_ids = {r["id"] for r in train}
    prompt_of = {r["id"]: r["prompt"][0]["content"] for r in problems}
    stepwise = [stepwise_row(prompt_of[r["id"]], r["steps"], -1) for r in train]
    for r in first_errors:
        r["meta"]["split"] = "train" if r["meta"]["problem_id"] in train_ids else "test"
        if r["meta"]["split"] == "train":
            stepwise.append(stepwise_row(prompt_of[r["meta"]["problem_id"]], r["steps"], r["label"]))
    manifest = {"task": TASK, "generator_version": GENERATOR_VERSION, "seed": seed, "source": SOURCE,
                "options": {}, "step_split": "model solutions split at blank lines (paragraphs); label = "
                "paragraph where the annotated first-wrong span starts, -1 if none",
                "first_error_labels": {"no_mistake": sum(r["label"] == -1 for r in first_errors),
                                       "with_mistake": sum(r["label"] >= 0 for r in first_errors)}}
    return write_step_task(Path(out_dir), task=TASK, manifest=manifest,
                           files={"train": train, "test": test, "stepwise": stepwise, "first_error": first_errors})
