"""Batched sampling from any Hugging Face causal LM with a KV cache, written out step by step.

A :class:`Rollout` decodes ``n`` samples of each of ``P`` prompts as one batch of ``P × n`` rows:

- **prefill once.** The left-padded prompts (P, L) run through the model once; the cache is then
  repeated ``n`` times per prompt (``DynamicCache.batch_repeat_interleave``), so the samples of a prompt
  share its prefill instead of re-encoding it ``n`` times;
- **decode.** Each step feeds the last token of every running row (B, 1) with the full attention mask
  (B, L + t) and explicit position ids (real tokens only, so left padding never shifts positions), and
  samples the next token with temperature → top-k → top-p (pure functions below);
- **drop rows.** A row that ends (EOS, a stop string, ``max_new_tokens``) or is pruned by a caller
  (:meth:`Rollout.keep`, used by Speculative Rejection) leaves the batch: its rows are selected out of
  every layer's keys and values with ``DynamicCache.batch_select_indices`` — never re-encoded;
- **seeding.** Every row samples with its own ``torch.Generator`` seeded from (seed, prompt key, sample
  index), so a sample's tokens do not depend on which other rows are in the batch: sample ``i`` of a
  prompt is the same in Best-of-4, Best-of-32 and a pruned Speculative Rejection run (up to the float
  rounding of different batch shapes).

``prompts_per_batch = 1`` (one prompt's ``n`` samples per batch, no padding at all) is the simplest
case and what :mod:`rewardkit.infer.best_of_n` and :mod:`rewardkit.infer.speculative` use by default.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.causal_lm import left_pad, load_causal_lm


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample. ``temperature = 0`` is greedy decoding; ``top_k = 0`` and ``top_p = 1`` disable
    those filters (``top_k`` defaults to 50, as in transformers' ``generate`` and the Speculative Rejection
    code; the command line takes its defaults from here); ``stop`` strings end a sample (the text is cut
    before the stop string)."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise OptionError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise OptionError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise OptionError(f"top_k must be >= 0, got {self.top_k}")
        if any(not s for s in self.stop):
            raise OptionError("stop strings must be non-empty")
        object.__setattr__(self, "stop", tuple(self.stop))


# ------------------------------------------------------------------------------ pure sampling maths


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (ties with the k-th are kept), the rest -inf.
    ``logits``: (B, V) float; returns (B, V). ``k = 0`` (or ``k >= V``) keeps everything."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``
    (a token is kept when the mass of the tokens ranked above it is below ``p``; the top token is
    always kept). ``logits``: (B, V) float; returns (B, V) with the rest -inf."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    mass_above = probs.cumsum(dim=-1) - probs
    sorted_logits = sorted_logits.masked_fill(mass_above >= p, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def next_token_probs(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Sampling distribution (B, V) float32 from next-token ``logits`` (B, V): temperature, top-k, top-p."""
    scaled = logits.float() / cfg.temperature
    return filter_top_p(filter_top_k(scaled, cfg.top_k), cfg.top_p).softmax(dim=-1)


