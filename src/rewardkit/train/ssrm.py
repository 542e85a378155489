"""``rewardkit train ssrm``: semi-supervised reward modelling (SSRM, He et al. 2024; METHODS §4).

Round 0 trains a Bradley-Terry reward model on the labelled pairs L (the ``train rm`` job, unchanged).
Each round t = 1..R then

1. pseudo-labels every pair of the unlabelled set U with round t-1's model, rebuilt from its folder as a
   scorer (:func:`rewardkit.scoring.build_scorer`): ``p`` = P(U's first response, its ``chosen`` field,
   is better) = sigma(r_first - r_second) (:func:`rewardkit.scorers.preference.preference_probabilities`);
2. keeps the pairs whose confidence max(p, 1 - p) is *strictly above* the threshold (the released
   ``conf_threshold.py`` rule, ``conf > 0.8``; a tie p = 0.5 is never kept), each **oriented by the
   label the model chose**: chosen and rejected are swapped where p < 0.5. The released SSRM script keeps
   the dataset's original order instead (harmless on its labelled benchmark, wrong on truly unlabelled
   data); we follow the paper and the issue, "with the label the model chose";
3. trains on D_t = L ∪ the kept pairs (recomputed over all of U each round, never cumulative), starting
   from round t-1's weights (``init=previous``, as the paper fine-tunes) or from the backbone
   (``init=backbone``).

The last round's model is copied to ``OUT`` itself (an ordinary ``train rm`` folder); ``OUT/ssrm.json``
holds one record per round (pairs, kept, swapped, the pseudo-labels' true accuracy when U's order is
known, held-out accuracy with its bootstrap interval) and the options; ``OUT/rounds/round-T/`` holds each
round's model, its ``pseudo.jsonl`` (the kept pairs with ``ssrm_p``, ``ssrm_confidence``,
``ssrm_swapped``) and its training file ``train.jsonl``.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rewardkit.data.dataset import iter_examples
from rewardkit.data.formats import PreferenceExample, to_canonical
from rewardkit.data.io import DataError, Location, atomic_write_json, atomic_writer
from rewardkit.errors import InputError, OptionError
from rewardkit.scorers.preference import preference_probabilities
from rewardkit.scoring import ScorerOptions, build_scorer, is_pairwise
from rewardkit.train.config import RewardTrainConfig


def _f(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


SSRM_UNUSED = ("attributes", "pairs", "reference_data", "ensemble", "resume")  # train rm settings refused here
_ROUND_DATA = ("pseudo.jsonl", "train.jsonl")  # a round folder's data, not part of its model
_SSRM_FIELDS = ("unlabeled", "rounds", "threshold", "init", "labeled_fraction", "unlabeled_has_labels")


@dataclass
class SsrmTrainConfig(RewardTrainConfig):
    """SSRM (``rewardkit train ssrm``): every ``train rm`` setting, applied to each round, plus the loop's own
    (``unlabeled``, ``rounds``, ``threshold``, ``init``, ``labeled_fraction``, ``unlabeled_has_labels``)."""

    data: str = _f("", "labelled preference pairs L (--labeled; any supported format)")
    out: str = _f("runs/ssrm", "output folder: the final reward model, ssrm.json, rounds/round-T/, data/")
    unlabeled: str | None = _f(None, "unlabelled pairs U (any preference format; their chosen/rejected order is "
                               "ignored); default with --labeled-fraction: the rest of L")
    rounds: int = _f(3, "pseudo-label-and-retrain rounds after round 0 (0: plain `train rm` on L)")
    threshold: float = _f(0.8, "keep a pseudo-labelled pair when max(p, 1-p) > THRESHOLD (strictly; in [0.5, 1])")
    init: Literal["previous", "backbone"] = _f(
        "previous", "each round starts from: previous (round t-1's model, fine-tuned as in the paper) or backbone")
    labeled_fraction: float | None = _f(None, "experiments: use a seeded fraction F of L (--seed) as labelled; "
                                        "without --unlabeled the rest of L becomes U, its labels known")
    unlabeled_has_labels: bool = _f(False, "U's chosen/rejected order is the truth: report the pseudo-labels' "
                                    "accuracy (never used for training)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 0:
            raise OptionError(f"rounds must be >= 0, got {self.rounds}")
        if not 0.5 <= self.threshold <= 1.0:
            raise OptionError(f"threshold must be in [0.5, 1], got {self.threshold}")
        if self.init not in ("previous", "backbone"):
            raise OptionError(f"init must be previous or backbone, got {self.init!r}")
        if self.labeled_fraction is not None and not 0 < self.labeled_fraction <= 1:
            raise OptionError(f"labeled_fraction must be in (0, 1], got {self.labeled_fraction}")
        if self.head.kind != "scalar":
            raise OptionError(f"head.kind: SSRM trains a scalar (Bradley-Terry) reward model, got {self.head.kind!r}")
        for name in SSRM_UNUSED:
            if getattr(self, name) not in (None, 1):
                raise OptionError(f"{name}: a `train rm` setting for attribute data or resuming; train ssrm does "
                                  "not use it")

    def round_config(self, *, data: str, out: Path, model: str) -> RewardTrainConfig:
        """The ``train rm`` config of one round: every shared setting, this round's data, output and start."""
        shared = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(RewardTrainConfig)}
        return RewardTrainConfig(**{**shared, "data": data, "out": str(out), "model": model})

    def options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SSRM_FIELDS}


