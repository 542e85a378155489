"""Typed requests and responses of the reward server (pydantic; unknown fields are rejected).

An item is a prompt and a response, each either plain text or a list of chat messages; they become the
same (prompt, response, conversational) messages ``rewardkit score`` builds from a
``{"prompt", "completion"}`` row (see :mod:`rewardkit.data.formats`), so the server's rewards equal the
offline ones:

- prompt text ``p`` -> one user turn, not conversational; prompt messages -> conversational;
- response text ``r`` -> one assistant turn; response messages -> conversational;
- ``messages`` without ``response``: the last message (an assistant turn) is the response.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardkit.data.formats import Message

Role = Literal["system", "user", "assistant", "tool"]
NonEmptyText = Annotated[str, Field(min_length=1)]
Units = list[tuple[tuple[Message, ...], tuple[Message, ...], bool]]  # (prompt, response, conversational)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    role: Role
    content: str


Turns = Annotated[list[ChatMessage], Field(min_length=1)]
PromptField = Field(None, description="the prompt: text (one user turn) or chat messages")
MessagesField = Field(None, description="the prompt as chat messages; without 'response', the conversation whose "
                                        "last (assistant) message is the response")


def _turns(value: str | list[ChatMessage] | None, role: str) -> tuple[tuple[Message, ...], bool]:
    """Messages and whether they were given as messages (conversational)."""
    if value is None:
        return (), False
    if isinstance(value, str):
        return ({"role": role, "content": value},), False
    return tuple({"role": m.role, "content": m.content} for m in value), True


def _check_response(value: str | list[ChatMessage], name: str) -> None:
    texts = [value] if isinstance(value, str) else [m.content for m in value]
    if not any(t.strip() for t in texts):
        raise ValueError(f"'{name}' is blank")


class _Prompted(_Strict):
    prompt: str | Turns | None = PromptField
    messages: Turns | None = MessagesField

    def _check_prompt(self) -> None:
        if self.prompt is not None and self.messages is not None:
            raise ValueError("give 'prompt' or 'messages', not both")

    def _prompt(self) -> tuple[tuple[Message, ...], bool]:
        if self.messages is not None:
            return _turns(self.messages, "user")
        return _turns(self.prompt, "user")


class ScoreItem(_Prompted):
    """One (prompt, response) to score."""

    response: NonEmptyText | Turns | None = Field(None, description="the response: text or chat messages")

    @model_validator(mode="after")
    def _valid(self) -> ScoreItem:
        self._check_prompt()
        if self.response is None:
            if not self.messages or self.messages[-1].role != "assistant":
                raise ValueError("'response' is required (or give 'messages' that end with the assistant turn "
                                 "to score)")
            _check_response(self.messages[-1:], "messages[-1]")
        else:
            _check_response(self.response, "response")
        return self

    def unit(self) -> tuple[tuple[Message, ...], tuple[Message, ...], bool]:
        if self.response is None:
            assert self.messages is not None
            msgs, _ = _turns(self.messages, "user")
            return msgs[:-1], msgs[-1:], True
        prompt, conv_p = self._prompt()
        response, conv_r = _turns(self.response, "assistant")
        return prompt, response, conv_p or conv_r


class ScorePair(_Prompted):
    """A prompt with two responses; both are scored and the margin (chosen - rejected) reported."""

    chosen: NonEmptyText | Turns
    rejected: NonEmptyText | Turns

    @model_validator(mode="after")
    def _valid(self) -> ScorePair:
        self._check_prompt()
        _check_response(self.chosen, "chosen")
        _check_response(self.rejected, "rejected")
        return self

    def units(self) -> Units:
        prompt, conv_p = self._prompt()
        out = []
        for side in (self.chosen, self.rejected):
            response, conv_r = _turns(side, "assistant")
            out.append((prompt, response, conv_p or conv_r))
        return out


class ScoreRequest(_Strict):
    """``items`` and/or ``pairs`` to score; ``model``, if given, must name the served model."""

    model: str | None = Field(None, description="the model id (optional; checked against the served model)")
    items: list[ScoreItem] = Field(default_factory=list)
    pairs: list[ScorePair] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> ScoreRequest:
        if not self.items and not self.pairs:
            raise ValueError("nothing to score: give 'items' and/or 'pairs'")
        return self

    def units(self) -> Units:
        """Items first, then each pair's chosen and rejected."""
        out: Units = [item.unit() for item in self.items]
        for pair in self.pairs:
            out.extend(pair.units())
        return out


