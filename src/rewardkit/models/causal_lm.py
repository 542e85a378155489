"""The causal-LM layer: one loader, one pad rule, and sequence log-probabilities without (B, T, V).

Everything that runs a causal language model -- the sampler, the synthetic-data generator, the DPO
implicit reward, the generative judge, policy and unlearning training -- loads it with
:func:`load_causal_lm` and scores responses with :func:`sequence_logps`.

:func:`sequence_logps` computes ``log π(y_t | x, y_<t)`` as the gathered logit minus the ``logsumexp``
of the logits, from the backbone's last hidden states, for the scored (response) positions only, in
chunks of ``chunk_tokens`` rows: the (B, T, V) logits and their log-softmax are never built. Under
autograd each chunk is recomputed in the backward pass (activation checkpointing), so training memory
holds one chunk of logits at a time as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from rewardkit.models.backbones import resolve_backbone
from rewardkit.models.devices import dtype_name, resolve_device, resolve_dtype

DEFAULT_CHUNK_TOKENS = 1024  # scored positions per lm-head chunk: 1024 × 49,152 × 4 B = 201 MB of logits


def ensure_distinct_pad(tokenizer: Any, model: Any | None = None, *, add_token: bool = True) -> None:
    """The one pad rule: give ``tokenizer`` (and ``model.config``) a pad token that is not EOS, so that
    "last non-pad token" pooling and masks never confuse padding with a real end of text: the UNK token
    when it is not EOS, else a new ``<|pad|>`` (``model``'s embeddings resized). Right padding.

    ``add_token=False`` (inference: a new row would change a causal LM's softmax) keeps the vocabulary:
    without a usable UNK the pad stays as it is, or EOS when there is none -- only a masked fill id."""
    tokenizer.padding_side = "right"
    pad, eos, unk = tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
    if pad is None or pad == eos:
        if unk is not None and unk != eos:
            tokenizer.pad_token = tokenizer.unk_token
        elif add_token:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
            if model is not None:
                model.resize_token_embeddings(len(tokenizer))
        elif pad is None and eos is not None:
            tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id


@dataclass
class CausalLM:
    """A causal LM in eval mode with its tokenizer (pad token distinct from EOS), and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    path: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> str:
        return dtype_name(next(self.model.parameters()).dtype)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def load_causal_lm(name: str, *, dtype: str | torch.dtype = "auto", device: str = "auto") -> CausalLM:
    """Load ``name`` (an offline alias such as ``smollm2-135m`` -- its GGUF dequantised once into the
    rewardkit cache --, a local folder or a hub name) in eval mode on ``device`` in ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, where)
    path = resolve_backbone(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(where).eval()
    ensure_distinct_pad(tokenizer, add_token=False)
    return CausalLM(model, tokenizer, name, path)


# ------------------------------------------------------------------------------------ padding


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` (B, T) int64, right-padded with ``pad_id``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids``/``attention_mask``/``position_ids`` (B, T): positions count real tokens
    only, so every row sees the positions it would see alone (batch-size invariant)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
        mask[i, width - len(s):] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions_of(mask).to(device)}


def positions_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids (B, T) int64 that count real tokens only (0 on left padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_mask_from_starts(attention_mask: torch.Tensor, starts: Sequence[int]) -> torch.Tensor:
    """(B, T) bool: True on the real tokens of each row from its ``starts[i]``-th real token on (left or
    right padding alike)."""
    real = attention_mask.bool()
    index = positions_of(attention_mask)  # i-th real token has position i
    start = torch.tensor(list(starts), dtype=torch.long, device=attention_mask.device)[:, None]
    return real & (index >= start)


# ------------------------------------------------------------------------------------ log-probs


@dataclass(frozen=True)
class SequenceLogps:
    """``sums`` (B,) float32: Σ_t log π(y_t | y_<t) over each row's scored tokens; ``counts`` (B,) int64:
    how many tokens were scored; ``tokens`` (B, T) float32: the per-token log-probs at the scored
    positions (0 elsewhere), aligned with ``input_ids``."""

    sums: torch.Tensor
    counts: torch.Tensor
    tokens: torch.Tensor

    @property
    def means(self) -> torch.Tensor:
        """(B,) length-normalised log-probs (0 for a row with no scored token)."""
        return self.sums / self.counts.clamp(min=1)


def gathered_logps(logits: torch.Tensor, targets: torch.Tensor, softcap: float | None = None) -> torch.Tensor:
    """``log softmax(logits)[target]`` as ``logits[target] − logsumexp(logits)``: ``logits`` (N, V),
    ``targets`` (N,) int64 -> (N,) float32. ``softcap`` applies Gemma's ``c·tanh(z / c)`` first."""
    z = logits.float()
    if softcap:
        z = torch.tanh(z / softcap) * softcap
    return z.gather(-1, targets[:, None])[:, 0] - torch.logsumexp(z, dim=-1)


def _head_parts(model: Any) -> tuple[Any, Any, float | None]:
    """(backbone returning last hidden states, lm head, final logit softcap) of an HF causal LM."""
    head = model.get_output_embeddings()
    backbone = getattr(model, model.base_model_prefix, None)
    if head is None or backbone is None:
        raise TypeError(f"{type(model).__name__} has no separable backbone and lm head")
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, "final_logit_softcapping", None)
    return backbone, head, float(cap) if cap else None


def sequence_logps(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor, *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS, position_ids: torch.Tensor | None = None,
) -> SequenceLogps:
    """Log-probabilities of the tokens marked in ``response_mask`` under the causal LM ``model``.

    Args:
        input_ids: (B, T) int64, left- or right-padded.
        attention_mask: (B, T) 0/1.
        response_mask: (B, T) bool, True at the tokens to score (token t is predicted from tokens < t;
            a True at position 0 is ignored, nothing predicts it).
        chunk_tokens: scored positions per lm-head chunk (bounds the memory of the logits).
        position_ids: (B, T); by default real tokens are counted, so padding never shifts positions.

    Equal to a full ``log_softmax`` gather (tested to 1e-5) without building the (B, T, V) tensors.
    Gradients flow when autograd is on (each chunk is recomputed in the backward pass).
    """
    backbone, head, softcap = _head_parts(model)
    positions = positions_of(attention_mask) if position_ids is None else position_ids
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).last_hidden_state
    scored = response_mask[:, 1:].bool() & attention_mask[:, 1:].bool()  # (B, T-1): predicted from t-1
    rows, cols = scored.nonzero(as_tuple=True)  # (N,), (N,)
    h = hidden[:, :-1][rows, cols]  # (N, H)
    targets = input_ids[:, 1:][rows, cols]  # (N,)
    pieces = []
    for lo in range(0, h.shape[0], chunk_tokens):
        hi = lo + chunk_tokens
        if torch.is_grad_enabled() and h.requires_grad:
            pieces.append(checkpoint(_chunk_logps, head, h[lo:hi], targets[lo:hi], softcap, use_reentrant=False))
        else:
            pieces.append(_chunk_logps(head, h[lo:hi], targets[lo:hi], softcap))
    flat = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)  # (N,)
    b, t = input_ids.shape
    tokens = torch.zeros((b, t), dtype=torch.float32, device=input_ids.device).index_put((rows, cols + 1), flat)
    sums = torch.zeros(b, dtype=torch.float32, device=input_ids.device).index_add(0, rows, flat)
    counts = scored.sum(-1)
    return SequenceLogps(sums, counts, tokens)


