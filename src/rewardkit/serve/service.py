"""The scoring path of one request: admit (or refuse), tokenize off the event loop, batch, answer.

Refusals are HTTP errors with JSON bodies: 413 for more items than a request may carry, 503 with
``Retry-After`` when the queue is full or the server is draining, 504 when the request outlives
``request_timeout_s``, 422 when the model cannot encode an item.
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
        metrics.queue_depth.read = lambda: self.batcher.queue_depth
        metrics.pending.read = lambda: self.batcher.pending_items
        metrics.draining.read = lambda: float(self.draining)

    @property
    def draining(self) -> bool:
        return self.batcher.closing

    def start(self) -> None:
        self._prep = ThreadPoolExecutor(self.settings.prep_threads, thread_name_prefix="rewardkit-tokenize")
        self.batcher.start()

    def begin_shutdown(self) -> None:
        """From now on new scoring requests get 503; admitted ones finish (SIGTERM calls this)."""
        if not self.batcher.closing:
            log.info("shutdown: refusing new requests, finishing %d pending items", self.batcher.pending_items)
        self.batcher.begin_shutdown()

    async def drain(self) -> None:
        """Finish every admitted request, then stop the worker and the threads."""
        await self.batcher.drain(self.settings.drain_timeout_s)
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
            self.metrics.rejected.inc(reason="queue_full")
            raise HTTPException(503, str(e), headers={"Retry-After": str(e.retry_after_s)}) from None
        except ShuttingDownError as e:
            self.metrics.rejected.inc(reason="shutting_down")
            raise HTTPException(503, str(e), headers={"Retry-After": "5", "Connection": "close"}) from None
        except asyncio.TimeoutError:
            self.metrics.rejected.inc(reason="timeout")
            raise HTTPException(504, f"not answered within {self.settings.request_timeout_s} s (the server is "
                                     "overloaded); retry later or send smaller requests") from None
        except ItemError as e:
            raise HTTPException(422, str(e)) from None
        self.metrics.items.inc(len(results), endpoint=endpoint)
        self.metrics.truncated.inc(sum(r.truncated for r in results), endpoint=endpoint)
        return results

    async def _admit_and_run(self, n: int, prepare: Callable[[], list[PreparedItem]]) -> list[ItemResult]:
        async with self.batcher.slots(n):
            loop = asyncio.get_running_loop()
            items = await loop.run_in_executor(self._prep, prepare)
            return await self.batcher.submit(items)

    def _observe(self, stats: BatchStats) -> None:
        self.metrics.observe_batch(stats.size, stats.tokens, stats.model_s, stats.max_wait_s)
