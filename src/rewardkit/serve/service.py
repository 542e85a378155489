"""The scoring path of one request: admit (or refuse), tokenize off the event loop, batch, answer.

Refusals are HTTP errors with JSON bodies: 413 for more items than a request may carry, 503 with
``Retry-After`` when the queue is full or the server is draining (also for admitted requests still
unanswered ``drain_timeout_s`` after shutdown began), 504 when the request outlives
``request_timeout_s``, 422 when the model cannot encode an item. A request whose caller is cancelled
(the client disconnected) has its queued items dropped before they reach the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from fastapi import HTTPException

from rewardkit.serve.batcher import BatchStats, DynamicBatcher, QueueFullError, ShuttingDownError
from rewardkit.serve.engine import ItemError, ItemResult, PreparedItem, ScoringEngine
from rewardkit.serve.metrics import ServerMetrics
from rewardkit.serve.protocols import SplitQuery
from rewardkit.serve.schemas import Units
from rewardkit.serve.settings import ServeSettings

log = logging.getLogger("rewardkit.serve")


class ScoringService:
    """Owns the batcher and the tokenizing threads of one app; started and drained by its lifespan."""

    def __init__(self, engine: ScoringEngine, settings: ServeSettings, metrics: ServerMetrics) -> None:
        self.engine, self.settings, self.metrics = engine, settings, metrics
        self.batcher: DynamicBatcher[PreparedItem, ItemResult] = DynamicBatcher(
            engine.score, lambda item: item.tokens, max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size, max_wait_s=settings.max_wait_ms / 1000,
            max_queue_items=settings.max_queue_items, on_batch=self._observe)
        self._prep: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_deadline: float | None = None  # loop time past which admitted requests are answered 503
        self._drain_timer: asyncio.TimerHandle | None = None
        metrics.watch(queue_depth=lambda: self.batcher.queue_depth, pending=lambda: self.batcher.pending_items,
                      draining=lambda: float(self.draining))

    @property
    def draining(self) -> bool:
        return self.batcher.closing

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._drain_deadline = None
        self._prep = ThreadPoolExecutor(self.settings.prep_threads, thread_name_prefix="rewardkit-tokenize")
        self.batcher.start()

    def begin_shutdown(self) -> None:
        """From now on new scoring requests get 503; admitted ones finish, and those still unanswered
        ``drain_timeout_s`` later are answered 503 (before uvicorn's own shutdown timeout would cancel them
        with a plain-text 500). Safe to call from any thread or a signal handler (SIGTERM's calls it)."""
        self.batcher.begin_shutdown()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._arm_drain_deadline)

    def _arm_drain_deadline(self) -> None:
        """Once: in ``drain_timeout_s`` fail whatever admitted work is left (runs on the loop)."""
        if self._loop is None or self._drain_deadline is not None:
            return
        log.info("shutdown: refusing new requests, finishing %d pending items", self.batcher.pending_items)
        self._drain_deadline = self._loop.time() + self.settings.drain_timeout_s
        self._drain_timer = self._loop.call_at(self._drain_deadline, self.batcher.abort)

    async def drain(self) -> None:
        """Finish every admitted request (until the drain deadline), then stop the worker and the threads."""
        self.begin_shutdown()
        self._arm_drain_deadline()
        assert self._loop is not None and self._drain_deadline is not None
        await self.batcher.drain(max(0.0, self._drain_deadline - self._loop.time()))
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        if self._prep is not None:
            self._prep.shutdown(wait=False)

    # ------------------------------------------------------------------ scoring

    async def score_units(self, units: Units, endpoint: str) -> list[ItemResult]:
        """Score (prompt, response, conversational) messages."""
        return await self._score(len(units), lambda: self.engine.prepare(units), endpoint)

    async def score_splits(self, splits: Sequence[SplitQuery], endpoint: str) -> list[ItemResult]:
        """Score split OpenRLHF queries."""
        return await self._score(len(splits), lambda: self.engine.prepare_texts(splits), endpoint)

    async def _score(self, n: int, prepare: Callable[[], list[PreparedItem]], endpoint: str) -> list[ItemResult]:
        limit = self.settings.max_items_per_request
        if n > limit:
            raise HTTPException(413, f"request has {n} items; this server takes at most {limit} per request "
                                     "(split the batch; RewardClient does this across several URLs)")
        try:
            results = await asyncio.wait_for(self._admit_and_run(n, prepare), self.settings.request_timeout_s)
        except QueueFullError as e:
            self.metrics.observe_rejected("queue_full")
            raise HTTPException(503, str(e), headers={"Retry-After": str(e.retry_after_s)}) from None
        except ShuttingDownError as e:
            self.metrics.observe_rejected("shutting_down")
            raise HTTPException(503, str(e), headers={"Retry-After": "5", "Connection": "close"}) from None
        except asyncio.TimeoutError:
            self.metrics.observe_rejected("timeout")
            raise HTTPException(504, f"not answered within {self.settings.request_timeout_s} s (the server is "
                                     "overloaded); retry later or send smaller requests") from None
        except ItemError as e:
            raise HTTPException(422, str(e)) from None
        non_finite = sum(r.error is not None for r in results)
        if non_finite:
            log.warning("%s: the model gave %d of %d items a non-finite value", endpoint, non_finite, len(results))
        self.metrics.observe_scored(endpoint, items=len(results), truncated=sum(r.truncated for r in results),
                                    non_finite=non_finite)
        return results

    async def _admit_and_run(self, n: int, prepare: Callable[[], list[PreparedItem]]) -> list[ItemResult]:
        async with self.batcher.slots(n):
            loop = asyncio.get_running_loop()
            items = await loop.run_in_executor(self._prep, prepare)
            return await self.batcher.submit(items)

    def _observe(self, stats: BatchStats) -> None:
        self.metrics.observe_batch(stats.size, stats.tokens, stats.model_s, stats.max_wait_s)
