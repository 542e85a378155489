"""OpenRLHF's /get_reward: queries are split into prompt and response (given prompt, else the chat
template's assistant marker), scored exactly as the same conversation offline, and answered in
OpenRLHF's shape -- also over real HTTP the way OpenRLHF's ``request_api_wrapper`` calls it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests
from serve_fixtures import asgi_client, live_server, run

from rewardkit.scoring import RewardModelScorer
from rewardkit.serve.app import create_app
from rewardkit.serve.protocols import assistant_marker, openrlhf_scores, split_query, strip_tokens
from rewardkit.serve.settings import ServeSettings
from tiny_models import PAIRS

CONVS = [([{"role": "user", "content": p}], [{"role": "assistant", "content": c}]) for p, c, _ in PAIRS[:6]]


def test_split_rules_in_order() -> None:
    assert split_query("<s>Q: hi A: yo", "Q: hi", "A:") == ("<s>Q: hi", " A: yo", "prompt")
    assert split_query("Q: hi A: yo A: again", "nope", " A: ") == ("Q: hi A: yo A: ", "again", "template")
    assert split_query("Q: hi A: yo", None, None) == ("", "Q: hi A: yo", "whole")
    assert split_query("Q: hi", "", None).rule == "whole"
    assert strip_tokens("<pad><pad>text<pad>", ["<pad>"]) == "text"
    assert strip_tokens("te<pad>xt", ["<pad>"]) == "te<pad>xt"


def test_the_assistant_marker_comes_from_the_chat_template(smollm2_tokenizer: Any, minilm_tokenizer: Any) -> None:
    assert assistant_marker(smollm2_tokenizer) == "<|im_start|>assistant\n"
    assert assistant_marker(minilm_tokenizer) is None


def test_scores_are_the_rewards_or_their_sigmoid() -> None:
    r = np.array([0.0, 2.0, -1000.0, 1000.0])
    assert openrlhf_scores(r, "raw").tolist() == r.tolist()
    np.testing.assert_allclose(openrlhf_scores(r, "sigmoid"), [0.5, 0.8807970779778823, 0.0, 1.0], atol=1e-15)


def _offline(scorer: RewardModelScorer, conversational: bool = True) -> np.ndarray:
    return scorer.score([c[0] for c in CONVS], [c[1] for c in CONVS], conversational).rewards


async def _get_reward(app: Any, body: dict[str, Any]) -> Any:
    async with asgi_client(app) as c:
        return await c.post("/get_reward", json=body)


@pytest.mark.parametrize("with_prompts", [True, False])
def test_chat_model_rewards_equal_scoring_the_conversation(llama_scorer: RewardModelScorer, with_prompts: bool) -> None:
    tok = llama_scorer.rm.tokenizer
    queries = [tok.apply_chat_template([*p, *r], tokenize=False) for p, r in CONVS]
    queries[0] = tok.pad_token * 3 + queries[0] + tok.pad_token  # left/right padding decoded with the text
    body: dict[str, Any] = {"query": queries, "labels": ["4"] * len(queries)}
    if with_prompts:
        body["prompts"] = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p, _ in CONVS]
    r = run(_get_reward(create_app(llama_scorer), body))
    assert r.status_code == 200, r.text
    out = r.json()
    np.testing.assert_allclose(out["rewards"], _offline(llama_scorer), atol=1e-5, rtol=0)
    assert out["scores"] == out["rewards"]
    assert out["extra_logs"] == {"truncated": [0.0] * 6, "unsplit": [0.0] * 6}
    rule = "prompt" if with_prompts else "template"
    assert f"{rule}=6" in r.headers["x-rewardkit-split"]


def test_text_pair_model_splits_by_the_prompt_and_flags_what_it_cannot_split(bert_scorer: RewardModelScorer) -> None:
    prompts = [p for p, _, _ in PAIRS[:3]]
    responses = [" " + c for _, c, _ in PAIRS[:3]]
    body = {"query": [p + r for p, r in zip(prompts, responses, strict=True)] + ["no prompt here"],
            "prompts": [*prompts, "something else"], "labels": [None] * 4}
    app = create_app(bert_scorer, ServeSettings(openrlhf_scores="sigmoid"))
    out = run(_get_reward(app, body)).json()
    expected = bert_scorer.score([[{"role": "user", "content": p}] for p in prompts] + [[]],
                                 [[{"role": "assistant", "content": r}] for r in [*responses, "no prompt here"]],
                                 False).rewards
    np.testing.assert_allclose(out["rewards"], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["scores"], 1 / (1 + np.exp(-np.array(out["rewards"]))), atol=1e-12)
    assert out["extra_logs"]["unsplit"] == [0.0, 0.0, 0.0, 1.0]


def test_the_keys_openrlhf_forks_add_are_ignored_and_unknown_keys_refused(llama_scorer: RewardModelScorer) -> None:
    """Forks send e.g. ``datasources`` and ``query_token_ids`` beside ``query`` (issue 9): same rewards."""
    tok = llama_scorer.rm.tokenizer
    queries = [tok.apply_chat_template([*p, *r], tokenize=False) for p, r in CONVS]
    fork_keys = {"datasources": ["chat"] * len(queries), "query_token_ids": [tok(q)["input_ids"] for q in queries],
                 "metas": [{"i": i} for i in range(len(queries))], "metadata": None,
                 "stop_reason": [None] * len(queries), "finish_reason": ["stop"] * len(queries)}
    app = create_app(llama_scorer)
    r = run(_get_reward(app, {"query": queries, **fork_keys}))
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["rewards"], _offline(llama_scorer), atol=1e-5, rtol=0)
    unknown = run(_get_reward(app, {"query": queries, "reward_mode": "rule"}))
    assert unknown.status_code == 422 and "reward_mode: Extra inputs are not permitted" in unknown.json()["error"]


def test_truncation_is_logged_per_query(llama_scorer: RewardModelScorer) -> None:
    tok = llama_scorer.rm.tokenizer
    long = [{"role": "assistant", "content": "word " * 200}]
    q = tok.apply_chat_template([*CONVS[0][0], *long], tokenize=False)
    out = run(_get_reward(create_app(llama_scorer), {"query": [q, q[:40]]})).json()
    assert out["extra_logs"]["truncated"][0] == 1.0


def test_empty_batches_and_empty_responses_are_answered(llama_scorer: RewardModelScorer) -> None:
    out = run(_get_reward(create_app(llama_scorer), {"query": [], "prompts": [], "labels": []})).json()
    assert out == {"rewards": [], "scores": [], "extra_logs": {"truncated": [], "unsplit": []}}
    tok = llama_scorer.rm.tokenizer
    prompt = tok.apply_chat_template(CONVS[0][0], tokenize=False, add_generation_prompt=True)
    r = run(_get_reward(create_app(llama_scorer), {"query": [prompt], "prompts": [prompt]}))
    assert r.status_code == 200 and len(r.json()["rewards"]) == 1  # a policy that said nothing still gets a reward


def test_an_empty_query_is_422_naming_it(llama_scorer: RewardModelScorer) -> None:
    """Found by the fuzz test: nothing left to tokenize must not reach the model."""
    pad = llama_scorer.rm.tokenizer.pad_token
    for query in ("", pad * 2):
        r = run(_get_reward(create_app(llama_scorer), {"query": ["fine", query]}))
        assert r.status_code == 422 and r.json()["error"] == "item 1: it is empty: there are no tokens to score"


def test_openrlhf_request_api_wrapper_round_trip_over_http(llama_scorer: RewardModelScorer) -> None:
    """What OpenRLHF's remote_rm_utils does: requests.post(json=...), raise_for_status, read "rewards"."""
    tok = llama_scorer.rm.tokenizer
    data = {"query": [tok.apply_chat_template([*p, *r], tokenize=False) for p, r in CONVS],
            "prompts": [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p, _ in CONVS],
            "labels": [""] * len(CONVS)}
    with live_server(llama_scorer) as url:
        response = requests.post(url=url + "/get_reward", json=data, headers={"Content-Type": "application/json"},
                                 timeout=180)
        response.raise_for_status()
        body = response.json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    np.testing.assert_allclose(body["rewards"], _offline(llama_scorer), atol=1e-5, rtol=0)
