"""``rewardkit score``: any scorer over a file of preference pairs or prompt/completion rows.

Memory stays flat in the file's size. One streaming pass validates the file (:func:`scan_records`); the
records are then parsed again as a stream, :data:`WINDOW` at a time, and each window is tokenized and scored
on its own, keeping only numbers (:class:`RecordScores`, numpy arrays over the records); a last streaming
pass writes the output. Nothing is built per file: no Python lists of every record or token id, and no Arrow
copy (whose memory-mapped pages would count towards the process's resident memory as they are read).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.dataset import iter_examples
from rewardkit.data.formats import DataError, DataValidationError, Example, PreferenceExample
from rewardkit.data.io import atomic_writer, no_records_error
from rewardkit.errors import UnsupportedError
from rewardkit.scorers import is_pairwise, pointwise_function
from rewardkit.scorers.shards import Shard, current_shard, score_sharded
from rewardkit.scoring import ScorerOptions, build_scorer
from rewardkit.types import ScoreOutput

WINDOW = 8192  # records parsed, tokenized and scored at a time: all that is ever held as Python objects
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class ScoreFileResult:
    """What ``rewardkit score`` wrote and measured; ``seconds`` covers tokenization and scoring, not model
    or data loading."""

    out: str
    scorer: str
    pairs: int
    completions: int
    invalid: int
    sequences: int
    truncated_sequences: int
    seconds: float
    processes: int = 1
    written: bool = True  # False on every process but the first under torchrun

    @property
    def sequences_per_s(self) -> float:
        return self.sequences / max(self.seconds, 1e-9)


@dataclass
class RecordScores:
    """Per-record results over the N valid records, in input order (side 0: the chosen response or the
    completion; side 1: the rejected response, NaN for completion rows).

    ``scores``: (N, 2) float32; ``truncated``: (N,) bool, whether the truncation policy cut either side;
    ``uncertainty``: (N, 2) float32 and ``objectives``: (N, 2, K) float32 (columns ``objective_names``) when
    the scorer gives them; ``rationales``: (N,) object, a rationale judge's texts (a tuple, one per order asked).
    ``judge``: the scores are a pairwise judge's (``chosen = −rejected = log-odds / 2``).
    """

    is_pair: np.ndarray
    scores: np.ndarray
    truncated: np.ndarray
    judge: bool = False
    uncertainty: np.ndarray | None = None
    objectives: np.ndarray | None = None
    objective_names: tuple[str, ...] = ()
    rationales: np.ndarray | None = None

    @classmethod
    def empty(cls, is_pair: np.ndarray, *, judge: bool = False) -> RecordScores:
        n = len(is_pair)
        return cls(is_pair, np.full((n, 2), np.nan, dtype=np.float32), np.zeros(n, dtype=bool), judge)

    def put(self, records: np.ndarray, side: int, out: ScoreOutput) -> None:
        """Store ``out`` (one item per entry of ``records``, (m,) int64) as ``side`` of those records."""
        n = len(self.is_pair)
        self.scores[records, side] = out.rewards
        self.truncated[records] |= out.truncated
        if out.uncertainty is not None:
            if self.uncertainty is None:
                self.uncertainty = np.full((n, 2), np.nan, dtype=np.float32)
            self.uncertainty[records, side] = out.uncertainty
        if out.objectives is not None:
            if self.objectives is None:
                self.objectives = np.full((n, 2, out.objectives.shape[1]), np.nan, dtype=np.float32)
                self.objective_names = out.objective_names
            self.objectives[records, side] = out.objectives
        if out.rationales is not None:
            if self.rationales is None:
                self.rationales = np.empty(n, dtype=object)
            self.rationales[records] = out.rationales

    def fields(self, k: int) -> dict[str, Any]:
        """Record ``k``'s output fields, in the order ``rewardkit score`` writes them."""
        if self.judge:
            row: dict[str, Any] = {"chosen_score": float(self.scores[k, 0]), "rejected_score": float(self.scores[k, 1]),
                                   "truncated": bool(self.truncated[k])}
            if self.rationales is not None:
                row["judge_rationale"] = list(self.rationales[k])
            return row
        sides = ((0, "chosen_"), (1, "rejected_")) if self.is_pair[k] else ((0, ""),)
        row = {}
        for side, prefix in sides:
            row[f"{prefix}score"] = float(self.scores[k, side])
            if self.objectives is not None:
                row[f"{prefix}objectives"] = {name: float(v) for name, v in
                                              zip(self.objective_names, self.objectives[k, side], strict=True)}
            if self.uncertainty is not None:
                row[f"{prefix}uncertainty"] = float(self.uncertainty[k, side])
        row["truncated"] = bool(self.truncated[k])
        return row


