"""``curate``: stream a preference file through the curation steps and write what was kept and why the rest
was removed.

Two passes over the input, never a list of texts in memory:

1. read each record, parse it, and run the per-record steps in order (invalid → exact dedup → near dedup →
   decontamination); a survivor leaves only fixed-size numbers behind (its index, response lengths,
   group code, and, when a scorer filters, P(chosen > rejected) and both rewards, scored
   ``score_batch`` pairs at a time). Then the global steps decide on those columns (``top:F`` per group,
   length balance).
2. read the input again and write ``kept.jsonl`` and ``removed.jsonl`` in input order, then the reports.

``kept.jsonl`` holds the input records unchanged when the input is jsonl (``.jsonl`` / ``.jsonl.gz``);
for other inputs (json, parquet, datasets folders) it holds canonical rows
(:func:`rewardkit.data.formats.to_canonical`, every extra field kept). ``removed.jsonl`` holds the same
rows plus ``reason``, ``step``, ``source_line`` (the 1-based line for jsonl, the 0-based row otherwise)
and the step's detail fields (an input field of the same name is overwritten in ``removed.jsonl`` only).
kept + removed = input records, always. A removed record's reason and details are kept in memory until
it is written (a small dict per removed record).
"""

from __future__ import annotations

import bisect
import json
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.curate.config import STEPS, CurateConfig
from rewardkit.curate.decontam import BenchmarkIndex, build_index
from rewardkit.curate.dedup import ExactDedup, NearDedup
from rewardkit.curate.normalize import digest, messages_text, normalize, pair_key
from rewardkit.curate.report import build_report, write_html
from rewardkit.curate.select import (
    balance_drop,
    balance_weights,
    longer_wins,
    selection_values,
    top_fraction,
)
from rewardkit.data.formats import (
    DataError,
    Location,
    PreferenceExample,
    iter_records,
    no_records_error,
    parse_record,
    to_canonical,
)
from rewardkit.data.io import atomic_write_json, atomic_write_text, atomic_writer
from rewardkit.errors import OptionError

NO_GROUP = "(none)"
MAX_EXAMPLES = 3  # examples per reason in the report
CHUNK = 512  # records per batch of the per-record steps (near dedup hashes a chunk at once)


@dataclass(frozen=True)
class CurateResult:
    """What a run did: counts, where the outputs are, and the report (also written to ``report.json``)."""

    n_input: int
    n_kept: int
    removed: dict[str, int]
    out_dir: str
    report: dict[str, Any]

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.removed.items()) or "none"
        lw = self.report["length_bias"]
        return (f"curated {self.n_input} records: kept {self.n_kept}, removed {sum(self.removed.values())} "
                f"({parts}); longer wins {_pct(lw['before'])} before, {_pct(lw['after'])} after; "
                f"{self.report['pairs_per_s']:.0f} pairs/s")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


@dataclass
class _State:
    """Fixed-size numbers per record (fate) and per survivor (columns), filled by pass 1."""

    fate: bytearray = field(default_factory=bytearray)  # per record: 0 kept, else 1 + STEPS index
    details: dict[int, dict[str, Any]] = field(default_factory=dict)  # removed records: reason and detail
    idx: array = field(default_factory=lambda: array("q"))  # survivors' record indices
    c_len: array = field(default_factory=lambda: array("q"))
    r_len: array = field(default_factory=lambda: array("q"))
    group: array = field(default_factory=lambda: array("i"))
    p: array = field(default_factory=lambda: array("d"))
    c_score: array = field(default_factory=lambda: array("d"))
    r_score: array = field(default_factory=lambda: array("d"))
    groups: dict[str, int] = field(default_factory=dict)
    before: Counter = field(default_factory=Counter)  # longer / shorter / equal over valid records
    seconds: Counter = field(default_factory=Counter)
    weights: dict[int, float] | None = None  # --balance-length weight: record index -> weight

    def remove(self, i: int, step: str, reason: str, **detail: Any) -> None:
        self.fate[i] = 1 + STEPS.index(step)
        self.details[i] = {"reason": reason, "step": step, **detail}


