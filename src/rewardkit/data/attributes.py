"""Multi-attribute data: (prompt, response) rows rated on named objectives, for multi-objective heads.

Row formats (detected per row, see :func:`detect_attribute_format`):

- ``rated``          ``{"prompt": str | messages, "response": str | messages, "<name>": number, ...}``: one
                     numeric column per attribute. HelpSteer2 is this format (``helpfulness``,
                     ``correctness``, ``coherence``, ``complexity``, ``verbosity``, 0--4), and so is any
                     jsonl with named numeric columns.
- ``ultrafeedback``  ``{"instruction": str, "completions": [{"response": str, "annotations": {aspect:
                     {"Rating": "4" | "N/A", ...}}, "overall_score": 8.0, ...}, ...]}``: one example per
                     completion; an aspect's ``Rating`` is its label (the raw release wraps each aspect's
                     object in a one-element list: the mean of the listed ratings), and a completion's
                     top-level numbers (``overall_score``, ``fine-grained_score``) can be named too.

Attribute names: ``attributes`` (``--attributes a,b,c``) names them; else they are detected from the first
usable record (HelpSteer2's five if present, else every numeric column; UltraFeedback's aspects).

A missing label -- an absent column, ``null``, ``NaN``, ``"N/A"`` or ``""`` -- is NaN, and that example is
left out of that objective's fit only. Numbers may be written as strings (UltraFeedback writes ``"4"``).
A record whose labels are all missing is left out and counted (``unrated``). Anything else is a
:class:`~rewardkit.data.formats.DataError` naming file, line and field; a file with bad records raises
:class:`~rewardkit.data.formats.DataValidationError` (an ``InputError``: exit 2) unless ``skip_invalid``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.data.dataset import ScanResult
from rewardkit.data.formats import (
    CompletionExample,
    DataError,
    DataValidationError,
    Location,
    Message,
    iter_records,
    no_records_error,
    parse_record,
)

HELPSTEER2 = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
ULTRAFEEDBACK_ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
MISSING_TEXT = frozenset({"n/a", "na", "nan", "none", "null", ""})
ATTRIBUTE_FORMATS = ("rated", "ultrafeedback")
_TEXT_KEYS = frozenset({"prompt", "response", "instruction", "completions", "chosen", "rejected", "completion"})
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class AttributeExample:
    """One rated response. ``labels`` (K,) float, NaN where missing, in the order of the data's names."""

    prompt: tuple[Message, ...]
    response: tuple[Message, ...]
    conversational: bool
    labels: tuple[float, ...]
    location: str


@dataclass(frozen=True)
class AttributeData:
    """A validated attribute file: ``names`` (K objectives), ``examples`` (input order), what was left out."""

    path: str
    names: tuple[str, ...]
    examples: list[AttributeExample]
    format: str
    n_records: int
    unrated: int
    errors: list[str]
    n_errors: int

    def labels(self) -> np.ndarray:
        """(N, K) float64, NaN where a label is missing."""
        return np.array([e.labels for e in self.examples], dtype=np.float64).reshape(len(self.examples), len(self.names))

    def summary(self) -> dict[str, Any]:
        observed = (~np.isnan(self.labels())).sum(0).tolist() if self.examples else [0] * len(self.names)
        return {"path": self.path, "format": self.format, "records": self.n_records, "examples": len(self.examples),
                "attributes": list(self.names), "labelled_per_attribute": dict(zip(self.names, observed, strict=True)),
                "unrated": self.unrated, "skipped_invalid": self.n_errors, "invalid": self.errors}


def detect_attribute_format(record: Mapping[str, Any]) -> str | None:
    """``ultrafeedback``, ``rated``, or None when ``record`` is not an attribute row (e.g. a preference pair)."""
    if "completions" in record and "instruction" in record:
        return "ultrafeedback"
    if "response" in record and "chosen" not in record and "rejected" not in record:
        return "rated"
    return None


def is_attribute_file(path: str | os.PathLike[str]) -> bool:
    """True when the first readable record of ``path`` is an attribute row (not a preference pair)."""
    for _, record in iter_records(path):
        if not isinstance(record, DataError):
            return detect_attribute_format(record) is not None
    return False


