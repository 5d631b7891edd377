"""Natural batching of master writes.

Callers submit one item at a time; a single flusher writes everything queued since its last write in
one round trip. Under light load a batch is one item and adds no delay; under heavy load batches grow
by themselves while the previous write is in flight, which is what lets the engine make one round trip
per batch of jobs instead of one per job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
        on_flush: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.name = name
        self._flush = flush
        #: Told (name, items, seconds) after each write that went through.
        self._on_flush = on_flush
        self._max_batch = max_batch
        #: Each group with the future its results go to, or None when nobody waits for them.
        self._groups: deque[tuple[list[T], asyncio.Future[list[R]] | None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def post(self, item: T) -> None:
        """Queue one item whose result nobody waits for (for a flush that never gives up)."""
        self._enqueue([item], None)

    async def submit_many(self, items: list[T]) -> list[R]:
        """Queue a group and wait for its results, in order, with a single waiter."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._enqueue(items, future)
        return await future

    def _enqueue(self, items: list[T], future: asyncio.Future[list[R]] | None) -> None:
        self._groups.append((items, future))
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def _take(self) -> list[tuple[list[T], asyncio.Future[list[R]] | None]]:
        """Whole groups, up to `max_batch` items (a single larger group goes alone)."""
        taken: list[tuple[list[T], asyncio.Future[list[R]] | None]] = []
        size = 0
        while self._groups and (not taken or size + len(self._groups[0][0]) <= self._max_batch):
            group = self._groups.popleft()
            taken.append(group)
            size += len(group[0])
        return taken

    async def _run(self) -> None:
        while self._groups:
            batch = self._take()
            items = [item for group, _ in batch for item in group]
            began = time.perf_counter()
            try:
                results = list(await self._flush(items))
            except asyncio.CancelledError:
                for _, future in batch:
                    if future is not None:
                        future.cancel()
                raise
            except Exception as exc:
                for group, future in batch:
                    if future is None:
                        log.error("%s: %d items lost: %s", self.name, len(group), exc)
                    elif not future.done():
                        future.set_exception(exc)
                continue
            if self._on_flush is not None:
                self._on_flush(self.name, len(items), time.perf_counter() - began)
            offset = 0
            for group, future in batch:
                if future is not None and not future.done():
                    future.set_result(results[offset : offset + len(group)])
                offset += len(group)
        self._idle.set()

    async def drained(self) -> None:
        """Wait until every submitted item has been flushed (used at shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.drained()
        if self._task is not None:
            await self._task
