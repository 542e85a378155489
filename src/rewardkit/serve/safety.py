"""What keeps the server safe under bad input and bad clients: body limits, bearer-key authentication,
JSON errors, and no work for clients that are gone.

Every error is a JSON object ``{"error": "<what is wrong>", "detail": [...]}``: malformed JSON is 400,
a body of the wrong shape 422 (``detail`` lists each problem with its location), a body not sent as
JSON 415, an over-large body 413 (checked against ``Content-Length`` and again while the body streams
in, so chunked uploads cannot slip past), a body that does not arrive in time 408, a missing or wrong
key 401. Bad input never produces a 5xx. A request whose client disconnects is cancelled (and counted
as 499); one the server itself cancels at shutdown is answered 503, never uvicorn's plain-text 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewardkit.serve.metrics import CLIENT_CLOSED, ServerMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("rewardkit.serve")
CLOSE = (("connection", "close"),)
bearer_scheme = HTTPBearer(auto_error=False, description="the key in the server's --api-key-file")


def error_body(message: str, detail: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": message} if detail is None else {"error": message, "detail": detail}


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
           *((k.encode(), v.encode()) for k, v in headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class BodyMiddleware:
    """Read a request's whole body before the app sees it, then run the app until the client goes away.

    - an invalid ``Content-Length`` is 400; a body over ``max_bytes`` is 413, by ``Content-Length`` and by
      counting the stream (chunked uploads cannot slip past);
    - a body that has not fully arrived ``timeout_s`` after the headers is 408 and the connection is
      closed (a slow or stalled upload must not hold a connection);
    - the (bounded) body is replayed to the app, which is cancelled if the client disconnects before any
      answer started: a request nobody waits for stops there, and its queued items are never scored.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not declared.strip().isdigit():
            await _send_json(send, 400, error_body(f"invalid Content-Length header {declared.decode('latin-1')!r}"),
                             CLOSE)
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._too_large(send, declared.decode("latin-1"))
            return
        body = await self._read(receive, send)
        if body is not None:
            await _until_disconnect(self.app, scope, body, receive, send)

    async def _read(self, receive: Receive, send: Send) -> bytes | None:
        """The body, or None when it was answered (408, 413) or the client went away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body = bytearray()
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                await _send_json(send, 408, error_body(
                    f"request body not received within {self.timeout_s:g} s ({len(body)} bytes arrived); send the "
                    "whole body at once, or raise the server's --body-timeout"), CLOSE)
                return None
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(send, f"more than {len(body)}")
                return None
            more = message.get("more_body", False)
        return bytes(body)

    async def _too_large(self, send: Send, size: str) -> None:
        limit = self.max_bytes
        await _send_json(send, 413, error_body(f"request body too large ({size} bytes); the limit is {limit} bytes: "
                                               "split the batch into smaller requests"), CLOSE)


async def _until_disconnect(app: ASGIApp, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
    """Run ``app`` with ``body`` replayed; cancel it when the client disconnects before an answer started."""
    gone = asyncio.Event()
    started = False
    replayed = False

    async def app_receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def app_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the body is read: nothing else but the disconnect (or the end of the response) comes
        gone.set()

    task = asyncio.ensure_future(app(scope, app_receive, app_send))
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and not started:  # the client left before its answer: stop the work
            task.cancel()
        await asyncio.wait({task})
    finally:
        for t in (task, watcher):
            t.cancel()
        await asyncio.wait({task, watcher})  # never leave a child running (we may be cancelled ourselves)
    if not task.cancelled():
        task.result()  # the app's own exception, if any, goes on to the error handlers


class MetricsMiddleware:
    """Count requests by endpoint and status, time them, and track how many are in flight. A request whose
    client disconnected before any answer is counted as 499 (nginx's "client closed request"), not 500."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, endpoints: frozenset[str]) -> None:
        self.app, self.metrics, self.endpoints = app, metrics, endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
        status: int | None = None
        gone = False
        t0 = time.perf_counter()

        async def watching_receive() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, watching_receive, recording_send)
        finally:
            self.metrics.inflight.dec()
            answered = status if status is not None else CLIENT_CLOSED if gone else 500
            self.metrics.observe_request(endpoint, answered, time.perf_counter() - t0)


class CancelledAnswerMiddleware:
    """Answer JSON 503 when the server cancels a request it has not answered yet: uvicorn does so to the
    requests still open past its graceful-shutdown timeout, and would answer them a plain-text 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not started:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await _send_json(send, 503, error_body(
                        "server stopped before this request was answered (shutting down); send it to another "
                        "replica or retry later"), [*CLOSE, ("retry-after", "5")])
            raise


def bearer_auth(api_key: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that requires ``Authorization: Bearer <api_key>`` (constant-time comparison);
    a no-op when ``api_key`` is None."""
    expected = api_key.encode() if api_key is not None else None

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if credentials is None or not hmac.compare_digest(given, expected):
            what = "missing" if credentials is None else "invalid"
            raise HTTPException(401, f"{what} API key: send the header 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": 'Bearer realm="rewardkit"'})

    return check


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for every error; validation problems listed with their location."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [_clean(e) for e in exc.errors()]
        content_type = request.headers.get("content-type", "")
        if any(d["type"] == "model_attributes_type" and d["loc"] == ["body"] for d in detail) and (
                "json" not in content_type.lower()):
            return JSONResponse(error_body("the body must be JSON sent with the header 'Content-Type: "
                                           f"application/json' (got {content_type or 'no Content-Type'})"), 415)
        status = 400 if any(d["type"] == "json_invalid" for d in detail) else 422
        head = "malformed JSON" if status == 400 else "invalid request"
        summary = "; ".join(f"{d['where']}: {d['msg']}" for d in detail[:3])
        more = f" (and {len(detail) - 3} more)" if len(detail) > 3 else ""
        return JSONResponse(error_body(f"{head}: {summary}{more}", detail), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}"), status_code=500)


def _clean(error: Any) -> dict[str, Any]:
    """A pydantic error as plain JSON, without echoing the (possibly huge) input back."""
    loc = [str(x) for x in error.get("loc", ())]
    msg = str(error.get("msg", ""))
    kind = str(error.get("type", ""))
    if kind == "json_invalid":  # loc is ("body", character offset)
        reason = (error.get("ctx") or {}).get("error")
        where = f"character {loc[1]}" if len(loc) > 1 else "body"
        return {"loc": loc, "where": where, "msg": f"{reason}" if reason else msg, "type": kind}
    where = ".".join(loc[1:] if loc[:1] == ["body"] and len(loc) > 1 else loc) or "body"
    return {"loc": loc, "where": where, "msg": msg, "type": kind}
