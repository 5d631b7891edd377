"""Natural batching of master writes.

Callers submit one item at a time; a single flusher writes everything queued since its last write in
one round trip. Under light load a batch is one item and adds no delay; under heavy load batches grow
by themselves while the previous write is in flight, which is what lets the engine make one round trip
per batch of jobs instead of one per job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("jobmaster.batcher")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        max_batch: int = 1000,
    ) -> None:
        self.name = name
        self._flush = flush
        self._max_batch = max_batch
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, item: T) -> asyncio.Future[R]:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._items.append((item, future))
        self._idle.clear()
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return future

    async def _run(self) -> None:
        while self._items:
            batch, self._items = self._items[: self._max_batch], self._items[self._max_batch :]
            items = [item for item, _ in batch]
            try:
                results = await self._flush(items)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        self._idle.set()

    async def drained(self) -> None:
        """Wait until every submitted item has been flushed (used at shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.drained()
        if self._task is not None:
            await self._task
