"""PostgreSQL agent: bucket queues as rows with a visibility time, claimed with SKIP LOCKED.

Shares the connection pool with a PostgreSQL master on the same URL. A push notifies the agent's
channel with the bucket id from inside the same statement, so the bucket's executor wakes when the
messages are committed, and never before. A push locks its bucket's row (key share) and writes
nothing if the bucket is gone, and a destroy locks the row exclusively before it looks for messages,
so a push into a destroyed bucket fails instead of leaving messages nobody will ever claim. (A
foreign key did the same with a lookup and a lock per message: about a third of a push's cost.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import asyncpg

from jobmaster.agents.base import (
    NEXT_DUE_SCAN,
    AgentMessage,
    AgentTransport,
    BucketGoneError,
    ReadCursor,
)
from jobmaster.db.postgres import Listener, PostgresClient, channel_name, new_or_known, remove_if_empty

SCHEMES = ("postgresql", "postgres")

log = logging.getLogger("jobmaster.agents.postgres")

#: Key of the transaction-level advisory lock that serialises schema creation of every process
#: (concurrent `CREATE TABLE IF NOT EXISTS` can still collide in PostgreSQL's catalogs).
_MIGRATION_LOCK = 0x6A6D5F6167656E74  # "jm_agent"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jm_agent_buckets (
        bucket_id text PRIMARY KEY,
        agent text NOT NULL,
        created_at double precision NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jm_agent_messages (
        bucket_id text NOT NULL,
        job_id text NOT NULL,
        due_at double precision NOT NULL,
        version bigint NOT NULL,
        payload bytea NOT NULL,
        visible_at double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, bucket_id)
    )""",
    "ALTER TABLE jm_agent_messages DROP CONSTRAINT IF EXISTS jm_agent_messages_bucket_id_fkey",
    # Keyed by job first, the primary key also finds a job's message (`find`), which took an index
    # of its own, written by every push, in tables made before.
    """DO $$ BEGIN
        IF (SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = 'jm_agent_messages'::regclass AND i.indisprimary) = 'bucket_id' THEN
            ALTER TABLE jm_agent_messages DROP CONSTRAINT jm_agent_messages_pkey,
                ADD PRIMARY KEY (job_id, bucket_id);
        END IF;
    END $$""",
    "DROP INDEX IF EXISTS jm_agent_messages_job",
    # The owner reads in (due_at, job_id) order, from a cursor under a backlog (see `_READ_DUE`).
    """CREATE INDEX IF NOT EXISTS jm_agent_messages_read ON jm_agent_messages
        (bucket_id, due_at, job_id)""",
    "DROP INDEX IF EXISTS jm_agent_messages_due",
    """CREATE OR REPLACE FUNCTION jm_agent_read(
        p_bucket text, p_due_before float8, p_now float8, p_limit integer,
        p_after_due float8, p_after_id text
    ) RETURNS TABLE (job_id text, due_at float8, version bigint, payload bytea)
    LANGUAGE plpgsql STABLE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $$
    BEGIN
        RETURN QUERY
            SELECT m.job_id, m.due_at, m.version, m.payload FROM jm_agent_messages m
            WHERE m.bucket_id = p_bucket AND (m.due_at, m.job_id) > (p_after_due, p_after_id)
                AND m.due_at <= p_due_before AND m.visible_at <= p_now
            ORDER BY m.due_at, m.job_id LIMIT p_limit;
    END
    $$""",
    """CREATE OR REPLACE FUNCTION jm_agent_next_due(p_bucket text, p_scan integer) RETURNS float8
    LANGUAGE plpgsql STABLE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $$
    BEGIN
        RETURN (SELECT MIN(GREATEST(f.due_at, f.visible_at)) FROM (
            SELECT m.due_at, m.visible_at FROM jm_agent_messages m WHERE m.bucket_id = p_bucket
            ORDER BY m.due_at, m.job_id LIMIT p_scan
        ) AS f);
    END
    $$""",
    # See `_ACK`. The WAL flush is skipped for the rest of the transaction (the ack's own).
    """CREATE OR REPLACE FUNCTION jm_agent_ack(p_bucket text, p_ids text[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
    AS $$
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        DELETE FROM jm_agent_messages m WHERE m.job_id = ANY(p_ids) AND m.bucket_id || '' = p_bucket;
    END
    $$""",
    # See `_COUNT`: messages of a bucket, `p_limit` at most (NULL: all).
    """CREATE OR REPLACE FUNCTION jm_agent_count(p_bucket text, p_limit bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
    AS $$
    BEGIN
        RETURN (SELECT count(*) FROM (
            SELECT FROM jm_agent_messages m WHERE m.bucket_id = p_bucket LIMIT p_limit
        ) AS f);
    END
    $$""",
    """CREATE OR REPLACE FUNCTION jm_agent_find(p_job text)
    RETURNS TABLE (job_id text, due_at float8, version bigint, payload bytea)
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
    AS $$
    BEGIN
        RETURN QUERY
            SELECT m.job_id, m.due_at, m.version, m.payload FROM jm_agent_messages m
            WHERE m.job_id = p_job LIMIT 1;
    END
    $$""",
    """CREATE INDEX IF NOT EXISTS jm_agent_messages_unsaved ON jm_agent_messages (bucket_id, due_at)
        WHERE version = 0""",
    # Room on each page lets a claim (which changes only the unindexed visible_at) write the new
    # row version in place, without touching the four indexes (a HOT update).
    "ALTER TABLE jm_agent_messages SET (fillfactor = 70)",
]

