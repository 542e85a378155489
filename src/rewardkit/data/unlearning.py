"""Unlearning rows: the forget / retain question-answer files of ``rewardkit train unlearn`` and ``eval unlearn``.

:func:`read_unlearning_rows` reads one file into :class:`UnlearnRow` s. The format is detected per file from
its first record (every record must then have that format's fields):

- ``rewardkit``  rows written by ``rewardkit data synth --task fictitious-facts`` (and any TRL
  prompt-completion row): ``prompt`` / ``completion`` (messages or strings), optional
  ``paraphrased_answer`` (str) and ``perturbed_answers`` (list of str);
- ``qa``         TOFU rows (``question``, ``answer``, optional ``paraphrased_answer`` and the list
  ``perturbed_answer``; ``paraphrased_question`` and other fields are ignored) and MUSE ``knowmem`` rows
  (``question``, ``answer``) -- the two share their keys, so they share the format;
- ``verbmem``    MUSE ``verbmem`` rows: ``prompt`` (the start of a passage) and ``gt`` (its true continuation);
- ``text``       raw text rows (MUSE ``raw``, our ``general.jsonl``): ``text``; the question is empty, the
  answer is the whole text and the prompt has no messages.

Files: what :func:`~rewardkit.data.io.iter_records` reads (``.jsonl``, ``.json`` lists, ``.parquet``,
datasets folders), plus ``.json`` files that hold JSON lines (as TOFU's published files do). A bad record
raises a :class:`~rewardkit.data.io.DataError` naming file, line and field (exit 2 on the command line).

:func:`refusal_templates` returns the refusals shipped in ``rewardkit/resources/unlearning/idk.jsonl``
(our own phrasings), the preferred answers of the ``idk`` loss and the templates of FLAT.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data.formats import CompletionExample, Message, is_blank, parse_record
from rewardkit.data.io import DataError, Location, _iter_jsonl, iter_records, no_records_error

UNLEARN_FORMATS = ("rewardkit", "qa", "verbmem", "text")


@dataclass(frozen=True)
class UnlearnRow:
    """One forget or retain item.

    ``prompt`` holds the chat messages that ask ``question`` (the last user turn; empty for raw text);
    ``answer`` is the true answer (the whole passage for raw text); ``paraphrased_answer`` and
    ``perturbed_answers`` (wrong answers of the same shape) feed TOFU's truth ratio; ``source`` is the
    detected format (:data:`UNLEARN_FORMATS`).
    """

    id: str
    question: str
    answer: str
    prompt: tuple[Message, ...]
    paraphrased_answer: str | None = None
    perturbed_answers: list[str] = field(default_factory=list)
    source: str = "rewardkit"


def detect_unlearning_format(record: Mapping[str, Any], loc: Location) -> str:
    """The format (one of :data:`UNLEARN_FORMATS`) of a file, from its first record."""
    if "completion" in record:
        return "rewardkit"
    if "question" in record:
        return "qa"
    if "gt" in record:
        return "verbmem"
    if "text" in record:
        return "text"
    raise DataError(loc, None, "not an unlearning row: need 'prompt' and 'completion' (rewardkit), 'question' and "
                    "'answer' (TOFU, MUSE knowmem), 'prompt' and 'gt' (MUSE verbmem) or 'text' (raw text); "
                    f"found fields {sorted(record)[:8]}")


def read_unlearning_rows(path: str | os.PathLike[str]) -> list[UnlearnRow]:
    """Every row of a rewardkit, TOFU or MUSE file (see the module docstring), in file order.

    Raises :class:`~rewardkit.data.io.DataError` (an :class:`~rewardkit.errors.InputError`) naming file,
    line and field for the first bad record, ``DataError("FILE: no unlearning rows")`` for an empty file,
    and the reader's errors for a file that cannot be read.
    """
    rows: list[UnlearnRow] = []
    fmt: str | None = None
    for loc, record in _records(Path(path)):
        if isinstance(record, DataError):
            raise record
        if fmt is None:
            fmt = detect_unlearning_format(record, loc)
        rows.append(_PARSERS[fmt](record, loc))
    if not rows:
        raise no_records_error(path, "unlearning rows")
    return rows


def _records(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    """:func:`iter_records`, except that a ``.json`` file starting with ``{`` is read as JSON lines
    (TOFU's ``forget01.json`` etc. are JSON lines under a ``.json`` name)."""
    if p.is_file() and p.name.lower().endswith(".json"):
        with p.open("rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"{"):
            return _iter_jsonl(p)
    return iter_records(p)


def _string(record: Mapping[str, Any], key: str, loc: Location, *, optional: bool = False) -> str | None:
    value = record.get(key)
    if value is None and optional:
        return None
    if value is None:
        raise DataError(loc, key, "missing")
    if not isinstance(value, str):
        raise DataError(loc, key, f"must be a string, got {type(value).__name__}")
    if is_blank(value):
        raise DataError(loc, key, "is empty")
    return value


def _strings(record: Mapping[str, Any], key: str, loc: Location) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    if isinstance(value, str):  # a single wrong answer written without a list
        value = [value]
    if not isinstance(value, list):
        raise DataError(loc, key, f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or is_blank(item):
            raise DataError(loc, f"{key}[{i}]", "must be a non-empty string")
    return list(value)


def _row_id(record: Mapping[str, Any], loc: Location) -> str:
    for key in ("id", "index", "task_id"):
        if record.get(key) is not None and not isinstance(record[key], (dict, list)):
            return str(record[key])
    return f"{Path(loc.path).name}:{loc.line if loc.line is not None else loc.row}"


def _user(text: str) -> tuple[Message, ...]:
    return ({"role": "user", "content": text},)


def _parse_rewardkit(record: Mapping[str, Any], loc: Location) -> UnlearnRow:
    for key in ("prompt", "completion"):
        if record.get(key) is None:
            raise DataError(loc, key, "missing (a rewardkit unlearning row has 'prompt' and 'completion')")
    example = parse_record(record, loc)
    assert isinstance(example, CompletionExample)  # "completion" in the record and no "chosen"
    users = [m["content"] for m in example.prompt if m["role"] == "user"]
    if not users or is_blank(users[-1]):
        raise DataError(loc, "prompt", "needs a non-empty user message (the question)")
    return UnlearnRow(id=_row_id(record, loc), question=users[-1],
                      answer="".join(m["content"] for m in example.completion), prompt=example.prompt,
                      paraphrased_answer=_string(record, "paraphrased_answer", loc, optional=True),
                      perturbed_answers=_strings(record, "perturbed_answers", loc), source="rewardkit")


def _parse_qa(record: Mapping[str, Any], loc: Location) -> UnlearnRow:
    question = _string(record, "question", loc)
    assert question is not None
    return UnlearnRow(id=_row_id(record, loc), question=question, answer=_string(record, "answer", loc) or "",
                      prompt=_user(question),
                      paraphrased_answer=_string(record, "paraphrased_answer", loc, optional=True),
                      perturbed_answers=_strings(record, "perturbed_answer", loc), source="qa")


def _parse_verbmem(record: Mapping[str, Any], loc: Location) -> UnlearnRow:
    prompt = _string(record, "prompt", loc)
    assert prompt is not None
    return UnlearnRow(id=_row_id(record, loc), question=prompt, answer=_string(record, "gt", loc) or "",
                      prompt=_user(prompt), source="verbmem")


def _parse_text(record: Mapping[str, Any], loc: Location) -> UnlearnRow:
    return UnlearnRow(id=_row_id(record, loc), question="", answer=_string(record, "text", loc) or "", prompt=(),
                      source="text")


_PARSERS: dict[str, Callable[[Mapping[str, Any], Location], UnlearnRow]] = {
    "rewardkit": _parse_rewardkit, "qa": _parse_qa, "verbmem": _parse_verbmem, "text": _parse_text,
}


def refusal_templates() -> list[str]:
    """The refusals shipped in ``rewardkit/resources/unlearning/idk.jsonl`` (rows ``{"text": ...}``), in order."""
    path = Path(str(importlib.resources.files("rewardkit") / "resources" / "unlearning" / "idk.jsonl"))
    return [_string(record, "text", loc) or "" for loc, record in _checked(iter_records(path))]


def _checked(records: Iterator[tuple[Location, dict[str, Any] | DataError]]) -> Iterator[tuple[Location, dict]]:
    for loc, record in records:
        if isinstance(record, DataError):
            raise record
        yield loc, record
