"""MySQL / MariaDB agent: bucket queues as rows with a visibility time, claimed with SKIP LOCKED.

Shares the connection pool with a MySQL master on the same URL (the standalone agent lives in the
master's database). There is no LISTEN/NOTIFY, so executors poll; an idle poll is one plain indexed
read that takes no lock, and only a poll that sees a visible message opens the claiming transaction.
A foreign key from messages to buckets makes a push into a destroyed bucket fail instead of leaving
messages nobody will ever claim, and makes destroying a bucket that still holds messages fail
instead of orphaning them: InnoDB checks both under row locks, so neither can slip past the other.

The primary key is (job_id, bucket_id), not (bucket_id, job_id): it is unique per bucket all the
same, and it doubles as the index `find` needs on job_id, so each message costs one index entry less
to write and delete than with a separate job_id index.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from asyncmy.errors import MySQLError

from jobmaster.agents.base import (
    NEXT_DUE_SCAN,
    AgentMessage,
    AgentTransport,
    BucketGoneError,
    ReadCursor,
)
from jobmaster.db.mysql import (
    ER_NO_REFERENCED_ROW,
    ER_ROW_IS_REFERENCED,
    MysqlClient,
    Session,
    error_code,
)
from jobmaster.master.sql.dialect import TABLE_OPTIONS

SCHEMES = ("mysql", "mariadb")

SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS jm_agent_buckets (
        bucket_id VARCHAR(191) NOT NULL,
        agent VARCHAR(191) NOT NULL,
        created_at DOUBLE NOT NULL,
        PRIMARY KEY (bucket_id)
    ) {TABLE_OPTIONS}""",
    f"""CREATE TABLE IF NOT EXISTS jm_agent_messages (
        bucket_id VARCHAR(191) NOT NULL,
        job_id VARCHAR(64) NOT NULL,
        due_at DOUBLE NOT NULL,
        version BIGINT NOT NULL,
        payload LONGBLOB NOT NULL,
        visible_at DOUBLE NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, bucket_id),
        INDEX jm_agent_messages_due (bucket_id, due_at),
        INDEX jm_agent_messages_unsaved (bucket_id, version, due_at),
        CONSTRAINT jm_agent_messages_bucket FOREIGN KEY (bucket_id)
            REFERENCES jm_agent_buckets (bucket_id)
    ) {TABLE_OPTIONS}""",
]

_COLUMNS = "job_id, due_at, version, payload"

#: A known job's message is replaced by the newer copy, visible at once (`visible_at` back to its
#: default). REPLACE rather than INSERT ... ON DUPLICATE KEY UPDATE col = VALUES(col): MySQL 8.0.20+
#: deprecates VALUES() there (a warning per statement), and the new-row form differs from MariaDB's.
_PUSH = "REPLACE INTO jm_agent_messages (bucket_id, job_id, due_at, version, payload) VALUES {}"

_DUE = "bucket_id = %s AND due_at <= %s AND visible_at <= %s"
_UNSAVED = "bucket_id = %s AND version = 0 AND due_at > %s AND visible_at <= %s"


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _messages(found: Sequence[Sequence[Any]]) -> list[AgentMessage]:
    return [AgentMessage(r[0], r[1], r[2], bytes(r[3])) for r in found]