def curate(path: str | Path, out_dir: str | Path, config: CurateConfig, *, scorer: Any = None) -> CurateResult:
    """Run the steps of ``config`` over the preference file ``path``; write ``kept.jsonl``,
    ``removed.jsonl``, ``report.json`` and ``report.html`` into ``out_dir``.

    ``scorer``: a built scorer for ``config.filter_by`` (built with default options when None). Raises
    :class:`~rewardkit.errors.InputError` (a :class:`DataError` naming file:line) at the first invalid
    record unless ``config.skip_invalid``; :class:`OptionError` for a scorer that cannot do what is asked.
    """
    t0 = time.perf_counter()
    if config.filter_by is not None and scorer is None:
        from rewardkit.scoring import build_scorer

        scorer = build_scorer(config.filter_by)
    _check_scorer(config, scorer)
    index = None
    if config.decontaminate:
        index = build_index(config.decontaminate, fmt=config.decontaminate_format, n=config.ngram,
                            response_min_words=config.response_min_words)
    state = _State()
    state.seconds["setup"] += time.perf_counter() - t0  # building the scorer and the benchmark index
    _first_pass(str(path), config, state, index, scorer)
    _decide(config, state)
    out = Path(out_dir)
    counts = _second_pass(str(path), out, config, state)
    report = build_report(config=config, path=str(path), counts=counts, state=state, index=index,
                          seconds=time.perf_counter() - t0)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.html", write_html(report))
    return CurateResult(report["input"], report["kept"], report["removed_by_reason"], str(out), report)


def _check_scorer(config: CurateConfig, scorer: Any) -> None:
    if scorer is None:
        return
    from rewardkit.scoring import is_pairwise

    if is_pairwise(scorer) and config.keep_rule is not None and config.keep_rule.kind == "top" \
            and config.select_by != "margin":
        raise OptionError(f"--select-by {config.select_by} needs a pointwise scorer; a judge gives only "
                          "P(chosen > rejected) (use --select-by margin: its log-odds)")


# ----------------------------------------------------------------------------- pass 1


Removal = tuple[str, str, dict[str, Any]]  # (step, reason, detail)


class _Steps:
    """The per-record steps, each with its own fixed-size index, run over a chunk of records at a time
    (in input order, so keep-first holds across and within chunks)."""

    def __init__(self, config: CurateConfig, index: BenchmarkIndex | None) -> None:
        self.config, self.index = config, index
        self.exact = ExactDedup() if "exact" in config.dedup else None
        self.near = NearDedup(threshold=config.near_threshold, num_perm=config.num_perm,
                                shingle=config.shingle, seed=config.seed + 1) \
            if "near" in config.dedup else None

    def run(self, chunk: list[tuple[PreferenceExample, int]], seconds: Counter) -> list[Removal | None]:
        """``(step, reason, detail)`` of the first step that removes each pair of ``chunk`` (pairs with their
        source lines), or None for a survivor."""
        t = time.perf_counter()
        texts = [tuple(normalize(messages_text(m)) for m in (ex.prompt, ex.chosen, ex.rejected)) for ex, _ in chunk]
        seconds["normalize"] += time.perf_counter() - t
        lines = [line for _, line in chunk]
        out: list[Removal | None] = [None] * len(chunk)
        if self.exact is not None:
            t = time.perf_counter()
            keys = [digest(pair_key(*t) if self.config.dedup_scope == "pair" else t[0]) for t in texts]
            for k, first in enumerate(self.exact.check_many(keys, lines)):
                if first is not None:
                    out[k] = ("dedup_exact", "exact_duplicate", {"duplicate_of": first})
            seconds["dedup_exact"] += time.perf_counter() - t
        if self.near is not None:
            t = time.perf_counter()
            todo = [k for k in range(len(chunk)) if out[k] is None]
            joined = [" ".join(w for w in texts[k] if w) for k in todo]
            for k, first in zip(todo, self.near.check_many(joined, [lines[k] for k in todo]), strict=True):
                if first is not None:
                    out[k] = ("dedup_near", "near_duplicate", {"duplicate_of": first})
            seconds["dedup_near"] += time.perf_counter() - t
        if self.index is not None:
            t = time.perf_counter()
            todo = [k for k in range(len(chunk)) if out[k] is None]
            hits = self.index.match_many([texts[k][0] for k in todo], [texts[k][1:] for k in todo])
            for k, hit in zip(todo, hits, strict=True):
                if hit is not None:
                    out[k] = ("decontaminate", "contaminated", {"benchmark_file": hit.file,
                                                                "benchmark_uid": hit.uid, "rule": hit.rule})
            seconds["decontaminate"] += time.perf_counter() - t
        return out


