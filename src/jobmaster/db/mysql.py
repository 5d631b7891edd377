"""One asyncmy pool per MySQL/MariaDB URL per process, shared by the master and the agents on it.

A master and an agent pointed at the same database share one pool, so a process holds at most
`POOL_MAX` connections per server however many stores it opens. Pools are bound to the event loop
that created them, so the registry is keyed by loop as well as URL (as for PostgreSQL).

Every connection runs at READ COMMITTED: claims lock rows with `FOR UPDATE SKIP LOCKED`, and at the
default REPEATABLE READ InnoDB would also take gap locks on the ranges they scan, which makes
concurrent claims and inserts block (and deadlock) on rows none of them touch. The session's
`sql_mode` is set explicitly, so a server configured without strict mode (silent truncation) or with
NO_BACKSLASH_ESCAPES (which breaks client-side escaping) cannot change what a statement means.

The server must support `SKIP LOCKED`: MariaDB 10.6 or MySQL 8.0 and later. Opening a pool checks the
version and refuses older servers with a `StoreError` naming the version found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncmy
from asyncmy.connection import Connection
from asyncmy.constants.CLIENT import FOUND_ROWS
from asyncmy.errors import MySQLError

from jobmaster.db.shared import SharedDatabase, UsesDatabase
from jobmaster.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from jobmaster.master.sql.executor import Statements

T = TypeVar("T")

URL_SCHEMES = ("mysql", "mariadb")

#: Client error codes that mean the server was not reached (no socket, refused, lost at the
#: handshake): to the engine a connection error like any other, not a refusal by the server.
CANNOT_CONNECT = frozenset({2002, 2003, 2013})
POOL_MIN = 1
POOL_MAX = 10

#: Oldest servers with `SELECT ... FOR UPDATE SKIP LOCKED` (and JSON_TABLE, which batches use).
MIN_MARIADB = (10, 6)
MIN_MYSQL = (8, 0)

SQL_MODE = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"
INIT_COMMAND = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

# Server error codes the backends act on.
ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
ER_ROW_IS_REFERENCED = (1217, 1451)
ER_NO_REFERENCED_ROW = (1216, 1452)

#: A transaction chosen as a deadlock victim (or timed out on a lock) was rolled back whole, so it
#: can simply run again; these bound how often and how long apart.
RETRIES = 6
RETRY_FIRST = 0.005
RETRY_MAX = 0.2

#: How long `migrate` waits for another process's migration before giving up, in seconds.
MIGRATION_LOCK_TIMEOUT = 120


def error_code(exc: BaseException) -> int | None:
    """The server's error number of a driver exception, if it carries one."""
    if isinstance(exc, MySQLError) and exc.args and isinstance(exc.args[0], int):
        return int(exc.args[0])
    return None


def parse_server_version(version: str) -> tuple[str, tuple[int, ...]]:
    """(`"MariaDB"` or `"MySQL"`, numeric version) of a `SELECT VERSION()` string.

    MariaDB before 11 may report itself behind a `5.5.5-` replication prefix; it is skipped.
    """
    text = version.strip()
    flavour = "MariaDB" if "mariadb" in text.lower() else "MySQL"
    if flavour == "MariaDB" and text.startswith("5.5.5-"):
        text = text[len("5.5.5-") :]
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise StoreError(f"cannot read the MySQL/MariaDB server version {version!r}")
    return flavour, tuple(int(part) for part in match.groups() if part is not None)


def check_server_version(version: str) -> None:
    """Refuse servers without `SKIP LOCKED`: MariaDB before 10.6, MySQL before 8.0."""
    flavour, numbers = parse_server_version(version)
    minimum = MIN_MARIADB if flavour == "MariaDB" else MIN_MYSQL
    if numbers[:2] < minimum:
        raise StoreError(
            f"{flavour} {version} is too old for jobmaster: it needs SELECT ... FOR UPDATE SKIP LOCKED, "
            f"so MariaDB {MIN_MARIADB[0]}.{MIN_MARIADB[1]} or MySQL {MIN_MYSQL[0]}.{MIN_MYSQL[1]} "
            "or later"
        )


