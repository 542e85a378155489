"""Process reward models (PRMs): a reward per step, as a plain ``AutoModelForTokenClassification`` folder.

Input layout (TRL's ``PRMTrainer`` convention, kept identical for training and scoring):

    prompt tokens | step 1 tokens, separator | step 2 tokens, separator | ...

The prompt is the chat template with the generation prompt when the backbone has one and the prompt is
conversational (messages), else the tokenizer's BOS (or CLS), the prompt's plain text and the separator. Each step is
tokenized alone (no special tokens) and followed by the separator's tokens; step k's label sits on the
LAST token of its separator. The separator is ``"\\n"``; where the tokenizer encodes it to nothing (BERT's
WordPiece drops whitespace) its SEP token stands in. The separator's token ids are stored in
``rewardkit.json`` so a scorer encodes exactly as training did.

Truncation (:func:`fit_steps`): when prompt and steps exceed ``max_length`` the prompt keeps its end (at
least ``max_length // 2`` tokens of it, or all of it) and the steps fill the rest, whole steps from the
first on; a first step too long to fit alone keeps its end (its separator, where its label sits).
Dropped steps are counted and never scored.

Head: two classes, 0 = wrong, 1 = right (as TRL); P(step right) = softmax(logits)[..., 1] at each step's
label token. Any backbone that ``AutoModelForTokenClassification`` supports (BERT/MiniLM, Llama/SmolLM2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.chat import render_plain
from rewardkit.data.collate import token_budget_batches
from rewardkit.data.formats import Message
from rewardkit.data.io import atomic_write_json, make_readable
from rewardkit.errors import MissingInputError, OptionError
from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.causal_lm import ensure_distinct_pad, right_pad
from rewardkit.models.devices import resolve_device, resolve_dtype

METADATA_FILE = "rewardkit.json"
FORMAT_VERSION = "rewardkit-prm/1"
SEPARATOR = "\n"
WRONG, RIGHT = 0, 1
IGNORE_INDEX = -100


def split_response(text: str, separator: str = SEPARATOR) -> list[str]:
    """A response as steps: split at ``separator``, blank pieces dropped; a response without any non-blank
    piece is one (possibly empty) step, so every response gets a score."""
    steps = [s for s in text.split(separator) if s.strip()]
    return steps or [text.strip()]


@dataclass(frozen=True)
class StepEncoding:
    """One (prompt, steps) input: ``input_ids`` (T,), ``label_positions`` (k,) the token index of each kept
    step's label (k <= ``steps_total``: ``steps_dropped`` did not fit), ``prompt_cut`` prompt tokens dropped
    from its start, ``step_cut`` whether the first step lost its start to fit."""

    input_ids: list[int]
    label_positions: list[int]
    steps_total: int
    prompt_cut: int = 0
    step_cut: bool = False

    @property
    def steps_kept(self) -> int:
        return len(self.label_positions)

    @property
    def steps_dropped(self) -> int:
        return self.steps_total - self.steps_kept

    @property
    def truncated(self) -> bool:
        return bool(self.prompt_cut or self.steps_dropped or self.step_cut)


def fit_steps(prompt: list[int], blocks: list[list[int]], max_length: int) -> StepEncoding:
    """Lay out ``prompt`` and step ``blocks`` (each step's tokens + separator) in at most ``max_length``
    tokens by the truncation policy of this module; labels at each kept block's last token."""
    total, n_steps = len(prompt) + sum(len(b) for b in blocks), len(blocks)
    if total > max_length:
        room = max_length - min(len(prompt), max(max_length - (total - len(prompt)), max_length // 2))
        kept, used = [], 0
        for block in blocks:
            if used + len(block) > room:
                break
            kept.append(block)
            used += len(block)
        cut = not kept and bool(blocks)
        if cut:
            kept, used = [blocks[0][-room:]], min(room, len(blocks[0]))
        keep_prompt = min(len(prompt), max_length - used)  # room the steps left unused goes back to the prompt
        prompt_cut = len(prompt) - keep_prompt
        prompt, blocks = prompt[prompt_cut:], kept
    else:
        prompt_cut, cut = 0, False
    ids, positions = list(prompt), []
    for block in blocks:
        ids += block
        positions.append(len(ids) - 1)
    return StepEncoding(ids, positions, n_steps, prompt_cut, cut)


class StepEncoder:
    """Encodes (prompt, steps) for one tokenizer as the PRM reads them (see the module docstring)."""

    def __init__(self, tokenizer: Any, max_length: int, separator_ids: Sequence[int] | None = None) -> None:
        if max_length < 8:
            raise OptionError(f"max_length must be at least 8, got {max_length}")
        self.tokenizer, self.max_length = tokenizer, max_length
        self.separator_ids = list(separator_ids) if separator_ids is not None else default_separator_ids(tokenizer)
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def prompt_ids(self, prompt: Sequence[Message], conversational: bool) -> list[int]:
        tok = self.tokenizer
        if self.chat and conversational:
            text = tok.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
            return list(tok(str(text), add_special_tokens=False)["input_ids"])
        first = tok.bos_token_id if tok.bos_token_id is not None else getattr(tok, "cls_token_id", None)
        head = [first] if first is not None else []
        if not prompt:
            return head
        return head + list(tok(render_plain(prompt), add_special_tokens=False)["input_ids"]) + self.separator_ids

    def step_blocks(self, steps: Sequence[str]) -> list[list[int]]:
        return [list(self.tokenizer(s, add_special_tokens=False)["input_ids"]) + self.separator_ids for s in steps]

    def encode(self, prompt: Sequence[Message], steps: Sequence[str], conversational: bool) -> StepEncoding:
        return fit_steps(self.prompt_ids(prompt, conversational), self.step_blocks(steps), self.max_length)


def default_separator_ids(tokenizer: Any) -> list[int]:
    """The tokens of ``"\\n"``; the SEP token where the tokenizer drops whitespace (BERT)."""
    ids = list(tokenizer.encode(SEPARATOR, add_special_tokens=False))
    if ids:
        return ids
    sep = getattr(tokenizer, "sep_token_id", None)
    if sep is None:
        raise OptionError("this tokenizer encodes '\\n' to no token and has no SEP token to mark step ends")
    return [int(sep)]


def step_targets(length: int, positions: Sequence[int], labels: Sequence[bool]) -> list[int]:
    """Token labels (T,) of one input: 1 (right) / 0 (wrong) at each step's label position, -100 elsewhere."""
    out = [IGNORE_INDEX] * length
    for pos, label in zip(positions, labels, strict=False):  # labels of dropped steps have no position
        out[pos] = RIGHT if label else WRONG
    return out


@dataclass
class ProcessRewardModel:
    """A loaded or new PRM: the HF token-classification model, its tokenizer, the step encoder and the
    metadata of ``rewardkit.json``."""

    model: Any
    tokenizer: Any
    encoder: StepEncoder
    metadata: dict[str, Any]
    name: str

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def build_prm(backbone: str, *, max_length: int) -> ProcessRewardModel:
    """A new PRM: ``backbone`` (alias, path or hub name) with a fresh 2-class token head, fp32."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = resolve_backbone(backbone)
    if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
        raise MissingInputError(f"{backbone}: no such model folder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(
        path, id2label={WRONG: "wrong", RIGHT: "right"}, label2id={"wrong": WRONG, "right": RIGHT},
        ignore_mismatched_sizes=True, dtype=torch.float32)
    ensure_distinct_pad(tokenizer, model)
    return ProcessRewardModel(model, tokenizer, StepEncoder(tokenizer, max_length), {"backbone": backbone}, backbone)


def save_prm(prm: ProcessRewardModel, out_dir: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """A plain ``AutoModelForTokenClassification`` folder (LoRA merged) + tokenizer + ``rewardkit.json``
    (written last, atomically: its presence marks a complete folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = prm.model.merge_and_unload() if hasattr(prm.model, "merge_and_unload") else prm.model
    model.config.pad_token_id = prm.tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    prm.tokenizer.save_pretrained(out)
    for weights in out.glob("*.safetensors"):
        make_readable(weights)
    meta = {"kind": "prm", "format": FORMAT_VERSION, "separator": SEPARATOR,
            "separator_ids": prm.encoder.separator_ids, "max_length": prm.encoder.max_length,
            "labels": {"0": "wrong", "1": "right"}, "label_token": "last token of each step's separator",
            "prompt_format": "chat template for messages, else BOS/CLS + plain text + separator",
            "truncation_policy": "keep the prompt's end (at least max_length // 2 tokens) and whole steps from "
                                 "the first on", **metadata}
    atomic_write_json(out / METADATA_FILE, meta, default=str)
    return out


def load_prm(path: str | os.PathLike[str], *, max_length: int | None = None, dtype: str | torch.dtype = "float32",
             device: str | torch.device = "cpu") -> ProcessRewardModel:
    """Load a PRM folder written by :func:`save_prm` in eval mode (``max_length`` overrides the saved one)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    name = str(path)
    folder = Path(resolve_backbone(name))
    meta_path = folder / METADATA_FILE
    if not meta_path.exists():
        raise MissingInputError(f"{name}: not a PRM folder (no {METADATA_FILE}; train one with `rewardkit train prm`)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("kind") != "prm":
        raise OptionError(f"{name}: {METADATA_FILE} says kind {meta.get('kind')!r}, not a process reward model")
    where = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder, dtype=resolve_dtype(dtype, where)).to(where).eval()
    ensure_distinct_pad(tokenizer, model, add_token=False)
    encoder = StepEncoder(tokenizer, int(max_length or meta["max_length"]), meta["separator_ids"])
    return ProcessRewardModel(model, tokenizer, encoder, meta, name)


def step_logits(model: Any, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_id: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of B inputs -> (logits at the label positions (S, 2), their row index (S,) int64),
    S = all kept steps of the batch, in row order."""
    device = next(model.parameters()).device
    ids, mask = right_pad(seqs, pad_id, device)
    logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, 2)
    rows = torch.tensor([i for i, p in enumerate(positions) for _ in p], dtype=torch.long, device=device)
    cols = torch.tensor([j for p in positions for j in p], dtype=torch.long, device=device)
    return logits[rows, cols], rows


@torch.inference_mode()
def step_probabilities(model: Any, pad_id: int, encodings: Sequence[StepEncoding], *, max_tokens: int = 16_384,
                       max_batch: int = 256) -> list[np.ndarray]:
    """P(step right) per kept step of each input: a list of (k_i,) float32 arrays, in input order; batches of
    at most ``max_tokens`` padded tokens (right padding and exact masks: results do not depend on them)."""
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(encodings)
    for idx in token_budget_batches([len(e.input_ids) for e in encodings], max_tokens, max_batch):
        logits, rows = step_logits(model, [encodings[i].input_ids for i in idx],
                                   [encodings[i].label_positions for i in idx], pad_id)
        probs = torch.softmax(logits.float(), dim=-1)[:, RIGHT].cpu().numpy()
        rows_np = rows.cpu().numpy()
        for j, i in enumerate(idx):
            out[i] = probs[rows_np == j].astype(np.float32)
    return out
