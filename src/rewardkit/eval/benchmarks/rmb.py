"""``rmb``: RMB (Zhou-Zoey/RMB-Reward-Model-Benchmark), pairwise and Best-of-N, helpful and harmless.

Layout: ``RMB_dataset/{Pairwise_set,BoN_set}/{Helpfulness,Harmlessness}/.../*.json``, each file a JSON
list. Pass the ``RMB_dataset`` folder, one of its sub-folders, or a single file.
- pairwise: ``{"pair_uid", "conversation_input": [{"role", "content", "language"}], "chosen": {"llm_name",
  "answer"}, "reject": {"llm_name", "answer"}, "category_path"}``
- best-of-N: ``{"bon_uid", "conversation_input", "bon_best": {...}, "loser_list": [{...}, ...], "category_path"}``
``category_path`` is like ``"BoN_set/Harmlessness/S10"``: the goal (Helpfulness / Harmlessness) is its
first element after the set name; the rest is the scenario.

Rules: a pair is correct iff ``chosen > reject`` (ties wrong); a best-of-N item is correct only if
``bon_best`` scores strictly above EVERY loser (RMB ships no BoN scoring code; this is the paper's rule).
Sections = mean over items of Pairwise-Helpful, Pairwise-Harmless, BoN-Helpful, BoN-Harmless;
overall = plain mean of the four. Known dirt is kept, scored as the reference scores it, and counted in
the notes: empty turns in ``conversation_input``, answers that are empty or only whitespace (two real
Harmlessness pairs: dropping them would rest a section on 6,085 items instead of the reference's 6,087),
and items whose best answer is identical to a loser (they tie, so they count wrong).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rewardkit.data.formats import ROLES, DataError, Location, Message, iter_records
from rewardkit.errors import MissingInputError
from rewardkit.eval.benchmarks.base import (
    Item,
    Outcomes,
    ReadResult,
    Stat,
    add_counts,
    answer_dirt,
    base_outcomes,
    beats_all,
    finish_read,
    group_means,
    mean_stat,
    reply,
)

SET_NAMES = {"Pairwise_set": "Pairwise", "BoN_set": "BoN"}
GOALS = {"Helpfulness": "Helpful", "Harmlessness": "Harmless"}
SECTIONS = ("Pairwise-Helpful", "Pairwise-Harmless", "BoN-Helpful", "BoN-Harmless")


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise MissingInputError(f"{source}: no such file or folder")
    files = sorted(p for p in source.rglob("*.json") if p.is_file())
    if not files:
        raise MissingInputError(f"{source}: no RMB .json files under it (expected Pairwise_set/ and BoN_set/)")
    return files


def iter_rmb(source: str) -> Iterator[tuple[Location, Any]]:
    """(location, record) for every record of every RMB file under ``source``, through the data layer's
    one reader (so a damaged or hostile file is an input error naming it, never a traceback)."""
    for path in _files(Path(source)):
        yield from iter_records(path)


def _conversation(record: Mapping[str, Any], loc: Location) -> tuple[tuple[Message, ...], int]:
    turns = record.get("conversation_input")
    if not isinstance(turns, list) or not turns:
        raise DataError(loc, "conversation_input", "expected a non-empty list of turns")
    out, empty = [], 0
    for i, t in enumerate(turns):
        role = t.get("role") if isinstance(t, Mapping) else None
        if not isinstance(role, str) or role not in ROLES or not isinstance(t.get("content"), str):
            raise DataError(loc, f"conversation_input[{i}]", "a turn needs a known 'role' and a string 'content'")
        empty += not t["content"].strip()
        out.append({"role": t["role"], "content": t["content"]})
    return tuple(out), empty


def _answer(value: Any, loc: Location, name: str) -> str:
    """The answer text; an empty or whitespace-only one is kept (the reference scores it)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("answer"), str):
        raise DataError(loc, name, "expected an object with a string 'answer'")
    return value["answer"]