def _chunk_logps(head: Any, h: torch.Tensor, targets: torch.Tensor, softcap: float | None) -> torch.Tensor:
    return gathered_logps(head(h), targets, softcap)


def naive_sequence_logps(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         response_mask: torch.Tensor) -> SequenceLogps:
    """The reference: the full (B, T, V) ``log_softmax`` and a gather (tests and the memory benchmark)."""
    positions = positions_of(attention_mask)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).logits
    logp = F.log_softmax(logits.float(), dim=-1)[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]  # (B, T-1)
    scored = response_mask[:, 1:].bool() & attention_mask[:, 1:].bool()
    per_token = torch.where(scored, logp, torch.zeros_like(logp))
    tokens = F.pad(per_token, (1, 0))
    return SequenceLogps(per_token.sum(-1), scored.sum(-1), tokens)


# ------------------------------------------------------------------------------------ KL to a reference


@dataclass(frozen=True)
class SequenceKL:
    """``sums`` (B,) float32: Σ_t KL(π_ref(·|ctx_t) ‖ π_θ(·|ctx_t)) over each row's scored tokens;
    ``counts`` (B,) int64: how many positions were scored."""

    sums: torch.Tensor
    counts: torch.Tensor


def sequence_kl(
    model: Any, ref_model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor,
    *, chunk_tokens: int = DEFAULT_CHUNK_TOKENS, position_ids: torch.Tensor | None = None,
) -> SequenceKL:
    """Forward KL of the reference to the model's next-token distributions at the scored positions,
    Σ_v p_ref(v)·(log p_ref(v) − log p_θ(v)), summed per row (what a "retain KL" term penalises).

    Args as :func:`sequence_logps` (position t scores the distribution that predicts token t). The
    reference runs without gradients; its lm-head logits are computed chunk by chunk beside the model's,
    so no (B, T, V) tensor of either model is ever built. Gradients flow to ``model`` only.
    """
    backbone, head, softcap = _head_parts(model)
    ref_backbone, ref_head, ref_softcap = _head_parts(ref_model)
    positions = positions_of(attention_mask) if position_ids is None else position_ids
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).last_hidden_state
    with torch.no_grad():
        ref_hidden = ref_backbone(input_ids=input_ids, attention_mask=attention_mask,
                                  position_ids=positions).last_hidden_state
    scored = response_mask[:, 1:].bool() & attention_mask[:, 1:].bool()  # (B, T-1): predicts token t+1
    rows, cols = scored.nonzero(as_tuple=True)  # (N,), (N,)
    h, h_ref = hidden[:, :-1][rows, cols], ref_hidden[:, :-1][rows, cols]  # (N, H), (N, H_ref)
    pieces = []
    for lo in range(0, h.shape[0], chunk_tokens):
        hi = lo + chunk_tokens
        with torch.no_grad():
            ref_logp = _log_softmax(ref_head(h_ref[lo:hi]), ref_softcap)  # (n, V), one chunk
        if torch.is_grad_enabled() and h.requires_grad:
            pieces.append(checkpoint(_chunk_kl, head, h[lo:hi], ref_logp, softcap, use_reentrant=False))
        else:
            pieces.append(_chunk_kl(head, h[lo:hi], ref_logp, softcap))
    flat = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)  # (N,)
    sums = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=input_ids.device).index_add(0, rows, flat)
    return SequenceKL(sums, scored.sum(-1))