# ----------------------------------------------------------------------------- selection (pure)


@dataclass(frozen=True)
class Selection:
    """Which pseudo-labelled pairs to keep and how to orient them: ``keep`` (N,) bool; ``swap`` (N,) bool,
    True only for kept pairs whose second response the model prefers (p < 0.5)."""

    keep: np.ndarray
    swap: np.ndarray


def select_confident(p_first: np.ndarray, threshold: float) -> Selection:
    """SSRM's confidence filter: ``p_first`` (N,) float64 = P(first better) -> keep where
    max(p, 1 - p) > ``threshold`` (strict, as the released ``conf > 0.8``; p = 0.5 is never kept, even at
    threshold 0.5), swap the kept pairs with p < 0.5 so the preferred response becomes ``chosen``."""
    p = np.asarray(p_first, dtype=np.float64)
    confidence = np.maximum(p, 1.0 - p)
    keep = (confidence > threshold) & (p != 0.5)
    return Selection(keep, keep & (p < 0.5))


def split_labeled(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``n`` records: ``(labelled, rest)`` sorted index arrays (int64); the labelled part is
    max(1, round(fraction * n)) records (half to even), the first of ``default_rng(seed).permutation(n)``."""
    k = min(n, max(1, round(fraction * n)))
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[:k])
    rest = np.setdiff1d(np.arange(n), chosen)
    return chosen, rest


def label_accuracy(p_first: np.ndarray, keep: np.ndarray) -> tuple[float | None, float | None]:
    """When the first response is the true winner: (accuracy of the kept pseudo-labels, i.e. their share with
    p > 0.5; accuracy over all scored pairs, a tie counting one half). None where there is no pair."""
    p = np.asarray(p_first, dtype=np.float64)
    correct = (p > 0.5) + 0.5 * (p == 0.5)  # (N,)
    kept = float(correct[keep].mean()) if keep.any() else None
    return kept, (float(correct.mean()) if len(p) else None)


# ----------------------------------------------------------------------------- data


def read_pairs(path: str, what: str, *, skip_invalid: bool) -> tuple[list[PreferenceExample], int]:
    """Every preference pair of ``path`` (any supported format) and the number of invalid records skipped.
    Without ``skip_invalid`` the first invalid record raises (naming file:line: field); a missing file or
    one without a valid pair raises :class:`~rewardkit.errors.InputError` naming ``what`` (--labeled ...)."""
    pairs: list[PreferenceExample] = []
    skipped = 0
    for loc, item in iter_examples(path):
        if isinstance(item, PreferenceExample):
            pairs.append(item)
            continue
        error = item if isinstance(item, DataError) else _not_a_pair(loc)
        if not skip_invalid:
            raise error
        skipped += 1
    if not pairs:
        raise InputError(f"{path}: no valid preference pairs for {what}"
                         + (f" ({skipped} invalid skipped)" if skipped else ""))
    return pairs, skipped


def _not_a_pair(loc: Location) -> DataError:
    return DataError(loc, "chosen", "missing (train ssrm needs preference pairs, got a prompt/completion row)")


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` as JSON lines atomically; returns how many."""
    n = 0
    with atomic_writer(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def pseudo_rows(pairs: Sequence[PreferenceExample], p_first: np.ndarray, sel: Selection) -> list[dict[str, Any]]:
    """The kept pairs as canonical rows oriented by the model's choice, with ``ssrm_p`` (P(the input's first
    response better)), ``ssrm_confidence`` and ``ssrm_swapped``. An input ``margin`` is dropped: it is a label."""
    rows = []
    for i in np.flatnonzero(sel.keep):
        e, swapped = dataclasses.replace(pairs[i], margin=None), bool(sel.swap[i])
        if swapped:
            e = dataclasses.replace(e, chosen=e.rejected, rejected=e.chosen)
        p = float(p_first[i])
        rows.append({**to_canonical(e), "ssrm_p": p, "ssrm_confidence": max(p, 1.0 - p), "ssrm_swapped": swapped})
    return rows


# ----------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class SsrmInputs:
    """L and U as read (``labeled_path``: the file round 0 trains on), and whether U's order is the truth."""

    labeled: list[PreferenceExample]
    unlabeled: list[PreferenceExample]
    labeled_path: str
    labels_known: bool
    skipped_invalid: int


@dataclass(frozen=True)
class SsrmResult:
    out_dir: Path
    rounds: list[dict[str, Any]]
    report: dict[str, Any]


def prepare_inputs(cfg: SsrmTrainConfig, data_dir: Path) -> SsrmInputs:
    """Read and validate L and U before anything trains; with ``labeled_fraction``, write the labelled part
    (and, without ``unlabeled``, the rest of L as U) to ``data_dir``."""
    if not cfg.data:
        raise OptionError("--labeled is required (or set `data:` in --config)")
    if cfg.unlabeled is None and cfg.labeled_fraction is None:
        raise OptionError("--unlabeled is required (or --labeled-fraction F to take U from the rest of --labeled)")
    from rewardkit.data.attributes import is_attribute_file

    if is_attribute_file(cfg.data):
        raise OptionError(f"{cfg.data}: --labeled must hold preference pairs, got attribute rows")
    labeled, skipped = read_pairs(cfg.data, "--labeled", skip_invalid=cfg.skip_invalid)
    unlabeled: list[PreferenceExample] = []
    if cfg.unlabeled is not None:
        unlabeled, skipped_u = read_pairs(cfg.unlabeled, "--unlabeled", skip_invalid=cfg.skip_invalid)
        skipped += skipped_u
    if cfg.labeled_fraction is None:
        return SsrmInputs(labeled, unlabeled, cfg.data, cfg.unlabeled_has_labels, skipped)
    take, rest = split_labeled(len(labeled), cfg.labeled_fraction, cfg.seed)
    if cfg.unlabeled is None and not len(rest):
        raise OptionError(f"--labeled-fraction {cfg.labeled_fraction} of {cfg.data} leaves no pair for U")
    path = data_dir / "labeled.jsonl"
    write_rows(path, (to_canonical(labeled[i]) for i in take))
    labels_known = cfg.unlabeled_has_labels
    if cfg.unlabeled is None:
        unlabeled, labels_known = [labeled[i] for i in rest], True
        write_rows(data_dir / "unlabeled.jsonl", (to_canonical(e) for e in unlabeled))
    return SsrmInputs([labeled[i] for i in take], unlabeled, str(path), labels_known, skipped)


def pseudo_label(model_dir: Path, pairs: Sequence[PreferenceExample], cfg: SsrmTrainConfig, desc: str) -> np.ndarray:
    """(N,) float64 P(each pair's first response better) under the reward model saved in ``model_dir``."""
    from tqdm.auto import tqdm

    opts = ScorerOptions(device=cfg.device, dtype="float32" if cfg.precision == "fp32" else "auto",
                         batch_tokens=cfg.eval_batch_tokens, seed=cfg.seed)
    scorer = build_scorer(f"rm:{model_dir}", opts)
    total = len(pairs) * (1 if is_pairwise(scorer) else 2)
    with tqdm(total=total, desc=desc, unit="seq", dynamic_ncols=True) as bar:
        prefs = preference_probabilities(scorer, [e.prompt for e in pairs], [e.chosen for e in pairs],
                                         [e.rejected for e in pairs], [e.conversational for e in pairs],
                                         progress=bar.update)
    del scorer
    _free_memory()
    return prefs.p_first


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _heldout(metadata: dict[str, Any]) -> dict[str, float] | None:
    ev = (metadata.get("metrics") or {}).get("eval")
    if not ev:
        return None
    return {"accuracy": ev["accuracy"], "ci95_low": ev["accuracy_ci95_low"], "ci95_high": ev["accuracy_ci95_high"],
            "pairs": int(ev["pairs"])}


def _label_round(t: int, prev: Path, inputs: SsrmInputs, cfg: SsrmTrainConfig, here: Path) -> tuple[str, dict[str, Any]]:
    """Round ``t``'s pseudo-labels (written to ``here/pseudo.jsonl``) and training file; its record so far."""
    p = pseudo_label(prev, inputs.unlabeled, cfg, f"pseudo-label round {t}")
    sel = select_confident(p, cfg.threshold)
    pseudo = pseudo_rows(inputs.unlabeled, p, sel)
    write_rows(here / "pseudo.jsonl", pseudo)
    n_train = write_rows(here / "train.jsonl", [*(to_canonical(e) for e in inputs.labeled), *pseudo])
    kept = int(sel.keep.sum())
    record: dict[str, Any] = {"round": t, "train_pairs": n_train, "pseudo_labeled": len(p), "kept": kept,
                              "kept_fraction": kept / len(p), "swapped": int(sel.swap.sum())}
    if inputs.labels_known:
        record["pseudo_label_accuracy"], record["scored_accuracy"] = label_accuracy(p, sel.keep)
    return str(here / "train.jsonl"), record


def train_ssrm(cfg: SsrmTrainConfig, *, on_round: Callable[[dict[str, Any]], None] | None = None) -> SsrmResult:
    """Run SSRM as configured (see the module docstring); ``on_round(record)`` after each round."""
    from rewardkit.train.reward import train_reward_model

    out = Path(cfg.out)
    inputs = prepare_inputs(cfg, out / "data")
    report: dict[str, Any] = {"options": cfg.options(), "labeled_pairs": len(inputs.labeled),
                              "unlabeled_pairs": len(inputs.unlabeled), "labels_known": inputs.labels_known,
                              "skipped_invalid": inputs.skipped_invalid, "selection": "max(p, 1-p) > threshold",
                              "train_config": cfg.to_dict(), "rounds": []}
    prev: Path | None = None
    for t in range(cfg.rounds + 1):
        start = time.perf_counter()
        here = out / "rounds" / f"round-{t}"
        if prev is None:
            data, record = inputs.labeled_path, {"round": 0, "train_pairs": len(inputs.labeled), "pseudo_labeled": 0,
                                                 "kept": 0, "kept_fraction": None, "swapped": 0}
        else:
            data, record = _label_round(t, prev, inputs, cfg, here)
        model = str(prev) if prev is not None and cfg.init == "previous" else cfg.model
        result = train_reward_model(cfg.round_config(data=data, out=here, model=model))
        _free_memory()
        record["heldout"] = _heldout(result.metadata)
        record["seconds"] = time.perf_counter() - start
        report["rounds"].append(record)
        atomic_write_json(out / "ssrm.json", report)
        if on_round is not None:
            on_round(record)
        prev = here
    assert prev is not None
    copy_model(prev, out)
    report["final"] = {"round": cfg.rounds, "copied_from": str(prev)}
    atomic_write_json(out / "ssrm.json", report)
    return SsrmResult(out, report["rounds"], report)


def copy_model(src: Path, dst: Path) -> None:
    """Copy the model of the round folder ``src`` (its files, not its checkpoints, logs or the round's data
    files) into ``dst``, ``rewardkit.json`` last (its presence marks a complete folder)."""
    files = sorted((p for p in src.iterdir() if p.is_file() and p.name not in _ROUND_DATA),
                   key=lambda p: p.name == "rewardkit.json")
    for p in files:
        shutil.copy2(p, dst / p.name)


def describe_round(r: dict[str, Any]) -> str:
    """One line per round for the command line."""
    parts = [f"round {r['round']}: {r['train_pairs']} training pairs"]
    if r["round"] > 0:
        frac = r["kept_fraction"]
        parts.append(f"{r['kept']}/{r['pseudo_labeled']} pseudo-labelled pairs kept "
                     f"({100 * frac:.1f}%), {r['swapped']} swapped")
        if r.get("pseudo_label_accuracy") is not None:
            parts.append(f"pseudo-label accuracy {r['pseudo_label_accuracy']:.3f}")
    if r.get("heldout"):
        h = r["heldout"]
        parts.append(f"held-out accuracy {h['accuracy']:.3f} [{h['ci95_low']:.3f}, {h['ci95_high']:.3f}]")
    parts.append(f"{r['seconds']:.1f} s")
    return ", ".join(parts)


__all__ = ["SSRM_UNUSED", "Selection", "SsrmResult", "SsrmTrainConfig", "describe_round", "label_accuracy", "select_confident",
           "split_labeled", "train_ssrm"]
