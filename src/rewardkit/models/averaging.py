"""Model averaging and Heterogeneous Model Averaging (HMA; Lin et al., EMNLP 2024, METHODS §8): the maths.

Two causal LMs of one architecture -- ``base`` (before alignment, e.g. the SFT model, θ_0) and ``tuned``
(after, e.g. the RLHF/DPO model, θ_1) -- are mixed weight by weight::

    θ = α·θ_base + (1 − α)·θ_tuned        α = 0: the tuned (aligned) model, α = 1: the base model

**Groups.** HMA gives each group ``k`` of consecutive decoder layers its own ``α_k``. The decoder layers are
found from the parameter names, not per architecture: the stack is the name prefix followed by an
integer (``model.layers.{i}.``, ``transformer.h.{i}.``, ...) with the most distinct indices
(:func:`layer_of`). Every parameter *inside* decoder layer ``i`` (its linear weights and biases, and
also its norms) takes the α of the group holding ``i``. Parameters outside the stack -- token and
position embeddings, the final norm, ``lm_head`` -- take one ``rest_alpha``; METHODS: "lm_head gets the
global α" (in a search: ``init``, the mean of the α_k). Tied embeddings (``lm_head.weight`` is
``embed_tokens.weight``) are therefore always averaged with one α, as they must be.

**Splits** (:func:`split_layers`): ``equal`` cuts L layers into K runs whose sizes differ by at most one
(the earlier runs get the extra layer; LMFlow's ``blockN``); ``lmflow`` is the paper's ``block3``: K = 3
with cuts after layers 8 and 16 (11 and 21 with more than 30 layers), i.e. layers 0–8, 9–16, 17–end.

**HMA parameterisation** (:func:`hma_alphas`): logits ``a`` (K,) give
``α_k = init · K · (σ(a_k) + ε) / Σ_j (σ(a_j) + ε)``, whose mean is ``init`` exactly.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.data.chat import PairEncoder
from rewardkit.data.formats import Message
from rewardkit.data.io import DataError, read_records
from rewardkit.errors import OptionError
from rewardkit.models.causal_lm import response_mask_from_starts, right_pad, sequence_logps

SPLITS = ("equal", "lmflow")
_INDEXED = re.compile(r"^(.*?)\.(\d+)\.")  # "<prefix>.<i>." -- the first integer segment of a name


# ------------------------------------------------------------------------------------ layers and groups


def layer_of(model_or_keys: Any) -> dict[str, int | None]:
    """The decoder-layer index of every parameter/state name (None outside the layer stack).

    ``model_or_keys``: a module (its ``state_dict`` names, tied ones included) or an iterable of names.
    The stack is the prefix before an integer segment that carries the most distinct indices, so
    ``model.layers.3.mlp.up_proj.weight`` -> 3 for Llama, ``transformer.h.3.attn.c_attn.weight`` -> 3 for GPT-2.
    """
    keys = list(model_or_keys.state_dict().keys()) if hasattr(model_or_keys, "state_dict") else list(model_or_keys)
    found = {k: m for k in keys if (m := _INDEXED.match(k))}
    indices: dict[str, set[int]] = {}
    for m in found.values():
        indices.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not indices:
        raise OptionError("no decoder layer stack found in the parameter names (expected e.g. 'model.layers.0.')")
    stack = max(indices, key=lambda p: (len(indices[p]), -len(p)))
    return {k: int(found[k].group(2)) if k in found and found[k].group(1) == stack else None for k in keys}


def num_layers(layers: Mapping[str, int | None]) -> int:
    """How many decoder layers :func:`layer_of`'s mapping covers (max index + 1)."""
    return 1 + max(i for i in layers.values() if i is not None)


def split_layers(n_layers: int, n_groups: int, split: str = "equal") -> tuple[tuple[int, int], ...]:
    """K inclusive layer ranges ``(first, last)`` covering ``0 .. n_layers − 1`` in order.

    ``equal``: run sizes differ by at most one, earlier runs larger (10 layers, K=3 -> 0–3, 4–6, 7–9).
    ``lmflow``: LMFlow's ``block3`` (K must be 3): 0–8, 9–16, 17–end; 0–11, 12–21, 22–end above 30 layers.
    """
    if split not in SPLITS:
        raise OptionError(f"split must be one of {SPLITS}, got {split!r}")
    if n_groups < 1 or n_groups > n_layers:
        raise OptionError(f"groups must be between 1 and the model's {n_layers} layers, got {n_groups}")
    if split == "lmflow":
        if n_groups != 3:
            raise OptionError(f"the lmflow split (block3) has 3 groups, got --groups {n_groups}")
        a, b = (11, 21) if n_layers > 30 else (8, 16)
        if n_layers <= b + 1:
            raise OptionError(f"the lmflow split cuts after layers {a} and {b}: it needs more than {b + 1} layers, "
                              f"the model has {n_layers}; use the equal split")
        return ((0, a), (a + 1, b), (b + 1, n_layers - 1))
    size, extra = divmod(n_layers, n_groups)
    ranges, start = [], 0
    for k in range(n_groups):
        end = start + size + (1 if k < extra else 0) - 1
        ranges.append((start, end))
        start = end + 1
    return tuple(ranges)