def _log_softmax(logits: torch.Tensor, softcap: float | None) -> torch.Tensor:
    z = logits.float()
    if softcap:
        z = torch.tanh(z / softcap) * softcap
    return F.log_softmax(z, dim=-1)


def _chunk_kl(head: Any, h: torch.Tensor, ref_logp: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """(n,) KL(ref ‖ model) of one chunk: ``h`` (n, H) the model's hidden states, ``ref_logp`` (n, V)."""
    logp = _log_softmax(head(h), softcap)
    return (ref_logp.exp() * (ref_logp - logp)).sum(-1)


def naive_sequence_kl(model: Any, ref_model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      response_mask: torch.Tensor) -> SequenceKL:
    """The reference for :func:`sequence_kl`: both models' full (B, T, V) log-softmax (tests only)."""
    positions = positions_of(attention_mask)
    logp = F.log_softmax(model(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=positions).logits.float(), dim=-1)[:, :-1]  # (B, T-1, V)
    with torch.no_grad():
        ref = F.log_softmax(ref_model(input_ids=input_ids, attention_mask=attention_mask,
                                      position_ids=positions).logits.float(), dim=-1)[:, :-1]
    kl = (ref.exp() * (ref - logp)).sum(-1)  # (B, T-1)
    scored = response_mask[:, 1:].bool() & attention_mask[:, 1:].bool()
    return SequenceKL(torch.where(scored, kl, torch.zeros_like(kl)).sum(-1), scored.sum(-1))
