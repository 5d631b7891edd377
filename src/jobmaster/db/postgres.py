"""One asyncpg pool per PostgreSQL URL per process, plus the dedicated LISTEN connections.

A master and an agent pointed at the same database share one pool, so a process holds at most
`POOL_MAX` connections per server however many stores it opens. Pools are bound to the event loop
that created them, so the registry is keyed by loop as well as URL: a process that runs several
loops one after another (tests, CLI commands) never hands a dead loop's pool to a new one.

LISTEN needs a connection of its own for as long as the store lives (a pooled connection would be
handed to other work and lose its LISTEN on release), so listeners open one outside the pool and
re-open it with back-off when the server drops it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger("jobmaster.postgres")

POOL_MIN = 2
POOL_MAX = 10

#: JIT compilation costs tens of milliseconds per statement and only pays off for long analytic
#: queries; the planner's row estimates for `unnest` batches can cross its threshold, so it is off.
SERVER_SETTINGS = {"application_name": "jobmaster", "jit": "off"}

#: Reconnect delays of a lost LISTEN connection, in seconds: doubling, capped.
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0


def channel_name(prefix: str, *parts: str) -> str:
    """A NOTIFY channel for `parts`: short, stable, and an identifier whatever the names hold."""
    digest = hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:16]
    return f"{prefix}{digest}"


class PostgresDatabase:
    _shared: dict[tuple[str, asyncio.AbstractEventLoop], PostgresDatabase] = {}

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self._loop = loop
        self._refs = 0
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Task[None] = loop.create_task(self._open())

    @classmethod
    async def acquire(cls, url: str) -> PostgresDatabase:
        """The shared database of `url`, opening its pool on first use.

        Concurrent first users wait on the same opening task instead of each creating a pool.
        """
        loop = asyncio.get_running_loop()
        key = (url, loop)
        db = cls._shared.get(key)
        if db is None:
            db = cls._shared[key] = cls(url, loop)
        db._refs += 1
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
        self._shared.pop((self.url, self._loop), None)
        if not self._opening.done():
            self._opening.cancel()
            await asyncio.gather(self._opening, return_exceptions=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url, min_size=POOL_MIN, max_size=POOL_MAX, server_settings=SERVER_SETTINGS
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgreSQL pool is not open")
        return self._pool


class Listener:
    """A LISTEN connection of one channel that survives server restarts and network cuts.

    Notifications sent while it is down are lost; callers poll on a timer as a safety net, so a
    reconnect only has to restore the fast path, never to replay anything.
    """

    def __init__(self, url: str, channel: str, deliver: Callable[[str], None]) -> None:
        self.url = url
        self.channel = channel
        self._deliver = deliver
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Connect now, so a wrong URL or missing grant fails the caller, not a background task."""
        await self._connect()

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
            self._reconnecting = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url, server_settings=SERVER_SETTINGS)
        try:
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._deliver(payload)
        except Exception:
            log.exception("notification handler failed on channel %s", self.channel)

    def _on_lost(self, _conn: Any) -> None:
        if self._closed:
            return
        log.warning("LISTEN connection for channel %s lost; reconnecting", self.channel)
        self._conn = None
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except Exception as exc:
                delay = min(RECONNECT_MAX, delay * 2)
                log.warning(
                    "LISTEN reconnect for channel %s failed (%s); next try in %.1fs",
                    self.channel,
                    exc,
                    delay,
                )
                continue
            log.info("LISTEN connection for channel %s restored", self.channel)
            return
