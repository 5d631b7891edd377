"""SQLite agent: bucket queues as rows with a visibility time, in any SQLite file.

Used as the standalone agent (the master's own file) and as a local agent of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from jobmaster.agents.base import NEXT_DUE_SCAN, AgentMessage, AgentTransport, BucketGoneError
from jobmaster.db.sqlite import SqliteClient, immediate

SCHEMES = ("sqlite",)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jm_agent_buckets (
        bucket_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jm_agent_messages (
        bucket_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        due_at REAL NOT NULL,
        version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        visible_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (bucket_id, job_id),
        FOREIGN KEY (bucket_id) REFERENCES jm_agent_buckets (bucket_id)
    )""",
    "CREATE INDEX IF NOT EXISTS jm_agent_messages_due ON jm_agent_messages (bucket_id, due_at)",
    "CREATE INDEX IF NOT EXISTS jm_agent_messages_job ON jm_agent_messages (job_id)",
    """CREATE INDEX IF NOT EXISTS jm_agent_messages_unsaved ON jm_agent_messages (bucket_id, due_at)
        WHERE version = 0""",
]

_COLUMNS = "job_id, due_at, version, payload"
#: Ids per statement, under SQLite's default limit of 999 bound parameters.
_CHUNK = 500


def _messages(cursor: sqlite3.Cursor) -> list[AgentMessage]:
    """Rows as messages, earliest due first (UPDATE ... RETURNING keeps no order)."""
    found = [AgentMessage(r[0], r[1], r[2], bytes(r[3])) for r in cursor]
    found.sort(key=lambda m: m.due_at)
    return found


class SqliteAgent(SqliteClient, AgentTransport):
    async def migrate(self) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                for statement in SCHEMA:
                    conn.execute(statement)

        await self.db.run(apply)

    async def create_bucket(self, bucket_id: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO jm_agent_buckets (bucket_id, agent, created_at) VALUES (?, ?, ?)",
            (bucket_id, self.name, time.time()),
        )

    async def destroy_bucket(self, bucket_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            if conn.execute(
                "SELECT 1 FROM jm_agent_messages WHERE bucket_id = ? LIMIT 1", (bucket_id,)
            ).fetchone():
                return False
            conn.execute("DELETE FROM jm_agent_buckets WHERE bucket_id = ?", (bucket_id,))
            return True

        return await self.db.transaction(write)

    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        values = [(bucket_id, m.job_id, m.due_at, m.version, m.payload) for m in messages]
        try:
            await self.db.execute_many(
                "INSERT INTO jm_agent_messages (bucket_id, job_id, due_at, version, payload)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (bucket_id, job_id) DO UPDATE SET"
                " due_at = excluded.due_at, version = excluded.version,"
                " payload = excluded.payload, visible_at = 0",
                values,
            )
        except sqlite3.IntegrityError:
            raise BucketGoneError(f"bucket {bucket_id} does not exist on agent {self.name!r}") from None

    async def claim(
        self, bucket_id: str, limit: int, due_before: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        def write(conn: sqlite3.Connection) -> list[AgentMessage]:
            return _messages(
                conn.execute(
                    f"UPDATE jm_agent_messages SET visible_at = ? WHERE rowid IN ("
                    " SELECT rowid FROM jm_agent_messages WHERE bucket_id = ? AND due_at <= ?"
                    f" AND visible_at <= ? ORDER BY due_at LIMIT ?) RETURNING {_COLUMNS}",
                    (visible_at, bucket_id, due_before, now, limit),
                )
            )

        return await self.db.transaction_if(
            "SELECT 1 FROM jm_agent_messages WHERE bucket_id = ? AND due_at <= ? AND visible_at <= ? LIMIT 1",
            (bucket_id, due_before, now),
            write,
        )

    async def claim_unsaved(
        self, bucket_id: str, limit: int, due_after: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        def write(conn: sqlite3.Connection) -> list[AgentMessage]:
            return _messages(
                conn.execute(
                    f"UPDATE jm_agent_messages SET visible_at = ? WHERE rowid IN ("
                    " SELECT rowid FROM jm_agent_messages WHERE bucket_id = ? AND version = 0"
                    f" AND due_at > ? AND visible_at <= ? ORDER BY due_at LIMIT ?) RETURNING {_COLUMNS}",
                    (visible_at, bucket_id, due_after, now, limit),
                )
            )

        return await self.db.transaction_if(
            "SELECT 1 FROM jm_agent_messages WHERE bucket_id = ? AND version = 0 AND due_at > ?"
            " AND visible_at <= ? LIMIT 1",
            (bucket_id, due_after, now),
            write,
        )

    async def ack(self, bucket_id: str, job_ids: Sequence[str]) -> None:
        ids = list(job_ids)

        def write(conn: sqlite3.Connection) -> None:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                conn.execute(
                    "DELETE FROM jm_agent_messages WHERE bucket_id = ?"
                    f" AND job_id IN ({', '.join('?' for _ in chunk)})",
                    [bucket_id, *chunk],
                )

        if ids:
            await self.db.transaction(write)

    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        def read(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(MAX(due_at, visible_at)) FROM (SELECT due_at, visible_at"
                " FROM jm_agent_messages WHERE bucket_id = ? ORDER BY due_at LIMIT ?)",
                (bucket_id, NEXT_DUE_SCAN),
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self.db.run(read)

    async def count(self, bucket_id: str) -> int:
        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM jm_agent_messages WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()
            return int(row[0])

        return await self.db.run(read)

    async def find(self, job_id: str) -> AgentMessage | None:
        def read(conn: sqlite3.Connection) -> AgentMessage | None:
            found = _messages(
                conn.execute(f"SELECT {_COLUMNS} FROM jm_agent_messages WHERE job_id = ? LIMIT 1", (job_id,))
            )
            return found[0] if found else None

        return await self.db.run(read)


TRANSPORT = SqliteAgent
