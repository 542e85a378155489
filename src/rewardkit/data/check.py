"""``rewardkit data check``: validate a file and report counts, token lengths and truncation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.data.attributes import is_attribute_file, scan_attributes
from rewardkit.data.chat import SupportsEncode
from rewardkit.data.dataset import (
    ScanResult,
    TruncationStats,
    load_examples,
    scan,
    tokenize_examples,
    truncation_stats,
)
from rewardkit.data.formats import no_records_error
from rewardkit.errors import OptionError


@dataclass(frozen=True)
class CheckReport:
    """Everything ``data check`` found. ``lengths`` are untruncated token counts per sequence (lower bounds
    for the ``truncation["sequences_partly_tokenized"]``, texts so long only a window was tokenized)."""

    path: str
    scan: ScanResult
    tokenizer: str | None = None
    max_length: int | None = None
    lengths: dict[str, float] = field(default_factory=dict)
    truncation: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.scan.n_errors == 0 and self.scan.n_records > 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "records": self.scan.n_records, "valid": self.scan.n_records - self.scan.n_errors,
                "invalid": self.scan.n_errors, "formats": self.scan.formats,
                "errors": [str(e) for e in self.scan.errors], "tokenizer": self.tokenizer,
                "max_length": self.max_length, "token_lengths": self.lengths, "truncation": self.truncation}


def length_summary(lengths: np.ndarray) -> dict[str, float]:
    """mean / p50 / p90 / p99 / max of (N,) token counts."""
    if lengths.size == 0:
        return {}
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
    return {"sequences": int(lengths.size), "mean": float(lengths.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": int(lengths.max())}


def check_file(path: str, *, encoder: SupportsEncode | None = None, tokenizer: str | None = None,
               max_length: int | None = None) -> CheckReport:
    """Scan ``path`` for errors; with an ``encoder`` (e.g. a :class:`~rewardkit.data.chat.PairEncoder`:
    anything with ``encode(prompt, response, conversational) -> Encoded`` and ``max_length``), tokenize the
    valid records and count what its ``max_length`` would truncate.

    ``tokenizer`` is the name the report shows for the encoder's tokenizer, and ``max_length``, if given,
    must equal the encoder's. A file without records raises ``DataError("FILE: no records")``, like every
    other command; a name without an encoder is refused (this layer builds no tokenizer).
    """
    if encoder is None and tokenizer is not None:
        raise OptionError(f"check_file: tokenizer {tokenizer!r} needs encoder= (build it with the backbone's "
                          "tokenizer); pass tokenizer=None to skip token lengths")
    if encoder is not None and max_length is not None and max_length != encoder.max_length:
        raise OptionError(f"check_file: max_length {max_length} differs from the encoder's {encoder.max_length}")
    if is_attribute_file(path):
        return _check_attributes(path, encoder, tokenizer)
    result = scan(path)
    if result.n_records == 0:
        raise no_records_error(path)
    if encoder is None or result.n_records == result.n_errors:
        return CheckReport(path, result)
    tokenized = tokenize_examples(load_examples(path, kind="any", skip_invalid=True).dataset, encoder)
    cols = tokenized.select_columns([f"{s}_{c}" for s in ("chosen", "rejected")
                                     for c in ("input_ids", "prompt_dropped", "response_dropped")])
    lengths: list[int] = []
    for batch in cols.iter(batch_size=4096):
        for side in ("chosen", "rejected"):
            for ids, p, r in zip(batch[f"{side}_input_ids"], batch[f"{side}_prompt_dropped"],
                                 batch[f"{side}_response_dropped"], strict=True):
                if ids:
                    lengths.append(len(ids) + p + r)
    return CheckReport(path, result, tokenizer, encoder.max_length, length_summary(np.array(lengths)),
                       truncation_stats(tokenized).to_dict())


def _check_attributes(path: str, encoder: SupportsEncode | None, tokenizer: str | None) -> CheckReport:
    """``data check`` of an attribute file (:mod:`rewardkit.data.attributes`): one sequence per example."""
    result, examples = scan_attributes(path)
    if result.n_records == 0:
        raise no_records_error(path)
    if encoder is None or not examples:
        return CheckReport(path, result)
    enc = [encoder.encode(e.prompt, e.response, e.conversational) for e in examples]
    lengths = np.array([len(e.input_ids) + e.prompt_tokens_dropped + e.response_tokens_dropped for e in enc])
    cut = sum(e.truncated for e in enc)
    stats = TruncationStats(len(enc), cut, cut, sum(e.prompt_tokens_dropped for e in enc),
                            sum(e.response_tokens_dropped for e in enc), sum(e.response_tokens_dropped > 0 for e in enc),
                            sum(e.untokenized_chars > 0 for e in enc))
    return CheckReport(path, result, tokenizer, encoder.max_length, length_summary(lengths), stats.to_dict())
