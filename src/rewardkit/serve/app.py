"""The reward server's FastAPI app: ``create_app(scorer, settings)`` (no globals, so tests run it in-process).

Endpoints:
  POST /v1/score     rewardkit's typed API: items ({prompt or messages, response}) and/or pairs
  POST /get_reward   OpenRLHF's remote reward protocol ({"query", "prompts", "labels"} -> {"rewards", ...})
  GET  /health       liveness/readiness (503 while draining, so load balancers stop sending)
  GET  /v1/models    the served model, its input format, max length and truncation policy
  GET  /metrics      Prometheus text (see :mod:`rewardkit.serve.metrics`)
  GET  /openapi.json, /docs, /redoc   the API schema and its rendered documentation

Every endpoint but ``/health`` requires the bearer key when one is configured (the schema and docs
included). Every answer is JSON (``/metrics`` and the docs pages aside), errors too. Scoring runs in one
model thread fed by the dynamic batcher; the event loop only parses, queues and answers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from rewardkit.scoring import Scorer
from rewardkit.serve.engine import ItemResult, ScoringEngine
from rewardkit.serve.metrics import CONTENT_TYPE, ServerMetrics
from rewardkit.serve.protocols import openrlhf_scores, split_counts, split_query, strip_tokens
from rewardkit.serve.safety import (
    BodyMiddleware,
    CancelledAnswerMiddleware,
    MetricsMiddleware,
    bearer_auth,
    install_error_handlers,
)
from rewardkit.serve.schemas import (
    ErrorBody,
    Health,
    ItemScore,
    ModelCard,
    ModelList,
    OpenRLHFRequest,
    OpenRLHFResponse,
    PairScore,
    ScoreRequest,
    ScoreResponse,
    Usage,
)
from rewardkit.serve.service import ScoringService
from rewardkit.serve.settings import ServeSettings

ENDPOINTS = frozenset({"/v1/score", "/get_reward", "/health", "/v1/models", "/metrics", "/openapi.json", "/docs",
                       "/redoc"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "malformed JSON or Content-Length"), (401, "missing or invalid API key"), (404, "unknown model"),
        (408, "body not received in time"), (413, "body or item count over the limit"),
        (415, "body not sent as JSON"), (422, "a request of the wrong shape, or an item the model cannot score"),
        (503, "queue full or shutting down (see Retry-After)"), (504, "not answered in time"))}


def create_app(scorer: Scorer, settings: ServeSettings | None = None) -> FastAPI:
    """The reward server for ``scorer``. Its lifespan starts the batcher and, on shutdown, refuses new
    requests and finishes the admitted ones (``app.state.service.begin_shutdown()`` starts that early)."""
    from rewardkit import __version__

    settings = settings or ServeSettings()
    engine = ScoringEngine(scorer, max_padding=settings.max_padding)
    metrics = ServerMetrics()
    service = ScoringService(engine, settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.begin_shutdown()
            await service.drain()

    app = FastAPI(title="rewardkit reward server", version=__version__, lifespan=lifespan,
                  description="Batched reward-model scoring; speaks rewardkit's API and OpenRLHF's /get_reward.",
                  openapi_url=None, docs_url=None, redoc_url=None)  # served below, behind the key
    app.state.service = service
    app.state.settings = settings
    install_error_handlers(app)
    # the last added runs first: metrics see every answer (413, 408, 499 too), then shutdown cancellations
    # are answered 503, then the body is read (limit, timeout) and the app is cancelled if the client leaves
    app.add_middleware(BodyMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(CancelledAnswerMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=ENDPOINTS)
    auth = [Depends(bearer_auth(settings.api_key))]
    _add_scoring_routes(app, service, auth)
    _add_info_routes(app, service, metrics, auth)
    _add_doc_routes(app, auth)
    return app


def _add_scoring_routes(app: FastAPI, service: ScoringService, auth: list[Any]) -> None:
    engine = service.engine

    @app.post("/v1/score", response_model=ScoreResponse, response_model_exclude_none=True, responses=_ERRORS,
              dependencies=auth, summary="Score items and/or preference pairs")
    async def score(request: ScoreRequest) -> ScoreResponse:
        if request.model is not None and request.model != engine.model_id:
            raise HTTPException(404, f"model {request.model!r} is not served here; this server serves "
                                     f"{engine.model_id!r} (omit 'model' to use it)")
        results = await service.score_units(request.units(), "/v1/score")
        return _score_response(engine.model_id, results, len(request.items))

    @app.post("/get_reward", response_model=OpenRLHFResponse, responses=_ERRORS, dependencies=auth,
              summary="OpenRLHF remote reward model protocol")
    async def get_reward(request: OpenRLHFRequest, response: Response) -> OpenRLHFResponse:
        prompts: Sequence[str | None] = request.prompts or [None] * len(request.query)
        splits = [split_query(strip_tokens(q, engine.pad_tokens), p, engine.marker)
                  for q, p in zip(request.query, prompts, strict=True)]
        results = await service.score_splits(splits, "/get_reward")
        bad = [(i, r.error) for i, r in enumerate(results) if r.error is not None]
        if bad:  # OpenRLHF reads one number per query: refuse rather than invent one
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise HTTPException(422, f"query {bad[0][0]}: {bad[0][1]}{more}; this protocol has no per-query error, "
                                     "so no rewards are returned (/v1/score answers the other items)")
        response.headers["X-Rewardkit-Split"] = split_counts([s.rule for s in splits])
        rewards = np.array([r.reward for r in results], dtype=np.float64)
        logs = {"truncated": [float(r.truncated) for r in results],
                "unsplit": [float(s.rule == "whole") for s in splits], **_extra_columns(results)}
        return OpenRLHFResponse(rewards=rewards.tolist(),
                                scores=openrlhf_scores(rewards, service.settings.openrlhf_scores).tolist(),
                                extra_logs=logs)


def _add_info_routes(app: FastAPI, service: ScoringService, metrics: ServerMetrics, auth: list[Any]) -> None:
    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "draining"}},
             summary="Liveness and readiness")
    async def health(response: Response) -> Health:
        if service.draining:
            response.status_code = 503
        return Health(status="draining" if service.draining else "ok", model=service.engine.model_id,
                      queue_depth=service.batcher.queue_depth, pending_items=service.batcher.pending_items)

    @app.get("/v1/models", response_model=ModelList, responses={401: _ERRORS[401]}, dependencies=auth,
             summary="The served model")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(**service.engine.describe())])

    @app.get("/metrics", response_class=Response, responses={401: _ERRORS[401]}, dependencies=auth,
             summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def _add_doc_routes(app: FastAPI, auth: list[Any]) -> None:
    """FastAPI's schema and docs pages, behind the key like every other endpoint but /health (a browser
    cannot send the key: with one set, fetch /openapi.json with it instead)."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=auth)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