def source_line(loc: Location) -> int:
    """The 1-based line of a jsonl record, else its 0-based row."""
    return loc.line if loc.line is not None else (loc.row or 0)


def group_of(record: Any, column: str | None) -> str:
    """The record's value of ``column`` as text (``(none)`` when absent, null, or no column)."""
    if column is None or not isinstance(record, dict) or record.get(column) is None:
        return NO_GROUP
    value = record[column]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _parse(loc: Location, record: dict[str, Any] | DataError) -> PreferenceExample | DataError:
    if isinstance(record, DataError):
        return record
    try:
        ex = parse_record(record, loc)
    except DataError as e:
        return e
    if not isinstance(ex, PreferenceExample):
        return DataError(loc, "chosen", "missing (data curate needs preference pairs, got a prompt/completion row)")
    return ex


def _lengths(ex: PreferenceExample) -> tuple[int, int]:
    return sum(len(m["content"]) for m in ex.chosen), sum(len(m["content"]) for m in ex.rejected)


def _bars(config: CurateConfig) -> dict[str, Any]:
    from tqdm.auto import tqdm

    steps = [s for s in config.steps if s != "length_balance"]
    return {s: tqdm(desc=s, unit="pair", position=i, disable=not config.progress, dynamic_ncols=True)
            for i, s in enumerate(steps)}


def _first_pass(path: str, config: CurateConfig, state: _State, index: BenchmarkIndex | None, scorer: Any) -> None:
    steps, bars = _Steps(config, index), _bars(config)
    chunk: list[tuple[int, Any, PreferenceExample, int]] = []  # (record index, raw record, example, line)
    pending: list[tuple[int, PreferenceExample]] = []  # survivors waiting for the scorer
    t_read = time.perf_counter()
    for i, (loc, record) in enumerate(iter_records(path)):
        state.fate.append(0)
        ex = _parse(loc, record)
        bars["invalid"].update()
        if isinstance(ex, DataError):
            if not config.skip_invalid:
                raise ex
            state.remove(i, "invalid", "invalid", error=str(ex))
            continue
        chunk.append((i, record, ex, source_line(loc)))
        if len(chunk) >= CHUNK:
            _run_chunk(chunk, steps, state, bars, config, scorer, pending)
    _run_chunk(chunk, steps, state, bars, config, scorer, pending)
    if scorer is not None and pending:
        _score(scorer, pending, state, bars["filter"])
    for bar in bars.values():
        bar.close()
    if not state.fate:
        raise no_records_error(path)
    state.seconds["read"] += time.perf_counter() - t_read - sum(state.seconds[s] for s in (*STEPS, "normalize"))


