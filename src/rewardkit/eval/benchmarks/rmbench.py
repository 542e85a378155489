"""``rmbench``: RM-Bench (THU-KEG/RM-Bench): subtle errors under three styles, hard / normal / easy.

Rows: ``{"id", "prompt", "chosen": [3 str], "rejected": [3 str], "domain"}``; the three responses are in
style order concise / detailed-plain / detailed-markdown; domains chat, code, math, safety-refuse,
safety-response. Pass ``total_dataset.json``, a domain file, a folder of them, or the hub name.
The published per-domain files (``chat_filtered.json``, ``code_filtered.json``, ``math_filtered.json``,
``safety-refuse_filtered.json``, ``safety-response_filtered.json``) have no ``domain`` field: a row's
domain is its ``domain`` field when present, else its file's name (the reference scores one file at a
time, so the file is the domain). A folder holding ``total_dataset.json`` is read from that file alone
(the domain files beside it repeat its rows).

Rule (``compute_accuracy`` of the reference): for each item the 3×3 matrix
``A[i][j] = 1 if score(chosen_i) > score(rejected_j)`` (ties wrong); averaged over a domain's items,
hard = mean of the upper triangle (chosen plainer than rejected), normal = the diagonal,
easy = the lower triangle; a domain's score = mean(hard, normal, easy). The published four domains
are chat, math, code and safety (safety-refuse and safety-response pooled, each also reported as a
subset); overall = mean of the four domains, and overall hard / normal / easy = the mean over domains.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rewardkit.data.formats import DataError, Location, iter_records
from rewardkit.errors import MissingInputError
from rewardkit.eval.benchmarks.base import (
    Item,
    Outcomes,
    ReadResult,
    Stat,
    add_counts,
    answer_dirt,
    base_outcomes,
    finish_read,
    group_means,
    iter_source,
    mean_stat,
    reply,
    text_field,
    text_list,
    user,
)

STYLES = ("concise", "detailed-plain", "detailed-markdown")
DOMAINS = ("chat", "math", "code", "safety")  # published columns; safety pools safety-refuse + safety-response
RAW_DOMAINS = ("chat", "code", "math", "safety-refuse", "safety-response")  # the rows' own labels
# A published per-domain file: chat_filtered.json, safety-refuse_filtered.json, ... (.jsonl / .gz too).
_DOMAIN_FILE = re.compile(r"^(chat|code|math|safety-refuse|safety-response)(?:_filtered)?\.jsonl?(?:\.gz)?$",
                          re.IGNORECASE)
_DATA_FILE = re.compile(r"\.jsonl?(\.gz)?$", re.IGNORECASE)
_UPPER = np.triu(np.ones((3, 3), dtype=bool), 1).ravel()   # chosen plainer than rejected: hard
_DIAG = np.eye(3, dtype=bool).ravel()                       # same style: normal
_LOWER = np.tril(np.ones((3, 3), dtype=bool), -1).ravel()  # chosen fancier than rejected: easy
LEVELS = {"hard": _UPPER, "normal": _DIAG, "easy": _LOWER}


def style_matrix(scores: np.ndarray) -> np.ndarray:
    """(9,) row-major 3×3 cells ``chosen_i > rejected_j`` from scores (6,) = 3 chosen then 3 rejected."""
    s = np.asarray(scores, dtype=np.float64)
    return (s[:3, None] > s[None, 3:]).astype(np.float64).ravel()


def domain_of(subset: str) -> str:
    """The published domain of a raw domain label (``safety-refuse`` -> ``safety``)."""
    return "safety" if subset.startswith("safety") else subset


def domain_of_file(path: str) -> str | None:
    """The domain a published RM-Bench file name names (``safety-refuse_filtered.json`` -> ``safety-refuse``)."""
    m = _DOMAIN_FILE.match(Path(path).name)
    return m.group(1).lower() if m else None


def _files(p: Path) -> tuple[list[Path], list[str]]:
    """The files of an RM-Bench folder to read, and those left unread (beside ``total_dataset.json``)."""
    found = sorted(q for q in p.iterdir() if q.is_file() and _DATA_FILE.search(q.name))
    total = [q for q in found if q.name.startswith("total_dataset.")]
    if total:
        return total[:1], [q.name for q in found if q != total[0]]
    if not found:
        raise MissingInputError(f"{p}: no RM-Bench .json/.jsonl files in it (expected total_dataset.json or "
                                "chat_filtered.json, code_filtered.json, ...)")
    return found, []


def _iter_files(source: str, split: str | None, default_split: str, notes: dict[str, Any]
                ) -> Iterator[tuple[Location, Any]]:
    p = Path(source)
    saved = (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()  # datasets.save_to_disk
    if p.is_dir() and not saved:  # a folder of RM-Bench files
        files, ignored = _files(p)
        if ignored:
            notes["ignored_files"] = ignored
        for f in files:
            yield from iter_records(f)
        return
    yield from iter_source(source, split=split, default_split=default_split)


def _domain(record: Any, loc: Location) -> tuple[str, bool]:
    """The row's domain and whether it came from the file name (the published domain files have no field)."""
    if record.get("domain") is not None:
        return text_field(record, "domain", loc), False
    from_name = domain_of_file(loc.path)
    if from_name is None:
        raise DataError(loc, "domain", "missing, and the file name names no domain (the published files are "
                        + ", ".join(f"{d}_filtered.json" for d in RAW_DOMAINS) + ")")
    return from_name, True