def group_of(layers: Mapping[str, int | None], ranges: Sequence[tuple[int, int]]) -> dict[str, int]:
    """The group index of every name: ``k`` for a layer in ``ranges[k]``, −1 outside the layer stack."""
    out = {}
    for name, layer in layers.items():
        out[name] = -1 if layer is None else next(k for k, (lo, hi) in enumerate(ranges) if lo <= layer <= hi)
    return out


def layer_groups(model_or_keys: Any, n_groups: int, split: str = "equal") -> dict[str, int]:
    """The group (0 .. K−1, or −1 outside the decoder layers) of every name of ``model_or_keys``:
    :func:`layer_of`, :func:`split_layers` and :func:`group_of` in one call."""
    layers = layer_of(model_or_keys)
    return group_of(layers, split_layers(num_layers(layers), n_groups, split))


@dataclass(frozen=True)
class AveragingPlan:
    """Which α each parameter gets: ``alphas[k]`` for decoder layers ``ranges[k]`` (inclusive), and
    ``rest_alpha`` for everything outside the layer stack (embeddings, final norm, lm_head). Any finite
    α is accepted (outside [0, 1] extrapolates; HMA's α_k may exceed 1 when init·K·(1+ε)/(1+ε+(K−1)ε) > 1);
    :func:`check_unit_alphas` is the command line's check. One group covering every layer with ``rest_alpha`` equal to its α is plain model averaging."""

    ranges: tuple[tuple[int, int], ...]
    alphas: tuple[float, ...]
    rest_alpha: float

    def __post_init__(self) -> None:
        if len(self.ranges) != len(self.alphas):
            raise OptionError(f"{len(self.alphas)} alphas given for {len(self.ranges)} layer groups")
        if not all(math.isfinite(a) for a in (*self.alphas, self.rest_alpha)):
            raise OptionError(f"alphas must be finite numbers, got {self.alphas} and rest {self.rest_alpha}")

    @classmethod
    def uniform(cls, alpha: float, n_layers: int) -> AveragingPlan:
        """Plain averaging: one α everywhere."""
        return cls(((0, n_layers - 1),), (alpha,), alpha)

    @classmethod
    def grouped(cls, alphas: Sequence[float], n_layers: int, *, split: str = "equal",
                rest_alpha: float | None = None) -> AveragingPlan:
        """``alphas[k]`` for the k-th of ``len(alphas)`` groups of :func:`split_layers`; the rest gets
        ``rest_alpha`` (default: the mean of ``alphas``, which is ``init`` for an HMA search)."""
        ranges = split_layers(n_layers, len(alphas), split)
        rest = sum(alphas) / len(alphas) if rest_alpha is None else rest_alpha
        return cls(ranges, tuple(float(a) for a in alphas), float(rest))

    def alpha_by_name(self, layers: Mapping[str, int | None]) -> dict[str, float]:
        groups = group_of(layers, self.ranges)
        return {n: self.rest_alpha if g < 0 else self.alphas[g] for n, g in groups.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [{"group": k, "layers": [lo, hi], "alpha": a}
                           for k, ((lo, hi), a) in enumerate(zip(self.ranges, self.alphas, strict=True))],
                "rest_alpha": self.rest_alpha,
                "rest": "parameters outside the decoder layers: embeddings, final norm, lm_head"}


# ------------------------------------------------------------------------------------ interpolation


def check_compatible(base_state: Mapping[str, torch.Tensor], tuned_state: Mapping[str, torch.Tensor], *,
                     base_name: str = "base", tuned_name: str = "tuned") -> None:
    """Raise :class:`OptionError` naming the first difference unless both state dicts have the same names
    and shapes (the same architecture and size)."""
    missing, extra = sorted(set(tuned_state) - set(base_state)), sorted(set(base_state) - set(tuned_state))
    if missing or extra:
        raise OptionError(f"{base_name} and {tuned_name} have different architectures: "
                          f"{len(missing)} parameter(s) only in {tuned_name} (e.g. {(missing or ['-'])[0]}), "
                          f"{len(extra)} only in {base_name} (e.g. {(extra or ['-'])[0]})")
    for name, t in tuned_state.items():
        if tuple(base_state[name].shape) != tuple(t.shape):
            raise OptionError(f"{base_name} and {tuned_name} have different architectures: {name} is "
                              f"{tuple(base_state[name].shape)} in {base_name}, {tuple(t.shape)} in {tuned_name}")


