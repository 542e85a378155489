"""What a benchmark is: a reader, a pure scoring rule and an aggregation, registered by name.

A benchmark turns its published files into :class:`Item` s (a prompt, the responses it compares and
which of them are correct), scores each item from the per-response scores with its own rule
(:meth:`Benchmark.outcomes`, pure), and aggregates the per-item outcomes to subsets, sections and an
overall number (:meth:`Benchmark.summarize`, pure, so the same function runs on bootstrap resamples).
Scoring is not a benchmark's business: the runner scores every distinct (prompt, response) once.

Readers keep every record the benchmark's reference code keeps and score it by the reference's rule:
an empty or whitespace-only answer, or a correct answer identical to an incorrect one, is scored (the
identical pair ties, and the rule says what a tie is worth), and counted in :attr:`ReadResult.notes`.
The training validator's stricter rules (:mod:`rewardkit.data.formats`) are not the benchmarks' rules.
A benchmark names the sections its overall averages (``sections_expected``); :func:`coverage` says
which of them a run has, so an overall over 3 of 4 domains is never printed as if it were complete.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from rewardkit.data.formats import DataError, DataValidationError, Location, Message, iter_records
from rewardkit.data.formats import reply as reply  # re-exported for the benchmark readers
from rewardkit.errors import MissingInputError
from rewardkit.eval.stats import pairwise_correct
from rewardkit.registry import Registry

MAX_LISTED_ERRORS = 20
_FILE_SUFFIX = re.compile(r"\.(jsonl?|gz|parquet|csv)$", re.IGNORECASE)  # a missing local file, not a hub name


@dataclass(frozen=True)
class Item:
    """One scoring unit of a benchmark.

    ``responses[i]`` is a list of messages; ``labels[i]`` is True for a correct (chosen / best) one.
    ``subset`` is the smallest group the benchmark reports. Items with the same ``cluster`` are
    resampled together by the bootstrap (default: the item alone). ``meta`` holds what the rule needs.
    """

    uid: str
    prompt: tuple[Message, ...]
    responses: tuple[tuple[Message, ...], ...]
    labels: tuple[bool, ...]
    subset: str
    conversational: bool = True
    cluster: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cluster_key(self) -> str:
        return self.cluster or self.uid

    def response_lengths(self) -> np.ndarray:
        """(n,) int64: characters of each response (the unit of the length baselines and bias checks)."""
        return np.array([sum(len(m["content"]) for m in r) for r in self.responses], dtype=np.int64)


@dataclass(frozen=True)
class ReadResult:
    """The items of a benchmark file, and what reading found: invalid records (skipped only on request)
    and ``notes`` -- counts of known dirt that was kept (identical responses, empty turns, ...)."""

    items: list[Item]
    n_records: int
    errors: list[str]
    n_errors: int
    notes: dict[str, Any] = field(default_factory=dict)


class Stat(NamedTuple):
    """One aggregated number and how many items it rests on."""

    value: float
    n: int


@dataclass(frozen=True)
class Outcomes:
    """Per-item results of a benchmark's rule, as columns over N items.

    ``credit`` (N,) float64 in [0, 1]: the item's score under the rule (1 correct, 0 wrong, 1/k for a
    k-way tie at the top, ...). ``code`` (N,) int64: the item's subset as an index into ``names`` (sorted
    subset names; integer codes keep bootstrap resamples cheap). ``cluster`` (N,) int64: bootstrap
    unit ids. ``extra``: rule-specific columns, each with N rows (e.g. RM-Bench's (N, 9) cells).
    """

    credit: np.ndarray
    code: np.ndarray
    names: tuple[str, ...]
    cluster: np.ndarray
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def subset(self) -> np.ndarray:
        """(N,) object: each item's subset name."""
        return np.asarray(self.names, dtype=object)[self.code]

    def take(self, rows: np.ndarray, cluster: np.ndarray) -> Outcomes:
        """A resample: rows ``rows`` (M,) with new cluster ids ``cluster`` (M,)."""
        return Outcomes(self.credit[rows], self.code[rows], self.names, cluster,
                        {k: v[rows] for k, v in self.extra.items()})

    def regroup(self, group_of: Callable[[str], str]) -> tuple[np.ndarray, tuple[str, ...]]:
        """Codes (N,) and sorted names of coarser groups (e.g. sections), ``group_of(subset name)``."""
        groups = [group_of(n) for n in self.names]
        names = tuple(sorted(set(groups)))
        lookup = np.array([names.index(g) for g in groups], dtype=np.int64)
        return (lookup[self.code] if len(self.code) else self.code), names


class Benchmark(Protocol):
    """A benchmark's published rules. Keys of :meth:`summarize` are ``"overall"``, ``"overall/..."``,
    ``"section/NAME"`` and ``"subset/NAME"`` (reports group rows by that prefix).

    ``sections_expected`` maps each summary key the published overall averages (``"section/chat"``) to
    the subset keys that section is published over (empty: any); ``section_unit`` names them in
    messages ("domains"). Both empty / unused for a benchmark with no fixed sections (``pairs``)."""

    name: str
    description: str
    default_split: str
    sections_expected: Mapping[str, tuple[str, ...]]
    section_unit: str

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult: ...

    def outcomes(self, items: Sequence[Item], scores: Sequence[np.ndarray]) -> Outcomes: ...

    def random_outcomes(self, items: Sequence[Item]) -> Outcomes: ...

    def summarize(self, outcomes: Outcomes) -> dict[str, Stat]: ...


BENCHMARKS: Registry[Any] = Registry("benchmark")


# ----------------------------------------------------------------------------- shared rule helpers


def base_outcomes(items: Sequence[Item], credit: Sequence[float], **extra: np.ndarray) -> Outcomes:
    """Columns for ``items`` with per-item ``credit``; clusters numbered in order of first appearance."""
    ids: dict[str, int] = {}
    cluster = np.array([ids.setdefault(it.cluster_key, len(ids)) for it in items], dtype=np.int64)
    names = tuple(sorted({it.subset for it in items}))
    index = {n: k for k, n in enumerate(names)}
    code = np.array([index[it.subset] for it in items], dtype=np.int64)
    return Outcomes(np.asarray(credit, dtype=np.float64), code, names, cluster, extra)


def beats_all(scores: np.ndarray) -> float:
    """1.0 if response 0 scores strictly above every other response (a tie counts as wrong, as in
    :func:`rewardkit.eval.stats.pairwise_correct`)."""
    s = np.asarray(scores)
    return float(len(s) > 1 and bool(np.all(pairwise_correct(np.full(len(s) - 1, s[0]), s[1:]))))


def group_means(values: np.ndarray, codes: np.ndarray, names: Sequence[str], prefix: str) -> dict[str, Stat]:
    """``{prefix + name: Stat(mean of values, count)}`` for each group with items, in ``names`` order;
    ``codes`` (N,) index ``names``."""
    sums = np.bincount(codes, weights=values, minlength=len(names))
    counts = np.bincount(codes, minlength=len(names))
    return {prefix + name: Stat(float(sums[k] / counts[k]), int(counts[k]))
            for k, name in enumerate(names) if counts[k]}


def mean_stat(stats: Sequence[Stat]) -> Stat:
    """Plain mean of several numbers (e.g. leaderboard = mean of sections); n = their items together."""
    if not stats:
        return Stat(float("nan"), 0)
    return Stat(float(np.mean([s.value for s in stats])), int(sum(s.n for s in stats)))


# ----------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class Coverage:
    """Which of a benchmark's published sections a run has. ``partial`` maps a present section to the
    published subsets it lacks (RM-Bench safety without safety-response); names carry no prefix."""

    unit: str
    expected: tuple[str, ...]
    present: tuple[str, ...]
    partial: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s for s in self.expected if s not in self.present)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.partial

    def short(self) -> str:
        """``"3 of 4 domains"``; ``"4 of 4 sections, 2 partial"`` when present sections lack subsets."""
        return f"{len(self.present)} of {len(self.expected)} {self.unit}" + (
            f", {len(self.partial)} partial" if self.partial else "")

    def headline(self) -> str:
        """``"3 of 4 domains (missing: math)"``; ``"4 of 4 domains"`` when complete."""
        text = f"{len(self.present)} of {len(self.expected)} {self.unit}"
        if self.missing:
            text += f" (missing: {', '.join(self.missing)})"
        for name, lacking in self.partial.items():
            text += f"; {name} partial (missing: {', '.join(lacking)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "headline": self.headline(), "unit": self.unit,
                "sections_present": list(self.present), "sections_expected": list(self.expected),
                "sections_missing": list(self.missing), "sections_partial": {k: list(v) for k, v in self.partial.items()}}