def sample_tokens(logits: torch.Tensor, cfg: SamplingConfig, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Next tokens (B,) int64 from ``logits`` (B, V): argmax for ``temperature = 0``, else one draw per row
    from :func:`next_token_probs`' distribution with that row's own generator (so a row's draws do not
    depend on the other rows). With ``top_k`` the draw is made among the k best tokens only (the same
    distribution, without touching the rest of the vocabulary)."""
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits.float() / cfg.temperature
    if 0 < cfg.top_k < scaled.shape[-1]:
        values, ids = torch.topk(scaled, cfg.top_k, dim=-1)  # (B, k), sorted
        choice = _race(filter_top_p(values, cfg.top_p).softmax(dim=-1), generators)
        return ids.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
    return _race(filter_top_p(scaled, cfg.top_p).softmax(dim=-1), generators)


def _race(probs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One index per row of ``probs`` (B, K): the exponential race ``argmax_v p_v / E_v`` with
    ``E_v ~ Exp(1)`` i.i.d. from the row's generator picks ``v`` with probability ``p_v``."""
    race = torch.stack([torch.empty(probs.shape[-1], device=probs.device).exponential_(generator=g)
                        for g in generators])  # (B, K)
    return (probs / race).argmax(dim=-1)


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def row_seed(seed: int, prompt_key: str, sample: int) -> int:
    """A 63-bit seed for sample ``sample`` of the prompt ``prompt_key`` (stable across runs/machines)."""
    digest = hashlib.sha256(f"{seed}/{prompt_key}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


# ---------------------------------------------------------------------------------------- the policy


@dataclass
class Policy:
    """A causal LM in eval mode with its tokenizer; ``eos_ids`` are every id that ends a sample."""

    model: Any
    tokenizer: Any
    name: str
    eos_ids: frozenset[int]
    pad_id: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode_prompt(self, prompt: Sequence[Message] | str) -> list[int]:
        """Token ids of a prompt: the chat template with the generation prompt when the tokenizer has one
        (messages), else the plain text of the messages with the tokenizer's special tokens."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if getattr(self.tokenizer, "chat_template", None):
            out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            return list(out["input_ids"] if hasattr(out, "keys") else out)
        text = "\n".join(m["content"] for m in messages)
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))


def policy_from_model(model: Any, tokenizer: Any, name: str = "policy") -> Policy:
    """Wrap a loaded model and tokenizer: EOS ids from the tokenizer and the generation config; the fill
    id for padding is pad if distinct from EOS, else unk, else 0 (masked out either way)."""
    eos: set[int] = set()
    for source in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(source, int):
            eos.add(source)
        elif isinstance(source, list | tuple):
            eos.update(int(x) for x in source)
    pad = tokenizer.pad_token_id
    if pad is None or pad in eos:
        pad = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    return Policy(model.eval(), tokenizer, name, frozenset(eos), int(pad))


def load_policy(name: str, *, dtype: str = "float32", device: str = "cpu") -> Policy:
    """Load a causal LM for sampling: an offline alias (``smollm2-135m``), a local folder or a hub name."""
    lm = load_causal_lm(name, dtype=dtype, device=device)
    return policy_from_model(lm.model, lm.tokenizer, name)


# ---------------------------------------------------------------------------------------- the rollout


@dataclass
class SampleState:
    """One sample as it is decoded. ``finish`` is None while running, else ``eos``, ``stop``, ``length``
    or ``pruned``; ``stop_at`` is where a stop string cut the text."""

    prompt: int
    index: int
    token_ids: list[int] = field(default_factory=list)
    finish: str | None = None
    stop_at: int | None = None


@dataclass(frozen=True)
class Sample:
    """A finished (or pruned) sample: its text, number of generated tokens and why it ended."""

    prompt: int
    index: int
    text: str
    n_tokens: int
    finish: str


class Rollout:
    """``n`` samples of each prompt, decoded together with one KV cache (see the module docstring).

    Rows are identified by a global sample id ``g = p * n + i`` (prompt ``p``, sample ``i``);
    :attr:`running` lists the ids still decoding, in batch order. Counters: ``generated_tokens``
    (tokens sampled), ``forward_tokens`` (tokens the model read: real prompt tokens once per prompt,
    plus one per running row per decode step), ``steps`` (decode steps).
    """

    def __init__(
        self, policy: Policy, prompts: Sequence[Sequence[int]], n: int, cfg: SamplingConfig,
        *, prompt_keys: Sequence[str] | None = None,
    ) -> None:
        if n < 1 or not prompts or any(len(p) == 0 for p in prompts):
            raise OptionError("a rollout needs n >= 1 and at least one non-empty prompt")
        keys = list(prompt_keys) if prompt_keys is not None else [str(p) for p in range(len(prompts))]
        self.policy, self.cfg, self.n = policy, cfg, n
        self.samples = [SampleState(p, i) for p in range(len(prompts)) for i in range(n)]
        device = policy.device
        self.generators = [torch.Generator(device=device).manual_seed(row_seed(cfg.seed, keys[s.prompt], s.index))
                           for s in self.samples]
        self.prompt_lengths = [len(p) for p in prompts]
        self.generated_tokens = 0
        self.forward_tokens = 0
        self.steps = 0
        self.running: list[int] = list(range(len(self.samples)))
        params = inspect.signature(policy.model.forward).parameters
        self._takes_logits_to_keep = "logits_to_keep" in params
        # transformers >= 5.24 names the KV cache argument `cache` (`past_key_values` is deprecated); older: the latter
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._prefill(prompts)

    @torch.inference_mode()
    def _prefill(self, prompts: Sequence[Sequence[int]]) -> None:
        from transformers import DynamicCache

        batch = left_pad(prompts, self.policy.pad_id, self.policy.device)  # (P, L) each
        self.cache = DynamicCache(config=self.policy.model.config)
        logits = self._forward(batch["input_ids"], batch["attention_mask"], batch["position_ids"])  # (P, V)
        self.forward_tokens += sum(self.prompt_lengths)
        self.cache.batch_repeat_interleave(self.n)  # (P, ...) -> (P * n, ...), a prompt's rows together
        self._logits = logits.repeat_interleave(self.n, dim=0)  # (B, V) next-token logits per row
        self._mask = batch["attention_mask"].repeat_interleave(self.n, dim=0)  # (B, L + t)
        self._pos = torch.tensor(self.prompt_lengths, device=self.policy.device).repeat_interleave(self.n)  # (B,)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Run ``ids`` (B, T) through the model, appending to the cache; last-position logits (B, V) fp32."""
        extra = {"logits_to_keep": 1} if self._takes_logits_to_keep else {}
        extra[self._cache_arg] = self.cache
        out = self.policy.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
        return out.logits[:, -1, :].float()

    @property
    def done(self) -> bool:
        return not self.running

    def max_generated(self) -> int:
        """Tokens generated so far by the longest sample."""
        return max(len(s.token_ids) for s in self.samples)

    def context_length(self) -> int:
        """Columns of the attention mask: padded prompt length + decode steps (the KV cache length)."""
        return int(self._mask.shape[1])

    @torch.inference_mode()
    def step(self) -> None:
        """Sample one token for every running row; finish rows at EOS / stop strings / max length, drop
        them from the batch, and run the survivors' new tokens through the model."""
        if not self.running:
            return
        tokens = sample_tokens(self._logits, self.cfg, [self.generators[g] for g in self.running])  # (B,)
        self.generated_tokens += len(self.running)
        self.steps += 1
        alive = [b for b, g in enumerate(self.running) if self._append(self.samples[g], int(tokens[b]))]
        self._select(alive)
        if self.running:
            ids = tokens[alive].unsqueeze(1)  # (B', 1)
            self._mask = torch.cat([self._mask, self._mask.new_ones((len(alive), 1))], dim=1)  # (B', L + t + 1)
            self._logits = self._forward(ids, self._mask, self._pos.unsqueeze(1))
            self._pos = self._pos + 1
            self.forward_tokens += len(alive)

    def _append(self, s: SampleState, token: int) -> bool:
        """Add ``token`` to ``s``; return whether ``s`` keeps running."""
        s.token_ids.append(token)
        if token in self.policy.eos_ids:
            s.finish = "eos"
        elif self.cfg.stop:
            s.stop_at = find_stop(self.policy.decode(s.token_ids), self.cfg.stop)
            if s.stop_at is not None:
                s.finish = "stop"
        if s.finish is None and len(s.token_ids) >= self.cfg.max_new_tokens:
            s.finish = "length"
        return s.finish is None

    def advance(self, k: int) -> int:
        """Up to ``k`` decode steps (fewer if every row ends); returns the steps taken."""
        taken = 0
        while taken < k and self.running:
            self.step()
            taken += 1
        return taken

    def keep(self, rows: Sequence[int]) -> None:
        """Prune: keep only the running rows ``rows`` (global ids); the others end as ``pruned`` and their
        key/value rows leave the cache. Raises if a row is not running."""
        wanted = set(rows)
        if not wanted <= set(self.running):
            raise OptionError(f"rows {sorted(wanted - set(self.running))} are not running")
        for g in self.running:
            if g not in wanted:
                self.samples[g].finish = "pruned"
        self._select([b for b, g in enumerate(self.running) if g in wanted])

    def _select(self, batch_rows: list[int]) -> None:
        """Keep batch rows ``batch_rows`` of the cache, mask, positions and logits (every layer's keys and
        values are indexed on the batch dimension; nothing is re-encoded)."""
        if len(batch_rows) == len(self.running):
            return
        self.running = [self.running[b] for b in batch_rows]
        if not self.running:
            self.cache = None  # free the KV memory
            return
        idx = torch.tensor(batch_rows, dtype=torch.long, device=self._mask.device)
        self.cache.batch_select_indices(idx)
        self._mask, self._pos, self._logits = self._mask[idx], self._pos[idx], self._logits[idx]

    def text(self, g: int) -> str:
        """The response text of sample ``g`` so far: special tokens dropped, cut before a stop string."""
        s = self.samples[g]
        text = self.policy.decode(s.token_ids)
        return text[: s.stop_at] if s.stop_at is not None else text

    def result(self, g: int) -> Sample:
        s = self.samples[g]
        return Sample(s.prompt, s.index, self.text(g), len(s.token_ids), s.finish or "running")

    def rows_of(self, prompt: int) -> range:
        """Global ids of the samples of prompt ``prompt``."""
        return range(prompt * self.n, (prompt + 1) * self.n)


def sample(
    policy: Policy, prompts: Sequence[Sequence[Message] | str], n: int, cfg: SamplingConfig,
) -> list[list[Sample]]:
    """``n`` samples of each prompt (messages or plain text), decoded in one batch; ``[prompt][sample]``."""
    rollout = Rollout(policy, [policy.encode_prompt(p) for p in prompts], n, cfg)
    rollout.advance(cfg.max_new_tokens)
    return [[rollout.result(g) for g in rollout.rows_of(p)] for p in range(len(prompts))]
