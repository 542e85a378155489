"""Connections that go wrong: a client that disconnects has its queued items dropped before scoring (and is
counted as 499, not 500); a body that never arrives is 408 and the connection closed; requests still open
past the drain timeout are answered JSON 503, never uvicorn's plain-text 500. Each is checked in-process
through the ASGI interface (the test decides when the body arrives and when the client leaves) and over
real sockets against uvicorn."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_fixtures import (
    GatedScorer,
    asgi_call,
    asgi_client,
    free_port,
    live_server,
    raw_request,
    read_until_closed,
    run,
    until,
)

from rewardkit.serve.app import create_app
from rewardkit.serve.server import build_server
from rewardkit.serve.settings import ServeSettings

ONE = {"items": [{"response": "x"}]}
MANY = json.dumps({"items": [{"prompt": "Hi", "response": f"answer {i}"} for i in range(3000)]}).encode()


def _statuses(metrics_text: str, endpoint: str) -> dict[str, float]:
    """``rewardkit_requests_total`` by status for one endpoint, from the Prometheus text."""
    return {s.labels["status"]: s.value for f in text_string_to_metric_families(metrics_text) for s in f.samples
            if s.name == "rewardkit_requests_total" and s.labels["endpoint"] == endpoint}


def test_a_disconnected_clients_queued_items_are_dropped_before_scoring() -> None:
    scorer = GatedScorer()
    app = create_app(scorer)
    batcher = app.state.service.batcher

    async def go() -> None:
        async with asgi_client(app) as c:
            first = asyncio.create_task(c.post("/v1/score", json=ONE))  # holds the model
            await until(scorer.entered.is_set)
            doomed = asgi_call(app, "/v1/score", MANY)
            await until(lambda: batcher.queue_depth == 3000)
            doomed.disconnect.set()  # the client gives up
            await doomed.task
            assert doomed.sent == []  # nobody to answer
            assert batcher.queue_depth == 0 and batcher.pending_items == 1  # dropped at once, not scored later
            scorer.gate.set()
            assert (await first).status_code == 200
            assert scorer.scored == 1
            metrics = (await c.get("/metrics")).text
        assert _statuses(metrics, "/v1/score") == {"200": 1.0, "499": 1.0}

    run(go())


def test_a_client_that_closes_its_socket_stops_its_work_on_a_live_server() -> None:
    scorer = GatedScorer()
    with live_server(scorer) as url:
        port = int(url.rsplit(":", 1)[1])
        answers: dict[str, Any] = {}
        first = threading.Thread(target=lambda: answers.update(first=httpx.post(url + "/v1/score", json=ONE,
                                                                                 timeout=60)))
        first.start()
        assert scorer.entered.wait(30)
        sock = raw_request(port, "/v1/score", MANY)

        def health() -> dict[str, Any]:
            return httpx.get(url + "/health", timeout=10).json()

        run(until(lambda: health()["queue_depth"] == 3000))
        sock.close()  # the client gives up (as one with a 1 s timeout does)
        run(until(lambda: (h := health())["queue_depth"] == 0 and h["pending_items"] == 1))
        scorer.gate.set()
        first.join(60)
        assert answers["first"].status_code == 200
        assert scorer.scored == 1
        metrics = httpx.get(url + "/metrics", timeout=10).text
    assert _statuses(metrics, "/v1/score") == {"200": 1.0, "499": 1.0}


def test_a_body_that_never_arrives_is_408_in_process() -> None:
    app = create_app(GatedScorer(), ServeSettings(body_timeout_s=0.05))

    async def go() -> None:
        async with asgi_client(app):
            stalled = asgi_call(app, "/v1/score", None, length=100)
            await stalled.task
            assert stalled.status == 408
            headers = dict(stalled.sent[0]["headers"])
            assert headers[b"content-type"] == b"application/json" and headers[b"connection"] == b"close"
            assert stalled.json() == {"error": "request body not received within 0.05 s (0 bytes arrived); send the "
                                               "whole body at once, or raise the server's --body-timeout"}

    run(go())


def test_stalled_uploads_get_408_and_their_connections_are_closed() -> None:
    """Clients that send headers and part of a body, then stall: each is answered and disconnected."""
    with live_server(GatedScorer(), ServeSettings(body_timeout_s=0.3)) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [raw_request(port, "/v1/score", b'{"items": [', declared=1000) for _ in range(5)]
        answers = [read_until_closed(s) for s in socks]  # a socket timeout here: the connection stayed open
        for s in socks:
            s.close()
        metrics = httpx.get(url + "/metrics", timeout=10).text
    for status, headers, body in answers:
        assert status == 408 and headers["content-type"] == "application/json" and headers["connection"] == "close"
        assert json.loads(body)["error"].startswith("request body not received within 0.3 s (11 bytes arrived)")
    assert _statuses(metrics, "/v1/score") == {"408": 5.0}


def test_a_request_the_server_cancels_is_answered_json_503() -> None:
    """What uvicorn does to requests still open past its graceful-shutdown timeout: cancel their tasks."""
    scorer = GatedScorer()
    app = create_app(scorer)

    async def go() -> None:
        async with asgi_client(app):
            call = asgi_call(app, "/v1/score", json.dumps(ONE).encode())
            await until(scorer.entered.is_set)
            assert call.task is not None
            call.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.task
            assert call.status == 503 and "shutting down" in call.json()["error"]
            scorer.gate.set()

    run(go())


def test_past_the_drain_timeout_open_requests_get_json_503_from_a_live_server() -> None:
    scorer = GatedScorer()
    settings = ServeSettings(port=free_port(), drain_timeout_s=0.2)
    server = build_server(scorer, settings, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        run(until(lambda: server.started))
        url = f"http://127.0.0.1:{settings.port}"
        answers: dict[str, Any] = {}
        client = threading.Thread(target=lambda: answers.update(r=httpx.post(url + "/v1/score", json=ONE, timeout=60)))
        client.start()
        assert scorer.entered.wait(30)  # being scored, and the model will not finish in time
        server.handle_exit(signal.SIGTERM, None)  # what SIGTERM does (from another thread here)
        client.join(60)
        thread.join(60)
        r = answers["r"]
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        assert r.json() == {"error": "server is shutting down and its drain timeout passed before this request was "
                                     "answered; send it to another replica or retry later"}
        assert not thread.is_alive()
    finally:
        scorer.gate.set()
        server.should_exit = True
        thread.join(30)