def coverage(bench: Any, keys: Sequence[str]) -> Coverage | None:
    """The coverage of a summary with ``keys`` against ``bench.sections_expected`` (None if it has none)."""
    expected: Mapping[str, tuple[str, ...]] = getattr(bench, "sections_expected", {}) or {}
    if not expected:
        return None
    have = set(keys)
    label = {k: k.partition("/")[2] or k for k in expected}
    present = tuple(label[k] for k in expected if k in have)
    partial = {label[k]: tuple(s.partition("/")[2] for s in subs if s not in have)
               for k, subs in expected.items() if k in have and any(s not in have for s in subs)}
    return Coverage(getattr(bench, "section_unit", "sections"), tuple(label.values()), present, partial)


# ----------------------------------------------------------------------------- known dirt, kept


def answer_dirt(correct: Sequence[str], incorrect: Sequence[str]) -> dict[str, int]:
    """Counts (0/1) for one item: an empty/whitespace-only answer; a correct answer identical to an
    incorrect one. Both are kept and scored by the benchmark's rule, as its reference code does."""
    texts = [*correct, *incorrect]
    return {"empty_answers": int(any(not t.strip() for t in texts)),
            "identical_answers": int(any(c in incorrect for c in correct))}


def add_counts(notes: dict[str, Any], counts: Mapping[str, int]) -> None:
    """Add ``counts`` into ``notes``, keeping only non-zero entries."""
    for key, value in counts.items():
        if value:
            notes[key] = notes.get(key, 0) + value


