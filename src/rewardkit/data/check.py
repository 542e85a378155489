"""``rewardkit data check``: validate a file and report counts, token lengths and truncation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.data.dataset import ScanResult, load_examples, scan, tokenize_examples, truncation_stats


@dataclass(frozen=True)
class CheckReport:
    """Everything ``data check`` found. ``lengths`` are untruncated token counts per sequence."""

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


def check_file(path: str, *, tokenizer: str | None = "minilm", max_length: int = 512) -> CheckReport:
    """Scan ``path`` for errors; if a tokenizer is given, tokenize the valid records with the
    reward-model encoder of that backbone and count what ``max_length`` would truncate."""
    result = scan(path)
    if tokenizer is None or result.n_records == result.n_errors:
        return CheckReport(path, result)
    from transformers import AutoConfig, AutoTokenizer

    from rewardkit.data.chat import PairEncoder, input_format_for
    from rewardkit.models.backbones import resolve_backbone
    from rewardkit.models.causal_lm import ensure_distinct_pad

    resolved = resolve_backbone(tokenizer)
    tok = AutoTokenizer.from_pretrained(resolved)
    ensure_distinct_pad(tok)
    fmt = input_format_for(tok, AutoConfig.from_pretrained(resolved).model_type)
    tokenized = tokenize_examples(load_examples(path, kind="any", skip_invalid=True).dataset,
                                  PairEncoder(tok, fmt, max_length))
    cols = tokenized.select_columns([f"{s}_{c}" for s in ("chosen", "rejected")
                                     for c in ("input_ids", "prompt_dropped", "response_dropped")])
    lengths: list[int] = []
    for batch in cols.iter(batch_size=4096):
        for side in ("chosen", "rejected"):
            for ids, p, r in zip(batch[f"{side}_input_ids"], batch[f"{side}_prompt_dropped"],
                                 batch[f"{side}_response_dropped"], strict=True):
                if ids:
                    lengths.append(len(ids) + p + r)
    return CheckReport(path, result, tokenizer, max_length, length_summary(np.array(lengths)),
                       truncation_stats(tokenized).to_dict())
