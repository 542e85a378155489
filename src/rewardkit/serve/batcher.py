"""Dynamic batching: items from many requests share model calls; the event loop never runs the model.

Each request reserves room for its items (:meth:`DynamicBatcher.slots`; beyond ``max_queue_items``
admitted items it is refused with :class:`QueueFullError`, which the server answers 503 + Retry-After),
then submits them and awaits one future. One worker task takes items in arrival order into a batch until

- the batch's padded size (items x longest item, in tokens) would pass ``max_batch_tokens``, or
- it holds ``max_batch_size`` items, or
- the oldest item in it has waited ``max_wait_s`` (more items may arrive meanwhile),

runs ``score_fn`` on that batch in a dedicated single model thread, and hands each result back to its
request; a request's future resolves when all its items are scored. A request that is cancelled
(timeout, client gone) has its queued items dropped at once; a batch already in the model finishes and
its results for that request are discarded. :meth:`drain` refuses new requests, finishes every admitted
one, then stops the worker; :meth:`abort` fails whatever is left (a drain past its deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 -- an item
R = TypeVar("R")  # its result

log = logging.getLogger("rewardkit.serve")
DEADLINE_PASSED = ("server is shutting down and its drain timeout passed before this request was answered; send it to "
                   "another replica or retry later")


class QueueFullError(Exception):
    """The queue has no room for the request's items; retry after ``retry_after_s``."""

    def __init__(self, pending: int, capacity: int, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"server busy: {pending} items queued of {capacity}; retry in {retry_after_s} s")


class ShuttingDownError(Exception):
    """The server is draining for shutdown and takes no new requests (or, past its drain deadline, cannot
    finish an admitted one)."""

    def __init__(self, message: str = "server is shutting down; send the request to another replica or retry "
                                      "later") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class BatchStats:
    """One batch: items, their tokens (unpadded), seconds in the model, the oldest item's wait."""

    size: int
    tokens: int
    model_s: float
    max_wait_s: float


@dataclass(eq=False)
class _Request(Generic[R]):
    future: asyncio.Future[list[R]]
    results: list[Any]
    remaining: int


