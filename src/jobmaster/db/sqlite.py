"""One SQLite connection per database file per process, driven from a single thread.

SQLite allows one writer at a time; funnelling every operation of a process through one connection on
one thread removes in-process lock contention, and each operation is a whole transaction run in that
thread, so an engine batch costs one thread hop instead of one per statement. WAL mode lets readers
in other processes proceed while a writer commits; `busy_timeout` makes writers of different
processes queue instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jobmaster.db.shared import SharedDatabase, UsesDatabase

if TYPE_CHECKING:
    from jobmaster.master.sql.executor import Statements

T = TypeVar("T")

log = logging.getLogger("jobmaster.sqlite")

#: Seconds between background WAL checkpoints (a few MB of WAL at full write speed).
CHECKPOINT_EVERY = 0.5
#: Longest wait for another process's write lock, and the bounds of the pause between tries.
LOCK_WAIT = 30.0
LOCK_POLL_MIN = 0.0002
LOCK_POLL_MAX = 0.002


def path_from_url(url: str) -> str:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"SQLite URL must look like sqlite:///path.db, got {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError(f"SQLite URL has no file path: {url!r}")
    return path


class SqliteDatabase(SharedDatabase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = path_from_url(url)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="jobmaster-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        #: Set while an `SqliteExecutor.transaction` spans several thread hops; other work waits.
        self._held: asyncio.Event | None = None
        self.executor = SqliteExecutor(self)

    @classmethod
    def identity(cls, url: str) -> str:
        path = path_from_url(url)
        return path if path == ":memory:" else str(Path(path).resolve())

    async def _close(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await checkpointer.stop()
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def _open(self) -> None:
        def connect(_: sqlite3.Connection | None) -> None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            # A 16 MiB page cache keeps the hot index pages in memory between transactions.
            conn.execute("PRAGMA cache_size=-16384")
            if self.path != ":memory:":
                # Checkpoints run in the background (see Checkpointer), never inside a commit.
                conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, connect, None)
        if self.path != ":memory:":
            self._checkpointer = Checkpointer(self.path)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        while self._held is not None:
            await self._held.wait()
        return await self._hop(fn)

    async def _hop(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("SQLite database is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, conn)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE ... COMMIT, taking the write lock up front.

        Taking the lock at BEGIN (not at the first write) avoids the deadlock two processes reach
        when both read first and then both try to upgrade to a writer.
        """

        def body(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return fn(conn)

        return await self.run(body)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement as a write transaction; use this rather than returning its cursor.

        A cursor handed back to the event loop is finalised there, whenever garbage collection gets
        to it, and that resets its statement while this thread may be running the same cached
        statement for the next call: SQLite then fails that call with "bad parameter or other API
        misuse" (seen with concurrent pushes to one agent). The cursor is closed here instead.
        """
        await self.transaction(lambda conn: conn.execute(sql, params).close())

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`execute` for a batch of parameter rows."""
        await self.transaction(lambda conn: conn.executemany(sql, rows).close())

    async def transaction_if(
        self, probe: str, params: Sequence[Any], fn: Callable[[sqlite3.Connection], list[T]]
    ) -> list[T]:
        """Run `fn` in a write transaction only if `probe` finds a row; else return [].

        Idle workers poll; a plain read costs microseconds and takes no lock, where an empty write
        transaction would take the database's single write lock from every other process.
        """

        def body(conn: sqlite3.Connection) -> list[T]:
            if conn.execute(probe, params).fetchone() is None:
                return []
            with immediate(conn):
                return fn(conn)

        return await self.run(body)


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _rowcount(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


class _Statements:
    """Statements of an open transaction: straight onto the writer thread, past the wait that
    keeps other work out of it."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._db._hop(partial(_rows, sql=sql, params=params))

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = await self.fetch(sql, params)
        return found[0][0] if found else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db._hop(partial(_rowcount, sql=sql, params=params))


class SqliteExecutor:
    """The `master.sql.executor.Executor` of a SQLite handle, for the cold path.

    A transaction spans a thread hop per statement, so while one is open every other operation of
    the handle waits for it (`SqliteDatabase.run`) instead of slipping into it on the shared
    connection.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._db.run(partial(_rows, sql=sql, params=params))

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = await self.fetch(sql, params)
        return found[0][0] if found else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db.transaction(partial(_rowcount, sql=sql, params=params))

    async def transaction(self, body: Callable[[Statements], Awaitable[T]]) -> T:
        db = self._db
        while db._held is not None:
            await db._held.wait()
        db._held = held = asyncio.Event()
        try:
            await db._hop(_begin_immediate)
            try:
                result = await body(_Statements(db))
            except BaseException:
                await asyncio.shield(db._hop(_rollback))
                raise
            await db._hop(_commit)
            return result
        finally:
            db._held = None
            held.set()

    async def exclusive(self, lock: str, body: Callable[[Statements], Awaitable[T]]) -> T:
        """`transaction`: its BEGIN IMMEDIATE takes the write lock of the whole database file, from
        every process, and SQLite's DDL is transactional."""
        return await self.transaction(body)


def _rollback(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


class Checkpointer:
    """Copies the WAL back into the database file from a thread and connection of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so that writer,
    and every job waiting on it, stalls while pages are copied: p99 start latency doubled with a
    large threshold, and a small one costs throughput, since every job rewrites the same hot pages
    and each checkpoint copies them again. A PASSIVE checkpoint here never blocks writers.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobmaster-sqlite-checkpoint")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(
            self._thread, partial(sqlite3.connect, self._path, isolation_level=None, check_same_thread=False)
        )
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                try:
                    await loop.run_in_executor(self._thread, conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("SQLite checkpoint of %s failed, retrying: %s", self._path, exc)
        finally:
            await loop.run_in_executor(self._thread, conn.close)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=True)


class SqliteClient(UsesDatabase[SqliteDatabase]):
    """What a SQLite master and standalone agent share: the connection of their file."""

    database = SqliteDatabase


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock, polling every few milliseconds while another process holds it.

    SQLite's own busy handler sleeps 25 to 100 ms between tries once a wait gets long, so a writer
    woken late idles while the lock sits free; here a waiter retries within `LOCK_POLL_MAX`.
    """
    conn.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + LOCK_WAIT
        pause = LOCK_POLL_MIN
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(LOCK_POLL_MAX, pause * 2)
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT * 1000)}")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    _begin_immediate(conn)
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
