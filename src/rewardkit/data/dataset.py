"""Load preference files into memory-mapped Arrow datasets and tokenize them once.

:func:`load_examples` streams a file through :func:`~rewardkit.data.formats.parse_record` into an Arrow
dataset (``datasets.Dataset.from_generator``), so a million pairs take no more RAM than a thousand.
Every bad record is collected in the same pass; if there is any, the build fails with a
:class:`~rewardkit.data.formats.DataValidationError` that lists them (and nothing is cached).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from rewardkit.data.chat import SupportsEncode
from rewardkit.data.formats import (
    CompletionExample,
    DataError,
    DataValidationError,
    Example,
    Location,
    PreferenceExample,
    iter_records,
    no_records_error,
    parse_record,
)
from rewardkit.errors import MissingInputError

Kind = Literal["preference", "completion", "any"]
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class ScanResult:
    """What a full pass over a file found: valid examples by format, and the errors."""

    n_records: int
    formats: dict[str, int]
    errors: list[DataError]
    n_errors: int


def iter_examples(path: str | os.PathLike[str]) -> Iterator[tuple[Location, Example | DataError]]:
    """Yield every record of ``path`` parsed, or the :class:`DataError` that it raised."""
    for loc, record in iter_records(path):
        if isinstance(record, DataError):
            yield loc, record
            continue
        try:
            yield loc, parse_record(record, loc)
        except DataError as e:
            yield loc, e


def _kind_error(example: Example, kind: Kind, loc: Location) -> DataError | None:
    if kind == "preference" and isinstance(example, CompletionExample):
        return DataError(loc, "chosen", "missing (this command needs preference pairs, got a prompt/completion row)")
    if kind == "completion" and isinstance(example, PreferenceExample):
        return DataError(loc, "completion", "missing (expected prompt/completion rows)")
    return None


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (what ``sha256sum`` prints), or of a folder's files: each file's path
    relative to the folder, size and bytes, in name order. Identifies the exact data: a folder rewritten
    in place (same names, sizes and modification times) gets a new fingerprint."""
    p = Path(path)
    h = hashlib.sha256()
    if not p.is_dir():
        _hash_file(h, p)
        return h.hexdigest()
    for q in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(f"{q.relative_to(p).as_posix()}\0{q.stat().st_size}\0".encode())
        _hash_file(h, q)
    return h.hexdigest()


