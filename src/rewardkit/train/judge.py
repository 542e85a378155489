"""``rewardkit train judge``: Con-J (Ye et al., ICLR 2025; METHODS §9a) -- a generative judge trained with
DPO on its own contrastive judgments.

1. **Repeated sampling.** For each preference pair, in both orders (chosen in slot A, then in slot B),
   the model reads :data:`RATIONALE_TEMPLATE` (a user turn of its chat template) and ``samples`` judgments
   are drawn (Con-J: T 1.2, top-p 0.95, top-k 50). A judgment is a short rationale ending with the line
   ``Better: A`` or ``Better: B``; :func:`parse_verdict` reads the last such line. It is *positive* if it
   names the labelled better response, *negative* if it names the other, *unknown* if it has none.
2. **Hint-driven sampling.** The same prompt plus :data:`HINT` ("Response X is known to be better;
   explain why") is sampled once with X the true better response (a positive rationale) and once with
   the wrong one (a negative rationale); their final line is rewritten to ``Better: X``.
3. **Pairs per judge prompt** (:func:`contrastive_pairs`): up to 3 (positive, negative) pairs (the i-th
   positive with the i-th negative), 1 (positive, unknown), and 1 (hint-positive, hint-negative) -- or,
   when a hint rationale is empty, the fallback (last positive, last unknown). Identical texts are never
   paired. The pairs are written as a preference file: prompt = the judge prompt (without the hint),
   chosen = the positive judgment, rejected = the negative one (``OUT/judgments.jsonl``, counts in
   ``OUT/judgments.json``).
4. **Training** is the DPO job of ``train policy`` (:func:`rewardkit.train.policy.train_policy`, β 0.1)
   on that file; ``OUT`` is a plain causal LM folder whose ``rewardkit.json`` adds ``{"kind": "judge",
   "template": ..., "rationale": true, "rationale_tokens": ...}`` so ``judge:OUT`` first writes a rationale
   greedily and then reads the ``A``/``B`` logits after ``Better:``.

The judge prompt is not truncated when sampling; DPO training cuts over-long rows by its keep-response
policy (``max_length``), and the scorer by its own (:mod:`rewardkit.scorers.judge`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.data.chat import render_plain
from rewardkit.data.io import atomic_write_json, atomic_writer
from rewardkit.errors import InputError, OptionError
from rewardkit.losses import PreferenceLogps
from rewardkit.scorers.judge import VERDICT_PREFIX
from rewardkit.train.config import PolicyTrainConfig, _f
from rewardkit.train.job import TrainResult

RATIONALE_TEMPLATE = (
    "You are judging two responses to the same conversation. Decide which response is better: more helpful, "
    "correct, honest and harmless.\n\n[Conversation]\n{conversation}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
    "Explain briefly which response is better and why, then end with a final line that is exactly "
    "\"Better: A\" or \"Better: B\"."
)
HINT = "\n\nResponse {letter} is known to be better; explain why, then end with the final line \"Better: {letter}\"."
MAX_SAMPLE_PAIRS = 3  # Con-J: up to 3 (positive, negative) pairs per prompt from the repeated samples

_VERDICT = re.compile(r"better\s*:\s*\**\s*(?:response\s+)?\(?([ab])\b", re.IGNORECASE)

Sampler = Callable[[Sequence[list[dict[str, str]]], int], list[list[str]]]
"""``sampler(prompts as messages (P), k) -> [prompt][sample] texts`` (see :mod:`rewardkit.infer.select_prompts`)."""


@dataclass
class JudgeTrainConfig(PolicyTrainConfig):
    """Con-J judge training: the sampling settings below, then every setting of ``train policy`` (loss dpo,
    β 0.1) for the DPO step. ``data`` is the preference pairs the judge learns from."""

    out: str = _f("runs/judge", "output folder: the judge (a causal LM), judgments.jsonl, judgments.json, rewardkit.json")
    lr: float = _f(5e-7, "peak learning rate (AdamW); Con-J uses 5e-7 for full fine-tuning")
    samples: int = _f(8, "judgments sampled per pair and order (Con-J: 8)")
    temperature: float = _f(1.2, "judgment sampling temperature (Con-J: 1.2)")
    top_p: float = _f(0.95, "judgment nucleus filter (Con-J: 0.95)")
    top_k: int = _f(50, "judgment top-k filter (Con-J: 50; 0: off)")
    max_new_tokens: int = _f(256, "max tokens per judgment; also the rationale bound of judge:OUT")
    hints: bool = _f(True, "hint-driven sampling: one hinted positive and one hinted negative rationale per prompt")
    prompts_per_batch: int = _f(4, "judge prompts decoded together when sampling")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss.spec.inputs is not PreferenceLogps:
            raise OptionError(f"loss.name: {self.loss.name!r} does not train on pairs; a judge needs a DPO-family loss")
        for name in ("samples", "max_new_tokens", "prompts_per_batch"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")


# ------------------------------------------------------------------------------------ pure parts


def parse_verdict(text: str) -> str | None:
    """``A`` or ``B`` from the last ``Better: X`` in ``text`` (case-insensitive; ``**B**``, ``Response B``
    and ``(B)`` allowed), or None when there is none."""
    found = _VERDICT.findall(text)
    return found[-1].upper() if found else None


def rationale_of(text: str) -> str:
    """The text before its last verdict (the whole text when it has none), stripped."""
    matches = list(_VERDICT.finditer(text))
    return (text[: matches[-1].start()] if matches else text).strip()


def judgment_text(rationale: str, letter: str) -> str:
    """A judgment as the judge is trained to write it: the rationale, then ``Better: X`` on its own line."""
    return f"{rationale}\n{VERDICT_PREFIX} {letter}" if rationale else f"{VERDICT_PREFIX} {letter}"


def judge_prompt(prompt: Sequence[dict[str, str]], a: Sequence[dict[str, str]], b: Sequence[dict[str, str]],
                 template: str = RATIONALE_TEMPLATE) -> str:
    """The judge's user turn for (conversation, a in slot A, b in slot B), as the scorer renders it."""
    return template.format(conversation=render_plain(prompt), a="\n".join(m["content"] for m in a),
                           b="\n".join(m["content"] for m in b))