def _item(record: Any, loc: Location, index: int) -> tuple[Item, dict[str, int]]:
    if isinstance(record, DataError):
        raise record
    prompt = text_field(record, "prompt", loc, allow_empty=True)
    chosen, rejected = text_list(record, "chosen", loc), text_list(record, "rejected", loc)
    for name, resp in (("chosen", chosen), ("rejected", rejected)):
        if len(resp) != len(STYLES):
            raise DataError(loc, name, f"expected {len(STYLES)} responses ({' / '.join(STYLES)}), got {len(resp)}")
    domain, from_name = _domain(record, loc)
    item = Item(str(record.get("id", index)), user(prompt), tuple(reply(r) for r in chosen + rejected),
                (True,) * 3 + (False,) * 3, domain, True)
    return item, {**answer_dirt(chosen, rejected), "from_name": int(from_name)}


class RMBench:
    """RM-Bench: the 3×3 style matrix per domain -> hard / normal / easy; overall = mean of 4 domains."""

    name = "rmbench"
    description = "RM-Bench: 3x3 chosen-vs-rejected style matrix -> hard/normal/easy per domain; mean of 4 domains"
    default_split = "train"
    section_unit = "domains"
    sections_expected = MappingProxyType({f"section/{d}": tuple(f"subset/{r}" for r in RAW_DOMAINS if domain_of(r) == d)
                         for d in DOMAINS})

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult:
        items: list[Item] = []
        errors: list[DataError] = []
        notes: dict[str, Any] = {}
        named: dict[str, str] = {}  # file -> domain taken from its name
        n = 0
        for loc, record in _iter_files(source, split, self.default_split, notes):
            n += 1
            try:
                item, dirt = _item(record, loc, len(items))
            except DataError as e:
                errors.append(e)
                continue
            items.append(item)
            if dirt.pop("from_name"):
                named[Path(loc.path).name] = item.subset
            add_counts(notes, dirt)
        if named:
            notes["domain_from_file_name"] = named
        unknown = sorted({it.subset for it in items} - set(RAW_DOMAINS))
        if unknown:
            notes["domains_outside_overall"] = unknown
        return finish_read(source, items, n, errors, skip_invalid=skip_invalid, notes=notes)

    def outcomes(self, items: Sequence[Item], scores: Sequence[np.ndarray]) -> Outcomes:
        cells = np.array([style_matrix(s) for s in scores]).reshape(len(items), 9)
        return base_outcomes(items, cells.mean(axis=1), cells=cells)

    def random_outcomes(self, items: Sequence[Item]) -> Outcomes:
        return base_outcomes(items, [0.5] * len(items), cells=np.full((len(items), 9), 0.5))

    def summarize(self, outcomes: Outcomes) -> dict[str, Stat]:
        cells = outcomes.extra["cells"]
        codes, domains = outcomes.regroup(domain_of)
        sections: dict[str, Stat] = {}
        for name in [d for d in DOMAINS if d in domains] + sorted(set(domains) - set(DOMAINS)):
            rows = codes == domains.index(name)
            mean, n = cells[rows].mean(axis=0), int(rows.sum())  # (9,): the domain's averaged 3×3 matrix
            levels = {lv: Stat(float(mean[mask].mean()), n) for lv, mask in LEVELS.items()}
            sections[f"section/{name}"] = Stat(float(np.mean([s.value for s in levels.values()])), n)
            sections.update({f"section/{name}/{lv}": s for lv, s in levels.items()})
        published = [sections[f"section/{d}"] for d in DOMAINS if f"section/{d}" in sections]
        out = {"overall": mean_stat(published)}
        for lv in LEVELS:
            out[f"overall/{lv}"] = mean_stat([sections[f"section/{d}/{lv}"] for d in DOMAINS
                                              if f"section/{d}/{lv}" in sections])
        return {**out, **sections, **group_means(outcomes.credit, outcomes.code, outcomes.names, "subset/")}