NOTE_TEXT = {
    "empty_answers": "{} item(s) with an empty/whitespace answer, kept and scored as the reference does",
    "identical_answers": "{} item(s) whose correct answer is identical to an incorrect one, kept and scored as "
                         "the reference does (the two tie)",
    "empty_turns": "{} item(s) with an empty turn in the prompt, kept as the reference does",
    "ties_rows_pooled": "{} Ties row(s) share their kind and int(id) with another row and are pooled with it "
                        "into one prompt, as the reference does",
    "subsets_outside_sections": "subsets outside the published sections (reported, counted in no section): {}",
    "domains_outside_overall": "domains outside the published four (reported, counted in no overall): {}",
    "domain_from_file_name": "rows without a 'domain' field took it from their file name: {}",
    "ignored_files": "read total_dataset.json only; these files beside it were not read: {}",
    "limited_to_first": "only the first {} items were evaluated (--limit)",
    "incomplete": "incomplete: {}",
}


def describe_note(key: str, value: Any) -> str:
    """One data note as a sentence for reports (``"2 item(s) with an empty/whitespace answer, ..."``)."""
    if isinstance(value, Mapping):
        value = ", ".join(f"{k} → {v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return NOTE_TEXT[key].format(value) if key in NOTE_TEXT else f"{key}: {value}"


# ----------------------------------------------------------------------------- reading


def iter_source(source: str, *, split: str | None, default_split: str) -> Iterator[tuple[Location, Any]]:
    """Records of a local file / ``save_to_disk`` folder, or, when ``source`` is not a local path, of a
    hub dataset loaded through ``datasets`` (``split`` or the benchmark's published split)."""
    if Path(source).exists():
        yield from iter_records(source)
        return
    if source.count("/") != 1 or source.startswith((".", "/", "~")) or _FILE_SUFFIX.search(source):
        raise MissingInputError(f"{source}: no such file or folder")
    import datasets

    ds = datasets.load_dataset(source, split=split or default_split)
    for i, row in enumerate(ds):
        yield Location(source, row=i), row


def finish_read(source: str, items: list[Item], n_records: int, errors: list[DataError], *,
                skip_invalid: bool, notes: dict[str, Any] | None = None) -> ReadResult:
    """Raise :class:`DataValidationError` for invalid records unless ``skip_invalid`` (then they are
    counted and the first few listed); an empty benchmark is an error either way."""
    listed = [str(e) for e in errors[:MAX_LISTED_ERRORS]]
    if errors and not skip_invalid:
        raise DataValidationError(source, listed, len(errors))
    if not items:
        raise ValueError(f"{source}: no valid items to evaluate ({n_records} records, {len(errors)} invalid)")
    return ReadResult(items, n_records, listed, len(errors), dict(notes or {}))


def text_field(record: Mapping[str, Any], key: str, loc: Location, *, allow_empty: bool = False) -> str:
    """``record[key]`` as a string, or a :class:`DataError` naming the field."""
    if key not in record or record[key] is None:
        raise DataError(loc, key, "missing")
    value = record[key]
    if not isinstance(value, str):
        raise DataError(loc, key, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(loc, key, "is empty")
    return value


def text_list(record: Mapping[str, Any], key: str, loc: Location, *, min_len: int = 1) -> list[str]:
    """``record[key]`` as a list of at least ``min_len`` strings (empty ones kept: see :func:`answer_dirt`)."""
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(loc, key, "expected a list of strings")
    if len(value) < min_len:
        raise DataError(loc, key, f"expected at least {min_len} response(s), got {len(value)}")
    return list(value)


def user(text: str) -> tuple[Message, ...]:
    """One user message."""
    return ({"role": "user", "content": text},)