@dataclass(eq=False)
class _Entry(Generic[I]):
    request: _Request[Any]
    index: int
    item: I
    cost: int
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher(Generic[I, R]):
    """Groups items of concurrent requests into token-budget batches scored by ``score_fn`` in one thread."""

    def __init__(
        self, score_fn: Callable[[list[I]], Sequence[R]], cost: Callable[[I], int], *, max_batch_tokens: int,
        max_batch_size: int, max_wait_s: float, max_queue_items: int,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self.score_fn, self.cost = score_fn, cost
        self.max_batch_tokens, self.max_batch_size = max_batch_tokens, max_batch_size
        self.max_wait_s, self.max_queue_items = max_wait_s, max_queue_items
        self.on_batch = on_batch
        self._queue: deque[_Entry[I]] = deque()
        self._inflight: list[_Entry[I]] = []  # the batch in the model now
        self._pending = 0  # items admitted (preparing, queued or in the model) and not yet answered
        self._closing = False
        self._aborted = False  # past the drain deadline: admitted requests fail instead of being scored
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._rate = 0.0  # items/s of recent model calls (exponential average), for Retry-After

    # ------------------------------------------------------------------ state

    @property
    def queue_depth(self) -> int:
        """Items waiting for the model."""
        return len(self._queue)

    @property
    def pending_items(self) -> int:
        return self._pending

    @property
    def closing(self) -> bool:
        return self._closing

    def retry_after_s(self) -> int:
        """Seconds until the queue has likely emptied (1..60), from the recent scoring rate."""
        if self._rate <= 0:
            return 1
        return int(min(60, max(1, math.ceil(self._pending / self._rate))))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker on the running event loop (and the model thread); after :meth:`drain` this
        starts afresh (an app whose lifespan runs again)."""
        if self._task is not None and not self._task.done():
            return
        self._closing = self._aborted = False
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardkit-model")
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="rewardkit-batcher")

    def begin_shutdown(self) -> None:
        """Refuse new requests from now on; admitted ones still finish. Safe to call from any thread or a
        signal handler: it sets a flag and asks the loop to wake the worker."""
        self._closing = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Refuse new requests, finish every admitted one, stop the worker and the model thread. After
        ``timeout_s`` the remaining requests fail with :class:`ShuttingDownError`."""
        self.begin_shutdown()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except asyncio.TimeoutError:
                self.abort()
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def abort(self) -> None:
        """Fail every admitted request now with :class:`ShuttingDownError`: queued and in-model items (the
        batch in the model runs on, its results dropped), and requests still being prepared when they
        submit. Idempotent."""
        self.begin_shutdown()
        if self._aborted:
            return
        self._aborted = True
        stuck = [*self._inflight, *self._queue]
        if self._pending:
            log.error("drain deadline passed with %d items pending; failing their requests", self._pending)
        self._queue.clear()
        self._fail(stuck, ShuttingDownError(DEADLINE_PASSED))

    # ------------------------------------------------------------------ requests

    @contextlib.asynccontextmanager
    async def slots(self, n: int) -> AsyncIterator[None]:
        """Reserve room for ``n`` items for the duration of the block (prepare, then :meth:`submit`)."""
        if self._closing:
            raise ShuttingDownError()
        if self._pending + n > self.max_queue_items:
            raise QueueFullError(self._pending, self.max_queue_items, self.retry_after_s())
        self._pending += n
        try:
            yield
        finally:
            self._pending -= n
            self._wake()

    async def submit(self, items: Sequence[I]) -> list[R]:
        """Queue ``items`` (inside :meth:`slots`) and return their results in order. Cancelling the caller
        drops its queued items before they reach the model."""
        if self._aborted:
            raise ShuttingDownError(DEADLINE_PASSED)
        if self._task is None or self._task.done():
            raise ShuttingDownError()
        if not items:
            return []
        loop = asyncio.get_running_loop()
        request: _Request[R] = _Request(loop.create_future(), [None] * len(items), len(items))
        self._queue.extend(_Entry(request, i, item, self.cost(item)) for i, item in enumerate(items))
        self._wake()
        try:
            return await request.future
        except asyncio.CancelledError:  # timed out or the client is gone: nobody wants these results
            self._queue = deque(e for e in self._queue if e.request is not request)
            raise

    # ------------------------------------------------------------------ worker

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                if self._closing and self._pending == 0:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = await self._collect()
            if batch:
                await self._execute(batch)

    def _take(self, batch: list[_Entry[I]], longest: int) -> tuple[int, bool]:
        """Move queued items into ``batch`` while they fit; returns the new longest and whether it is full."""
        while self._queue and len(batch) < self.max_batch_size:
            entry = self._queue[0]
            if entry.request.future.done():  # cancelled or failed: skip its items
                self._queue.popleft()
                continue
            grown = max(longest, entry.cost)
            if batch and grown * (len(batch) + 1) > self.max_batch_tokens:
                return longest, True
            batch.append(self._queue.popleft())
            longest = grown
        return longest, len(batch) >= self.max_batch_size

    async def _collect(self) -> list[_Entry[I]]:
        """One batch: what fits now, topped up with arrivals until the oldest item's wait runs out."""
        assert self._wakeup is not None
        batch: list[_Entry[I]] = []
        longest = 0
        while True:
            longest, full = self._take(batch, longest)
            if full or not batch:
                return batch
            remaining = batch[0].enqueued + self.max_wait_s - time.monotonic()
            if remaining <= 0 or self._closing:
                return batch
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    async def _execute(self, batch: list[_Entry[I]]) -> None:
        batch = [e for e in batch if not e.request.future.done()]  # cancelled while the batch filled up
        if self._aborted:  # taken from the queue just before the abort
            self._fail(batch, ShuttingDownError(DEADLINE_PASSED))
            return
        if not batch:
            return
        loop = asyncio.get_running_loop()
        waited = time.monotonic() - batch[0].enqueued
        t0 = time.perf_counter()
        self._inflight = batch
        try:
            results = await loop.run_in_executor(self._executor, self.score_fn, [e.item for e in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"scorer returned {len(results)} results for {len(batch)} items")
        except Exception as exc:
            log.exception("scoring a batch of %d items failed", len(batch))
            self._fail(batch, exc)
            return
        finally:
            self._inflight = []
        seconds = time.perf_counter() - t0
        self._rate = 0.8 * self._rate + 0.2 * len(batch) / max(seconds, 1e-6) if self._rate else len(batch) / max(
            seconds, 1e-6)
        for e, result in zip(batch, results, strict=True):
            req = e.request
            if req.future.done():
                continue
            req.results[e.index] = result
            req.remaining -= 1
            if req.remaining == 0:
                req.future.set_result(req.results)
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(batch), sum(e.cost for e in batch), seconds, waited))

    @staticmethod
    def _fail(entries: Sequence[_Entry[Any]], exc: Exception) -> None:
        for e in entries:
            if not e.request.future.done():
                e.request.future.set_exception(exc)