def _run_chunk(chunk: list[tuple[int, Any, PreferenceExample, int]], steps: _Steps, state: _State,
               bars: dict[str, Any], config: CurateConfig, scorer: Any,
               pending: list[tuple[int, PreferenceExample]]) -> None:
    """Run the per-record steps over ``chunk`` (then empty it); survivors become columns, and are scored
    ``config.score_batch`` at a time when a scorer filters."""
    results = steps.run([(ex, line) for _, _, ex, line in chunk], state.seconds)
    for (i, record, ex, _), removed in zip(chunk, results, strict=True):
        c_len, r_len = _lengths(ex)
        state.before["longer" if c_len > r_len else "shorter" if c_len < r_len else "equal"] += 1
        for s in ("dedup_exact", "dedup_near", "decontaminate"):
            if s in bars and (removed is None or STEPS.index(s) <= STEPS.index(removed[0])):
                bars[s].update()
        if removed is not None:
            state.remove(i, *removed[:2], **removed[2])
            continue
        _add_survivor(state, i, c_len, r_len, group_of(record, config.per))
        if scorer is not None:
            pending.append((len(state.idx) - 1, ex))
            if len(pending) >= config.score_batch:
                _score(scorer, pending, state, bars["filter"])
    chunk.clear()


def _add_survivor(state: _State, i: int, c_len: int, r_len: int, group: str) -> None:
    state.idx.append(i)
    state.c_len.append(c_len)
    state.r_len.append(r_len)
    state.group.append(state.groups.setdefault(group, len(state.groups)))
    for col in (state.p, state.c_score, state.r_score):
        col.append(float("nan"))


def _score(scorer: Any, pending: list[tuple[int, PreferenceExample]], state: _State, bar: Any) -> None:
    from rewardkit.scorers.preference import preference_probabilities

    t = time.perf_counter()
    exs = [ex for _, ex in pending]
    prefs = preference_probabilities(scorer, [e.prompt for e in exs], [e.chosen for e in exs],
                                     [e.rejected for e in exs], [e.conversational for e in exs])
    for k, (pos, _) in enumerate(pending):
        state.p[pos] = float(prefs.p_first[k])
        if prefs.first_scores is not None and prefs.second_scores is not None:
            state.c_score[pos] = float(prefs.first_scores[k])
            state.r_score[pos] = float(prefs.second_scores[k])
    bar.update(len(pending))
    pending.clear()
    state.seconds["filter"] += time.perf_counter() - t


# ----------------------------------------------------------------------------- global decisions


def _decide(config: CurateConfig, state: _State) -> None:
    """Scorer filter / selection, then length balance, on the survivors' columns."""
    alive = np.ones(len(state.idx), dtype=bool)
    idx = np.frombuffer(state.idx, dtype=np.int64) if len(state.idx) else np.zeros(0, np.int64)
    rule = config.keep_rule
    if rule is not None:
        p = np.asarray(state.p, dtype=np.float64)
        if rule.kind == "agree":
            keep = p > 0.5
            for pos in np.flatnonzero(~keep):
                state.remove(int(idx[pos]), "filter", "disagree", p_chosen=round(float(p[pos]), 6))
        else:
            values = _values(config, state, p)
            groups = np.asarray(state.group, dtype=np.int64)
            keep = top_fraction(values, groups, rule.fraction)
            names = {v: k for k, v in state.groups.items()}
            for pos in np.flatnonzero(~keep):
                state.remove(int(idx[pos]), "filter", "not_top", **{f"select_{config.select_by}":
                             round(float(values[pos]), 6), "group": names[int(groups[pos])]})
        alive &= keep
    if config.balance_length is None:
        return
    c = np.asarray(state.c_len, dtype=np.int64)[alive]
    r = np.asarray(state.r_len, dtype=np.int64)[alive]
    if config.balance_length == "drop":
        keep = balance_drop(c, r, seed=config.seed)
        for pos in np.flatnonzero(alive)[~keep]:
            state.remove(int(idx[pos]), "length_balance", "length_balance",
                         chosen_longer=bool(state.c_len[pos] > state.r_len[pos]))
    else:
        weights = np.full(len(alive), np.nan)
        weights[alive] = balance_weights(c, r)
        state.weights = {int(idx[pos]): float(weights[pos]) for pos in np.flatnonzero(alive)}