def _hash_file(h: Any, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def _content_key(p: Path) -> str:
    """The cache key of a file: its content and the code that parses it."""
    try:
        if not p.exists():
            raise MissingInputError(f"{p}: no such file or folder")
        return f"{file_fingerprint(p)}:{_code_fingerprint()}"
    except MissingInputError:
        raise
    except PermissionError as e:
        raise MissingInputError(f"{p}: cannot read: {e.strerror or e}") from None
    except OSError as e:
        raise DataError(Location(str(p)), None, f"cannot read: {e.strerror or e}") from None


def _code_fingerprint() -> str:
    """sha256 of the modules that turn a file into rows: a change to the rules re-reads every file."""
    return _module_hash("rewardkit.data.io", "rewardkit.data.formats", __name__)


@lru_cache(maxsize=8)
def _module_hash(*modules: str) -> str:
    """sha256 of the source files of ``modules`` (cache keys that change when the code does)."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        source = getattr(importlib.import_module(name), "__file__", None)
        h.update(Path(source).read_bytes() if source else name.encode())
    return h.hexdigest()


def _row(example: Example | None, loc: Location, error: DataError | None) -> dict[str, Any]:
    if example is None:
        return {"prompt": [], "chosen": [], "rejected": [], "conversational": False, "margin": None,
                "format": "", "extras": "{}", "location": str(loc), "error": str(error)}
    response = example.chosen if isinstance(example, PreferenceExample) else example.completion
    return {
        "prompt": list(example.prompt), "chosen": list(response),
        "rejected": list(example.rejected) if isinstance(example, PreferenceExample) else [],
        "conversational": example.conversational,
        "margin": example.margin if isinstance(example, PreferenceExample) else None,
        "format": example.format, "extras": json.dumps(dict(example.extras), ensure_ascii=False, default=str),
        "location": str(loc), "error": None,
    }


def _generate(path: str, kind: Kind, key: str) -> Iterator[dict[str, Any]]:  # key: the cache key only
    n = 0
    for loc, ex in iter_examples(path):
        n += 1
        err = ex if isinstance(ex, DataError) else _kind_error(ex, kind, loc)
        yield _row(None, loc, err) if err is not None else _row(ex, loc, None)  # type: ignore[arg-type]
    if n == 0:
        raise no_records_error(path)


def _features() -> Any:
    from datasets import Features, Value

    message = [{"role": Value("string"), "content": Value("string")}]
    return Features({
        "prompt": message, "chosen": message, "rejected": message, "conversational": Value("bool"),
        "margin": Value("float64"), "format": Value("string"), "extras": Value("string"),
        "location": Value("string"), "error": Value("string"),
    })


@dataclass(frozen=True)
class LoadedExamples:
    """A validated file as an Arrow dataset, plus what validation rejected.

    ``dataset`` columns: ``prompt``, ``chosen``, ``rejected`` (lists of messages; for completion rows the
    response is in ``chosen`` and ``rejected`` is empty), ``conversational``, ``margin`` (None if absent),
    ``format``, ``extras`` (JSON of the other input fields), ``location`` (file:line). Input order.
    """

    dataset: Any
    n_records: int
    errors: list[str]
    n_errors: int

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.n_records, "skipped_invalid": self.n_errors, "invalid": self.errors}


def load_examples(
    path: str | os.PathLike[str], *, kind: Kind = "preference", skip_invalid: bool = False
) -> LoadedExamples:
    """Read, validate and normalise a file into a memory-mapped, cached Arrow dataset.

    Raises :class:`DataValidationError` listing the bad records, unless ``skip_invalid``: then they are
    left out, and counted and listed in the result (never silently) -- but a file left with no valid
    record still raises. A file without any record raises ``DataError("FILE: no records")``; one that
    cannot be read raises the reader's :class:`~rewardkit.errors.InputError`.

    The cache is keyed by the file's content (:func:`file_fingerprint`) and by the code that parses it,
    never by its path or modification time: a file rewritten in place is read again.
    """
    import datasets

    p = Path(path)
    key = _content_key(p)
    try:
        full = datasets.Dataset.from_generator(
            _generate, gen_kwargs={"path": str(p), "kind": kind, "key": key}, features=_features()
        )
    except datasets.exceptions.DatasetGenerationError as e:  # a reading error, e.g. an unsupported file
        raise (e.__cause__ or e) from None
    bad = full.filter(lambda e: [x is not None for x in e], input_columns="error", batched=True)
    errors = list(bad.select(range(min(len(bad), MAX_LISTED_ERRORS)))["error"]) if len(bad) else []  # not a Column
    if len(bad) and (not skip_invalid or len(bad) == len(full)):
        hint = DataValidationError.SKIP_HINT if not skip_invalid else "no valid record is left to use"
        raise DataValidationError(str(p), errors, len(bad), hint=hint)
    good = full.filter(lambda e: [x is None for x in e], input_columns="error", batched=True) if len(bad) else full
    return LoadedExamples(good.remove_columns("error"), len(full), errors, len(bad))


def scan(path: str | os.PathLike[str], *, kind: Kind = "any") -> ScanResult:
    """One streaming pass: count records and formats and collect (the first few) errors."""
    formats: Counter[str] = Counter()
    errors: list[DataError] = []
    n = n_errors = 0
    for loc, ex in iter_examples(path):
        n += 1
        err = ex if isinstance(ex, DataError) else _kind_error(ex, kind, loc)
        if err is not None:
            n_errors += 1
            if len(errors) < MAX_LISTED_ERRORS:
                errors.append(err)
        else:
            formats[ex.format] += 1  # type: ignore[union-attr]
    return ScanResult(n, dict(formats), errors, n_errors)


def tokenize_examples(dataset: Any, encoder: SupportsEncode, *, num_proc: int | None = None) -> Any:
    """Add ``chosen_input_ids``/``rejected_input_ids`` (+ token types, dropped-token counts, where the
    response starts, characters never tokenized, and ``length``, the longer side) by one cached ``map``.
    For completion rows only the ``chosen_*`` columns are filled."""

    def encode_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {k: [] for k in (*_TOKEN_COLUMNS, "length")}
        for prompt, chosen, rejected, conv in zip(
            batch["prompt"], batch["chosen"], batch["rejected"], batch["conversational"], strict=True
        ):
            for side, msgs in (("chosen", chosen), ("rejected", rejected)):
                enc = encoder.encode(prompt, msgs, conv) if msgs else None
                out[f"{side}_input_ids"].append(enc.input_ids if enc else [])
                out[f"{side}_token_type_ids"].append((enc.token_type_ids or []) if enc else [])
                out[f"{side}_prompt_dropped"].append(enc.prompt_tokens_dropped if enc else 0)
                out[f"{side}_response_dropped"].append(enc.response_tokens_dropped if enc else 0)
                out[f"{side}_response_start"].append(enc.response_start if enc else 0)
                out[f"{side}_untokenized_chars"].append(enc.untokenized_chars if enc else 0)
            out["length"].append(max(len(out["chosen_input_ids"][-1]), len(out["rejected_input_ids"][-1])))
        return out

    # The cache key: the rows (whose fingerprint follows the file's content, see load_examples), the
    # encoder with its tokenizer and max_length, and the encoding code. A change to any re-tokenizes.
    from datasets.fingerprint import Hasher

    key = Hasher.hash([dataset._fingerprint, encoder, _module_hash(type(encoder).__module__)])
    return dataset.map(encode_batch, batched=True, batch_size=256, num_proc=num_proc, desc="Tokenizing",
                       new_fingerprint=key)


_TOKEN_COLUMNS = tuple(
    f"{side}_{col}" for side in ("chosen", "rejected")
    for col in ("input_ids", "token_type_ids", "prompt_dropped", "response_dropped", "response_start",
                "untokenized_chars")
)


@dataclass(frozen=True)
class TruncationStats:
    """How many sequences the truncation policy cut, and how many tokens it dropped. For the
    ``sequences_partly_tokenized`` (a text so long that only a window of it was tokenized) the dropped
    counts are lower bounds."""

    sequences: int
    truncated_sequences: int
    pairs_truncated: int
    prompt_tokens_dropped: int
    response_tokens_dropped: int
    response_cut_sequences: int
    sequences_partly_tokenized: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def truncation_stats(tokenized: Any) -> TruncationStats:
    """Count truncation over a tokenized dataset (both sides of each pair)."""
    names = [f"{s}_{c}" for s in ("chosen", "rejected")
             for c in ("prompt_dropped", "response_dropped", "untokenized_chars")]
    cols = tokenized.select_columns([*names, "rejected"])
    seqs = truncated = pairs = p_drop = r_drop = r_cut = partly = 0
    for row in cols.iter(batch_size=4096):
        for cp, cr, cu, rp, rr, ru, rej in zip(
            row["chosen_prompt_dropped"], row["chosen_response_dropped"], row["chosen_untokenized_chars"],
            row["rejected_prompt_dropped"], row["rejected_response_dropped"], row["rejected_untokenized_chars"],
            row["rejected"], strict=True,
        ):
            sides = [(cp, cr, cu)] + ([(rp, rr, ru)] if rej else [])
            seqs += len(sides)
            cut = [p + r + u > 0 for p, r, u in sides]
            truncated += sum(cut)
            pairs += any(cut)
            p_drop += sum(p for p, _, _ in sides)
            r_drop += sum(r for _, r, _ in sides)
            r_cut += sum(r > 0 for _, r, _ in sides)
            partly += sum(u > 0 for _, _, u in sides)
    return TruncationStats(seqs, truncated, pairs, p_drop, r_drop, r_cut, partly)
