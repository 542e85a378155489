"""``rewardkit score``: any scorer over a file of preference pairs or prompt/completion rows."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.io import atomic_writer
from rewardkit.errors import UnsupportedError
from rewardkit.scorers import is_pairwise, pointwise_function
from rewardkit.scorers.shards import Shard, current_shard, score_sharded
from rewardkit.scoring import ScorerOptions, build_scorer
from rewardkit.types import ScoreOutput


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


def score_file(spec: str, data: str, out: str, *, options: ScorerOptions | None = None,
               skip_invalid: bool = False) -> ScoreFileResult:
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

    Under ``torchrun`` / ``accelerate launch`` each process scores every WORLD_SIZE-th item
    (:mod:`rewardkit.scorers.shards`; ``device auto`` is each process's own GPU) and the first process writes
    ``out``, identical to one process's.
    """
    from rewardkit.data.dataset import load_examples

    opts = options or ScorerOptions()
    shard = current_shard(opts.device)
    opts = dataclasses.replace(opts, device=shard.device(opts.device))
    if opts.items is None:
        opts = dataclasses.replace(opts, items=data)
    loaded = load_examples(data, kind="any", skip_invalid=skip_invalid)
    rows = loaded.dataset.select_columns(["prompt", "chosen", "rejected", "conversational"])[:]
    pairs = [i for i, r in enumerate(rows["rejected"]) if r]
    singles = [i for i, r in enumerate(rows["rejected"]) if not r]
    scorer = build_scorer(spec, opts)
    t0 = time.perf_counter()
    if is_pairwise(scorer):
        if singles:
            raise UnsupportedError(f"{spec}: a pairwise judge compares two responses, but {data} has "
                                   f"{len(singles)} prompt/completion rows; give it preference pairs")
        extras = _judge_pairs(scorer, rows, pairs, shard)
        sequences = len(pairs) * 2
    else:
        extras, sequences = _pointwise(pointwise_function(scorer), rows, pairs, singles, shard)
    seconds = time.perf_counter() - t0
    if shard.is_main:
        _write_scored(data, out, extras)
    cut = sum(bool(e.get("truncated")) for e in extras)
    return ScoreFileResult(out, getattr(scorer, "name", spec), len(pairs), len(singles), loaded.n_errors, sequences,
                           cut, seconds, shard.world, shard.is_main)


def _pointwise(fn: Any, rows: dict[str, list[Any]], pairs: list[int], singles: list[int], shard: Shard
               ) -> tuple[list[dict[str, Any]], int]:
    """Score every chosen response (and the rejected ones of pairs) in one call (this process's shard of
    them); per-record output fields."""
    n = len(rows["prompt"])
    idx = list(range(n)) + pairs
    responses = rows["chosen"] + [rows["rejected"][i] for i in pairs]
    from tqdm.auto import tqdm

    def score(mine: np.ndarray) -> ScoreOutput:
        with tqdm(total=len(mine), desc="score", unit="seq", dynamic_ncols=True, disable=not shard.is_main) as bar:
            return fn([rows["prompt"][idx[k]] for k in mine], [responses[k] for k in mine],
                      [rows["conversational"][idx[k]] for k in mine], progress=bar.update)

    out = score_sharded(shard, len(idx), score)
    _check_finite(out.rewards)
    extras: list[dict[str, Any]] = [{} for _ in range(n)]
    pair_set = set(pairs)
    for i in range(n):
        side = "chosen" if i in pair_set else None
        extras[i].update(_fields(out, i, side))
    for j, i in enumerate(pairs):
        extras[i].update(_fields(out, n + j, "rejected"))
        extras[i]["truncated"] = bool(out.truncated[i] or out.truncated[n + j])
    for i in singles:
        extras[i]["truncated"] = bool(out.truncated[i])
    return extras, len(idx)


def _fields(out: ScoreOutput, k: int, side: str | None) -> dict[str, Any]:
    """``score`` (or ``chosen_score``/``rejected_score``) and the optional objectives and uncertainty."""
    prefix = f"{side}_" if side else ""
    fields: dict[str, Any] = {f"{prefix}score": float(out.rewards[k])}
    objectives = out.objectives_of(k)
    if objectives is not None:
        fields[f"{prefix}objectives"] = objectives
    if out.uncertainty is not None:
        fields[f"{prefix}uncertainty"] = float(out.uncertainty[k])
    return fields


def _judge_pairs(judge: Any, rows: dict[str, list[Any]], pairs: Sequence[int], shard: Shard
                 ) -> list[dict[str, Any]]:
    def compare(mine: np.ndarray) -> ScoreOutput:
        chosen = [pairs[k] for k in mine]
        return judge.compare([rows["prompt"][i] for i in chosen], [rows["chosen"][i] for i in chosen],
                             [rows["rejected"][i] for i in chosen])

    out = score_sharded(shard, len(pairs), compare)
    _check_finite(out.rewards)
    rows = [{"chosen_score": float(v) / 2, "rejected_score": -float(v) / 2, "truncated": bool(t)}
            for v, t in zip(out.rewards, out.truncated, strict=True)]
    if out.rationales is not None:  # a rationale judge (train judge): its texts, one per order asked
        for row, texts in zip(rows, out.rationales, strict=True):
            row["judge_rationale"] = list(texts)
    return rows


def _check_finite(rewards: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(rewards))
    if bad.size:
        raise RuntimeError(f"the scorer returned {bad.size} non-finite rewards (first at input {int(bad[0])})")


def _write_scored(data: str, out: str, extras: list[dict[str, Any]]) -> None:
    """Stream the raw records of ``data`` again, attach each valid record's fields in order, write ``out``
    atomically (nothing half-written; a path that cannot be written is an input error naming it)."""
    from rewardkit.data.formats import DataError, iter_records, parse_record

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
                row = {**record, **extras[k]}  # type: ignore[dict-item]
                k += 1
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