def _values(config: CurateConfig, state: _State, p: np.ndarray) -> np.ndarray:
    cs = np.asarray(state.c_score, dtype=np.float64)
    if np.isnan(cs).any():  # a judge: no rewards, rank by its log-odds
        q = np.clip(p, 1e-12, 1 - 1e-12)
        return np.log(q) - np.log1p(-q)
    return selection_values(config.select_by, cs, np.asarray(state.r_score, dtype=np.float64))


# ----------------------------------------------------------------------------- pass 2


def _is_jsonl(path: str) -> bool:
    return Path(path).name.lower().removesuffix(".gz").endswith(".jsonl")


def _output_row(loc: Location, record: dict[str, Any] | DataError, raw: bool) -> dict[str, Any]:
    if isinstance(record, DataError):
        return {}
    if raw:
        return record
    ex = _parse(loc, record)
    return dict(record) if isinstance(ex, DataError) else to_canonical(ex)


def _second_pass(path: str, out: Path, config: CurateConfig, state: _State) -> dict[str, Any]:
    """Write kept.jsonl and removed.jsonl in input order; count per group and reason, pick examples."""
    from tqdm.auto import tqdm

    t = time.perf_counter()
    raw = _is_jsonl(path)
    column = config.per or "source"
    weights = state.weights
    counts: dict[str, Any] = {"groups": {}, "examples": {}, "kept_lengths": Counter(), "kept_weighted": Counter()}
    with atomic_writer(out / "kept.jsonl") as kept_f, atomic_writer(out / "removed.jsonl") as removed_f, \
            tqdm(total=len(state.fate), desc="write", unit="pair", disable=not config.progress,
                 dynamic_ncols=True) as bar:
        for i, (loc, record) in enumerate(iter_records(path)):
            row = _output_row(loc, record, raw)
            group = counts["groups"].setdefault(group_of(record, column), Counter())
            group["input"] += 1
            if state.fate[i]:
                detail = state.details[i]
                removed_f.write(_dumps({**row, **detail, "source_line": source_line(loc)}) + "\n")
                group[detail["reason"]] += 1
                _add_example(counts["examples"], detail, loc, record)
            else:
                if weights is not None:
                    row = {**row, "weight": weights[i]}
                kept_f.write(_dumps(row) + "\n")
                group["kept"] += 1
                _count_kept_length(counts, state, i, weights.get(i, 1.0) if weights else 1.0)
            bar.update()
    state.seconds["write"] += time.perf_counter() - t
    return counts


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def _count_kept_length(counts: dict[str, Any], state: _State, i: int, weight: float) -> None:
    """Count kept record ``i`` (a survivor of pass 1) as chosen longer, shorter or equal, from its stored
    lengths (survivors are in input order, so a binary search finds it)."""
    pos = bisect.bisect_left(state.idx, i)
    c, r = state.c_len[pos], state.r_len[pos]
    side = "longer" if c > r else "shorter" if c < r else "equal"
    counts["kept_lengths"][side] += 1
    counts["kept_weighted"][side] += weight


def _add_example(examples: dict[str, list[Any]], detail: dict[str, Any], loc: Location, record: Any) -> None:
    shown = examples.setdefault(detail["reason"], [])
    if len(shown) >= MAX_EXAMPLES:
        return
    prompt = record.get("prompt") if isinstance(record, dict) else None
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False) if prompt else ""
    shown.append({"source_line": source_line(loc), "prompt": text[:160],
                  **{k: v for k, v in detail.items() if k not in ("reason", "step")}})


__all__ = ["NO_GROUP", "STEPS", "CurateResult", "curate", "group_of", "longer_wins", "source_line"]