class ItemScore(BaseModel):
    """One item's reward; an item the model gave a NaN or infinite value carries ``error`` instead."""

    reward: float | None = Field(None, description="the reward (absent when 'error' says why there is none)")
    truncated: bool = Field(description="whether the truncation policy cut this input")
    objectives: dict[str, float] | None = Field(None, description="per-objective rewards (multi-objective models)")
    uncertainty: float | None = Field(None, description="the model's uncertainty about the reward, when it has one")
    error: str | None = Field(None, description="why this item has no reward (e.g. the model produced a "
                                                "non-finite value); the other items are still answered")


class PairScore(BaseModel):
    chosen: ItemScore
    rejected: ItemScore
    margin: float | None = Field(None, description="chosen reward - rejected reward (absent when either has an "
                                                   "error)")


class Usage(BaseModel):
    items: int = Field(description="sequences scored")
    tokens: int = Field(description="tokens scored (a character-based estimate for scorers without a tokenizer)")


class ScoreResponse(BaseModel):
    model: str
    items: list[ItemScore]
    pairs: list[PairScore]
    usage: Usage


def _ignored(sender: str) -> Any:
    return Field(None, description=f"accepted and ignored (a reward model scores the text); sent by {sender}")


class OpenRLHFRequest(_Strict):
    """OpenRLHF's remote reward request: ``query[i]`` is the decoded prompt + response.

    Keys that OpenRLHF versions and forks are known to add are accepted and ignored; any other key is
    still refused (422), as on ``/v1/score``, so a typo does not pass silently.
    """

    query: list[str] = Field(description="decoded prompt + response texts")
    prompts: list[str | None] | None = Field(None, description="the prompt of each query (used to split it)")
    labels: list[Any] | None = Field(None, description="ground-truth labels (accepted; a reward model ignores them)")
    # Keys sent by OpenRLHF forks, for rule-based reward servers; a reward model scores the text and needs none.
    # Where a key was checked in public code, the fork is named; the first two were reported by users (issue 9).
    datasources: Any = _ignored("OpenRLHF forks that route rewards by data source (reported in issue 9)")
    query_token_ids: Any = _ignored("OpenRLHF forks that also send the token ids of each query (reported in "
                                    "issue 9)")
    metas: Any = _ignored("EIT-EAST-Lab/C3, an OpenRLHF derivative (per-query metadata; it retries without it)")
    metadata: Any = _ignored("KartKart123/OpenRLHF (per-query metadata)")
    stop_reason: Any = _ignored("yyht/openrlhf_async_pipline (vLLM stop reasons)")
    finish_reason: Any = _ignored("yyht/openrlhf_async_pipline (vLLM finish reasons)")

    @model_validator(mode="after")
    def _same_lengths(self) -> OpenRLHFRequest:
        for name in ("prompts", "labels"):
            value = getattr(self, name)
            if value and len(value) != len(self.query):
                raise ValueError(f"'{name}' has {len(value)} entries but 'query' has {len(self.query)}")
        return self


class OpenRLHFResponse(BaseModel):
    rewards: list[float]
    scores: list[float] = Field(description="the rewards, or sigmoid(reward) with --openrlhf-scores sigmoid")
    extra_logs: dict[str, list[float]]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "rewardkit"
    input_format: str | None = None
    max_length: int | None = None
    truncation_policy: str | None = None
    objectives: list[str] = Field(default_factory=lambda: ["reward"])
    chat_marker: str | None = Field(None, description="assistant-turn marker used to split OpenRLHF queries")
    uncertainty: str | None = Field(None, description="what the items' 'uncertainty' is: last-layer (AdvPO, fitted "
                                    "by `rewardkit uncertainty fit`), gaussian (the head's σ), or null without one")
    pessimism: float = Field(0.0, description="k: every reward is r − k·uncertainty (0: the model's own reward)")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "draining"]
    model: str
    queue_depth: int
    pending_items: int


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong, in one line")
    detail: list[dict[str, Any]] | None = Field(None, description="each validation problem: loc, msg, type")
