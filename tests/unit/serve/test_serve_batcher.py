"""The dynamic batcher: batches by token budget, size and wait; every request answered once, in order;
cancelled requests skipped; full queue refused; draining finishes admitted work and refuses new work."""

from __future__ import annotations

import asyncio
import threading

import pytest
from serve_fixtures import run

from rewardkit.serve.batcher import BatchStats, DynamicBatcher, QueueFullError, ShuttingDownError


class Model:
    """A fake model: item -> 2 * item; records each batch; can be held mid-batch to let a queue build up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(items))
        return [2 * x for x in items]


def make(model: Model, **kw: object) -> DynamicBatcher[int, int]:
    opts: dict[str, object] = {"max_batch_tokens": 1000, "max_batch_size": 100, "max_wait_s": 0.0,
                               "max_queue_items": 100}
    opts.update(kw)
    return DynamicBatcher(model, lambda x: x, **opts)  # type: ignore[arg-type]


async def ask(b: DynamicBatcher[int, int], items: list[int]) -> list[int]:
    async with b.slots(len(items)):
        return await b.submit(items)


async def held_then_released(b: DynamicBatcher[int, int], model: Model, requests: list[list[int]]) -> list[list[int]]:
    """Send one request and hold the model on it, queue ``requests`` meanwhile, then release the model."""
    model.gate.clear()
    first = asyncio.create_task(ask(b, [1]))
    while not model.entered.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.create_task(ask(b, r)) for r in requests]
    await asyncio.sleep(0.02)
    model.gate.set()
    return [await first, *[await t for t in rest]]


def test_queued_requests_share_one_batch_and_each_gets_its_own_results_in_order() -> None:
    model = Model()

    async def go() -> list[list[int]]:
        b = make(model)
        b.start()
        out = await held_then_released(b, model, [[3, 4], [5], [6, 7, 8]])
        await b.drain()
        return out

    assert run(go()) == [[2], [6, 8], [10], [12, 14, 16]]
    assert model.batches == [[1], [3, 4, 5, 6, 7, 8]]  # the queue built up while the model ran: one batch


def test_batches_respect_the_padded_token_budget_and_the_size_cap() -> None:
    model = Model()

    async def go() -> None:
        b = make(model, max_batch_tokens=25)  # 2 x 10 = 20 fits, 3 x 10 = 30 does not
        b.start()
        await held_then_released(b, model, [[10, 10, 10], [10, 10]])
        await b.drain()

    run(go())
    assert model.batches[1:] == [[10, 10], [10, 10], [10]]
    model2 = Model()

    async def go2() -> None:
        b = make(model2, max_batch_size=1)  # batching off
        b.start()
        await held_then_released(b, model2, [[3, 4], [5]])
        await b.drain()

    run(go2())
    assert model2.batches == [[1], [3], [4], [5]]


def test_an_item_longer_than_the_budget_is_scored_alone() -> None:
    model = Model()

    async def go() -> list[int]:
        b = make(model, max_batch_tokens=50)
        b.start()
        out = await ask(b, [80, 1])
        await b.drain()
        return out

    assert run(go()) == [160, 2]
    assert model.batches == [[80], [1]]


def test_the_worker_waits_up_to_max_wait_for_more_items() -> None:
    model = Model()

    async def go() -> None:
        b = make(model, max_wait_s=0.5)
        b.start()
        first = asyncio.create_task(ask(b, [1]))
        await asyncio.sleep(0.05)  # well inside the wait: joins the first item's batch
        second = asyncio.create_task(ask(b, [2]))
        assert await first == [2] and await second == [4]
        await b.drain()

    run(go())
    assert model.batches == [[1, 2]]


def test_cancelled_requests_are_skipped_and_others_still_answered() -> None:
    model = Model()

    async def go() -> list[int]:
        b = make(model)
        b.start()
        model.gate.clear()
        first = asyncio.create_task(ask(b, [1]))
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        doomed = asyncio.create_task(ask(b, [7, 7]))
        kept = asyncio.create_task(ask(b, [3]))
        await asyncio.sleep(0.01)
        doomed.cancel()
        await asyncio.sleep(0.01)
        model.gate.set()
        await first
        out = await kept
        assert b.pending_items == 0
        await b.drain()
        return out

    assert run(go()) == [6]
    assert [7, 7] not in model.batches and all(7 not in batch for batch in model.batches)


def test_a_failing_batch_fails_its_requests_and_the_next_batch_works() -> None:
    calls = []

    def flaky(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return items

    async def go() -> None:
        b = DynamicBatcher(flaky, lambda x: x, max_batch_tokens=100, max_batch_size=10, max_wait_s=0,
                           max_queue_items=10)
        b.start()
        with pytest.raises(RuntimeError, match="model exploded"):
            await ask(b, [1])
        assert await ask(b, [2]) == [2]
        await b.drain()

    run(go())


def test_a_full_queue_refuses_with_retry_after_and_frees_room_when_answered() -> None:
    model = Model()

    async def go() -> None:
        b = make(model, max_queue_items=4)
        b.start()
        model.gate.clear()
        first = asyncio.create_task(ask(b, [1, 1, 1]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as info:
            await ask(b, [2, 2])
        assert info.value.retry_after_s >= 1 and "3 items queued of 4" in str(info.value)
        assert b.pending_items == 3  # the refused request reserved nothing
        model.gate.set()
        assert await first == [2, 2, 2]
        assert await ask(b, [2, 2]) == [4, 4]
        await b.drain()

    run(go())


def test_drain_finishes_admitted_requests_and_refuses_new_ones() -> None:
    model = Model()

    async def go() -> None:
        b = make(model)
        b.start()
        model.gate.clear()
        inflight = asyncio.create_task(ask(b, [1, 2]))
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        queued = asyncio.create_task(ask(b, [3]))
        await asyncio.sleep(0.01)
        drain = asyncio.create_task(b.drain(timeout_s=10))
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDownError):
            await ask(b, [4])
        assert not drain.done()
        model.gate.set()
        assert await inflight == [2, 4]
        assert await queued == [6]
        await drain

    run(go())
    assert model.batches == [[1, 2], [3]]


def test_drain_timeout_fails_what_is_left() -> None:
    model = Model()

    async def go() -> None:
        b = make(model)
        b.start()
        model.gate.clear()
        stuck = asyncio.create_task(ask(b, [1]))
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        await b.drain(timeout_s=0.05)
        with pytest.raises(ShuttingDownError):
            await stuck
        model.gate.set()

    run(go())


def test_on_batch_reports_size_and_tokens() -> None:
    seen: list[BatchStats] = []

    async def go() -> None:
        b = DynamicBatcher(lambda xs: xs, lambda x: x, max_batch_tokens=1000, max_batch_size=10, max_wait_s=0,
                           max_queue_items=10, on_batch=seen.append)
        b.start()
        await ask(b, [3, 5, 4])
        await b.drain()

    run(go())
    assert [(s.size, s.tokens) for s in seen] == [(3, 12)]
    assert seen[0].model_s >= 0 and seen[0].max_wait_s >= 0