def hint_prompt(text: str, letter: str) -> str:
    """``text`` with the hint that response ``letter`` is better."""
    return text + HINT.format(letter=letter)


def other(letter: str) -> str:
    return "B" if letter == "A" else "A"


@dataclass(frozen=True)
class ContrastivePair:
    """One training pair for a judge prompt: ``kind`` is sample, unknown, hint or fallback."""

    chosen: str
    rejected: str
    kind: str


def contrastive_pairs(samples: Sequence[str], correct: str, hint_pos: str | None = None,
                      hint_neg: str | None = None) -> list[ContrastivePair]:
    """Con-J's pairs for one judge prompt whose right verdict is ``correct`` (see the module docstring)."""
    groups: dict[str | None, list[str]] = {correct: [], other(correct): [], None: []}
    for text in samples:
        bucket = groups[parse_verdict(text)]
        if text not in bucket:
            bucket.append(text)
    pos, neg, unk = groups[correct], groups[other(correct)], groups[None]
    out = [ContrastivePair(p, n, "sample") for p, n in zip(pos, neg, strict=False)][:MAX_SAMPLE_PAIRS]
    if pos and unk:
        out.append(ContrastivePair(pos[0], unk[0], "unknown"))
    hinted = [rationale_of(t) if t is not None else "" for t in (hint_pos, hint_neg)]
    if all(hinted):
        out.append(ContrastivePair(judgment_text(hinted[0], correct), judgment_text(hinted[1], other(correct)), "hint"))
    elif pos and unk:
        out.append(ContrastivePair(pos[-1], unk[-1], "fallback"))
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in out:
        if pair.chosen != pair.rejected and (pair.chosen, pair.rejected) not in seen:
            seen.add((pair.chosen, pair.rejected))
            kept.append(pair)
    return kept


# ------------------------------------------------------------------------------------ sampling


@dataclass(frozen=True)
class JudgePrompt:
    """Pair ``pair`` in one order: ``correct`` is the slot of the labelled better response."""

    pair: int
    order: str  # "AB": chosen in slot A; "BA": chosen in slot B
    text: str
    correct: str


def judge_prompts(rows: dict[str, list[Any]]) -> list[JudgePrompt]:
    """Both orders of every pair of ``rows`` (columns prompt, chosen, rejected as messages)."""
    out = []
    for i, (p, c, r) in enumerate(zip(rows["prompt"], rows["chosen"], rows["rejected"], strict=True)):
        out.append(JudgePrompt(i, "AB", judge_prompt(p, c, r), "A"))
        out.append(JudgePrompt(i, "BA", judge_prompt(p, r, c), "B"))
    return out


def sample_judgments(prompts: Sequence[JudgePrompt], sampler: Sampler, hint_sampler: Sampler | None, k: int
                     ) -> tuple[list[list[str]], list[str | None], list[str | None]]:
    """(k judgments per prompt, hint-positive and hint-negative texts per prompt or None without hints)."""
    user = [[{"role": "user", "content": jp.text}] for jp in prompts]
    samples = sampler(user, k)
    if hint_sampler is None:
        return samples, [None] * len(prompts), [None] * len(prompts)
    hinted = [[{"role": "user", "content": hint_prompt(jp.text, letter)}]
              for jp in prompts for letter in (jp.correct, other(jp.correct))]
    texts = [s[0] for s in hint_sampler(hinted, 1)]
    return samples, texts[0::2], texts[1::2]


