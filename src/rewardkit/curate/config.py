"""``CurateConfig``: every knob of ``rewardkit data curate``, validated when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewardkit.curate.decontam import BENCHMARK_FORMATS
from rewardkit.curate.select import SELECT_BY, KeepRule, parse_keep
from rewardkit.errors import OptionError

DEDUP_KINDS = ("exact", "near")
STEPS = ("invalid", "dedup_exact", "dedup_near", "decontaminate", "filter", "length_balance")  # in run order


@dataclass(frozen=True)
class CurateConfig:
    """What to run, in the fixed order invalid → exact dedup → near dedup → decontamination → scorer
    filter/selection → length balance; every step is off unless asked for."""

    dedup: tuple[str, ...] = ()  # any of "exact", "near"
    dedup_scope: str = "pair"  # exact dedup key: "pair" (prompt + both responses) or "prompt"
    near_threshold: float = 0.8  # Jaccard similarity of word shingles above which pairs are near duplicates
    shingle: int = 5  # words per shingle (near dedup)
    num_perm: int = 128  # MinHash permutations (near dedup)
    decontaminate: tuple[str, ...] = ()  # benchmark / eval files
    decontaminate_format: str = "auto"  # reader for them: auto | pairs | rewardbench | rewardbench2 | rmb | rmbench
    ngram: int = 13  # words per prompt n-gram (decontamination)
    response_min_words: int = 13  # benchmark responses shorter than this are not matched exactly (0: all)
    filter_by: str | None = None  # scorer spec (as `rewardkit score --model`)
    keep: str | None = None  # "agree" or "top:F" (needs filter_by)
    select_by: str = "margin"  # top:F ranks by: margin | chosen | mean
    per: str | None = None  # raw field whose values group top:F selection and the report
    balance_length: str | None = None  # "drop" or "weight"
    skip_invalid: bool = False  # invalid records go to removed.jsonl instead of stopping
    seed: int = 0  # length-balance drop and MinHash permutations
    score_batch: int = 256  # pairs scored at a time (memory bound of the scorer step)
    progress: bool = True  # tqdm bars on stderr
    keep_rule: KeepRule | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        bad = [d for d in self.dedup if d not in DEDUP_KINDS]
        if bad:
            raise OptionError(f"--dedup takes a comma list of {', '.join(DEDUP_KINDS)}; got {', '.join(bad)}")
        if self.dedup_scope not in ("pair", "prompt"):
            raise OptionError(f"--dedup-scope must be pair or prompt, got {self.dedup_scope!r}")
        if not 0.0 < self.near_threshold < 1.0:
            raise OptionError(f"--near-threshold must be in (0, 1), got {self.near_threshold}")
        if self.response_min_words < 0:
            raise OptionError(f"--response-min-words must be at least 0, got {self.response_min_words}")
        for name in ("shingle", "num_perm", "ngram", "score_batch"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.decontaminate_format not in BENCHMARK_FORMATS:
            raise OptionError(f"--decontaminate-format must be one of {', '.join(BENCHMARK_FORMATS)}")
        if self.select_by not in SELECT_BY:
            raise OptionError(f"--select-by must be one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        if self.balance_length not in (None, "drop", "weight"):
            raise OptionError(f"--balance-length must be drop or weight, got {self.balance_length!r}")
        if (self.filter_by is None) != (self.keep is None):
            raise OptionError("--filter-by SCORER and --keep agree|top:F go together")
        object.__setattr__(self, "keep_rule", parse_keep(self.keep) if self.keep is not None else None)

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps this config runs, in order."""
        on = {"invalid": True, "dedup_exact": "exact" in self.dedup, "dedup_near": "near" in self.dedup,
              "decontaminate": bool(self.decontaminate), "filter": self.filter_by is not None,
              "length_balance": self.balance_length is not None}
        return tuple(k for k, v in on.items() if v)