def interpolate(base_state: Mapping[str, torch.Tensor], tuned_state: Mapping[str, torch.Tensor],
                alpha_per_param: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """``α·θ_base + (1 − α)·θ_tuned`` for every floating tensor, computed in float32 and cast back to the
    tuned tensor's dtype; integer buffers are taken from ``tuned``. Names sharing one tensor in ``tuned``
    (tied embeddings) must get the same α, else :class:`OptionError`."""
    check_compatible(base_state, tuned_state)
    _check_tied_alphas(tuned_state, alpha_per_param)
    out = {}
    for name, t in tuned_state.items():
        if not t.is_floating_point():
            out[name] = t.clone()
            continue
        a = float(alpha_per_param[name])
        out[name] = (a * base_state[name].float() + (1.0 - a) * t.float()).to(t.dtype)
    return out


def _check_tied_alphas(state: Mapping[str, torch.Tensor], alphas: Mapping[str, float]) -> None:
    by_storage: dict[tuple[int, int], list[str]] = {}
    for name, t in state.items():
        if t.is_floating_point() and t.numel():
            by_storage.setdefault((t.untyped_storage().data_ptr(), t.storage_offset()), []).append(name)
    for names in by_storage.values():
        if len({alphas[n] for n in names}) > 1:
            raise OptionError(f"tied parameters {names} would get different alphas")


def average_models(base: Any, tuned: Any, plan: AveragingPlan, *, into: Any | None = None) -> Any:
    """The averaged model: a copy of ``tuned`` (or ``into``, a model of the same architecture, reused
    across a sweep) holding :func:`interpolate` of the two models' weights under ``plan``."""
    base_state, tuned_state = base.state_dict(), tuned.state_dict()
    check_compatible(base_state, tuned_state)
    layers = layer_of(tuned_state.keys())
    n = num_layers(layers)
    if plan.ranges[-1][1] != n - 1:
        raise OptionError(f"the plan covers layers 0–{plan.ranges[-1][1]}, the model has {n}")
    merged = interpolate(base_state, tuned_state, plan.alpha_by_name(layers))
    target = copy.deepcopy(tuned) if into is None else into
    target.load_state_dict(merged)
    return target


# ------------------------------------------------------------------------------------ HMA


def alpha_logit(init: float) -> float:
    """``logit(init)``: the logit every group starts from (all α_k = init)."""
    if not 0.0 < init < 1.0:
        raise OptionError(f"init must be in (0, 1), got {init}")
    return float(torch.logit(torch.tensor(init, dtype=torch.float64)))


def hma_alphas(logits: torch.Tensor, init: float, eps: float) -> torch.Tensor:
    """HMA's α (K,) from group logits ``logits`` (K,) float: ``init · K · (σ(a_k)+ε) / Σ_j(σ(a_j)+ε)``.

    The mean of the result is ``init`` exactly (the "mean ratio is fixed, the distribution is
    searched" constraint); ``eps`` keeps every α_k above ``init · K · ε / (K (1 + ε))``. Differentiable.
    """
    s = torch.sigmoid(logits) + eps  # (K,)
    return init * logits.shape[0] * s / s.sum()


def merged_parameters(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                      groups: Mapping[str, int], alphas: torch.Tensor, rest_alpha: float) -> dict[str, torch.Tensor]:
    """``{name: α_g·θ_base + (1 − α_g)·θ_tuned}`` (differentiable in ``alphas`` (K,)) for every name of
    ``tuned``; ``groups[name]`` is the group (−1: ``rest_alpha``). For ``torch.func.functional_call``."""
    full = torch.cat([alphas, alphas.new_tensor([rest_alpha])])  # (K + 1,): index −1 is the rest
    return {n: full[groups[n]] * base[n] + (1.0 - full[groups[n]]) * t for n, t in tuned.items()}


def distinct_parameters(model: Any) -> dict[str, torch.Tensor]:
    """``named_parameters()`` detached (tied parameters once, under their first name)."""
    return {n: p.detach() for n, p in model.named_parameters()}


def check_unit_alphas(alphas: Sequence[float], flag: str = "--alpha") -> tuple[float, ...]:
    """``alphas`` if every one is in [0, 1], else :class:`OptionError` naming ``flag``."""
    for a in alphas:
        if not 0.0 <= a <= 1.0:
            raise OptionError(f"{flag}: every alpha must be in [0, 1] (0 = the tuned model, 1 = the base model), "
                              f"got {a}")
    return tuple(float(a) for a in alphas)


def parse_alphas(text: str | Iterable[float]) -> tuple[float, ...]:
    """``"0.1,0.2,0.3"`` -> (0.1, 0.2, 0.3); :class:`OptionError` naming the bad item."""
    if not isinstance(text, str):
        return tuple(float(a) for a in text)
    out = []
    for item in text.split(","):
        try:
            out.append(float(item))
        except ValueError:
            raise OptionError(f"alphas must be numbers separated by commas, got {item.strip()!r} in {text!r}") from None
    return tuple(out)


# ------------------------------------------------------------------------------------ the text an LM loss is measured on


@dataclass(frozen=True)
class LMText:
    """One (prompt, response) whose response tokens an LM loss scores: ``input_ids`` the whole sequence,
    ``response_start`` the index of the first response token."""

    input_ids: tuple[int, ...]
    response_start: int

    @property
    def n_scored(self) -> int:
        """Response tokens scored (a first token with nothing before it is not)."""
        return len(self.input_ids) - max(self.response_start, 1)


def read_lm_rows(path: str) -> list[tuple[tuple[Message, ...], tuple[Message, ...], bool]]:
    """(prompt messages, response messages, conversational) of each row of a jsonl/json/parquet file:
    ``prompt`` (string or messages; optional) and ``response`` (or ``completion``; string or assistant
    messages), or ``text`` alone (plain text, all scored). Errors name the file, line and field."""
    rows = []
    for loc, rec in read_records(path, what="prompt/response rows"):
        field = next((f for f in ("response", "completion", "text") if f in rec), None)
        if field is None:
            raise DataError(loc, "response", "missing (a row needs 'response', 'completion' or 'text')")
        prompt, response = rec.get("prompt") if field != "text" else None, rec[field]
        if prompt is not None and not _text_or_messages(prompt):
            raise DataError(loc, "prompt", "expected a string or a list of {role, content} messages")
        if not _text_or_messages(response) or not response:
            raise DataError(loc, field, "expected a non-empty string or a list of {role, content} messages")
        p = () if prompt in (None, "") else (({"role": "user", "content": prompt},) if isinstance(prompt, str)
                                             else tuple(prompt))
        r = ({"role": "assistant", "content": response},) if isinstance(response, str) else tuple(response)
        rows.append((p, r, isinstance(prompt, list) or isinstance(response, list) or bool(p)))
    return rows


def _text_or_messages(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in v))