def judgment_rows(prompts: Sequence[JudgePrompt], samples: Sequence[Sequence[str]], hint_pos: Sequence[str | None],
                  hint_neg: Sequence[str | None]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The preference rows (conversational) and the counts: judgments by verdict, pairs by kind."""
    rows: list[dict[str, Any]] = []
    counts: dict[str, Any] = {"judge_prompts": len(prompts), "positive": 0, "negative": 0, "unknown": 0,
                              "pairs": {"sample": 0, "unknown": 0, "hint": 0, "fallback": 0}}
    for jp, texts, hp, hn in zip(prompts, samples, hint_pos, hint_neg, strict=True):
        for text in texts:
            verdict = parse_verdict(text)
            counts["unknown" if verdict is None else "positive" if verdict == jp.correct else "negative"] += 1
        for pair in contrastive_pairs(texts, jp.correct, hp, hn):
            counts["pairs"][pair.kind] += 1
            rows.append({"prompt": [{"role": "user", "content": jp.text}],
                         "chosen": [{"role": "assistant", "content": pair.chosen}],
                         "rejected": [{"role": "assistant", "content": pair.rejected}],
                         "kind": pair.kind, "pair": jp.pair, "order": jp.order})
    counts["rows"] = len(rows)
    return rows, counts


# ------------------------------------------------------------------------------------ the job


def policy_config(cfg: JudgeTrainConfig, data: str) -> PolicyTrainConfig:
    """The ``train policy`` settings of ``cfg``, training on ``data``."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(PolicyTrainConfig)}
    return PolicyTrainConfig(**{**values, "data": data})


def build_samplers(cfg: JudgeTrainConfig) -> tuple[Sampler, Sampler | None]:
    """The judgment sampler and the hint sampler over ``cfg.model`` (seeded by ``cfg.seed``)."""
    from rewardkit.infer.sampler import SamplingConfig, load_policy
    from rewardkit.infer.select_prompts import policy_sampler

    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              top_k=cfg.top_k, seed=cfg.seed)
    policy = load_policy(cfg.model, dtype="float32", device=cfg.device)
    samples = policy_sampler(policy, sampling, cfg.prompts_per_batch, salt="judge/")
    hints = policy_sampler(policy, sampling, cfg.prompts_per_batch, salt="hint/") if cfg.hints else None
    return samples, hints


def write_judgments(cfg: JudgeTrainConfig, samplers: tuple[Sampler, Sampler | None] | None = None
                    ) -> tuple[Path, dict[str, Any]]:
    """Steps 1-3: sample, pair and write ``OUT/judgments.jsonl`` and ``OUT/judgments.json``."""
    from rewardkit.data.dataset import load_examples

    loaded = load_examples(cfg.data, kind="preference", skip_invalid=cfg.skip_invalid)
    rows = loaded.dataset.select_columns(["prompt", "chosen", "rejected"])[:]
    prompts = judge_prompts(rows)
    sampler, hint_sampler = samplers if samplers is not None else build_samplers(cfg)
    samples, hint_pos, hint_neg = sample_judgments(prompts, sampler, hint_sampler, cfg.samples)
    pairs, counts = judgment_rows(prompts, samples, hint_pos, hint_neg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "judgments.jsonl"
    with atomic_writer(path) as f:
        for row in pairs:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    atomic_write_json(out / "judgments.json", counts)
    if not pairs:
        raise InputError(f"{cfg.data}: no contrastive judgment pairs ({counts['positive']} positive, "
                         f"{counts['negative']} negative, {counts['unknown']} unknown judgments); raise --samples, "
                         "keep --hints on, or start from a model that writes 'Better: A/B' verdicts")
    return path, counts


def train_judge(cfg: JudgeTrainConfig, samplers: tuple[Sampler, Sampler | None] | None = None) -> TrainResult:
    """Con-J end to end: judgments, pairs, DPO; ``cfg.out`` is then a ``judge:`` scorer with rationales.
    ``samplers`` replace sampling from ``cfg.model`` (tests)."""
    from rewardkit.train.policy import train_policy

    path, counts = write_judgments(cfg, samplers)
    result = train_policy(policy_config(cfg, str(path)))
    meta_path = result.out_dir / "rewardkit.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update({"kind": "judge", "template": RATIONALE_TEMPLATE, "rationale": True,
                 "rationale_tokens": cfg.max_new_tokens, "verdict_prefix": VERDICT_PREFIX,
                 "conj": {"judgments": counts, "samples": cfg.samples, "temperature": cfg.temperature,
                          "top_p": cfg.top_p, "top_k": cfg.top_k, "hints": cfg.hints, "data": cfg.data}})
    atomic_write_json(meta_path, meta)
    return dataclasses.replace(result, metadata={**result.metadata, "judgments": counts})
