"""Preference-data curation (``rewardkit data curate``): exact and MinHash near deduplication, benchmark
decontamination, scorer agreement filtering and best-fraction selection, length balancing.

Layer: above ``eval`` (its benchmark readers read the decontamination files) and ``scorers``; only the
CLI imports it.
"""

from __future__ import annotations

from rewardkit.curate.config import CurateConfig
from rewardkit.curate.pipeline import CurateResult, curate

__all__ = ["CurateConfig", "CurateResult", "curate"]
