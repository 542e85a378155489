"""``rewardkit data convert``: any supported format -> canonical TRL-style jsonl."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rewardkit.data.dataset import iter_examples, scan
from rewardkit.data.formats import DataError, DataValidationError, no_records_error, to_canonical
from rewardkit.data.io import atomic_writer
from rewardkit.errors import OptionError


@dataclass(frozen=True)
class ConvertResult:
    written: int
    formats: dict[str, int]


def convert_file(src: str, dst: str) -> ConvertResult:
    """Validate all of ``src`` first (nothing is written if any record is bad, or if there is none), then
    stream it to ``dst`` in canonical form, atomically: a temporary file beside ``dst``, renamed when
    complete and removed on any failure, so ``dst`` is either the whole output or untouched."""
    if Path(src).resolve() == Path(dst).resolve():
        raise OptionError(f"{dst}: output would overwrite the input")
    checked = scan(src)
    if checked.n_errors:
        raise DataValidationError(src, checked.errors, checked.n_errors, hint="fix them; nothing was written")
    if checked.n_records == 0:
        raise no_records_error(src)
    formats: Counter[str] = Counter()
    with atomic_writer(dst) as f:
        for _, ex in iter_examples(src):
            if isinstance(ex, DataError):  # the file changed since the scan
                raise ex
            formats[ex.format] += 1
            f.write(json.dumps(to_canonical(ex), ensure_ascii=False, default=str) + "\n")
    return ConvertResult(sum(formats.values()), dict(formats))