_COLUMNS = "job_id, due_at, version, payload"

#: The insert is a CTE (a data-modifying CTE always runs to completion) guarded by the bucket's row,
#: locked once for the statement; the main query answers whether the bucket exists and notifies
#: only if a message was really written. `{replace}` is empty or `_REPLACE`.
_PUSH = """
    WITH bucket AS (
        SELECT FROM jm_agent_buckets WHERE bucket_id = $1 FOR KEY SHARE
    ),
    written AS (
        INSERT INTO jm_agent_messages (bucket_id, job_id, due_at, version, payload)
        SELECT $1, m.* FROM unnest($2::text[], $3::float8[], $4::bigint[], $5::bytea[]) AS m
        WHERE EXISTS (SELECT FROM bucket)
        {replace}
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM bucket), (SELECT pg_notify($6, $1) FROM written LIMIT 1)
"""
_REPLACE = """ON CONFLICT (job_id, bucket_id) DO UPDATE SET
            due_at = excluded.due_at, version = excluded.version,
            payload = excluded.payload, visible_at = 0"""
#: New jobs (version 0: the YES path) are not in the bucket yet but for a retried push, so they go in
#: with a plain insert, which costs the server about 2 us a message less than the upsert's
#: speculative insertion; a push that meets a stored copy runs again as the upsert.
_PUSH_NEW = _PUSH.replace("{replace}", "")
_PUSH_ANY = _PUSH.replace("{replace}", _REPLACE)

#: A claim or an ack changes nothing that must outlive a server crash: a lost one only makes the
#: message claimable again, and adopting it then finds the job's master row and drops the copy. So
#: they commit without waiting for the WAL flush (an fsync per commit; several milliseconds on the
#: YES path under load), by setting `synchronous_commit` for their own transaction from inside the
#: statement: the session keeps its setting, and a push, the only copy of a YES-path job, still
#: waits for its flush.
_NO_FLUSH_WAIT = "(SELECT set_config('synchronous_commit', 'off', true) IS NOT NULL)"

#: Claims name the locked rows by ctid through ARRAY(...): the outer update is then a TID scan
#: whatever the statistics say. With `job_id IN (subquery)` the cached generic plan of a bucket
#: that filled up after the plan was made scanned the whole table per claim (seconds per claim,
#: minutes with 50,000 messages). The rows are locked, so their ctids cannot change under us.
_CLAIM = f"""
    UPDATE jm_agent_messages SET visible_at = $5
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM jm_agent_messages
        WHERE bucket_id = $1 AND due_at <= $2 AND visible_at <= $3
        ORDER BY due_at LIMIT $4
        FOR UPDATE SKIP LOCKED
    )) AND {_NO_FLUSH_WAIT}
    RETURNING {_COLUMNS}
"""

