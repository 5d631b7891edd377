"""One asyncpg pool per PostgreSQL URL per process, plus the dedicated LISTEN connections.

A master and an agent pointed at the same database share one pool (see `db.shared`), so a process
holds at most `POOL_MAX` connections per server however many stores it opens.

LISTEN needs a connection of its own for as long as the store lives (a pooled connection would be
handed to other work and lose its LISTEN on release), so listeners open one outside the pool and
re-open it with back-off when the server drops it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from jobmaster.db.shared import SharedDatabase, UsesDatabase

if TYPE_CHECKING:
    from jobmaster.master.sql.executor import Statements

T = TypeVar("T")

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


async def remove_if_empty(pool: asyncpg.Pool, table: str, key_column: str, key: str, children: str) -> bool:
    """Delete the row of `table` whose `key_column` is `key` unless `children` (a SELECT on `$1`)
    finds rows; False, with nothing deleted, if it does.

    Writers that add children hold the row in key share; the exclusive lock taken first waits them
    out, so the next statement's snapshot sees what they added and no child is left without its row.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SELECT FROM {table} WHERE {key_column} = $1 FOR UPDATE", key)
        if await conn.fetchval(f"SELECT EXISTS ({children})", key):
            return False
        await conn.execute(f"DELETE FROM {table} WHERE {key_column} = $1", key)
    return True


async def new_or_known(write: Callable[[bool], Awaitable[T]]) -> T:
    """Insert with a plain INSERT (`write(False)`), and only if a key is stored already, again
    with conflict handling (`write(True)`).

    Nearly every batch names new keys only, and a plain insert costs the server about 2 us a row less
    than one that probes the unique index for each row first (speculative insertion, with a second
    WAL record to confirm it). A stored key means a retried call or a copy written twice; the failed
    statement wrote nothing, so running it again with conflict handling is as if it had done so at
    once.
    """
    try:
        return await write(False)
    except asyncpg.UniqueViolationError:
        return await write(True)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's session reset: a round trip per pool use, for state we never set.

    Pooled connections never LISTEN, take session-level advisory locks, keep cursors or change
    settings (migrations lock per transaction), and asyncpg still rolls back a transaction left open
    before this runs, so there is nothing to reset.
    """
    return None


class PostgresDatabase(SharedDatabase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._pool: asyncpg.Pool | None = None

    async def _open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                server_settings=SERVER_SETTINGS,
                reset=_keep_session,
            )
        except (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
            # "the database system is starting up" (or full): to the engine, not reachable yet
            raise ConnectionError(str(exc)) from exc

    async def _close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgreSQL pool is not open")
        return self._pool

    @property
    def executor(self) -> PostgresExecutor:
        return PostgresExecutor(self.pool)


def advisory_key(name: str) -> int:
    """The advisory lock key of an 8-character name: its bytes as one big-endian bigint."""
    raw = name.encode()
    if len(raw) != 8:
        raise ValueError(f"an advisory lock name is 8 bytes, not {len(raw)}: {name!r}")
    return int.from_bytes(raw, "big", signed=True)


def _matched(status: str) -> int:
    """Rows a write matched, from its command tag (`UPDATE 3`, `DELETE 0`, `INSERT 0 2`)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Statements:
    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._conn.fetch(sql, *params))

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._conn.fetchval(sql, *params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _matched(await self._conn.execute(sql, *params))


class PostgresExecutor(_Statements):
    """The `master.sql.executor.Executor` of a PostgreSQL pool, for the cold path."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self._pool = pool

    async def transaction(self, body: Callable[[Statements], Awaitable[T]]) -> T:
        async with self._pool.acquire() as conn, conn.transaction():
            return await body(_Statements(conn))

    async def exclusive(self, lock: str, body: Callable[[Statements], Awaitable[T]]) -> T:
        """A transaction that first takes the advisory lock `advisory_key(lock)`, released when it ends."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(lock))
            return await body(_Statements(conn))


class PostgresClient(UsesDatabase[PostgresDatabase]):
    """What a PostgreSQL master and agent share: the pool of their URL and their LISTEN channel."""

    database = PostgresDatabase
    channel: str
    _listeners: list[Listener]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.db.pool

    async def listen(self, callback: Callable[[str], None]) -> None:
        listener = Listener(self.url, self.channel, callback)
        await listener.start()
        self._listeners.append(listener)

    async def close(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            await listener.close()
        await super().close()


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
