"""Helpers shared by the server, client and integration tests: tiny reward models, a scorer that can be held
mid-batch, the app in-process (ASGI, with its lifespan; or one raw ASGI call whose body and disconnect
the test controls), a live uvicorn server on a free loopback port in a background thread, and raw HTTP
over a socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from rewardkit.scoring import LengthScorer, Scorer
from rewardkit.serve.app import create_app
from rewardkit.serve.settings import ServeSettings
from rewardkit.types import ScoreOutput

T = TypeVar("T")
TINY_MAX_LENGTH = 64


def tiny_reward_models(root: Path) -> dict[str, Path]:
    """Random-head reward models on the tiny BERT (text_pair) and Llama (chat template) backbones, saved
    as rewardkit folders under ``root`` (built once; later calls reuse them)."""
    from rewardkit.models.reward_model import build_reward_model, save_reward_model
    from tiny_models import tiny_bert, tiny_llama

    out = {}
    for name, builder in (("bert", tiny_bert), ("llama", tiny_llama)):
        folder = root / f"{name}-rm"
        if not (folder / "rewardkit.json").exists():
            rm = build_reward_model(str(builder(root / f"{name}-backbone")), max_length=TINY_MAX_LENGTH)
            save_reward_model(rm, folder, {"note": "random tiny test model"})
        out[name] = folder
    return out


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class GatedScorer(LengthScorer):
    """The length scorer, but each model call waits until ``gate`` is set (so a queue builds up behind it);
    ``entered`` is set once a call began, and ``scored`` counts the items that reached the model."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.scored = 0

    def score(self, prompts: Any, responses: Any, conversational: Any = True) -> ScoreOutput:
        self.entered.set()
        self.gate.wait(30)
        self.scored += len(responses)
        return super().score(prompts, responses, conversational)


async def until(condition: Any) -> None:
    """Wait (yielding to the event loop) until ``condition()`` holds; fails after 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.002)


@dataclass
class AsgiCall:
    """One POST sent straight through the app's ASGI interface: ``sent`` holds what the app answered;
    setting ``disconnect`` makes the client go away; ``task`` runs the app (as a server would)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    disconnect: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


def asgi_call(app: Any, path: str, body: bytes | None, *, length: int | None = None) -> AsgiCall:
    """Start a POST of ``body`` to ``path`` (the app's lifespan must be running). ``body=None`` never
    delivers a body (a stalled upload declaring ``length`` bytes)."""
    call = AsgiCall()
    delivered = body is None

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await call.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        call.sent.append(message)

    size = len(body) if body is not None else (length or 0)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"rewardkit.test"), (b"content-type", b"application/json"),
                         (b"content-length", str(size).encode())],
             "client": ("127.0.0.1", 50000), "server": ("rewardkit.test", 80), "state": {}}
    call.task = asyncio.ensure_future(app(scope, receive, send))
    return call


@contextlib.asynccontextmanager
async def asgi_client(app: Any, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in-process, with the app's lifespan (batcher) running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://rewardkit.test", headers=headers) as c:
            yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(scorer: Scorer, settings: ServeSettings | None = None) -> Iterator[str]:
    """Serve ``scorer`` with uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    settings = settings or ServeSettings()
    settings = ServeSettings(**{**settings.__dict__, "port": free_port()})
    server = uvicorn.Server(uvicorn.Config(create_app(scorer, settings), host="127.0.0.1", port=settings.port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def raw_request(port: int, path: str, body: bytes, *, declared: int | None = None) -> socket.socket:
    """A socket that has sent a POST of ``body`` to ``path`` declaring ``declared`` bytes (default: all of
    them), and nothing more: the caller stalls it, reads from it or closes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if declared is None else declared}\r\n\r\n")
    sock.sendall(head.encode() + body)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the one answer on ``sock``, read until the server
    closes the connection (a socket timeout here means it never did)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body
