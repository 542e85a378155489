"""A client for ``rewardkit serve``: sync and async, retries with backoff, one batch split across servers.

    with RewardClient(["http://10.0.0.1:8000", "http://10.0.0.2:8000"], api_key=key) as client:
        result = client.score([{"prompt": "Hi", "response": "Hello!"}, ("2+2?", "4")])
        result.rewards                  # [float, float], in input order

A batch is cut into one contiguous part per URL (and parts of at most ``max_items_per_request``), sent
concurrently, and put back together in order. A part that fails with a connection error, a timeout or
a 408/429/500/502/503/504 is retried (``retries`` times, exponential backoff with jitter, at least the
server's ``Retry-After``), each retry on the next URL, so one dead replica does not fail the batch.
Other 4xx answers are the caller's mistake and raise :class:`RewardServerError` at once, with the
server's message.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_ENDPOINT_SUFFIXES = ("/get_reward", "/v1/score")
Item = Mapping[str, Any] | tuple[Any, Any]


class RewardServerError(RuntimeError):
    """The server refused a request (``status``) or could not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        self.status, self.url = status, url
        super().__init__(message)


@dataclass(frozen=True)
class ItemScore:
    """One item's answer; ``reward`` is None and ``error`` says why when the server could not score it
    (e.g. the model produced a non-finite reward for this item)."""

    reward: float | None
    truncated: bool
    objectives: dict[str, float] | None = None
    uncertainty: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class PairScore:
    """A pair's answer; ``margin`` is None when either side could not be scored."""

    chosen: ItemScore
    rejected: ItemScore
    margin: float | None


@dataclass(frozen=True)
class ScoreResult:
    """The server's answer for a batch of items, in input order."""

    model: str
    items: list[ItemScore]

    @property
    def rewards(self) -> list[float]:
        return [i.reward for i in self.items]

    @property
    def truncated(self) -> list[bool]:
        return [i.truncated for i in self.items]


@dataclass(frozen=True)
class _Part:
    url_index: int
    start: int
    stop: int


class RewardClient:
    """Talks to one or more reward servers; safe to share between threads (one instance per event loop
    for the async methods)."""

    def __init__(
        self, urls: str | Sequence[str] = DEFAULT_URL, *, api_key: str | None = None, timeout: float = 180.0,
        retries: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 10.0, max_items_per_request: int = 1024,
        transport: httpx.BaseTransport | None = None, async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        raw = [urls] if isinstance(urls, str) else list(urls)
        self.urls = [_base_url(part) for u in raw for part in u.split(",") if part.strip()]
        if not self.urls:
            raise ValueError("no server URL given")
        if retries < 0 or max_items_per_request < 1:
            raise ValueError("retries must be >= 0 and max_items_per_request >= 1")
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.max_items_per_request = max_items_per_request
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._transport, self._async_transport = transport, async_transport
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._random = random.Random()
        self._turn = itertools.count()

    # ------------------------------------------------------------------ public API (sync)

    def score(self, items: Sequence[Item]) -> ScoreResult:
        """Rewards of ``items``: mappings ``{"prompt" or "messages", "response"}`` or (prompt, response)
        tuples, where prompt and response are text or lists of ``{"role", "content"}`` messages."""
        payload = [_item(x) for x in items]
        answers = self._run_parts(len(payload), lambda p: ("/v1/score", {"items": payload[p.start:p.stop]}))
        return _score_result(answers)

    def score_pairs(self, pairs: Sequence[Mapping[str, Any]]) -> list[PairScore]:
        """Score ``{"prompt" or "messages", "chosen", "rejected"}`` pairs; margins are chosen - rejected."""
        payload = [dict(p) for p in pairs]
        answers = self._run_parts(len(payload), lambda p: ("/v1/score", {"pairs": payload[p.start:p.stop]}))
        return [_pair(x) for a in answers for x in a["pairs"]]

    def get_reward(self, queries: Sequence[str], prompts: Sequence[str] | None = None,
                   labels: Sequence[Any] | None = None) -> dict[str, Any]:
        """OpenRLHF's protocol: ``{"rewards", "scores", "extra_logs"}`` for decoded prompt+response texts."""
        answers = self._run_parts(len(queries), lambda p: ("/get_reward", _openrlhf(queries, prompts, labels, p)))
        return _merge_openrlhf(answers)

    def health(self, url_index: int = 0) -> dict[str, Any]:
        return self._client().get(self.urls[url_index] + "/health", headers=self._headers).json()

    def models(self) -> dict[str, Any]:
        return self._get("/v1/models")

    # ------------------------------------------------------------------ public API (async)

    async def ascore(self, items: Sequence[Item]) -> ScoreResult:
        payload = [_item(x) for x in items]
        answers = await self._arun_parts(len(payload), lambda p: ("/v1/score", {"items": payload[p.start:p.stop]}))
        return _score_result(answers)

    async def ascore_pairs(self, pairs: Sequence[Mapping[str, Any]]) -> list[PairScore]:
        payload = [dict(p) for p in pairs]
        answers = await self._arun_parts(len(payload), lambda p: ("/v1/score", {"pairs": payload[p.start:p.stop]}))
        return [_pair(x) for a in answers for x in a["pairs"]]

    async def aget_reward(self, queries: Sequence[str], prompts: Sequence[str] | None = None,
                          labels: Sequence[Any] | None = None) -> dict[str, Any]:
        answers = await self._arun_parts(
            len(queries), lambda p: ("/get_reward", _openrlhf(queries, prompts, labels, p)))
        return _merge_openrlhf(answers)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        self.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ splitting and retries

    def parts(self, n: int) -> list[_Part]:
        """Contiguous parts of ``n`` items: one per URL (near-equal), each cut to ``max_items_per_request``.
        Successive batches start at successive URLs, so single-item calls are spread round-robin."""
        k = len(self.urls)
        first = next(self._turn) % k
        out = []
        for u in range(k):
            lo, hi = u * n // k, (u + 1) * n // k
            for s in range(lo, hi, self.max_items_per_request):
                out.append(_Part((first + u) % k, s, min(hi, s + self.max_items_per_request)))
        return out

    def _run_parts(self, n: int, request: Any) -> list[dict[str, Any]]:
        parts = self.parts(n)
        if not parts:  # an empty batch: nothing to send
            return []
        if len(parts) == 1:
            return [self._post(*request(parts[0]), parts[0].url_index)]
        with ThreadPoolExecutor(max_workers=min(len(parts), 4 * len(self.urls))) as pool:
            return list(pool.map(lambda p: self._post(*request(p), p.url_index), parts))

    async def _arun_parts(self, n: int, request: Any) -> list[dict[str, Any]]:
        parts = self.parts(n)
        return list(await asyncio.gather(*(self._apost(*request(p), p.url_index) for p in parts)))

    def _post(self, path: str, payload: dict[str, Any], first: int) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            url = self.urls[(first + attempt) % len(self.urls)]
            try:
                response: httpx.Response | Exception = self._client().post(url + path, json=payload,
                                                                            headers=self._headers)
            except httpx.TransportError as e:
                response = e
            result, error, delay = self._outcome(response, url + path, attempt)
            if error is None:
                return result
            time.sleep(delay)
        raise AssertionError("unreachable")

    async def _apost(self, path: str, payload: dict[str, Any], first: int) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            url = self.urls[(first + attempt) % len(self.urls)]
            try:
                response: httpx.Response | Exception = await self._aclient().post(url + path, json=payload,
                                                                                   headers=self._headers)
            except httpx.TransportError as e:
                response = e
            result, error, delay = self._outcome(response, url + path, attempt)
            if error is None:
                return result
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _outcome(self, response: httpx.Response | Exception, where: str, attempt: int) -> tuple[Any, Any, float]:
        """``(json, None, 0)`` on success; ``(None, error, delay)`` to retry; raises when out of tries or
        when the error is not worth retrying."""
        if isinstance(response, Exception):
            error = RewardServerError(f"{where}: {type(response).__name__}: {response}", url=where)
            hint = None
        elif response.status_code < 400:
            try:
                return response.json(), None, 0.0
            except ValueError:
                raise RewardServerError(f"{where}: HTTP {response.status_code} but the body is not JSON (is this a "
                                        f"rewardkit server?): {response.text[:200]!r}", url=where) from None
        else:
            error = RewardServerError(f"{where}: HTTP {response.status_code}: {_message(response)}",
                                      status=response.status_code, url=where)
            if response.status_code not in RETRY_STATUS:
                raise error
            hint = _retry_after(response)
        if attempt >= self.retries:
            raise error
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * self._random.uniform(0.5, 1.0)
        return None, error, max(delay, min(hint or 0.0, self.max_backoff_s))

    def _get(self, path: str) -> dict[str, Any]:
        response = self._client().get(self.urls[0] + path, headers=self._headers)
        if response.status_code >= 400:
            raise RewardServerError(f"{self.urls[0]}{path}: HTTP {response.status_code}: {_message(response)}",
                                    status=response.status_code, url=self.urls[0] + path)
        return response.json()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(timeout=self._timeout, transport=self._transport)
            return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self._timeout, transport=self._async_transport)
        return self._async


