"""Verifiable preference data with gold labels: the embedded default task ``ifeval-lite``.

Pipeline (:func:`synthesize`): seeded prompt families, two prompts per request that share their
instructions but one contrasting pair (:mod:`rewardkit.synth.prompts`) → plain samples of every prompt
from a causal LM (SmolLM2-135M-Instruct by default) with the shared sampler
(:mod:`rewardkit.infer.sampler`) → the family's candidates: both prompts' samples plus variants edited
alike (:mod:`rewardkit.synth.edits`), graded by the verifiers under both prompts → counterfactual twin
pairs (:mod:`rewardkit.synth.pairs`) → a train/test split by family, stratified by contrast → jsonl, and a manifest holding
the shortcut audit of the pairs (:mod:`rewardkit.synth.audit`).

A set made by this code ships in ``rewardkit/resources/ifeval_lite``; :func:`load_embedded` finds it.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import OptionError
from rewardkit.models.backbones import ALIASES
from rewardkit.registry import Registry
from rewardkit.synth import audit
from rewardkit.synth.edits import SURFACE_FEATURES, Candidate, family_candidates
from rewardkit.synth.pairs import TWIN_TYPES, find_twins, select_twins
from rewardkit.synth.prompts import Family, SynthPrompt, build_families
from rewardkit.verify.verifiers import VERIFIERS, count_words


@dataclass(frozen=True)
class SynthTask:
    """A verifiable task: its prompt families, how samples become graded candidates, and the surface
    features of its responses that the shortcut audit tries as rules (:func:`audit.audit_pairs`)."""

    name: str
    build_families: Callable[[int, int], list[Family]]  # (n, seed) -> families
    candidates: Callable[[Family, Sequence[Sequence[str]], random.Random], list[Candidate]]
    surface_features: Mapping[str, Callable[[str], float]]


TASKS: Registry[SynthTask] = Registry[SynthTask]("synth task")
TASKS.register("ifeval-lite")(SynthTask("ifeval-lite", build_families, family_candidates,
                                        {**audit.GENERIC_FEATURES, **SURFACE_FEATURES}))

EMBEDDED_FILES: dict[str, str] = {
    "train": "train.jsonl",
    "test": "test.jsonl",
    "candidates": "candidates.jsonl",
    "manifest": "manifest.json",
    "objectives_train": "objectives_train.jsonl.gz",
    "objectives_test": "objectives_test.jsonl.gz",
}
SAMPLES_FILE = "samples.jsonl"  # every prompt's plain samples; written beside the set, not shipped


@dataclass(frozen=True)
class SynthResult:
    """Where :func:`synthesize` wrote its files, and what they hold."""

    out_dir: Path
    train: Path
    test: Path
    candidates: Path
    manifest: Path
    samples: Path
    n_prompts_train: int
    n_prompts_test: int
    n_candidates_test: int
    n_pairs_train: int
    n_pairs_test: int
    seconds: float


@dataclass(frozen=True)
class SamplingSettings:
    """How responses are sampled (recorded in the manifest). ``prompts_per_batch`` prompts, each with
    ``samples_per_prompt`` rows, decode together; every sample has its own seeded generator."""

    samples_per_prompt: int
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    prompts_per_batch: int


def synthesize(
    *,
    task: str = "ifeval-lite",
    n_prompts: int,
    out_dir: Path,
    seed: int = 0,
    model: str = "smollm2-135m",
    samples_per_prompt: int = 6,
    max_new_tokens: int = 64,
    test_fraction: float = 0.2,
    twins_per_family: int = 4,
    prompts_per_batch: int = 4,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 50,
    samples_file: Path | None = None,
) -> SynthResult:
    """Generate a verifiable preference set and write it to ``out_dir``.

    Args:
        task: a name in :data:`TASKS` (``"ifeval-lite"``).
        n_prompts: prompts to build, two per family (an odd number is rounded up).
        out_dir: folder for ``train.jsonl``, ``test.jsonl``, ``candidates.jsonl``, ``manifest.json`` and
            ``samples.jsonl`` (created; existing files are overwritten).
        seed: drives prompts, sampling, edits, pair choice and the split; the same seed, model and
            machine give byte-identical files.
        model: an offline backbone alias (``"smollm2-135m"``), a local causal-LM folder or a hub name.
        samples_per_prompt, max_new_tokens, temperature, top_p, top_k, prompts_per_batch: sampling
            settings (each sample is seeded from ``seed``, its prompt id and its index).
        test_fraction: share of the families of each contrast held out for ``test.jsonl`` and
            ``candidates.jsonl`` (a family's samples are shared by its two prompts only).
        twins_per_family: at most this many counterfactual twins (two pairs each) per family.
        samples_file: a ``samples.jsonl`` written by an earlier run with the same prompts and sampling
            settings: its samples are used instead of sampling again (pairs and edits are remade).

    Returns:
        a :class:`SynthResult` with the paths, the counts and the wall time.
    """
    if n_prompts < 4 or not 0.0 < test_fraction < 1.0:
        raise ValueError("need n_prompts >= 4 and 0 < test_fraction < 1")
    start = time.perf_counter()
    spec = TASKS.get(task)
    families = spec.build_families((n_prompts + 1) // 2, seed)
    prompts = [p for f in families for p in f.prompts]
    settings = SamplingSettings(samples_per_prompt, max_new_tokens, temperature, top_p, top_k, prompts_per_batch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples_file is not None:
        samples = read_samples(Path(samples_file), prompts, settings)
    else:
        samples = generate_samples(prompts, model=model, settings=settings, seed=seed)
    write_samples(out_dir / SAMPLES_FILE, prompts, samples, settings)
    by_id = dict(zip((p.prompt_id for p in prompts), samples, strict=True))
    candidates = [spec.candidates(f, [by_id[p.prompt_id] for p in f.prompts],
                                  random.Random(f"{task}/candidates/{seed}/{f.family_id}")) for f in families]
    test_ids = split_families(families, test_fraction=test_fraction, seed=seed)
    rows = build_rows(families, candidates, test_ids, twins_per_family=twins_per_family, seed=seed)
    for name in ("train", "test", "candidates"):
        write_jsonl(out_dir / EMBEDDED_FILES[name], rows[name])
    for split in ("train", "test"):
        write_jsonl_gz(out_dir / EMBEDDED_FILES[f"objectives_{split}"],
                       objective_rows(families, candidates, test_ids, split=split))
    config = {
        "task": task,
        "seed": seed,
        "generator": {"model": model, "source": ALIASES.get(model, model)},
        "sampling": asdict(settings),
        "twins_per_family": twins_per_family,
        "test_fraction": test_fraction,
    }
    counts = {
        "families": {"train": len(families) - len(test_ids), "test": len(test_ids)},
        "prompts": {"train": (len(families) - len(test_ids)) * 2, "test": len(rows["candidates"])},
        "candidates": {"all": sum(len(c) for c in candidates),
                       "test": sum(len(r["responses"]) for r in rows["candidates"])},
        "pairs": {"train": len(rows["train"]), "test": len(rows["test"])},
    }
    summary = {"gold": gold_summary(prompts, samples), "pairs": pair_summary(rows),
               "audit": {split: audit.audit_pairs(rows["train"], rows[split], spec.surface_features)
                         for split in ("train", "test")}}
    manifest = _manifest(config, counts, summary, out_dir)
    manifest_path = out_dir / EMBEDDED_FILES["manifest"]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SynthResult(
        out_dir=out_dir,
        train=out_dir / EMBEDDED_FILES["train"],
        test=out_dir / EMBEDDED_FILES["test"],
        candidates=out_dir / EMBEDDED_FILES["candidates"],
        manifest=manifest_path,
        samples=out_dir / SAMPLES_FILE,
        n_prompts_train=counts["prompts"]["train"],
        n_prompts_test=counts["prompts"]["test"],
        n_candidates_test=counts["candidates"]["test"],
        n_pairs_train=counts["pairs"]["train"],
        n_pairs_test=counts["pairs"]["test"],
        seconds=time.perf_counter() - start,
    )


def load_embedded(split: str, *, task: str = "ifeval-lite") -> Path:
    """Path of a shipped file: ``split`` is ``"train"``, ``"test"``, ``"candidates"`` or ``"manifest"``."""
    if split not in EMBEDDED_FILES:
        raise KeyError(f"unknown split {split!r}; known: {', '.join(EMBEDDED_FILES)}")
    folder = importlib.resources.files("rewardkit") / "resources" / task.replace("-", "_")
    path = Path(str(folder / EMBEDDED_FILES[split]))
    if not path.is_file():
        raise FileNotFoundError(f"no embedded {task!r} {split} file at {path}")
    return path


def audit_task(task: str = "ifeval-lite", *, seed: int = 0) -> dict[str, Any]:
    """The shortcut audit (:func:`audit.audit_pairs`) of the pairs ``task`` ships, with its surface
    features: every model-free rule's accuracy on the shipped test pairs (the probe fitted on train)."""
    features = TASKS.get(task).surface_features
    train, test = (read_jsonl(load_embedded(split, task=task)) for split in ("train", "test"))
    return audit.audit_pairs(train, test, features, seed=seed)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a jsonl file written by this module (gunzipped if its name ends in ``.gz``)."""
    data = Path(path).read_bytes()
    text = (gzip.decompress(data) if str(path).endswith(".gz") else data).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with Path(path).open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_jsonl_gz(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Gzipped jsonl with no timestamp or file name in the header: equal rows give equal bytes."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    with Path(path).open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(data)


# ------------------------------------------------------------------------------------------ sampling


def generate_samples(prompts: Sequence[SynthPrompt], *, model: str, settings: SamplingSettings, seed: int,
                     device: str = "cpu") -> list[list[str]]:
    """``settings.samples_per_prompt`` plain samples of each prompt's user message, in order.

    Uses the shared sampler: ``prompts_per_batch`` prompts per :class:`~rewardkit.infer.sampler.Rollout`
    (each prompt prefilled once, its samples sharing that KV cache), every sample drawn with its own
    generator seeded from (``seed``, prompt id, sample index).
    """
    from tqdm.auto import tqdm

    from rewardkit.infer.sampler import Rollout, SamplingConfig, policy_from_model
    from rewardkit.models.causal_lm import load_causal_lm

    lm = load_causal_lm(model, dtype="float32", device=device)
    policy = policy_from_model(lm.model, lm.tokenizer, model)
    cfg = SamplingConfig(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                         top_p=settings.top_p, top_k=settings.top_k, seed=seed)
    k, step = settings.samples_per_prompt, max(1, settings.prompts_per_batch)
    replies: list[list[str]] = []
    for first in tqdm(range(0, len(prompts), step), desc="sampling", unit="batch"):
        batch = prompts[first : first + step]
        rollout = Rollout(policy, [policy.encode_prompt(p.text) for p in batch], k, cfg,
                          prompt_keys=[p.prompt_id for p in batch])
        rollout.advance(cfg.max_new_tokens)
        replies += [[rollout.text(g).strip() for g in rollout.rows_of(i)] for i in range(len(batch))]
    return replies


def write_samples(path: Path, prompts: Sequence[SynthPrompt], samples: Sequence[Sequence[str]],
                  settings: SamplingSettings) -> None:
    write_jsonl(path, [{"prompt_id": p.prompt_id, "prompt": p.text, "sampling": asdict(settings), "samples": list(s)}
                       for p, s in zip(prompts, samples, strict=True)])


def read_samples(path: Path, prompts: Sequence[SynthPrompt], settings: SamplingSettings) -> list[list[str]]:
    """The samples of ``prompts`` from a ``samples.jsonl``; an :class:`~rewardkit.errors.OptionError` (exit 2
    on the command line) if the file is not such a file or its prompts or settings differ."""
    try:
        rows = {r["prompt_id"]: r for r in read_jsonl(path)}
    except (ValueError, KeyError, TypeError) as e:
        raise OptionError(f"--samples-file {path}: not a samples.jsonl written by rewardkit data synth ({e})") from e
    out = []
    for p in prompts:
        row = rows.get(p.prompt_id)
        if row is None or row.get("prompt") != p.text or row.get("sampling") != asdict(settings):
            raise OptionError(f"--samples-file {path}: no samples of prompt {p.prompt_id} with these sampling "
                              "settings (the same --n, --seed, --samples-per-prompt and --max-new-tokens are needed)")
        out.append(list(row["samples"]))
    return out


# ------------------------------------------------------------------------------------------ split, pairs


def split_families(families: Sequence[Family], *, test_fraction: float, seed: int) -> set[str]:
    """The held-out family ids: within each contrast, a seeded ``test_fraction`` share of its families
    (at least one, never all, when it has two or more), so that the test pairs hold every contrast in
    the proportions of the whole set. A family's two prompts and its samples are never split."""
    by_contrast: dict[str, list[str]] = {}
    for f in families:
        by_contrast.setdefault(f.contrast, []).append(f.family_id)
    test: set[str] = set()
    for contrast, ids in sorted(by_contrast.items()):
        order = sorted(ids)
        random.Random(f"split/{seed}/{contrast}").shuffle(order)
        n_test = min(max(1, round(len(order) * test_fraction)), len(order) - 1)
        test.update(order[:n_test])
    return test


def pair_record(family: Family, side: int, chosen: Candidate, rejected: Candidate, *, twin: str,
                pair_type: str) -> dict[str, Any]:
    """TRL conversational preference row under ``family.prompts[side]``, plus provenance fields."""
    prompt = family.prompts[side]
    return {
        "prompt": [{"role": "user", "content": prompt.text}],
        "chosen": [{"role": "assistant", "content": chosen.text}],
        "rejected": [{"role": "assistant", "content": rejected.text}],
        "prompt_id": prompt.prompt_id,
        "family_id": family.family_id,
        "group": family.group,
        "twin": twin,
        "contrast": family.contrast,
        "pair_type": pair_type,
        "constraints": [c.to_dict() for c in prompt.constraints],
        "chosen_gold": chosen.golds[side],
        "rejected_gold": rejected.golds[side],
        "chosen_source": chosen.source,
        "rejected_source": rejected.source,
    }


def candidates_record(family: Family, side: int, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """One held-out prompt and its family's candidates, graded under it (for reranking)."""
    prompt = family.prompts[side]
    return {
        "prompt_id": prompt.prompt_id,
        "family_id": family.family_id,
        "group": family.group,
        "prompt": [{"role": "user", "content": prompt.text}],
        "constraints": [c.to_dict() for c in prompt.constraints],
        "responses": [c.text for c in candidates],
        "gold": [c.golds[side] for c in candidates],
        "sources": [c.source for c in candidates],
    }


def build_rows(families: Sequence[Family], candidates: Sequence[Sequence[Candidate]], test_ids: set[str], *,
               twins_per_family: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """The train and test pairs (both pairs of each selected twin, side 0 first) and the held-out
    candidate sets (both prompts of each test family)."""
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": [], "candidates": []}
    for family, cands in zip(families, candidates, strict=True):
        twins = find_twins([c.golds for c in cands], [c.source for c in cands])
        picked = select_twins(twins, k=twins_per_family, rng=random.Random(f"twins/{seed}/{family.family_id}"))
        split = "test" if family.family_id in test_ids else "train"
        for t, tw in enumerate(picked):
            name = f"{family.family_id}/{t}"
            a, b = cands[tw.a], cands[tw.b]
            rows[split] += [pair_record(family, 0, a, b, twin=name, pair_type=tw.kind),
                            pair_record(family, 1, b, a, twin=name, pair_type=tw.kind)]
        if split == "test":
            rows["candidates"] += [candidates_record(family, side, cands) for side in (0, 1)]
    return rows


# The objectives of the multi-objective set: one per instruction kind (did the response meet this
# prompt's instruction of that kind? 1/0, None when the prompt has none) and the response's length.
OBJECTIVE_KINDS: tuple[str, ...] = tuple(sorted(VERIFIERS.names()))
VERBOSITY = "verbosity"


def objective_record(family: Family, side: int, candidate: Candidate) -> dict[str, Any]:
    """One (prompt, response) row of the multi-objective set: every kind in :data:`OBJECTIVE_KINDS` (the
    share of the prompt's instructions of that kind the response meets, None when it has none), the
    verbosity (words, :func:`~rewardkit.verify.verifiers.count_words`) and the gold reward."""
    prompt = family.prompts[side]
    by_kind: dict[str, list[float]] = {}
    for c in prompt.constraints:
        by_kind.setdefault(c.kind, []).append(float(c.check(candidate.text)))
    objectives = {k: (sum(by_kind[k]) / len(by_kind[k]) if k in by_kind else None) for k in OBJECTIVE_KINDS}
    return {
        "prompt_id": prompt.prompt_id,
        "family_id": family.family_id,
        "prompt": [{"role": "user", "content": prompt.text}],
        "response": candidate.text,
        "source": candidate.source,
        "gold": candidate.golds[side],
        **objectives,
        VERBOSITY: count_words(candidate.text),
    }


def objective_rows(families: Sequence[Family], candidates: Sequence[Sequence[Candidate]], test_ids: set[str], *,
                   split: str) -> list[dict[str, Any]]:
    """:func:`objective_record` of every candidate of every ``split`` family under both its prompts (the
    same responses labelled twice, like the twin pairs: only the prompt tells which objectives hold)."""
    rows: list[dict[str, Any]] = []
    for family, cands in zip(families, candidates, strict=True):
        if (family.family_id in test_ids) == (split == "test"):
            rows += [objective_record(family, side, c) for side in (0, 1) for c in cands]
    return rows


# ------------------------------------------------------------------------------------------ summaries


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def gold_summary(prompts: Sequence[SynthPrompt], samples: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean gold of the plain samples under their own prompt, and how often they meet each kind."""
    golds: list[float] = []
    met: dict[str, list[float]] = {}
    for prompt, texts in zip(prompts, samples, strict=True):
        for text in texts:
            checks = [c.check(text) for c in prompt.constraints]
            golds.append(sum(checks) / len(checks))
            for c, ok in zip(prompt.constraints, checks, strict=True):
                met.setdefault(c.kind, []).append(float(ok))
    return {"mean_sample": _mean(golds), "sample_pass_rate_by_kind": {k: _mean(v) for k, v in sorted(met.items())}}


def pair_summary(rows: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """Pairs per split by twin type, by contrast and by deciding instruction kind."""
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        split_rows = rows[split]
        kinds: dict[str, int] = {}
        for r in split_rows:
            for kind in audit.differing_kinds(r):
                kinds[kind] = kinds.get(kind, 0) + 1
        out[split] = {
            "by_type": {t: sum(r["pair_type"] == t for r in split_rows) for t in TWIN_TYPES},
            "by_contrast": {c: n for c, n in sorted(_count(r["contrast"] for r in split_rows).items())},
            "by_deciding_kind": dict(sorted(kinds.items())),
        }
    return out


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _manifest(config: dict[str, Any], counts: dict[str, Any], summary: dict[str, Any],
              out_dir: Path) -> dict[str, Any]:
    """Provenance of a synthesized set; holds no timestamps, so equal seeds give equal manifests."""
    import torch
    import transformers

    from rewardkit import __version__

    files = {
        name: hashlib.sha256((out_dir / EMBEDDED_FILES[name]).read_bytes()).hexdigest()
        for name in ("train", "test", "candidates", "objectives_train", "objectives_test")
    }
    versions = {
        "rewardkit": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    return {**config, "counts": counts, **summary, "versions": versions, "sha256": files}