#: The owner's read, from a cursor: the row comparison is an index condition, so the walk starts
#: past the cursor and never visits the index entries of the messages acknowledged before it.
#: Those stay in the index until a later scan may mark them dead, which needs every transaction
#: older than their deletion gone and the page unchanged since the scan read it; under a steady
#: stream of pushes that often fails, and a read from the start then walked thousands of them (25-50
#: us a message instead of 5). A read from the start passes the lowest cursor there is.
#:
#: The query lives in a function for its planner settings: with the default selectivities of a
#: generic plan (a bucket, a due range, a cursor) PostgreSQL expects a row or two and would rather
#: read every match and sort it than walk the index in order, which for a bucket with a backlog
#: means reading the whole backlog on every read.
_READ_DUE = f"SELECT {_COLUMNS} FROM jm_agent_read($1, $2, $3, $4, $5, $6)"
_FROM_START: ReadCursor = (float("-inf"), "")
#: A walk of the bucket's first messages in due order, for the same reason in a function.
_NEXT_DUE = "SELECT jm_agent_next_due($1, $2)"

_CLAIM_UNSAVED = f"""
    UPDATE jm_agent_messages SET visible_at = $4
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM jm_agent_messages
        WHERE bucket_id = $1 AND version = 0 AND due_at > $5 AND visible_at <= $2
        ORDER BY due_at LIMIT $3
        FOR UPDATE SKIP LOCKED
    )) AND {_NO_FLUSH_WAIT}
    RETURNING {_COLUMNS}
"""

#: By primary key, one probe per job, whatever the statistics say; each wrong plan read the
#: bucket's whole backlog per ack (100-340 us a message instead of 5 with 25,000 waiting):
#: * with a plain `bucket_id = $1`, the bucket's part of the read index, filtered on the job ids,
#:   whenever the statistics think the bucket small, which they do for every bucket newer than the
#:   last ANALYZE (a new worker's). The bucket is therefore compared as an expression no index serves.
#: * a sequential scan, which the planner costs close to 100 probes for a table of some thousands
#:   of rows whose statistics are those of an empty one (vacuumed during a quiet spell), so it is
#:   disabled; and a walk of a whole index, which is what remains for a plan made while the table
#:   is nearly empty: such a generic plan was kept while a backlog grew. So the function plans its
#:   delete on each call, from the call's job ids and the table's size then (about 0.1 ms a call,
#:   one call per read of up to hundreds of jobs).
_ACK = "SELECT jm_agent_ack($1, $2::text[])"
#: The rare reads (a bucket's count, the emptiness check of its destruction, a job's lookup) are
#: planned on each call without sequential scans too: a plan kept from while the table was empty
#: read the whole table on every call once a backlog had grown.
_COUNT = "SELECT jm_agent_count($1, $2)"
_ANY = "SELECT WHERE jm_agent_count($1, 1) > 0"
_FIND = f"SELECT {_COLUMNS} FROM jm_agent_find($1)"

#: Messages read from a cursor (a backlog) after which the first read that comes back short (the
#: backlog is worked off) vacuums the message table, in the background. The acknowledged messages
#: leave index entries that every read from the start walks until a VACUUM removes them: 1.5 ms a
#: read after 100,000 (0.2 ms once vacuumed), for as long as autovacuum takes to come by, which may
#: be minutes. The vacuum costs about 1 us a message, once.
VACUUM_AFTER = 10_000


def _messages(records: Sequence[asyncpg.Record]) -> list[AgentMessage]:
    """Rows as messages, earliest due first (UPDATE ... RETURNING keeps no order)."""
    found = [AgentMessage(r[0], r[1], r[2], r[3]) for r in records]
    found.sort(key=lambda m: m.due_at)
    return found