def score_file(spec: str, data: str, out: str, *, options: ScorerOptions | None = None,
               skip_invalid: bool = False, window: int = WINDOW) -> ScoreFileResult:
    """Score every record of ``data`` with the scorer ``spec`` (any kind: a reward model, ``dpo:``,
    ``judge:``, ``direction:``, ``verifier``, ``hybrid:``, ``length``) and write ``out`` (jsonl).

    Each output line is the input record with every field kept, plus ``chosen_score``/``rejected_score``
    (pairs) or ``score`` (prompt/completion rows), ``truncated`` (whether the truncation policy cut
    either input), and, when the scorer gives them, ``*_objectives`` (name -> value) and ``*_uncertainty``.
    A pairwise judge writes ``chosen_score = −rejected_score = log-odds / 2`` (so the margin is its
    log-odds that chosen is better), plus ``judge_rationale`` (a list, one text per order asked) when it
    writes rationales (``train judge``), and refuses prompt/completion rows. ``verifier`` and ``hybrid:`` read
    their references (constraints / answer / tests) from ``data`` itself unless ``options.items`` says
    otherwise. Lines keep input order. With ``skip_invalid`` an invalid record is written back with
    ``"error"`` set and null scores instead of stopping the run.

    Records are scored ``window`` at a time (each window sorted by length into token-budget batches by the
    scorer), so memory does not grow with the file; scores do not depend on the window.

    Under ``torchrun`` / ``accelerate launch`` each process scores every WORLD_SIZE-th item of each window
    (:mod:`rewardkit.scorers.shards`; ``device auto`` is each process's own GPU) and the first process writes
    ``out``, identical to one process's.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    opts = options or ScorerOptions()
    shard = current_shard(opts.device)
    opts = dataclasses.replace(opts, device=shard.device(opts.device))
    if opts.items is None:
        opts = dataclasses.replace(opts, items=data)
    is_pair, n_invalid = scan_records(data, skip_invalid=skip_invalid)
    n_pairs = int(is_pair.sum())
    scorer = build_scorer(spec, opts)
    t0 = time.perf_counter()
    if is_pairwise(scorer):
        if n_pairs < len(is_pair):
            raise UnsupportedError(f"{spec}: a pairwise judge compares two responses, but {data} has "
                                   f"{len(is_pair) - n_pairs} prompt/completion rows; give it preference pairs")
        results = _judge_pairs(scorer, data, is_pair, shard, window)
        sequences = n_pairs * 2
    else:
        results = _pointwise(pointwise_function(scorer), data, is_pair, shard, window)
        sequences = len(is_pair) + n_pairs
    _check_finite(results)
    seconds = time.perf_counter() - t0
    if shard.is_main:
        _write_scored(data, out, results)
    return ScoreFileResult(out, getattr(scorer, "name", spec), n_pairs, len(is_pair) - n_pairs, n_invalid,
                           sequences, int(results.truncated.sum()), seconds, shard.world, shard.is_main)


def scan_records(data: str, *, skip_invalid: bool = False) -> tuple[np.ndarray, int]:
    """One streaming pass over ``data``: (N,) bool, which of its N valid records are pairs (the others are
    prompt/completion rows), and how many records are invalid.

    Raises :class:`~rewardkit.data.formats.DataValidationError` listing the first invalid records unless
    ``skip_invalid`` (and even then when no valid record is left), and ``DataError("FILE: no records")`` for
    an input without any; an unreadable input raises the reader's :class:`~rewardkit.errors.InputError`."""
    kinds = bytearray()  # 1 a pair, 0 a completion row: one byte a record
    errors: list[str] = []
    n_invalid = 0
    for _, example in iter_examples(data):
        if isinstance(example, DataError):
            n_invalid += 1
            if len(errors) < MAX_LISTED_ERRORS:
                errors.append(str(example))
        else:
            kinds.append(isinstance(example, PreferenceExample))
    if not kinds and not n_invalid:
        raise no_records_error(data)
    if n_invalid and (not skip_invalid or not kinds):
        hint = DataValidationError.SKIP_HINT if not skip_invalid else "no valid record is left to use"
        raise DataValidationError(str(data), errors, n_invalid, hint=hint)
    return np.frombuffer(kinds, dtype=bool), n_invalid  # the bytes themselves, no copy