def read_api_key(path: str) -> str:
    """The API key stored in ``path`` (surrounding whitespace removed): keep keys in files, not on command
    lines, where other users of the machine could read them."""
    with open(path, encoding="utf-8") as f:
        key = f.read().strip()
    if not key:
        raise ValueError(f"{path}: the API key file is empty")
    return key


def _base_url(url: str) -> str:
    """``http://host:port`` from a server URL, also from OpenRLHF-style ``.../get_reward`` URLs."""
    url = url.strip().rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        url = url.removesuffix(suffix)
    return url


def _item(x: Item) -> dict[str, Any]:
    if isinstance(x, Mapping):
        return dict(x)
    prompt, response = x
    return {"response": response} if prompt is None else {"prompt": prompt, "response": response}


def _openrlhf(queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None,
              p: _Part) -> dict[str, Any]:
    body: dict[str, Any] = {"query": list(queries[p.start:p.stop])}
    if prompts:
        body["prompts"] = list(prompts[p.start:p.stop])
    if labels:
        body["labels"] = list(labels[p.start:p.stop])
    return body


def _item_score(d: Mapping[str, Any]) -> ItemScore:
    reward = d.get("reward")
    return ItemScore(None if reward is None else float(reward), bool(d.get("truncated", False)), d.get("objectives"),
                     d.get("uncertainty"), d.get("error"))


def _pair(d: Mapping[str, Any]) -> PairScore:
    margin = d.get("margin")
    return PairScore(_item_score(d["chosen"]), _item_score(d["rejected"]), None if margin is None else float(margin))


def _score_result(answers: list[dict[str, Any]]) -> ScoreResult:
    return ScoreResult(str(answers[0].get("model", "")) if answers else "",
                       [_item_score(x) for a in answers for x in a.get("items", [])])


def _merge_openrlhf(answers: list[dict[str, Any]]) -> dict[str, Any]:
    keys = list(answers[0].get("extra_logs", {})) if answers else []
    return {"rewards": [r for a in answers for r in a["rewards"]],
            "scores": [s for a in answers for s in a.get("scores", a["rewards"])],
            "extra_logs": {k: [v for a in answers for v in a["extra_logs"].get(k, [])] for k in keys}}


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, use the backoff
        return None