class PostgresAgent(PostgresClient, AgentTransport):
    supports_notify = True

    def __init__(self, url: str, cluster_id: str, name: str) -> None:
        super().__init__(url, cluster_id, name)
        self.channel = channel_name("jm_a_", cluster_id, name)
        self._listeners: list[Listener] = []
        self._read_from_cursor = 0
        self._vacuum: asyncio.Task[None] | None = None

    async def close(self) -> None:
        vacuum, self._vacuum = self._vacuum, None
        if vacuum is not None:
            vacuum.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await vacuum
        await super().close()

    async def migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            for statement in SCHEMA:
                await conn.execute(statement)

    async def create_bucket(self, bucket_id: str) -> None:
        await self.pool.execute(
            "INSERT INTO jm_agent_buckets (bucket_id, agent, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (bucket_id) DO NOTHING",
            bucket_id,
            self.name,
            time.time(),
        )

    async def destroy_bucket(self, bucket_id: str) -> bool:
        return await remove_if_empty(
            self.pool,
            "jm_agent_buckets",
            "bucket_id",
            bucket_id,
            _ANY,
        )

    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        # One statement cannot touch a row twice, so a job named twice keeps its last copy, as
        # it would when the messages were written one after another.
        latest = list({m.job_id: m for m in messages}.values())
        if not latest:
            return
        args = (
            bucket_id,
            [m.job_id for m in latest],
            [m.due_at for m in latest],
            [m.version for m in latest],
            [m.payload for m in latest],
            self.channel,
        )

        async def write(replace: bool) -> bool:
            return bool(await self.pool.fetchval(_PUSH_ANY if replace else _PUSH_NEW, *args))

        # New jobs (version 0) are not stored yet but for a retried push: see `_PUSH_NEW`.
        alive = await (new_or_known(write) if all(m.version == 0 for m in latest) else write(True))
        if not alive:
            raise BucketGoneError(f"bucket {bucket_id} does not exist on agent {self.name!r}")

    async def claim(
        self, bucket_id: str, limit: int, due_before: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        return _messages(await self.pool.fetch(_CLAIM, bucket_id, due_before, now, limit, visible_at))

    async def read_due(
        self,
        bucket_id: str,
        limit: int,
        due_before: float,
        now: float,
        visible_at: float,
        after: ReadCursor | None = None,
    ) -> list[AgentMessage]:
        """A plain read: the owner's next read comes after it acknowledged these."""
        records = await self.pool.fetch(_READ_DUE, bucket_id, due_before, now, limit, *(after or _FROM_START))
        if after is not None:
            self._read_from_cursor += len(records)
        elif len(records) < limit and self._read_from_cursor >= VACUUM_AFTER:
            self._read_from_cursor = 0
            if self._vacuum is None or self._vacuum.done():
                self._vacuum = asyncio.get_running_loop().create_task(self._tidy())
        return [AgentMessage(r[0], r[1], r[2], r[3]) for r in records]

    async def _tidy(self) -> None:
        """Vacuum the message table after a backlog (see `VACUUM_AFTER`); a vacuum already running
        (autovacuum's, another worker's) is not waited for, and a failure only leaves it to
        autovacuum."""
        try:
            await self.pool.execute("VACUUM (SKIP_LOCKED) jm_agent_messages")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("agent %s: could not vacuum its message table: %s", self.name, exc)

    async def claim_unsaved(
        self, bucket_id: str, limit: int, due_after: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        return _messages(await self.pool.fetch(_CLAIM_UNSAVED, bucket_id, now, limit, visible_at, due_after))

    async def ack(self, bucket_id: str, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        await self.pool.execute(_ACK, bucket_id, list(job_ids))

    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        due = await self.pool.fetchval(_NEXT_DUE, bucket_id, NEXT_DUE_SCAN)
        return None if due is None else float(due)

    async def count(self, bucket_id: str) -> int:
        return int(await self.pool.fetchval(_COUNT, bucket_id, None))

    async def find(self, job_id: str) -> AgentMessage | None:
        found = _messages(await self.pool.fetch(_FIND, job_id))
        return found[0] if found else None


TRANSPORT = PostgresAgent
