"""Request models: items and pairs become the same (prompt, response, conversational) messages that
``rewardkit score`` builds from ``{"prompt", "completion"}`` rows; wrong shapes are rejected with a reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rewardkit.data.formats import Location, parse_record
from rewardkit.serve.schemas import OpenRLHFRequest, ScoreItem, ScorePair, ScoreRequest

USER = [{"role": "user", "content": "Hi"}]
REPLY = [{"role": "assistant", "content": "Hello!"}]


@pytest.mark.parametrize("prompt, response", [
    ("Hi", "Hello!"), (USER, REPLY), ("Hi", REPLY), (USER, "Hello!"), (None, "Hello!"), ("", "Hello!"),
])
def test_an_item_is_encoded_like_the_same_completion_row_of_rewardkit_score(prompt: object, response: object) -> None:
    row = {"completion": response} if prompt is None else {"prompt": prompt, "completion": response}
    offline = parse_record(row, Location("x", line=1))
    item = ScoreItem.model_validate({"response": response} if prompt is None else
                                    {"prompt": prompt, "response": response})
    assert item.unit() == (offline.prompt, offline.completion, offline.conversational)  # type: ignore[union-attr]


def test_messages_without_response_score_the_last_assistant_turn() -> None:
    item = ScoreItem.model_validate({"messages": [*USER, *REPLY]})
    assert item.unit() == (tuple(USER), tuple(REPLY), True)
    item = ScoreItem.model_validate({"messages": USER, "response": "Hello!"})
    assert item.unit() == (tuple(USER), tuple(REPLY), True)


def test_a_pair_is_two_units_with_the_same_prompt() -> None:
    pair = ScorePair.model_validate({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."})
    assert pair.units() == [(tuple(USER), tuple(REPLY), False),
                            (tuple(USER), ({"role": "assistant", "content": "Go away."},), False)]


def test_request_units_are_items_then_pairs() -> None:
    req = ScoreRequest.model_validate({"items": [{"response": "a"}],
                                       "pairs": [{"chosen": "b", "rejected": "c"}]})
    assert [u[1][0]["content"] for u in req.units()] == ["a", "b", "c"]


@pytest.mark.parametrize("body, message", [
    ({}, "nothing to score"),
    ({"items": []}, "nothing to score"),
    ({"items": [{"prompt": "Hi"}]}, "'response' is required"),
    ({"items": [{"messages": USER}]}, "'response' is required"),
    ({"items": [{"response": ""}]}, "at least 1 character"),
    ({"items": [{"response": "   "}]}, "'response' is blank"),
    ({"items": [{"prompt": "a", "messages": USER, "response": "b"}]}, "not both"),
    ({"items": [{"response": [{"role": "robot", "content": "x"}]}]}, "'system', 'user', 'assistant' or 'tool'"),
    ({"items": [{"response": []}]}, "at least 1 item"),
    ({"items": [{"response": "a", "score": 1}]}, "Extra inputs are not permitted"),
    ({"items": [{"response": "a"}], "temperature": 0}, "Extra inputs are not permitted"),
    ({"pairs": [{"chosen": "a"}]}, "Field required"),
])
def test_wrong_shapes_are_rejected_with_a_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScoreRequest.model_validate(body)


def test_openrlhf_request_prompts_and_labels_are_optional_but_must_match_in_length() -> None:
    assert OpenRLHFRequest.model_validate({"query": ["a"]}).prompts is None
    OpenRLHFRequest.model_validate({"query": ["a"], "prompts": ["x"], "labels": [None]})
    with pytest.raises(ValidationError, match="'prompts' has 2 entries but 'query' has 1"):
        OpenRLHFRequest.model_validate({"query": ["a"], "prompts": ["x", "y"]})


# What OpenRLHF forks add to the request body (see the comments on OpenRLHFRequest for who sends each).
FORK_KEYS = {"datasources": ["gsm8k"], "query_token_ids": [[1, 2, 3]], "metas": [{"id": 7}], "metadata": [None],
             "stop_reason": [None], "finish_reason": ["stop"]}


def test_openrlhf_request_accepts_the_keys_forks_send_and_refuses_any_other() -> None:
    request = OpenRLHFRequest.model_validate({"query": ["a"], **FORK_KEYS})
    assert request.query == ["a"]
    for key in ("temperature", "queries", "datasource"):  # unknown, or a near miss of a real key
        with pytest.raises(ValidationError, match=f"{key}\n  Extra inputs are not permitted"):
            OpenRLHFRequest.model_validate({"query": ["a"], key: ["x"]})