def encode_lm_rows(tokenizer: Any, rows: Sequence[tuple[Sequence[Message], Sequence[Message], bool]],
                   max_length: int = 512) -> list[LMText]:
    """Tokenize rows as the policy sees them (its chat template when it has one, else plain text with EOS
    after the response) under ``max_length`` tokens (the prompt is cut first), via the data layer's
    :class:`~rewardkit.data.chat.PairEncoder`."""
    fmt = "chat" if getattr(tokenizer, "chat_template", None) else "concat"
    encoder = PairEncoder(tokenizer, fmt, max_length)
    out = []
    for prompt, response, conv in rows:
        e = encoder.encode(prompt, response, conv)
        out.append(LMText(tuple(e.input_ids), e.response_start))
    return out


@dataclass(frozen=True)
class NLL:
    """Summed negative log-likelihood of the scored tokens and how many there were; ``per_token`` is their ratio."""

    total: float
    tokens: int

    @property
    def per_token(self) -> float:
        return self.total / self.tokens if self.tokens else float("nan")


def lm_batch(texts: Sequence[LMText], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, response_mask)`` (B, T), right-padded."""
    ids, mask = right_pad([t.input_ids for t in texts], pad_id, device)
    return ids, mask, response_mask_from_starts(mask, [t.response_start for t in texts])


@torch.inference_mode()
def response_nll(model: Any, texts: Sequence[LMText], pad_id: int, *, batch_size: int = 8) -> NLL:
    """The response tokens' NLL under ``model`` (:func:`~rewardkit.models.causal_lm.sequence_logps`)."""
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for lo in range(0, len(texts), batch_size):
        ids, mask, scored = lm_batch(texts[lo:lo + batch_size], pad_id, device)
        logps = sequence_logps(model, ids, mask, scored)
        total -= float(logps.sums.sum())
        tokens += int(logps.counts.sum())
    return NLL(total, tokens)
