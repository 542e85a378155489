"""``rewardkit data convert``: any supported format -> canonical TRL-style jsonl."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rewardkit.data.dataset import iter_examples, scan
from rewardkit.data.formats import DataError, DataValidationError, to_canonical


@dataclass(frozen=True)
class ConvertResult:
    written: int
    formats: dict[str, int]


def convert_file(src: str, dst: str) -> ConvertResult:
    """Validate all of ``src`` first (nothing is written if any record is bad), then stream it to
    ``dst`` in canonical form, atomically (temporary file, then rename)."""
    checked = scan(src)
    if checked.n_errors:
        raise DataValidationError(src, checked.errors, checked.n_errors, hint="fix them; nothing was written")
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError(f"{dst}: output would overwrite the input")
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    formats: Counter[str] = Counter()
    with open(tmp, "w", encoding="utf-8") as f:
        for _, ex in iter_examples(src):
            if isinstance(ex, DataError):  # the file changed since the scan
                raise ex
            formats[ex.format] += 1
            f.write(json.dumps(to_canonical(ex), ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, target)
    return ConvertResult(sum(formats.values()), dict(formats))