def connect_args(url: str) -> dict[str, Any]:
    """asyncmy connection arguments of `mysql://user:password@host:port/database?option=value`.

    Options: `unix_socket=/path`, `ssl=true` (TLS with default verification), `connect_timeout=s`.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise ConfigError(f"not a MySQL/MariaDB URL: {url!r}")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError(f"MySQL/MariaDB URL must name one database, as mysql://user@host/db: {url!r}")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    args: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else "",
        "database": database,
        "charset": "utf8mb4",
        "autocommit": True,
        "sql_mode": f"'{SQL_MODE}'",  # asyncmy sends `SET sql_mode=<this>` as written
        "init_command": INIT_COMMAND,
        # bytes go to BLOB columns as _binary literals, never reinterpreted as utf8mb4 text
        "binary_prefix": True,
    }
    unknown = set(options) - {"unix_socket", "ssl", "connect_timeout"}
    if unknown:
        raise ConfigError(f"unknown MySQL/MariaDB URL option(s) {sorted(unknown)} in {url!r}")
    if "unix_socket" in options:
        args["unix_socket"] = options["unix_socket"]
    if options.get("ssl", "").lower() in ("1", "true", "yes", "on", "require"):
        args["ssl"] = ssl.create_default_context()
    if "connect_timeout" in options:
        args["connect_timeout"] = int(float(options["connect_timeout"]))
    return args


def lock_name(kind: str, database: str) -> str:
    """A `GET_LOCK` name (at most 64 characters) for `kind` in one database of the server."""
    return f"jobmaster:{kind}:{hashlib.sha1(database.encode()).hexdigest()[:24]}"


class Session:
    """One pooled connection, for one transaction or one lock's duration."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            await cursor.execute(sql, params)
            return list(await cursor.fetchall())
        finally:
            await cursor.close()

    async def fetchval(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        found = await self.fetch(sql, params)
        return found[0][0] if found else None

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; returns the rows it matched (the pool connects with FOUND_ROWS)."""
        cursor = self.conn.cursor()
        try:
            return int(await cursor.execute(sql, params))
        finally:
            await cursor.close()

    async def restart(self) -> None:
        """Roll the open transaction back and begin a new one on the same connection."""
        await self.conn.rollback()
        await self.conn.begin()


class MysqlDatabase(SharedDatabase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.args = connect_args(url)
        self.database: str = self.args["database"]
        self.server_version = ""
        self._pool: Any = None

    async def _close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            await pool.wait_closed()

    async def _open(self) -> None:
        # FOUND_ROWS: an UPDATE reports the rows it matched, not only those whose values changed,
        # so a guarded write that sets a flag already set still counts as having held.
        try:
            pool = await asyncmy.create_pool(
                minsize=POOL_MIN, maxsize=POOL_MAX, client_flag=FOUND_ROWS, **self.args
            )
        except MySQLError as exc:
            if exc.args and exc.args[0] in CANNOT_CONNECT:
                raise ConnectionError(exc.args[-1]) from exc
            raise
        try:
            async with pool.acquire() as conn:
                version = await Session(conn).fetchval("SELECT VERSION()")
            self.server_version = str(version)
            check_server_version(self.server_version)
        except BaseException:
            pool.close()
            await pool.wait_closed()
            raise
        self._pool = pool

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("MySQL pool is not open")
        return self._pool

    @property
    def executor(self) -> MysqlExecutor:
        return MysqlExecutor(self)

    # ---- single statements (autocommit) -------------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """A connection of the pool; one that failed mid-statement is closed, never reused."""
        async with self.pool.acquire() as conn:
            try:
                yield Session(conn)
            except BaseException:
                if conn.get_transaction_status():
                    conn.close()
                raise

    async def fetch(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        async with self.session() as s:
            return await s.fetch(sql, args)

    async def fetchval(self, sql: str, args: Sequence[Any] | None = None) -> Any:
        async with self.session() as s:
            return await s.fetchval(sql, args)

    async def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        async with self.session() as s:
            return await s.execute(sql, args)

    # ---- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """BEGIN ... COMMIT on one connection; any error rolls back (or drops the connection)."""
        async with self.pool.acquire() as conn:
            await conn.begin()
            try:
                yield Session(conn)
            except BaseException:
                try:
                    # shielded: a cancelled caller must not leave the rollback half-sent
                    await asyncio.shield(conn.rollback())
                except BaseException:
                    conn.close()
                raise
            await conn.commit()

    async def run(self, body: Callable[[Session], Awaitable[T]], *, retry: bool = True) -> T:
        """Run `body` in a transaction; a deadlock victim (rolled back whole) runs again.

        `retry=False` for bodies that are not safe to run twice (they call out to code with state).
        """
        delay = RETRY_FIRST
        for attempt in range(RETRIES + 1):
            try:
                async with self.transaction() as s:
                    return await body(s)
            except MySQLError as exc:
                code = error_code(exc)
                if not retry or code not in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT) or attempt == RETRIES:
                    raise
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(RETRY_MAX, delay * 2)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def locked(self, kind: str, timeout: float = MIGRATION_LOCK_TIMEOUT) -> AsyncIterator[Session]:
        """Hold the server-wide named lock of `kind` in this database (`GET_LOCK`) while inside.

        DDL commits implicitly in MySQL, so migrations cannot hide in a transaction; the named lock
        (held by the session, across commits) is what keeps two processes from migrating at once.
        """
        name = lock_name(kind, self.database)
        async with self.session() as s:
            got = await s.fetchval("SELECT GET_LOCK(%s, %s)", (name, timeout))
            if got != 1:
                raise StoreError(
                    f"could not take the {kind} lock of database {self.database!r} in {timeout}s"
                )
            # `CREATE TABLE IF NOT EXISTS` of an existing table raises a note the driver would log
            await s.execute("SET SESSION sql_notes = 0")
            try:
                yield s
            finally:
                # a lost session has released the lock with it; nothing to undo then
                with contextlib.suppress(MySQLError):
                    await asyncio.shield(s.execute("SET SESSION sql_notes = 1"))
                    await asyncio.shield(s.fetchval("SELECT RELEASE_LOCK(%s)", (name,)))


class MysqlExecutor:
    """The `master.sql.executor.Executor` of a MySQL pool, for the cold path: a transaction is
    `MysqlDatabase.run`, so a deadlock victim runs again."""

    def __init__(self, db: MysqlDatabase) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._db.fetch(sql, params)

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._db.fetchval(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db.execute(sql, params)

    async def transaction(self, body: Callable[[Statements], Awaitable[T]]) -> T:
        return await self._db.run(body)

    async def exclusive(self, lock: str, body: Callable[[Statements], Awaitable[T]]) -> T:
        """`body` on one session under the named lock `lock` (`locked`), each statement committed
        as it runs: DDL would commit a transaction around it anyway."""
        async with self._db.locked(lock) as s:
            return await body(s)


class MysqlClient(UsesDatabase[MysqlDatabase]):
    """What a MySQL master and agent share: the pool of their URL."""

    database = MysqlDatabase
