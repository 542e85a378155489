"""Safety under bad input and load: bearer key (401), body and item limits (413), malformed or mistyped
JSON (400/415/422), a full queue (503 + Retry-After), timeouts (504) and draining (503) -- every error a
JSON body with a useful message."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from serve_fixtures import GatedScorer, asgi_client, run, until

from rewardkit.scoring import LengthScorer, ScoreOutput
from rewardkit.serve.app import create_app
from rewardkit.serve.settings import ServeSettings

ONE = {"items": [{"prompt": "Hi", "response": "Hello!"}]}


async def _until(event: threading.Event) -> None:
    await until(event.is_set)


def _error(r: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    for f in fragments:
        assert f in body["error"], body
    return body


def test_api_key_is_required_everywhere_but_health() -> None:
    app = create_app(LengthScorer(), ServeSettings(api_key="s3cret"))

    async def go() -> None:
        async with asgi_client(app) as c:
            r = await c.post("/v1/score", json=ONE)
            _error(r, 401, "missing API key", "Authorization: Bearer")
            assert r.headers["www-authenticate"].startswith("Bearer")
            _error(await c.post("/v1/score", json=ONE, headers={"Authorization": "Bearer s3cre"}), 401, "invalid")
            _error(await c.post("/v1/score", json=ONE, headers={"Authorization": "Basic s3cret"}), 401, "missing")
            _error(await c.post("/get_reward", json={"query": ["a"]}), 401)
            _error(await c.get("/metrics"), 401)
            _error(await c.get("/v1/models"), 401)
            for path in ("/openapi.json", "/docs", "/redoc"):  # the schema and docs too
                _error(await c.get(path), 401, "missing API key")
            assert (await c.get("/health")).status_code == 200
            ok = await c.post("/v1/score", json=ONE, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200 and ok.json()["items"][0]["reward"] == 6.0
            key = {"Authorization": "Bearer s3cret"}
            schema = await c.get("/openapi.json", headers=key)
            assert schema.status_code == 200 and "/v1/score" in schema.json()["paths"]
            docs = await c.get("/docs", headers=key)
            assert docs.status_code == 200 and "/openapi.json" in docs.text

    run(go())


def test_without_a_key_the_schema_and_docs_are_open() -> None:
    async def go() -> None:
        async with asgi_client(create_app(LengthScorer())) as c:
            schema = (await c.get("/openapi.json")).json()
            assert set(schema["paths"]) == {"/v1/score", "/get_reward", "/health", "/v1/models", "/metrics"}
            for path in ("/docs", "/redoc"):
                r = await c.get(path)
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")

    run(go())


def test_bodies_over_the_limit_are_413_with_or_without_content_length() -> None:
    app = create_app(LengthScorer(), ServeSettings(max_body_bytes=1000))
    big = {"items": [{"response": "x" * 2000}]}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b'{"items": [' + b" " * 90

    async def go() -> None:
        async with asgi_client(app) as c:
            _error(await c.post("/v1/score", json=big), 413, "too large", "limit is 1000 bytes")
            r = await c.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
            assert "content-length" not in r.request.headers
            _error(r, 413, "too large")
            _error(await c.post("/v1/score", content=b"{}", headers={"content-length": "abc"}), 400,
                   "invalid Content-Length")
            assert (await c.post("/v1/score", json=ONE)).status_code == 200

    run(go())


def test_more_items_than_a_request_may_carry_is_413() -> None:
    app = create_app(LengthScorer(), ServeSettings(max_items_per_request=3, max_queue_items=10))

    async def go() -> None:
        async with asgi_client(app) as c:
            _error(await c.post("/v1/score", json={"items": [{"response": "a"}] * 4}), 413, "4 items", "at most 3")
            pairs = {"pairs": [{"chosen": "a", "rejected": "b"}] * 2}  # a pair is two items
            _error(await c.post("/v1/score", json=pairs), 413, "4 items")
            _error(await c.post("/get_reward", json={"query": ["a"] * 4}), 413)
            assert (await c.post("/v1/score", json={"items": [{"response": "a"}] * 3})).status_code == 200

    run(go())


def test_malformed_and_mistyped_input_is_a_4xx_json_error_that_says_what_is_wrong() -> None:
    app = create_app(LengthScorer())
    js = {"content-type": "application/json"}

    async def go() -> None:
        async with asgi_client(app) as c:
            body = _error(await c.post("/v1/score", content=b'{"items": [,]}', headers=js), 400, "malformed JSON",
                          "character 11")
            assert body["detail"][0]["type"] == "json_invalid"
            body = _error(await c.post("/v1/score", json={"items": [{"prompt": 5, "response": "a"}]}), 422,
                          "items.0.prompt")
            assert {d["type"] for d in body["detail"]} >= {"string_type"}
            assert "input" not in body["detail"][0]  # the input is not echoed back
            _error(await c.post("/v1/score", json={"items": [{"response": "a"}], "n": 1}), 422, "n: Extra inputs")
            _error(await c.post("/v1/score", json=[1, 2]), 422)
            _error(await c.post("/get_reward", json={"query": "not a list"}), 422, "query")
            _error(await c.post("/get_reward", json={"query": ["a"], "prompts": ["a", "b"]}), 422, "'prompts' has 2")
            _error(await c.post("/v1/score", content=b'{"items": []}', headers={"content-type": "text/plain"}),
                   415, "Content-Type: application/json")
            _error(await c.post("/v1/score", content="\udcff".encode("utf-8", "surrogatepass"), headers=js), 400)
            _error(await c.get("/v1/score"), 405)
            _error(await c.get("/nowhere"), 404)

    run(go())


def test_a_full_queue_answers_503_with_retry_after_and_nothing_is_lost() -> None:
    scorer = GatedScorer()
    app = create_app(scorer, ServeSettings(max_queue_items=2, max_items_per_request=2))

    async def go() -> None:
        async with asgi_client(app) as c:
            first = asyncio.create_task(c.post("/v1/score", json={"items": [{"response": "ab"}, {"response": "c"}]}))
            await _until(scorer.entered)
            r = await c.post("/v1/score", json=ONE)
            _error(r, 503, "server busy", "2 items queued of 2")
            assert int(r.headers["retry-after"]) >= 1
            scorer.gate.set()
            done = await first
            assert done.status_code == 200 and [i["reward"] for i in done.json()["items"]] == [2.0, 1.0]
            assert (await c.post("/v1/score", json=ONE)).status_code == 200
            assert app.state.service.metrics.value("rewardkit_rejected_total", reason="queue_full") == 1

    run(go())


def test_a_request_past_its_timeout_is_504_and_its_items_are_dropped() -> None:
    scorer = GatedScorer()
    app = create_app(scorer, ServeSettings(request_timeout_s=0.2))

    async def go() -> None:
        async with asgi_client(app) as c:
            _error(await c.post("/v1/score", json=ONE), 504, "not answered within 0.2 s")
            scorer.gate.set()
            assert (await c.post("/v1/score", json=ONE)).status_code == 200

    run(go())


def test_draining_refuses_new_work_with_503_and_finishes_what_was_admitted() -> None:
    scorer = GatedScorer()
    app = create_app(scorer)

    async def go() -> None:
        async with asgi_client(app) as c:
            inflight = asyncio.create_task(c.post("/v1/score", json=ONE))
            await _until(scorer.entered)
            app.state.service.begin_shutdown()  # what SIGTERM does first
            r = await c.post("/v1/score", json=ONE)
            _error(r, 503, "shutting down")
            assert r.headers["connection"] == "close"
            health = await c.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            scorer.gate.set()
            done = await inflight
            assert done.status_code == 200 and done.json()["items"][0]["reward"] == 6.0

    run(go())


class RefusingEncoder(LengthScorer):
    """An encoding scorer whose template refuses some inputs (as Llama-2-style templates do)."""

    def encode(self, prompts: Any, responses: Any, conversational: Any = True) -> list[Any]:
        if responses[0][0]["content"] == "bad":
            raise ValueError("Conversation roles must alternate user/assistant")
        from rewardkit.data.chat import Encoded

        return [Encoded([1, 2, 3], None)]

    def score_batch_encoded(self, encoded: Any) -> ScoreOutput:
        return ScoreOutput(np.ones(len(encoded), np.float32), np.zeros(len(encoded), bool))


def test_an_item_the_model_cannot_encode_is_422_naming_it() -> None:
    app = create_app(RefusingEncoder())

    async def go() -> None:
        async with asgi_client(app) as c:
            body = _error(await c.post("/v1/score", json={"items": [{"response": "ok"}, {"response": "bad"}]}), 422,
                          "item 1: cannot encode it", "roles must alternate")
            assert "detail" not in body
            assert (await c.post("/v1/score", json={"items": [{"response": "ok"}]})).status_code == 200

    run(go())