def _category(record: Mapping[str, Any], loc: Location, kind: str) -> str:
    """``"Pairwise/Helpfulness/Code/Documentation"`` from ``category_path`` (or the file's folders)."""
    path = record.get("category_path")
    parts = path.split("/") if isinstance(path, str) and path else list(Path(loc.path).with_suffix("").parts)
    for i, part in enumerate(parts):
        if part in GOALS:
            return "/".join([kind, *parts[i:]])
    raise DataError(loc, "category_path", f"names neither Helpfulness nor Harmlessness: {path!r}")


def parse_rmb(record: Any, loc: Location) -> tuple[Item, dict[str, int]]:
    """One RMB record as an item (response 0 is the chosen / best one) and the dirt it carries."""
    if not isinstance(record, Mapping):
        raise DataError(loc, None, f"expected a JSON object, got {type(record).__name__}")
    prompt, empty = _conversation(record, loc)
    if "bon_best" in record or "loser_list" in record:
        kind, uid = "BoN", str(record.get("bon_uid", loc.row))
        losers = record.get("loser_list")
        if not isinstance(losers, list) or not losers:
            raise DataError(loc, "loser_list", "expected a non-empty list of answers")
        answers = [_answer(record.get("bon_best"), loc, "bon_best")]
        answers += [_answer(x, loc, f"loser_list[{i}]") for i, x in enumerate(losers)]
    elif "chosen" in record or "reject" in record:
        kind, uid = "Pairwise", str(record.get("pair_uid", loc.row))
        answers = [_answer(record.get("chosen"), loc, "chosen"), _answer(record.get("reject"), loc, "reject")]
    else:
        raise DataError(loc, None, "neither a pairwise (chosen/reject) nor a best-of-N (bon_best/loser_list) record")
    subset = _category(record, loc, kind)
    labels = (True,) + (False,) * (len(answers) - 1)
    item = Item(f"{kind}:{uid}", prompt, tuple(reply(a) for a in answers), labels, subset, True)
    return item, {"empty_turns": int(empty > 0), **answer_dirt(answers[:1], answers[1:])}


def section_of(subset: str) -> str:
    """``"Pairwise/Helpfulness/..."`` -> ``"Pairwise-Helpful"``."""
    kind, goal = subset.split("/")[:2]
    return f"{kind}-{GOALS[goal]}"


class RMBBenchmark:
    """RMB: pairwise and strict Best-of-N accuracy, helpful and harmless; overall = mean of four."""

    name = "rmb"
    description = "RMB: pairwise + Best-of-N (best must beat every loser), helpful/harmless; mean of 4 sections"
    default_split = "train"
    section_unit = "sections"
    sections_expected = MappingProxyType({f"section/{s}": () for s in SECTIONS})

    def read(self, source: str, *, split: str | None = None, skip_invalid: bool = False) -> ReadResult:
        items: list[Item] = []
        errors: list[DataError] = []
        notes: dict[str, Any] = {}
        n = 0
        for loc, record in iter_rmb(source):
            n += 1
            try:
                if isinstance(record, DataError):
                    raise record
                item, dirt = parse_rmb(record, loc)
            except DataError as e:
                errors.append(e)
                continue
            items.append(item)
            add_counts(notes, dirt)
        return finish_read(source, items, n, errors, skip_invalid=skip_invalid, notes=notes)

    def outcomes(self, items: Sequence[Item], scores: Sequence[np.ndarray]) -> Outcomes:
        return base_outcomes(items, [beats_all(s) for s in scores])

    def random_outcomes(self, items: Sequence[Item]) -> Outcomes:
        return base_outcomes(items, [1.0 / len(it.responses) for it in items])

    def summarize(self, outcomes: Outcomes) -> dict[str, Stat]:
        codes, names = outcomes.regroup(section_of)
        sections = group_means(outcomes.credit, codes, names, "section/")
        sections = {f"section/{s}": sections[f"section/{s}"] for s in SECTIONS if f"section/{s}" in sections}
        subsets = group_means(outcomes.credit, outcomes.code, outcomes.names, "subset/")
        return {"overall": mean_stat(list(sections.values())), **sections, **subsets}