def parse_label(value: Any, loc: Location, name: str) -> float:
    """A label: a finite number (or a numeric string) -> float; a missing one (None, NaN, "N/A", "") -> NaN."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value.strip().lower() in MISSING_TEXT:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            raise DataError(loc, name, f"expected a number, null or \"N/A\", got {value[:40]!r}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(loc, name, f"expected a number, null or \"N/A\", got {type(value).__name__}")
    else:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if math.isnan(number):
        return math.nan
    if not math.isfinite(number):
        raise DataError(loc, name, f"expected a finite number, got {value!r}")
    return number


def detect_names(record: Mapping[str, Any], fmt: str) -> tuple[str, ...]:
    """The attribute names a record implies (HelpSteer2's five, UltraFeedback's aspects, else every numeric column)."""
    if fmt == "ultrafeedback":
        seen: list[str] = []
        for comp in record.get("completions") or []:
            annotations = comp.get("annotations") if isinstance(comp, Mapping) else None
            for aspect in annotations or {}:
                if aspect not in seen:
                    seen.append(aspect)
        return tuple(seen) or ULTRAFEEDBACK_ASPECTS
    if any(name in record for name in HELPSTEER2):
        return tuple(name for name in HELPSTEER2 if name in record)
    return tuple(k for k, v in record.items() if k not in _TEXT_KEYS and _is_number_like(v))


def _is_number_like(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or value is None


def _texts(prompt: Any, response: Any, loc: Location) -> tuple[tuple[Message, ...], tuple[Message, ...], bool]:
    """Validate prompt and response with the completion rules of :func:`~rewardkit.data.formats.parse_record`
    (a response is assistant turns only, not blank), naming the field ``response``."""
    try:
        ex = parse_record({"prompt": prompt, "completion": response}, loc)
    except DataError as e:
        field = e.field.replace("completion", "response", 1) if e.field else e.field
        raise DataError(e.location, field, e.message) from None
    assert isinstance(ex, CompletionExample)
    return ex.prompt, ex.completion, ex.conversational


def parse_rated(record: Mapping[str, Any], loc: Location, names: Sequence[str]) -> AttributeExample:
    """One ``rated`` row (HelpSteer2-style) -> an example; absent columns are missing labels."""
    prompt, response, conv = _texts(record.get("prompt"), record.get("response"), loc)
    labels = tuple(parse_label(record.get(name), loc, name) for name in names)
    return AttributeExample(prompt, response, conv, labels, str(loc))


def parse_ultrafeedback(record: Mapping[str, Any], loc: Location, names: Sequence[str]
                        ) -> Iterator[AttributeExample | DataError]:
    """One UltraFeedback row -> one example (or error) per completion."""
    completions = record.get("completions")
    if not isinstance(completions, list):
        yield DataError(loc, "completions", f"expected a list of completions, got {type(completions).__name__}")
        return
    instruction = record.get("instruction")
    for i, comp in enumerate(completions):
        where = f"completions[{i}]"
        try:
            if not isinstance(comp, Mapping):
                raise DataError(loc, where, f"expected an object, got {type(comp).__name__}")
            prompt, response, conv = _texts(instruction, comp.get("response"), loc)
            labels = tuple(_ultrafeedback_label(comp, loc, where, name) for name in names)
            yield AttributeExample(prompt, response, conv, labels, f"{loc} {where}")
        except DataError as e:
            if e.field == "response":
                e = DataError(e.location, f"{where}.response", e.message)
            elif e.field == "prompt":
                e = DataError(e.location, "instruction", e.message)
            yield e


def _ultrafeedback_label(comp: Mapping[str, Any], loc: Location, where: str, name: str) -> float:
    annotations = comp.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise DataError(loc, f"{where}.annotations", f"expected an object, got {type(annotations).__name__}")
    if name in annotations:
        aspect, field = annotations[name], f"{where}.annotations.{name}"
        if isinstance(aspect, list):  # the raw release: one rating object per aspect, in a list
            found = [_rating(a, loc, f"{field}[{i}]") for i, a in enumerate(aspect)]
            rated = [v for v in found if not math.isnan(v)]
            return sum(rated) / len(rated) if rated else math.nan
        return _rating(aspect, loc, field)
    return parse_label(comp.get(name), loc, f"{where}.{name}")


def _rating(aspect: Any, loc: Location, field: str) -> float:
    """An aspect's label: its ``Rating`` when it is an object, else the value itself."""
    if isinstance(aspect, Mapping):
        return parse_label(aspect.get("Rating"), loc, f"{field}.Rating")
    return parse_label(aspect, loc, field)


