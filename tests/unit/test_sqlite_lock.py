"""Waiting for another connection's SQLite write lock, on a real database file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from jobmaster.db import sqlite as sqlite_db


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def test_a_writer_waits_for_the_lock_and_then_takes_it(tmp_path: Path) -> None:
    holder, waiter = _connect(tmp_path / "db"), _connect(tmp_path / "db")
    waiter.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.3)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    with sqlite_db.immediate(waiter):
        assert released.is_set()
        waiter.execute("INSERT INTO t VALUES (1)")
    assert waiter.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
    assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == int(sqlite_db.LOCK_WAIT * 1000)


def test_a_writer_gives_up_after_the_lock_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_db, "LOCK_WAIT", 0.2)
    holder, waiter = _connect(tmp_path / "db"), _connect(tmp_path / "db")
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"), sqlite_db.immediate(waiter):
        pass
    assert 0.2 <= time.monotonic() - started < 2.0
    holder.execute("COMMIT")


async def test_the_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    """Commits never checkpoint (that stalls the writer); the background checkpointer does."""
    path = tmp_path / "jobs.db"
    db = await sqlite_db.SqliteDatabase.acquire(f"sqlite:///{path}")
    try:

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE t (x INTEGER)")
            conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])

        await db.transaction(write)
        # immutable=1 reads the database file alone, ignoring the WAL: rows appear there only
        # once a checkpoint has copied them over (a fresh connection each time: an immutable one
        # caches what it read)
        deadline = time.monotonic() + 10 * sqlite_db.CHECKPOINT_EVERY + 5
        while _rows_in_main_file(path) != 100:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            await asyncio.sleep(0.1)
    finally:
        await db.release()


def _rows_in_main_file(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the table itself is not in the file yet
    finally:
        conn.close()
