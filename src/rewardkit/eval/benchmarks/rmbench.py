"""``rmbench``: RM-Bench (THU-KEG/RM-Bench): subtle errors under three styles, hard / normal / easy.

Rows: ``{"id", "prompt", "chosen": [3 str], "rejected": [3 str], "domain"}``; the three responses are in
style order concise / detailed-plain / detailed-markdown; domains chat, code, math, safety-refuse,
safety-response. Pass ``total_dataset.json``, a domain file, a folder of them, or the hub name.

Rule (``compute_accuracy`` of the reference): for each item the 3×3 matrix
``A[i][j] = 1 if score(chosen_i) > score(rejected_j)`` (ties wrong); averaged over a domain's items,
hard = mean of the upper triangle (chosen plainer than rejected), normal = the diagonal,
easy = the lower triangle; a domain's score = mean(hard, normal, easy). The published four domains
are chat, math, code and safety (safety-refuse and safety-response pooled, each also reported as a
subset); overall = mean of the four domains, and overall hard / normal / easy = the mean over domains.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.formats import DataError, Location, iter_records
from rewardkit.eval.benchmarks.base import (
    Item,
    Outcomes,
    ReadResult,
    Stat,
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


def _iter_files(source: str, split: str | None, default_split: str) -> Iterator[tuple[Location, Any]]:
    p = Path(source)
    saved = (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()  # datasets.save_to_disk
    if p.is_dir() and not saved:  # a folder of RM-Bench files
        total = p / "total_dataset.json"
        files = [total] if total.exists() else sorted(q for q in p.iterdir() if q.suffix in (".json", ".jsonl"))
        if not files:
            raise FileNotFoundError(f"{p}: no RM-Bench .json/.jsonl files in it")
        for f in files:
            yield from iter_records(f)
        return
    yield from iter_source(source, split=split, default_split=default_split)


def _item(record: Any, loc: Location, index: int) -> Item:
    if isinstance(record, DataError):
        raise record
    prompt = text_field(record, "prompt", loc, allow_empty=True)
    chosen, rejected = text_list(record, "chosen", loc), text_list(record, "rejected", loc)
    for name, resp in (("chosen", chosen), ("rejected", rejected)):
        if len(resp) != len(STYLES):
            raise DataError(loc, name, f"expected {len(STYLES)} responses ({' / '.join(STYLES)}), got {len(resp)}")
    domain = text_field(record, "domain", loc)
    return Item(str(record.get("id", index)), user(prompt), tuple(reply(r) for r in chosen + rejected),
                (True,) * 3 + (False,) * 3, domain, True)


class RMBench:
    """RM-Bench: the 3×3 style matrix per domain -> hard / normal / easy; overall = mean of 4 domains."""

    name = "rmbench"
    description = "RM-Bench: 3x3 chosen-vs-rejected style matrix -> hard/normal/easy per domain; mean of 4 domains"
    default_split = "train"

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult:
        items: list[Item] = []
        errors: list[DataError] = []
        n = 0
        for loc, record in _iter_files(source, split, self.default_split):
            n += 1
            try:
                items.append(_item(record, loc, len(items)))
            except DataError as e:
                errors.append(e)
        unknown = sorted({it.subset for it in items} - {"chat", "math", "code", "safety-refuse", "safety-response"})
        notes = {"domains_outside_overall": unknown} if unknown else {}
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