class _Scan:
    """One pass over a file: the format and names (from the first usable record), examples and errors."""

    def __init__(self, names: Sequence[str] | None) -> None:
        self.names: tuple[str, ...] | None = tuple(names) if names else None
        self.fmt: str | None = None
        self.examples: list[AttributeExample] = []
        self.errors: list[DataError] = []
        self.n_records = self.unrated = 0
        self.present: set[str] = set()

    def add(self, loc: Location, record: dict[str, Any] | DataError) -> None:
        self.n_records += 1
        if isinstance(record, DataError):
            self.errors.append(record)
            return
        kind = detect_attribute_format(record)
        if kind is None:
            self.errors.append(DataError(loc, "response", "missing (an attribute row needs 'prompt' and 'response' "
                                         "with numeric attribute columns, or UltraFeedback's 'instruction' and "
                                         "'completions')"))
            return
        if self.fmt is None:
            self.fmt, self.names = kind, self.names or detect_names(record, kind)
            if not self.names:
                raise DataError(loc, None, "no numeric attribute column found; name them with --attributes a,b,c")
        elif kind != self.fmt:
            self.errors.append(DataError(loc, None, f"a {kind} row in a {self.fmt} file (one format per file)"))
            return
        names = self.names or ()
        self.present.update(_present(record, kind, names))
        items = [parse_rated_safe(record, loc, names)] if kind == "rated" else parse_ultrafeedback(record, loc, names)
        for item in items:
            if isinstance(item, DataError):
                self.errors.append(item)
            elif all(math.isnan(v) for v in item.labels):
                self.unrated += 1
            else:
                self.examples.append(item)


def load_attributes(path: str | os.PathLike[str], *, attributes: Sequence[str] | None = None,
                    skip_invalid: bool = False) -> AttributeData:
    """Read and validate an attribute file (any file type :func:`~rewardkit.data.io.iter_records` reads).

    Raises :class:`DataValidationError` listing bad records (unless ``skip_invalid``; a file left with no
    example still raises), ``DataError`` for a file without records, for rows of mixed formats and for a
    named attribute that no record has.
    """
    scan = _Scan(attributes)
    for loc, record in iter_records(path):
        scan.add(loc, record)
    if scan.n_records == 0:
        raise no_records_error(path)
    absent = [n for n in scan.names or () if n not in scan.present] if scan.fmt is not None else []
    if absent:
        raise DataError(Location(str(path)), absent[0], f"no record has attribute(s) {absent}; "
                        f"check --attributes (the first record has {sorted(_candidates(path))})")
    errors = [str(e) for e in scan.errors[:MAX_LISTED_ERRORS]]
    if scan.errors and (not skip_invalid or not scan.examples):
        hint = DataValidationError.SKIP_HINT if not skip_invalid else "no valid record is left to use"
        raise DataValidationError(str(path), errors, len(scan.errors), hint=hint)
    if not scan.examples:
        raise DataError(Location(str(path)), None, "no record has any attribute label")
    return AttributeData(str(path), tuple(scan.names or ()), scan.examples, scan.fmt or "rated", scan.n_records,
                         scan.unrated, errors, len(scan.errors))


def scan_attributes(path: str | os.PathLike[str], *, attributes: Sequence[str] | None = None
                    ) -> tuple[ScanResult, list[AttributeExample]]:
    """One pass for ``rewardkit data check``: counts (``formats`` holds ``attributes-<format>``: the examples
    found, one per UltraFeedback completion), the first errors, and the valid examples; never raises for
    bad records."""
    scan = _Scan(attributes)
    for loc, record in iter_records(path):
        scan.add(loc, record)
    formats = {f"attributes-{scan.fmt}": len(scan.examples)} if scan.fmt else {}
    return ScanResult(scan.n_records, formats, scan.errors[:MAX_LISTED_ERRORS], len(scan.errors)), scan.examples


def parse_rated_safe(record: Mapping[str, Any], loc: Location, names: Sequence[str]) -> AttributeExample | DataError:
    try:
        return parse_rated(record, loc, names)
    except DataError as e:
        return e


def _present(record: Mapping[str, Any], kind: str, names: Sequence[str]) -> set[str]:
    """Which of ``names`` the record has at all (as a column, an aspect or a completion field)."""
    if kind == "rated":
        return {n for n in names if n in record}
    found: set[str] = set()
    for comp in record.get("completions") or []:
        if isinstance(comp, Mapping):
            annotations = comp.get("annotations")
            found.update(n for n in names if n in comp or (isinstance(annotations, Mapping) and n in annotations))
    return found


def _candidates(path: str | os.PathLike[str]) -> set[str]:
    for _, record in iter_records(path):
        if isinstance(record, DataError):
            continue
        kind = detect_attribute_format(record)
        return set(detect_names(record, kind)) if kind else set()
    return set()
