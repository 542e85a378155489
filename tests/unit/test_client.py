"""RewardClient: a batch split across URLs and put back in order, retries with backoff (honouring
Retry-After) and failover to the next URL, no retry on the caller's mistakes, the same in async, and a
round trip against a live server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from rewardkit import client as client_module
from rewardkit.client import RewardClient, RewardServerError
from rewardkit.scoring import LengthScorer
from rewardkit.serve.settings import ServeSettings
from unit.serve.serve_fixtures import live_server


class FakeServers:
    """Answers /v1/score with reward = int(response text) and /get_reward with reward = len(query); records
    each call; ``script[host]`` lists statuses (or exceptions) to answer with before behaving."""

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.script = script or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        host = request.url.host
        self.calls.append((host, request.url.path, body))
        pending = self.script.get(host) or []
        if pending:
            step = pending.pop(0)
            if isinstance(step, Exception):
                raise step
            status, headers = step if isinstance(step, tuple) else (step, {})
            return httpx.Response(status, json={"error": f"scripted {status}"}, headers=headers)
        if request.url.path == "/get_reward":
            rewards = [float(len(q)) for q in body["query"]]
            return httpx.Response(200, json={"rewards": rewards, "scores": rewards,
                                             "extra_logs": {"host": [float(host[-1])] * len(rewards)}})
        items = [{"reward": float(i["response"]), "truncated": False} for i in body.get("items", [])]
        pairs = [{"chosen": {"reward": 1.0, "truncated": False}, "rejected": {"reward": 0.0, "truncated": False},
                  "margin": 1.0} for _ in body.get("pairs", [])]
        return httpx.Response(200, json={"model": "fake", "items": items, "pairs": pairs, "usage": {}})


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


def _client(fake: FakeServers, urls: Any = ("http://s1", "http://s2", "http://s3"), **kw: Any) -> RewardClient:
    return RewardClient(urls, transport=httpx.MockTransport(fake), async_transport=httpx.MockTransport(fake),
                        backoff_s=0.01, **kw)


def test_a_batch_is_split_across_urls_and_merged_in_order() -> None:
    fake = FakeServers()
    items = [("p", str(i)) for i in range(10)]
    result = _client(fake).score(items)
    assert result.rewards == [float(i) for i in range(10)] and result.model == "fake"
    by_host = {h: [int(i["response"]) for i in b["items"]] for h, _, b in fake.calls}
    assert by_host == {"s1": [0, 1, 2], "s2": [3, 4, 5], "s3": [6, 7, 8, 9]}
    assert fake.calls[0][2]["items"][0] == {"prompt": "p", "response": "0"}


def test_parts_respect_the_per_request_item_cap() -> None:
    fake = FakeServers()
    result = _client(fake, "http://s1", max_items_per_request=2).score([{"response": str(i)} for i in range(5)])
    assert result.rewards == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [len(b["items"]) for _, _, b in fake.calls] == [2, 2, 1]


def test_an_empty_batch_sends_nothing() -> None:
    fake = FakeServers()
    assert _client(fake).score([]).rewards == []
    assert _client(fake).get_reward([]) == {"rewards": [], "scores": [], "extra_logs": {}}
    assert fake.calls == []


def test_busy_servers_are_retried_after_retry_after(no_sleep: list[float]) -> None:
    fake = FakeServers({"s1": [(503, {"Retry-After": "2"}), 502]})
    result = _client(fake, "http://s1").score([("p", "7")])
    assert result.rewards == [7.0] and len(fake.calls) == 3
    assert no_sleep[0] == pytest.approx(2.0)  # the server's Retry-After (above the 0.01 s backoff)
    assert 0.005 <= no_sleep[1] <= 0.02  # then the backoff: 0.01 * 2**1 * jitter(0.5..1)


def test_a_dead_server_fails_over_to_the_next_url(no_sleep: list[float]) -> None:
    fake = FakeServers({"s1": [httpx.ConnectError("refused")] * 10})
    result = _client(fake, ["http://s1", "http://s2"]).score([("p", str(i)) for i in range(4)])
    assert result.rewards == [0.0, 1.0, 2.0, 3.0]
    assert [h for h, _, _ in fake.calls].count("s2") == 2  # its own part and s1's, retried there


def test_client_errors_are_raised_at_once_with_the_servers_message(no_sleep: list[float]) -> None:
    fake = FakeServers({"s1": [422]})
    with pytest.raises(RewardServerError, match="HTTP 422: scripted 422") as info:
        _client(fake, "http://s1").score([("p", "1")])
    assert info.value.status == 422 and len(fake.calls) == 1 and no_sleep == []


def test_giving_up_after_the_retries(no_sleep: list[float]) -> None:
    fake = FakeServers({"s1": [503] * 10})
    with pytest.raises(RewardServerError, match="HTTP 503"):
        _client(fake, "http://s1", retries=2).score([("p", "1")])
    assert len(fake.calls) == 3 and len(no_sleep) == 2


def test_get_reward_merges_rewards_and_extra_logs_in_order() -> None:
    fake = FakeServers()
    out = _client(fake, "http://s1,http://s2/get_reward/").get_reward(["a", "bb", "ccc"], ["p"] * 3, ["l1", "l2", "l3"])
    assert out == {"rewards": [1.0, 2.0, 3.0], "scores": [1.0, 2.0, 3.0], "extra_logs": {"host": [1.0, 2.0, 2.0]}}
    assert [(h, p) for h, p, _ in fake.calls] == [("s1", "/get_reward"), ("s2", "/get_reward")]
    assert fake.calls[1][2] == {"query": ["bb", "ccc"], "prompts": ["p", "p"], "labels": ["l2", "l3"]}


def test_async_methods_split_retry_and_merge_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(client_module.asyncio, "sleep", no_wait)
    fake = FakeServers({"s2": [503]})

    async def go() -> tuple[Any, Any, Any]:
        async with _client(fake) as c:
            return (await c.ascore([("p", str(i)) for i in range(6)]), await c.aget_reward(["xy"]),
                    await c.ascore_pairs([{"chosen": "a", "rejected": "b"}]))

    scored, reward, pairs = asyncio.run(go())
    assert scored.rewards == [float(i) for i in range(6)]
    assert reward["rewards"] == [2.0] and pairs[0].margin == 1.0
    assert sorted(h for h, _, _ in fake.calls[:4]) == ["s1", "s2", "s3", "s3"]  # s2's part retried on s3


def test_single_item_calls_take_turns_over_the_urls() -> None:
    fake = FakeServers()
    c = _client(fake)
    for i in range(6):
        assert c.score([("p", str(i))]).rewards == [float(i)]
    assert sorted(h for h, _, _ in fake.calls) == ["s1", "s1", "s2", "s2", "s3", "s3"]


def test_urls_are_normalised() -> None:
    c = RewardClient(["http://a:1/get_reward", "http://b:2/,http://c:3/v1/score"])
    assert c.urls == ["http://a:1", "http://b:2", "http://c:3"]
    with pytest.raises(ValueError, match="no server URL"):
        RewardClient([])


def test_round_trip_against_a_live_server_with_a_key() -> None:
    with live_server(LengthScorer(), ServeSettings(api_key="k")) as url:
        with pytest.raises(RewardServerError) as info:
            RewardClient(url).score([("p", "abc")])
        assert info.value.status == 401
        with RewardClient([url, url], api_key="k") as c:
            result = c.score([("Hi", "abc"), {"messages": [{"role": "user", "content": "q"},
                                                           {"role": "assistant", "content": "hello"}]}])
            assert result.rewards == [3.0, 5.0] and result.model == "length" and result.truncated == [False, False]
            pairs = c.score_pairs([{"prompt": "p", "chosen": "long answer", "rejected": "no"}])
            assert (pairs[0].chosen.reward, pairs[0].rejected.reward, pairs[0].margin) == (11.0, 2.0, 9.0)
            assert c.get_reward(["question? answer"], ["question?"])["rewards"] == [7.0]
            assert c.health()["status"] == "ok" and c.models()["data"][0]["id"] == "length"


def test_a_server_that_does_not_answer_json_is_named_in_the_error() -> None:
    def html(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy login</html>")

    c = RewardClient("http://s1", transport=httpx.MockTransport(html))
    with pytest.raises(RewardServerError, match=r"not JSON .*proxy login"):
        c.score([("p", "1")])


def test_an_item_the_server_could_not_score_carries_its_error() -> None:
    from rewardkit.client import _item_score, _pair
    from rewardkit.integrations.verl import _verl_value

    bad = {"error": "the model produced a non-finite reward (nan) for this item", "truncated": False}
    item = _item_score(bad)
    assert item.reward is None and item.error is not None and "non-finite" in item.error
    pair = _pair({"chosen": {"reward": 1.0, "truncated": False}, "rejected": bad})
    assert pair.margin is None and pair.chosen.reward == 1.0
    with pytest.raises(ValueError, match="could not score this item: the model produced a non-finite"):
        _verl_value(item)
