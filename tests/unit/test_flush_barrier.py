"""`FlushBarrier`: which flush a waiter may count on, and what a failed or cancelled one tells it."""

from __future__ import annotations

import asyncio

import pytest

from jobmaster.master.flush import FlushBarrier


class Disk:
    """A flush the test ends by hand: `began` counts flushes started, `end(ok)` ends the oldest."""

    def __init__(self) -> None:
        self.began = 0
        self._ends: list[asyncio.Future[bool]] = []

    async def flush(self) -> None:
        self.began += 1
        end = asyncio.get_running_loop().create_future()
        self._ends.append(end)
        if not await end:
            raise OSError("the server went away")

    async def end(self, ok: bool = True) -> None:
        while not [f for f in self._ends if not f.done()]:
            await asyncio.sleep(0)
        self._ends = [f for f in self._ends if not f.done()]
        self._ends.pop(0).set_result(ok)
        await asyncio.sleep(0)


async def test_callers_during_a_flush_share_the_next_one() -> None:
    disk = Disk()
    barrier = FlushBarrier(disk.flush)
    first = barrier.after_now()
    await asyncio.sleep(0)
    assert disk.began == 1
    # answered while the first flush is in flight: that flush may have begun before their commit
    later = [barrier.after_now() for _ in range(3)]
    assert len({id(f) for f in later}) == 1 and later[0] is not first
    await disk.end()
    assert await first is True and not later[0].done()
    await disk.end()
    assert await later[0] is True
    assert disk.began == 2


async def test_a_failed_flush_says_false_and_is_not_retried_for_its_waiters() -> None:
    disk = Disk()
    barrier = FlushBarrier(disk.flush)
    waiting = barrier.after_now()
    await disk.end(ok=False)
    assert await waiting is False
    assert disk.began == 1
    again = barrier.after_now()
    await disk.end()
    assert await again is True and disk.began == 2


async def test_a_waiter_cancelled_through_shield_leaves_the_others_waiting() -> None:
    disk = Disk()
    barrier = FlushBarrier(disk.flush)
    shared = barrier.after_now()
    one = asyncio.ensure_future(asyncio.shield(shared))
    other = asyncio.ensure_future(asyncio.shield(shared))
    await asyncio.sleep(0)
    one.cancel()
    await disk.end()
    assert await other is True
    with pytest.raises(asyncio.CancelledError):
        await one


async def test_a_flush_cancelled_with_its_loop_tells_every_waiter_false() -> None:
    disk = Disk()
    barrier = FlushBarrier(disk.flush)
    current = barrier.after_now()
    await asyncio.sleep(0)
    queued = barrier.after_now()
    rounds = barrier._rounds
    assert rounds is not None
    rounds.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rounds
    assert await current is False and await queued is False
    fresh = barrier.after_now()
    await disk.end()
    assert await fresh is True