def example_windows(data: str, size: int) -> Iterator[tuple[int, list[Example]]]:
    """The valid records of ``data`` parsed again as a stream, ``size`` at a time: (index of the first, records)."""
    lo, batch = 0, []
    for _, example in iter_examples(data):
        if isinstance(example, DataError):
            continue
        batch.append(example)
        if len(batch) == size:
            yield lo, batch
            lo, batch = lo + size, []
    if batch:
        yield lo, batch


def _response(example: Example) -> Any:
    return example.chosen if isinstance(example, PreferenceExample) else example.completion


def windows(n: int, size: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) record ranges of at most ``size`` records covering 0..n-1."""
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def _progress(total: int, shard: Shard) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="score", unit="seq", dynamic_ncols=True, disable=not shard.is_main)


def _shard_total(shard: Shard, is_pair: np.ndarray, window: int, per_record: Callable[[np.ndarray], int]) -> int:
    """How many items this process scores over all windows (for the progress bar)."""
    return sum(len(shard.positions(per_record(is_pair[lo:hi]))) for lo, hi in windows(len(is_pair), window))


def _pointwise(fn: Any, data: str, is_pair: np.ndarray, shard: Shard, window: int) -> RecordScores:
    """Score every chosen response (and the rejected one of each pair), one window of records at a time
    (this process's shard of each window's items)."""
    results = RecordScores.empty(is_pair)
    with _progress(_shard_total(shard, is_pair, window, lambda p: len(p) + int(p.sum())), shard) as bar:
        for lo, examples in example_windows(data, window):
            hi = lo + len(examples)
            pairs = np.flatnonzero(is_pair[lo:hi])
            record = np.concatenate([np.arange(hi - lo), pairs])  # (m,) the window record of each item
            responses = [_response(e) for e in examples] + [examples[i].rejected for i in pairs]

            def score(mine: np.ndarray, examples: list[Any] = examples, record: np.ndarray = record,
                      responses: list[Any] = responses) -> ScoreOutput:
                return fn([examples[record[k]].prompt for k in mine], [responses[k] for k in mine],
                          [examples[record[k]].conversational for k in mine], progress=bar.update)

            out = score_sharded(shard, len(record), score)
            first = hi - lo
            results.put(np.arange(lo, hi), 0, out.select(np.arange(first)))
            results.put(lo + pairs, 1, out.select(np.arange(first, len(record))))
    return results


def _judge_pairs(judge: Any, data: str, is_pair: np.ndarray, shard: Shard, window: int) -> RecordScores:
    """A pairwise judge's half log-odds of every pair, one window at a time."""
    results = RecordScores.empty(is_pair, judge=True)
    with _progress(_shard_total(shard, is_pair, window, len), shard) as bar:
        for lo, examples in example_windows(data, window):
            hi = lo + len(examples)

            def compare(mine: np.ndarray, examples: list[Any] = examples) -> ScoreOutput:
                out = judge.compare([examples[k].prompt for k in mine], [examples[k].chosen for k in mine],
                                    [examples[k].rejected for k in mine])
                bar.update(len(mine))
                return out

            out = score_sharded(shard, hi - lo, compare)
            half = (out.rewards / 2).astype(np.float32)  # exact: halving a float32 loses nothing
            results.put(np.arange(lo, hi), 0, dataclasses.replace(out, rewards=half))
            results.scores[lo:hi, 1] = -half
    return results


def _check_finite(results: RecordScores) -> None:
    sides = results.scores.copy()
    sides[~results.is_pair, 1] = 0.0  # completion rows have no rejected side
    bad = np.flatnonzero(~np.isfinite(sides).all(axis=1))
    if bad.size:
        raise RuntimeError(f"the scorer returned non-finite rewards for {bad.size} records (first at record "
                           f"{int(bad[0])})")


def _write_scored(data: str, out: str, results: RecordScores) -> None:
    """Stream the raw records of ``data`` again, attach each valid record's fields in order, write ``out``
    atomically (nothing half-written; a path that cannot be written is an input error naming it)."""
    from rewardkit.data.formats import iter_records, parse_record

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    k = 0
    with atomic_writer(out) as f:
        for loc, record in iter_records(data):
            error = record if isinstance(record, DataError) else None
            if error is None:
                try:
                    parse_record(record, loc)  # type: ignore[arg-type]
                except DataError as e:
                    error = e
            if error is not None:
                row = {**(record if isinstance(record, dict) else {}), "error": str(error), "score": None}
            else:
                row = {**record, **results.fields(k)}  # type: ignore[dict-item]
                k += 1
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
