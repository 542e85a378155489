"""Where the shared verification data lives (``shared/data`` beside the repository; never copied into it).

Looked up in ``$REWARDKIT_SHARED_DATA``, then ``shared/data`` beside each parent folder of this checkout,
then ``/work/shared/data``. A missing file fails the test with a clear message: it is never skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

HH_RLHF = "hh-rlhf-harmless-base-test.jsonl.gz"


def shared_data(name: str) -> Path:
    roots = [Path(os.environ["REWARDKIT_SHARED_DATA"])] if os.environ.get("REWARDKIT_SHARED_DATA") else []
    roots += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    roots.append(Path("/work/shared/data"))
    for root in roots:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"shared data file {name!r} not found in {[str(r) for r in roots]}; "
                            "set REWARDKIT_SHARED_DATA to the folder that holds it")
