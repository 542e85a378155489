"""A frozen backbone's features, and small heads trained on them (ArmoRM's and URM's stages on features).

For a frozen backbone the reward only depends on three vectors per (prompt, response), read in one forward
(:func:`extract_features`), exactly where the full model reads them at inference:

- ``pooled`` (d,): the input of the classification layer (:func:`classifier_layer`) at the position the model
  pools (decoders: the last token's final hidden state; BERT: its pooler output), so the K objectives
  are ``classifier(pooled)`` -- weights fitted on it become the saved model's classifier layer, and plain
  transformers then returns exactly those objectives;
- ``hidden`` (H,): the last hidden state at the pooled position (a gaussian head's log-std input);
- ``prompt`` (H,): the last hidden state at the gating position (the token before the assistant header,
  see :func:`generation_prompt_length`; for decoders it depends on the prompt only).

:class:`FeatureNet` runs a head on features with the head's own code, so a model trained on features gives
the same rewards once its weights are put back into the backbone (checked to 1e-5 by the tests).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rewardkit.data.chat import Encoded
from rewardkit.data.collate import pad_sequences, token_budget_batches
from rewardkit.models.heads import HeadOutput, RewardHead, head_inputs
from rewardkit.models.uncertainty import capture_features, output_layer, pooled_features


def generation_prompt_length(tokenizer: Any) -> int:
    """Tokens the chat template's generation prompt adds after the prompt (Llama-3: 4,
    ``<|start_header_id|>assistant<|end_header_id|>\\n\\n``; ChatML: 3), found by rendering a probe
    conversation with and without it; 0 without a chat template or when the two do not nest."""
    if not getattr(tokenizer, "chat_template", None):
        return 0
    probe = [{"role": "user", "content": "hello"}]
    try:
        bare = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=False)
        full = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:  # a template that cannot render the probe gets no offset
        return 0
    if not isinstance(bare, str) or not isinstance(full, str) or not full.startswith(bare):
        return 0
    a = tokenizer(bare, add_special_tokens=False)["input_ids"]
    b = tokenizer(full, add_special_tokens=False)["input_ids"]
    return len(b) - len(a) if b[: len(a)] == a else 0


def classifier_layer(model: Any) -> nn.Linear:
    """The output layer of a sequence classifier (``score`` for decoders, ``classifier`` for BERT,
    ``classifier.out_proj`` for RoBERTa; :func:`~rewardkit.models.uncertainty.output_layer`)."""
    return output_layer(model)[1]


@dataclass(frozen=True)
class Features:
    """``pooled`` (N, d), ``hidden`` (N, H) and ``prompt`` (N, H) float32 on the CPU (see the module notes)."""

    pooled: torch.Tensor
    hidden: torch.Tensor
    prompt: torch.Tensor

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def select(self, index: Any) -> Features:
        return Features(self.pooled[index], self.hidden[index], self.prompt[index])


@torch.no_grad()
def extract_features(backbone: Any, head: RewardHead, pad_id: int, encoded: Sequence[Encoded], *,
                     max_tokens: int = 16_384, max_batch: int = 256) -> Features:
    """One forward of the frozen ``backbone`` (eval mode) over ``encoded`` inputs, in token-budget batches;
    positions as :func:`~rewardkit.models.heads.run_head` computes them for ``head``."""
    device = next(backbone.parameters()).device
    n = len(encoded)
    parts: dict[str, list[tuple[list[int], torch.Tensor]]] = {"pooled": [], "hidden": [], "prompt": []}
    with capture_features(backbone) as captured:  # the output layer's input, as the last-layer uncertainty reads it
        for idx in token_budget_batches([len(e.input_ids) for e in encoded], max_tokens, max_batch):
            types = [encoded[i].token_type_ids or [] for i in idx]
            batch = {k: v.to(device) for k, v in pad_sequences([encoded[i].input_ids for i in idx], types,
                                                               pad_id).items()}
            starts = torch.tensor([encoded[i].response_start for i in idx], device=device)
            out = backbone(**batch, output_hidden_states=True)
            pooled_at, prompt_at = head_inputs(batch["attention_mask"], head.cfg.pooling, starts,
                                               prompt_offset=head.cfg.prompt_offset)
            assert prompt_at is not None
            rows = torch.arange(len(idx), device=device)
            pooled = pooled_features(captured[-1], batch["attention_mask"], head.cfg.pooling)  # (B, d)
            last = out.hidden_states[-1]  # (B, T, H)
            for name, value in (("pooled", pooled), ("hidden", last[rows, pooled_at]), ("prompt", last[rows, prompt_at])):
                parts[name].append((idx, value.float().cpu()))
            captured.clear()
    return Features(*(_in_order(parts[name], n) for name in ("pooled", "hidden", "prompt")))


def _in_order(chunks: list[tuple[list[int], torch.Tensor]], n: int) -> torch.Tensor:
    width = chunks[0][1].shape[1]
    out = torch.zeros(n, width, dtype=torch.float32)
    for idx, value in chunks:
        out[idx] = value
    return out


class FeatureNet(nn.Module):
    """A copy of the classification layer and the head, run on :class:`Features`: ``forward(pooled (B, d),
    hidden (B, H), prompt (B, H))`` -> :class:`HeadOutput`, through the head's own ``forward``."""

    def __init__(self, classifier: nn.Linear, head: RewardHead) -> None:
        super().__init__()
        self.classifier = copy.deepcopy(classifier).float()
        self.head = head

    def forward(self, pooled: torch.Tensor, hidden: torch.Tensor, prompt: torch.Tensor, *,
                detach_objectives: bool = False) -> HeadOutput:
        """``detach_objectives``: no gradient flows into the objective layer (a gate trained on pairs)."""
        n = pooled.shape[0]
        states = torch.stack([hidden, prompt], dim=1)  # (B, 2, H): position 0 pooled, 1 the gating input
        zeros = torch.zeros(n, dtype=torch.long, device=pooled.device)
        logits = self.classifier(pooled)  # (B, K)
        return self.head(logits.detach() if detach_objectives else logits, states, zeros, zeros + 1)

    def run(self, features: Features, index: Any = slice(None)) -> HeadOutput:
        device = next(self.parameters()).device
        f = features.select(index)
        return self(f.pooled.to(device), f.hidden.to(device), f.prompt.to(device))

    def write_back(self, backbone: Any) -> None:
        """Copy the trained classification layer into ``backbone``'s."""
        layer = classifier_layer(backbone)
        with torch.no_grad():
            layer.weight.copy_(self.classifier.weight.to(layer.weight))
            if layer.bias is not None and self.classifier.bias is not None:
                layer.bias.copy_(self.classifier.bias.to(layer.bias))