class MysqlAgent(MysqlClient, AgentTransport):
    supports_notify = False

    def __init__(self, url: str, cluster_id: str, name: str) -> None:
        super().__init__(url, cluster_id, name)
        self._busy: set[tuple[str, str]] = set()

    async def migrate(self) -> None:
        async with self.db.locked("agent-schema") as s:
            for statement in SCHEMA:
                await s.execute(statement)

    async def create_bucket(self, bucket_id: str) -> None:
        await self.db.execute(
            "INSERT INTO jm_agent_buckets (bucket_id, agent, created_at) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE bucket_id = bucket_id",
            (bucket_id, self.name, time.time()),
        )

    async def destroy_bucket(self, bucket_id: str) -> bool:
        # The foreign key refuses the delete while any message (even one being pushed right now,
        # whose insert holds a lock the delete must wait for) references the bucket.
        try:
            await self.db.execute("DELETE FROM jm_agent_buckets WHERE bucket_id = %s", (bucket_id,))
        except MySQLError as exc:
            if error_code(exc) in ER_ROW_IS_REFERENCED:
                return False
            raise
        return True

    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        # A job named twice keeps its last copy, as if the messages were written one by one.
        latest = list({m.job_id: m for m in messages}.values())
        if not latest:
            return
        params: list[Any] = []
        for m in latest:
            params += [bucket_id, m.job_id, m.due_at, m.version, m.payload]
        try:
            await self.db.execute(_PUSH.format(", ".join(["(%s, %s, %s, %s, %s)"] * len(latest))), params)
        except MySQLError as exc:
            if error_code(exc) in ER_NO_REFERENCED_ROW:
                raise BucketGoneError(f"bucket {bucket_id} does not exist on agent {self.name!r}") from None
            raise

    async def _claim(
        self, where: str, args: Sequence[Any], limit: int, visible_at: float
    ) -> list[AgentMessage]:
        # An idle poll is one plain read on the bucket's index, with no transaction and no lock; the
        # probe is skipped while the previous claim of the same kind found messages (a backlog).
        key = (where, str(args[0]))
        if key not in self._busy and not await self.db.fetch(
            f"SELECT 1 FROM jm_agent_messages WHERE {where} LIMIT 1", args
        ):
            return []

        async def claim(s: Session) -> list[AgentMessage]:
            found = _messages(
                await s.fetch(
                    f"SELECT {_COLUMNS} FROM jm_agent_messages WHERE {where}"
                    " ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
                    [*args, limit],
                )
            )
            if found:
                await s.execute(
                    "UPDATE jm_agent_messages SET visible_at = %s"
                    f" WHERE bucket_id = %s AND job_id IN ({_marks(len(found))})",
                    [visible_at, args[0], *(m.job_id for m in found)],
                )
            return found

        found = await self.db.run(claim)
        if found:
            self._busy.add(key)
        else:
            self._busy.discard(key)
        return found

    async def claim(
        self, bucket_id: str, limit: int, due_before: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        if limit <= 0:
            return []
        return await self._claim(_DUE, (bucket_id, due_before, now), limit, visible_at)

    async def read_due(
        self,
        bucket_id: str,
        limit: int,
        due_before: float,
        now: float,
        visible_at: float,
        after: ReadCursor | None = None,
    ) -> list[AgentMessage]:
        """A plain read, with no transaction: the owner's next read comes after it acknowledged
        these. (It reads from the start: MariaDB plans a cursor condition as a filter on a walk of
        the whole bucket once the bucket is large enough for ORDER BY ... LIMIT to prefer it.)"""
        return _messages(
            await self.db.fetch(
                f"SELECT {_COLUMNS} FROM jm_agent_messages WHERE {_DUE} ORDER BY due_at LIMIT %s",
                (bucket_id, due_before, now, limit),
            )
        )

    async def claim_unsaved(
        self, bucket_id: str, limit: int, due_after: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        if limit <= 0:
            return []
        return await self._claim(_UNSAVED, (bucket_id, due_after, now), limit, visible_at)

    async def ack(self, bucket_id: str, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        await self.db.execute(
            f"DELETE FROM jm_agent_messages WHERE bucket_id = %s AND job_id IN ({_marks(len(job_ids))})",
            [bucket_id, *job_ids],
        )

    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        due = await self.db.fetchval(
            "SELECT MIN(GREATEST(due_at, visible_at)) FROM (SELECT due_at, visible_at"
            " FROM jm_agent_messages WHERE bucket_id = %s ORDER BY due_at LIMIT %s) AS first_due",
            (bucket_id, NEXT_DUE_SCAN),
        )
        return None if due is None else float(due)

    async def count(self, bucket_id: str) -> int:
        return int(
            await self.db.fetchval(
                "SELECT COUNT(*) FROM jm_agent_messages WHERE bucket_id = %s", (bucket_id,)
            )
        )

    async def find(self, job_id: str) -> AgentMessage | None:
        found = _messages(
            await self.db.fetch(
                f"SELECT {_COLUMNS} FROM jm_agent_messages WHERE job_id = %s LIMIT 1", (job_id,)
            )
        )
        return found[0] if found else None


TRANSPORT = MysqlAgent
