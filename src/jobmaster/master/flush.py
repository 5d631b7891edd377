"""One wait for the disk shared by every take of a worker that let its commit skip the flush.

A PostgreSQL take commits without waiting for its WAL flush (`master/postgres.py`: a flush per take
on every bucket cost about a fifth of standalone throughput). A server crash can then undo a take
whose jobs already started: the run would be counted nowhere and the job would run again with the
same attempt number. With the `durable_starts` setting, the jobs a take started run only once a
flush that began after the take was answered is done; one such flush covers every take answered
before it, of every bucket of the worker, and takes go on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("jobmaster.master")


class FlushBarrier:
    """At most one flush in flight; every caller that arrives meanwhile shares the next one.

    A flush that fails proves nothing (the server may have restarted and lost the takes since), so
    its waiters learn False and must not run what those takes started, and a retry is never done on
    their behalf: their leases bring the jobs back either way.
    """

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self._flush = flush
        self._next: asyncio.Future[bool] | None = None
        self._rounds: asyncio.Task[None] | None = None

    def after_now(self) -> asyncio.Future[bool]:
        """True once a flush begun after this call is done, False if it failed.

        Shared by many waiters: await it through `asyncio.shield`, or one waiter's cancellation
        cancels it for all.
        """
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            if self._rounds is None:
                self._rounds = loop.create_task(self._run())
        return self._next

    async def _run(self) -> None:
        waiting: asyncio.Future[bool] | None = None
        try:
            while (waiting := self._next) is not None:
                self._next = None
                flushed = await self._flush_once()
                if not waiting.done():
                    waiting.set_result(flushed)
        finally:
            # cancelled with the store's loop: nobody may take an unfinished flush for a done one
            for left in (waiting, self._next):
                if left is not None and not left.done():
                    left.set_result(False)
            self._next, self._rounds = None, None

    async def _flush_once(self) -> bool:
        try:
            await self._flush()
        except Exception:
            log.warning(
                "could not confirm that the latest takes reached the master's disk; the jobs they"
                " started are not run here, and come back when their leases run out",
                exc_info=True,
            )
            return False
        return True
