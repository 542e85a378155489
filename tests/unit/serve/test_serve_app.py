"""The server's rewards equal the offline ones (``RewardModelScorer.score`` and ``rewardkit score``) to 1e-5,
with dynamic batching on or off and under concurrency; truncation is flagged; the info endpoints and
the Prometheus metrics say what happened."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from serve_fixtures import asgi_client, run

from rewardkit.cli import main
from rewardkit.scoring import RewardModelScorer
from rewardkit.serve.app import create_app
from rewardkit.serve.schemas import ScoreItem
from rewardkit.serve.settings import ServeSettings
from rewardkit.types import ScoreOutput
from tiny_models import PAIRS

LONG = " ".join(["a long answer that goes on"] * 40)  # far over the tiny models' 64 tokens
ROWS = [{"prompt": p, "completion": c} for p, c, _ in PAIRS] + [
    {"prompt": [{"role": "user", "content": "Tell me more."}], "completion": [{"role": "assistant", "content": LONG}]},
    {"completion": "No prompt at all."},
]


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {**({"prompt": row["prompt"]} if "prompt" in row else {}), "response": row["completion"]}


async def _post(app: Any, body: dict[str, Any], **settings: Any) -> dict[str, Any]:
    async with asgi_client(app) as client:
        r = await client.post("/v1/score", json=body)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.mark.usefixtures("hf_datasets_cache")
@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_rewards_equal_rewardkit_score_on_the_same_rows(kind: str, tiny_rms: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    pairs = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS[:4]]
    data.write_text("".join(json.dumps(r) + "\n" for r in [*ROWS, *pairs]))
    assert main(["score", "--model", str(tiny_rms[kind]), "--data", str(data), "--out", str(tmp_path / "o.jsonl")]) == 0
    offline = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]

    app = create_app(RewardModelScorer(str(tiny_rms[kind])), ServeSettings())
    out = run(_post(app, {"items": [_item(r) for r in ROWS], "pairs": pairs}))
    served = [i["reward"] for i in out["items"]]
    np.testing.assert_allclose(served, [o["score"] for o in offline[:len(ROWS)]], atol=1e-5, rtol=0)
    np.testing.assert_allclose([p["chosen"]["reward"] for p in out["pairs"]],
                               [o["chosen_score"] for o in offline[len(ROWS):]], atol=1e-5, rtol=0)
    np.testing.assert_allclose([p["rejected"]["reward"] for p in out["pairs"]],
                               [o["rejected_score"] for o in offline[len(ROWS):]], atol=1e-5, rtol=0)
    for p in out["pairs"]:
        assert p["margin"] == pytest.approx(p["chosen"]["reward"] - p["rejected"]["reward"], abs=1e-12)
    assert [i["truncated"] for i in out["items"]] == [o["truncated"] for o in offline[:len(ROWS)]]
    assert out["items"][len(PAIRS)]["truncated"] is True and sum(i["truncated"] for i in out["items"]) == 1
    assert out["model"] == str(tiny_rms[kind])
    assert out["usage"]["items"] == len(ROWS) + 8 and out["usage"]["tokens"] > 0
    assert "objectives" not in out["items"][0] and "uncertainty" not in out["items"][0]


async def _concurrent(app: Any, requests: list[list[dict[str, Any]]]) -> list[list[float]]:
    async with asgi_client(app) as client:
        async def one(items: list[dict[str, Any]]) -> list[float]:
            r = await client.post("/v1/score", json={"items": items})
            assert r.status_code == 200, r.text
            return [i["reward"] for i in r.json()["items"]]

        return list(await asyncio.gather(*(one(items) for items in requests)))


def test_concurrent_requests_get_their_own_rewards_with_batching_on_or_off(llama_scorer: RewardModelScorer) -> None:
    rows = [ROWS[i % len(ROWS)] for i in range(40)]
    requests = [[_item(r) for r in rows[i: i + 1 + i % 3]] for i in range(0, 40, 3)]
    units = [ScoreItem.model_validate(i).unit() for req in requests for i in req]  # schemas tested separately
    expected = llama_scorer.score([u[0] for u in units], [u[1] for u in units], [u[2] for u in units]).rewards
    on = create_app(llama_scorer, ServeSettings(max_wait_ms=20))
    off = create_app(llama_scorer, ServeSettings(max_batch_size=1, max_wait_ms=0))
    got_on = [x for r in run(_concurrent(on, requests)) for x in r]
    got_off = [x for r in run(_concurrent(off, requests)) for x in r]
    np.testing.assert_allclose(got_on, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_off, got_on, atol=1e-5, rtol=0)
    batches_on = on.state.service.metrics.value("rewardkit_batches_total")
    batches_off = off.state.service.metrics.value("rewardkit_batches_total")
    assert batches_off == len(units) and batches_on < len(requests)  # on: requests shared model calls


def test_length_scorer_needs_no_tokenizer(length_scorer: Any) -> None:
    out = run(_post(create_app(length_scorer), {"items": [{"prompt": "x", "response": "abcd"},
                                                          {"messages": [{"role": "user", "content": "q"},
                                                                        {"role": "assistant", "content": "hey"}]}]}))
    assert [i["reward"] for i in out["items"]] == [4.0, 3.0]
    assert out["usage"] == {"items": 2, "tokens": 2 + 2}  # characters // 4 + 1 per item


class TwoHeadScorer:
    """A scorer whose output also has per-objective rewards and an uncertainty."""

    name = "two-head"

    def score(self, prompts: Any, responses: Any, conversational: Any = True) -> ScoreOutput:
        n = len(responses)
        help_ = np.arange(n, dtype=np.float32)
        return ScoreOutput(help_ * 2, np.zeros(n, bool), np.stack([help_, help_ + 1], axis=1), ("helpful", "safe"),
                           np.full(n, 0.25, np.float32))


def test_objectives_and_uncertainty_are_reported_when_the_scorer_gives_them() -> None:
    out = run(_post(create_app(TwoHeadScorer()), {"items": [{"response": "a"}, {"response": "b"}]}))
    assert out["items"][1] == {"reward": 2.0, "truncated": False, "objectives": {"helpful": 1.0, "safe": 2.0},
                               "uncertainty": 0.25}


async def _get(app: Any, path: str, headers: dict[str, str] | None = None) -> Any:
    async with asgi_client(app, headers) as client:
        return await client.get(path)


def test_models_and_health_describe_the_served_model(llama_scorer: RewardModelScorer) -> None:
    app = create_app(llama_scorer)
    card = run(_get(app, "/v1/models")).json()["data"][0]
    assert card["id"] == llama_scorer.name and card["input_format"] == "chat" and card["max_length"] == 64
    assert card["truncation_policy"].startswith("keep-response") and card["objectives"] == ["reward"]
    assert card["chat_marker"] == "<|im_start|>assistant\n"
    health = run(_get(app, "/health"))
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model": llama_scorer.name, "queue_depth": 0, "pending_items": 0}


def test_a_wrong_model_name_is_404_and_the_right_one_is_accepted(length_scorer: Any) -> None:
    async def go() -> tuple[Any, Any]:
        async with asgi_client(create_app(length_scorer)) as c:
            bad = await c.post("/v1/score", json={"model": "gpt-9", "items": [{"response": "a"}]})
            good = await c.post("/v1/score", json={"model": "length", "items": [{"response": "a"}]})
            return bad, good

    bad, good = run(go())
    assert bad.status_code == 404 and "'gpt-9' is not served here" in bad.json()["error"]
    assert good.status_code == 200


def parse_prometheus(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the text exposition format, read by prometheus_client's own parser (which fails on a
    malformed line)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_count_requests_items_and_batches(length_scorer: Any) -> None:
    async def go() -> Any:
        async with asgi_client(create_app(length_scorer)) as c:
            for n in (1, 2, 3):
                assert (await c.post("/v1/score", json={"items": [{"response": "x"}] * n})).status_code == 200
            assert (await c.post("/get_reward", json={"query": ["a", "b"]})).status_code == 200
            assert (await c.post("/v1/score", json={"items": []})).status_code == 422
            await c.get("/nope")
            return await c.get("/metrics")

    r = run(go())
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    s = parse_prometheus(r.text)

    def value(name: str, **labels: str) -> float:
        return s[(name, frozenset(labels.items()))]

    assert value("rewardkit_requests_total", endpoint="/v1/score", status="200") == 3
    assert value("rewardkit_requests_total", endpoint="/v1/score", status="422") == 1
    assert value("rewardkit_requests_total", endpoint="/get_reward", status="200") == 1
    assert value("rewardkit_requests_total", endpoint="other", status="404") == 1
    assert value("rewardkit_items_total", endpoint="/v1/score") == 6
    assert value("rewardkit_items_total", endpoint="/get_reward") == 2
    batches = value("rewardkit_batches_total")
    assert value("rewardkit_batch_size_count") == batches >= 4
    assert value("rewardkit_batch_size_sum") == 8
    assert value("rewardkit_batch_size_bucket", le="+Inf") == batches
    buckets = sorted((float(dict(k[1])["le"].replace("+Inf", "inf")), v) for k, v in s.items()
                     if k[0] == "rewardkit_request_latency_seconds_bucket" and ("endpoint", "/v1/score") in k[1])
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1][1] == 4
    assert value("rewardkit_queue_depth") == 0 and value("rewardkit_pending_items") == 0
    assert value("rewardkit_inflight_requests") == 1  # the scrape itself
    assert value("rewardkit_draining") == 0


def test_each_app_keeps_its_own_metrics(length_scorer: Any) -> None:
    """Two apps in one process (per-app registries, not prometheus_client's global one) count separately."""
    busy, idle = create_app(length_scorer), create_app(length_scorer)

    async def go() -> None:
        async with asgi_client(busy) as b, asgi_client(idle) as i:
            assert (await b.post("/v1/score", json={"items": [{"response": "x"}] * 3})).status_code == 200
            assert (await i.get("/health")).status_code == 200

    run(go())
    m_busy, m_idle = busy.state.service.metrics, idle.state.service.metrics
    assert m_busy.value("rewardkit_items_total", endpoint="/v1/score") == 3
    assert m_idle.value("rewardkit_items_total", endpoint="/v1/score") == 0
    assert m_idle.value("rewardkit_requests_total", endpoint="/health", status="200") == 1
    assert m_busy.value("rewardkit_requests_total", endpoint="/health", status="200") == 0
