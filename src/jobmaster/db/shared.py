"""One open database handle per URL per event loop, shared by every store that names it.

A master and an agent on the same database share one pool (or, for SQLite, one connection and its
writer thread) instead of contending with each other. Handles are bound to the loop that opened
them, so a process that runs several loops one after another (tests, CLI commands) never hands a
dead loop's pool to a new one. The last store to release a handle closes it.
"""

from __future__ import annotations

import abc
import asyncio
from typing import ClassVar, Generic, Self, TypeVar, cast


class SharedDatabase(abc.ABC):
    _registry: ClassVar[dict[tuple[type, str, asyncio.AbstractEventLoop], SharedDatabase]] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self._refs = 0
        self._key: tuple[type, str, asyncio.AbstractEventLoop] | None = None
        self._opening: asyncio.Task[None] | None = None

    @classmethod
    def identity(cls, url: str) -> str:
        """What makes two URLs the same database; SQLite compares resolved file paths."""
        return url

    @classmethod
    async def acquire(cls, url: str) -> Self:
        """The shared handle of `url`, opened on first use.

        Concurrent first users wait on the same opening task instead of each opening a pool.
        """
        loop = asyncio.get_running_loop()
        key = (cls, cls.identity(url), loop)
        db = cls._registry.get(key)
        if not isinstance(db, cls):
            db = cls(url)
            db._key = key
            db._opening = loop.create_task(db._open())
            cls._registry[key] = db
        db._refs += 1
        assert db._opening is not None
        try:
            await asyncio.shield(db._opening)
        except BaseException:
            await db.release()
            raise
        return db

    async def release(self) -> None:
        self._refs -= 1
        if self._refs > 0:
            return
        if self._key is not None and self._registry.get(self._key) is self:
            del self._registry[self._key]
        opening, self._opening = self._opening, None
        if opening is None:
            return
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
        await self._close()

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close what `_open` managed to open (it may have failed half-way)."""


D = TypeVar("D", bound=SharedDatabase)


class UsesDatabase(Generic[D]):
    """A store's hold on its shared handle, from `open()` to `close()`."""

    database: ClassVar[type[SharedDatabase]]
    url: str
    _db: D | None = None

    @property
    def db(self) -> D:
        if self._db is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._db

    async def open(self) -> None:
        if self._db is None:
            self._db = cast(D, await self.database.acquire(self.url))

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.release()