def _item(r: ItemResult) -> ItemScore:
    if r.error is not None:  # JSON has no NaN or infinity: the item says why it has no reward
        return ItemScore(truncated=r.truncated, error=r.error)
    return ItemScore(reward=r.reward, truncated=r.truncated, objectives=r.objectives, uncertainty=r.uncertainty)


def _score_response(model: str, results: list[ItemResult], n_items: int) -> ScoreResponse:
    items = [_item(r) for r in results[:n_items]]
    rest = results[n_items:]
    pairs = [PairScore(chosen=_item(c), rejected=_item(r), margin=_margin(c, r))
             for c, r in zip(rest[0::2], rest[1::2], strict=True)]
    return ScoreResponse(model=model, items=items, pairs=pairs,
                         usage=Usage(items=len(results), tokens=sum(r.tokens for r in results)))


def _margin(chosen: ItemResult, rejected: ItemResult) -> float | None:
    if chosen.error or rejected.error:
        return None
    margin = chosen.reward - rejected.reward
    return margin if math.isfinite(margin) else None  # two huge finite rewards can differ by more than a float


def _extra_columns(results: list[ItemResult]) -> dict[str, list[float]]:
    """Per-objective rewards and uncertainty as OpenRLHF ``extra_logs`` columns, when the model has them."""
    out: dict[str, list[float]] = {}
    if results and results[0].objectives:
        for name in results[0].objectives:
            out[f"objective/{name}"] = [float((r.objectives or {}).get(name, 0.0)) for r in results]
    if results and results[0].uncertainty is not None:
        out["uncertainty"] = [float(r.uncertainty or 0.0) for r in results]
    return out
