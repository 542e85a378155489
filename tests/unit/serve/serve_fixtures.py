"""Helpers shared by the server, client and integration tests: tiny reward models, the app in-process
(ASGI, with its lifespan) and a live uvicorn server on a free loopback port in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from rewardkit.scoring import Scorer
from rewardkit.serve.app import create_app
from rewardkit.serve.settings import ServeSettings

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
