"""Verifiable preference data with gold labels: the embedded default task ``ifeval-lite``.

Pipeline (:func:`synthesize`): seeded prompts carrying checkable instructions
(:mod:`rewardkit.synth.prompts`) → responses sampled from a causal LM (SmolLM2-135M-Instruct by
default) → controlled edits and gold rewards from the verifiers (:mod:`rewardkit.synth.edits`,
:mod:`rewardkit.verify.verifiers`) → pairs where gold differs → a train/test split by prompt → jsonl.

A set made by this code ships in ``rewardkit/resources/ifeval_lite``; :func:`load_embedded` finds it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from rewardkit.synth.edits import Candidate, expand
from rewardkit.synth.prompts import SynthPrompt, build_prompts
from rewardkit.verify.verifiers import Constraint
from rewardkit.models.backbones import ALIASES, resolve_backbone
from rewardkit.registry import Registry


@dataclass(frozen=True)
class SynthTask:
    """A verifiable task: how to build its prompts and how to turn samples into graded candidates."""

    name: str
    build_prompts: Callable[[int, int], list[SynthPrompt]]  # (n, seed) -> prompts
    expand: Callable[[Sequence[Constraint], Sequence[str], random.Random], list[Candidate]]


TASKS: Registry[SynthTask] = Registry[SynthTask]("synth task")
TASKS.register("ifeval-lite")(SynthTask("ifeval-lite", build_prompts, expand))

EMBEDDED_FILES: dict[str, str] = {
    "train": "train.jsonl",
    "test": "test.jsonl",
    "candidates": "candidates.jsonl",
    "manifest": "manifest.json",
}


@dataclass(frozen=True)
class SynthResult:
    """Where :func:`synthesize` wrote its files, and what they hold."""

    out_dir: Path
    train: Path
    test: Path
    candidates: Path
    manifest: Path
    n_prompts_train: int
    n_prompts_test: int
    n_candidates_test: int
    n_pairs_train: int
    n_pairs_test: int
    seconds: float


@dataclass(frozen=True)
class SamplingSettings:
    """How responses are sampled (recorded in the manifest)."""

    samples_per_prompt: int
    max_new_tokens: int
    temperature: float
    top_p: float
    batch_size: int


def synthesize(
    *,
    task: str = "ifeval-lite",
    n_prompts: int,
    out_dir: Path,
    seed: int = 0,
    model: str = "smollm2-135m",
    samples_per_prompt: int = 4,
    max_new_tokens: int = 96,
    test_fraction: float = 0.2,
    pairs_per_prompt: int = 6,
    batch_size: int = 16,
    temperature: float = 0.9,
    top_p: float = 0.95,
) -> SynthResult:
    """Generate a verifiable preference set and write it to ``out_dir``.

    Args:
        task: a name in :data:`TASKS` (``"ifeval-lite"``).
        n_prompts: prompts to build; each is sampled ``samples_per_prompt`` times, then edited.
        out_dir: folder for ``train.jsonl``, ``test.jsonl``, ``candidates.jsonl``, ``manifest.json``
            (created; existing files are overwritten).
        seed: drives prompts, sampling, edits, pair choice and the split; the same seed, model and
            machine give byte-identical files.
        model: an offline backbone alias (``"smollm2-135m"``), a local causal-LM folder or a hub name.
        samples_per_prompt, max_new_tokens, temperature, top_p, batch_size: sampling settings
            (``batch_size`` counts sequences, prompts × samples, per ``generate`` call, rounded down
            to whole prompts; each prompt is encoded once and its samples share that cache).
        test_fraction: share of prompts held out for ``test.jsonl`` and ``candidates.jsonl``.
        pairs_per_prompt: at most this many (chosen, rejected) pairs per prompt, mixing gold gaps.

    Returns:
        a :class:`SynthResult` with the four paths, the counts and the wall time.
    """
    if n_prompts < 2 or not 0.0 < test_fraction < 1.0:
        raise ValueError("need n_prompts >= 2 and 0 < test_fraction < 1")
    start = time.perf_counter()
    spec = TASKS.get(task)
    prompts = spec.build_prompts(n_prompts, seed)
    settings = SamplingSettings(samples_per_prompt, max_new_tokens, temperature, top_p, batch_size)
    samples = generate_samples([p.text for p in prompts], model=model, settings=settings, seed=seed)
    candidates = [
        spec.expand(p.constraints, s, random.Random(f"{task}/expand/{seed}/{p.prompt_id}"))
        for p, s in zip(prompts, samples, strict=True)
    ]
    test_ids = split_prompts([p.prompt_id for p in prompts], test_fraction=test_fraction, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_splits(
        out_dir, prompts, candidates, test_ids, pairs_per_prompt=pairs_per_prompt, seed=seed
    )
    config = {
        "task": task,
        "seed": seed,
        "generator": {"model": model, "source": ALIASES.get(model, model)},
        "sampling": {**asdict(settings), "top_k": 0, "do_sample": True},
        "pairs_per_prompt": pairs_per_prompt,
        "test_fraction": test_fraction,
    }
    counts = {
        "prompts": {"train": len(prompts) - len(test_ids), "test": len(test_ids)},
        "candidates": {"all": sum(len(c) for c in candidates), "test": written["candidates"]},
        "pairs": {"train": written["pairs_train"], "test": written["pairs_test"]},
    }
    manifest = _manifest(config, counts, gold_summary(prompts, candidates), out_dir)
    manifest_path = out_dir / EMBEDDED_FILES["manifest"]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SynthResult(
        out_dir=out_dir,
        train=out_dir / EMBEDDED_FILES["train"],
        test=out_dir / EMBEDDED_FILES["test"],
        candidates=out_dir / EMBEDDED_FILES["candidates"],
        manifest=manifest_path,
        n_prompts_train=counts["prompts"]["train"],
        n_prompts_test=counts["prompts"]["test"],
        n_candidates_test=written["candidates"],
        n_pairs_train=written["pairs_train"],
        n_pairs_test=written["pairs_test"],
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


def generate_samples(
    texts: Sequence[str], *, model: str, settings: SamplingSettings, seed: int
) -> list[list[str]]:
    """``settings.samples_per_prompt`` sampled replies to each user message in ``texts``, in order.

    A batch holds whole prompts (``batch_size // samples_per_prompt`` of them, at least one); each
    batch reseeds torch with ``seed`` and its index, so results do not depend on earlier batches.
    """
    from tqdm.auto import tqdm

    tokenizer, lm = load_causal_lm(model)
    chats = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False
        )
        for t in texts
    ]
    per_batch = max(1, settings.batch_size // settings.samples_per_prompt)
    replies: list[list[str]] = []
    starts = range(0, len(chats), per_batch)
    for b, first in enumerate(tqdm(starts, desc="sampling", unit="batch")):
        decoded = sample_replies(
            lm, tokenizer, chats[first : first + per_batch], settings=settings, seed=seed * 1_000_003 + b
        )
        k = settings.samples_per_prompt
        replies += [[r.strip() for r in decoded[i : i + k]] for i in range(0, len(decoded), k)]
    return replies


def sample_replies(
    lm: Any, tokenizer: Any, chats: Sequence[str], *, settings: SamplingSettings, seed: int
) -> list[str]:
    """Sample ``samples_per_prompt`` replies to each chat; the prompts are encoded once and shared.

    The prompt prefix (all but its last token) is run once per prompt and its KV cache repeated for
    the samples, so the prompt costs 1/``samples_per_prompt`` of a plain batched ``generate``; the
    sampled tokens are the same as with the prompt repeated (checked in the tests).
    """
    import torch
    from transformers import DynamicCache

    k = settings.samples_per_prompt
    enc = tokenizer(list(chats), return_tensors="pt", padding=True, add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]  # (P, T) int64, left-padded
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (P, T): left padding does not shift positions
    torch.manual_seed(seed)
    with torch.inference_mode():
        cache = DynamicCache(config=lm.config)
        lm(
            input_ids=ids[:, :-1],
            attention_mask=mask[:, :-1],
            position_ids=positions[:, :-1],
            past_key_values=cache,
        )
        cache.batch_repeat_interleave(k)  # (P, ...) -> (P * k, ...), each prompt's rows together
        out = lm.generate(  # (P * k, T + T_new) int64
            input_ids=ids.repeat_interleave(k, dim=0),
            attention_mask=mask.repeat_interleave(k, dim=0),
            past_key_values=cache,
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,  # nucleus sampling only
            max_new_tokens=settings.max_new_tokens,
            pad_token_id=_fill_token_id(tokenizer),
            eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)


def load_causal_lm(model: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` for sampling: an alias, folder or hub name; left padding, fp32, eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_backbone(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return tokenizer, lm


def _fill_token_id(tokenizer: Any) -> int:
    """Token filling finished rows: pad, unless it is EOS (SmolLM2: both ``<|im_end|>``), then unk."""
    pad, eos, unk = tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
    if pad is not None and pad != eos:
        return int(pad)
    return int(unk if unk is not None else eos)


def split_prompts(prompt_ids: Sequence[str], *, test_fraction: float, seed: int) -> set[str]:
    """The held-out prompt ids: a seeded ``test_fraction`` share, at least one, never all."""
    order = sorted(prompt_ids)
    random.Random(f"split/{seed}").shuffle(order)
    n_test = min(max(1, round(len(order) * test_fraction)), len(order) - 1)
    return set(order[:n_test])


def select_pairs(golds: Sequence[float], *, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to ``k`` ``(chosen, rejected)`` index pairs with ``golds[chosen] > golds[rejected]``.

    Pairs are grouped by gold gap and taken round-robin over the gaps (in a random order), so that a
    prompt gives a mix of easy (large gap) and hard (small gap) pairs.
    """
    by_gap: dict[float, list[tuple[int, int]]] = {}
    for i, j in combinations(range(len(golds)), 2):
        if golds[i] != golds[j]:
            pair = (i, j) if golds[i] > golds[j] else (j, i)
            by_gap.setdefault(round(abs(golds[i] - golds[j]), 6), []).append(pair)
    gaps = sorted(by_gap)
    rng.shuffle(gaps)
    for gap in gaps:
        rng.shuffle(by_gap[gap])
    chosen: list[tuple[int, int]] = []
    while len(chosen) < k and any(by_gap[g] for g in gaps):
        chosen += [by_gap[g].pop() for g in gaps if by_gap[g]][: k - len(chosen)]
    return chosen


def _pair_record(prompt: SynthPrompt, chosen: Candidate, rejected: Candidate) -> dict[str, Any]:
    """TRL conversational preference row plus provenance fields."""
    return {
        "prompt": [{"role": "user", "content": prompt.text}],
        "chosen": [{"role": "assistant", "content": chosen.text}],
        "rejected": [{"role": "assistant", "content": rejected.text}],
        "prompt_id": prompt.prompt_id,
        "constraints": [c.to_dict() for c in prompt.constraints],
        "chosen_gold": chosen.gold,
        "rejected_gold": rejected.gold,
        "chosen_source": chosen.source,
        "rejected_source": rejected.source,
    }


def _candidates_record(prompt: SynthPrompt, candidates: Sequence[Candidate]) -> dict[str, Any]:
    return {
        "prompt_id": prompt.prompt_id,
        "prompt": [{"role": "user", "content": prompt.text}],
        "constraints": [c.to_dict() for c in prompt.constraints],
        "responses": [c.text for c in candidates],
        "gold": [c.gold for c in candidates],
        "sources": [c.source for c in candidates],
    }


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_splits(
    out_dir: Path,
    prompts: Sequence[SynthPrompt],
    candidates: Sequence[Sequence[Candidate]],
    test_ids: set[str],
    *,
    pairs_per_prompt: int,
    seed: int,
) -> dict[str, int]:
    """Write train/test pairs and the held-out candidate sets; return the counts."""
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": [], "candidates": []}
    for prompt, cands in zip(prompts, candidates, strict=True):
        rng = random.Random(f"pairs/{seed}/{prompt.prompt_id}")
        pairs = select_pairs([c.gold for c in cands], k=pairs_per_prompt, rng=rng)
        split = "test" if prompt.prompt_id in test_ids else "train"
        rows[split] += [_pair_record(prompt, cands[i], cands[j]) for i, j in pairs]
        if split == "test":
            rows["candidates"].append(_candidates_record(prompt, cands))
    for name, split_rows in rows.items():
        _write_jsonl(out_dir / EMBEDDED_FILES[name], split_rows)
    return {
        "pairs_train": len(rows["train"]),
        "pairs_test": len(rows["test"]),
        "candidates": sum(len(r["responses"]) for r in rows["candidates"]),
    }


def gold_summary(prompts: Sequence[SynthPrompt], candidates: Sequence[Sequence[Candidate]]) -> dict[str, Any]:
    """Mean gold of samples and of edits, share of prompts whose best candidate is perfect, and how
    often the model's own samples meet each kind of constraint."""
    flat = [c for cands in candidates for c in cands]
    samples = [c for c in flat if c.source == "sample"]
    edits = [c for c in flat if c.source != "sample"]
    met: dict[str, list[bool]] = {}
    for prompt, cands in zip(prompts, candidates, strict=True):
        for c in cands:
            if c.source == "sample":
                for constraint in prompt.constraints:
                    met.setdefault(constraint.kind, []).append(constraint.check(c.text))

    def mean(values: Sequence[float]) -> float:
        return round(sum(values) / len(values), 4) if values else 0.0

    return {
        "mean_sample": mean([c.gold for c in samples]),
        "mean_edit": mean([c.gold for c in edits]),
        "best_is_one": mean([float(max(c.gold for c in cands) == 1.0) for cands in candidates]),
        "sample_pass_rate_by_kind": {k: mean([float(m) for m in v]) for k, v in sorted(met.items())},
    }


def _manifest(
    config: dict[str, Any],
    counts: dict[str, Any],
    gold: dict[str, Any],
    out_dir: Path,
) -> dict[str, Any]:
    """Provenance of a synthesized set; holds no timestamps, so equal seeds give equal manifests."""
    import torch
    import transformers

    from rewardkit import __version__

    files = {
        name: hashlib.sha256((out_dir / EMBEDDED_FILES[name]).read_bytes()).hexdigest()
        for name in ("train", "test", "candidates")
    }
    versions = {
        "rewardkit": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    return {**config, "counts": counts, "gold": gold, "versions": versions, "sha256": files}
