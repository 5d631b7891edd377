"""The batcher that turns one-at-a-time writes into one round trip per batch."""

from __future__ import annotations

import asyncio

from jobmaster.runtime.batcher import Batcher


async def test_items_queued_during_a_flush_go_together_in_the_next() -> None:
    flushed: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushed.append(items)
        await gate.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher("test", flush, max_batch=3)
    batcher.post(1)
    await asyncio.sleep(0)  # the first flush starts with the one item queued
    for i in (2, 3, 4, 5):
        batcher.post(i)
    waiter = asyncio.ensure_future(batcher.submit_many([6, 7]))
    gate.set()
    assert await waiter == [60, 70]
    await batcher.close()
    assert flushed == [[1], [2, 3, 4], [5, 6, 7]]


async def test_a_failed_flush_reaches_waiters_and_the_batcher_goes_on() -> None:
    calls = 0

    async def flush(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store down")
        return items

    batcher: Batcher[int, int] = Batcher("test", flush)
    first = asyncio.ensure_future(batcher.submit_many([1]))
    await asyncio.sleep(0)
    try:
        await first
    except RuntimeError as exc:
        assert "store down" in str(exc)
    else:
        raise AssertionError("the flush error did not reach its waiter")
    assert await batcher.submit_many([2]) == [2]
    await batcher.close()
