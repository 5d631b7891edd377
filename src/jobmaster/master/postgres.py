"""PostgreSQL master: the backend for clusters of many processes and hosts.

Every batch method is one statement (or one short transaction) over `unnest`ed arrays, so a batch
of a thousand jobs costs the same few round trips as a batch of one. Writes that hand jobs back to
HeldOnMaster as part of their own work (insert, complete, recover) also `pg_notify` the cluster's
channel inside the same statement, so coordinators wake exactly when the rows they would claim are
committed. JSON travels as text and is parsed by
PostgreSQL on the way in and by orjson (`rows.job_from_row`) on the way out.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import asyncpg

from jobmaster.db.postgres import Listener, PostgresClient, channel_name, new_or_known, remove_if_empty
from jobmaster.errors import JobMasterError
from jobmaster.jobs import columns as cols
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.model import Completion, Job, JobStatus
from jobmaster.jobs.retry import DEFAULT_RETRY, RetryPolicy
from jobmaster.master import rows
from jobmaster.master.base import (
    BUCKET_TOPIC,
    NO_START,
    Assigner,
    Fence,
    QueueHost,
    Route,
    StartNow,
)
from jobmaster.master.sql.dialect import POSTGRES
from jobmaster.master.sql.executor import Executor
from jobmaster.master.sql.store import ATTEMPT_COLUMNS, SqlMasterStore

SCHEMES = ("postgresql", "postgres")


#: PostgreSQL array type of each of `rows.JOB_COLUMNS`, in order, for `unnest`.
_JOB_ARRAY_TYPES = tuple(f"{c.kind.postgres}[]" for c in cols.COLUMNS)


#: Per column of `rows.JOB_COLUMNS`: its name, how to read it from a job, and how to turn that into
#: what asyncpg sends for the column's type (None: as it is).
_JOB_FIELDS: list[tuple[str, Callable[[Job], Any], Callable[[Any], Any] | None]] = [
    (c.name, attrgetter(c.name), rows.INTO_ROW.get(c.kind)) for c in cols.COLUMNS
]


@functools.lru_cache(maxsize=256)
def _job_rows_sql(first: int, varying: tuple[int, ...]) -> str:
    """`SELECT` of one row per job: `unnest` over the varying columns, a scalar for the others.

    Parameters are numbered from `$first`: first the varying columns' arrays, then the scalars.
    """
    scalars = iter(range(first + len(varying), first + len(rows.JOB_COLUMNS)))
    arrays = ", ".join(f"${first + n}::{_JOB_ARRAY_TYPES[c]}" for n, c in enumerate(varying))
    names = ", ".join(f"c{c}" for c in varying)
    values = ", ".join(
        f"u.c{c}" if c in varying else f"${next(scalars)}::{_JOB_ARRAY_TYPES[c][:-2]}"
        for c in range(len(rows.JOB_COLUMNS))
    )
    return f"SELECT {values} FROM unnest({arrays}) AS u({names})"


def _job_rows(
    jobs: Sequence[Job], first: int, per_job: Mapping[str, list[Any]] | None = None, **fixed: Any
) -> tuple[str, list[Any]]:
    """Jobs as the rows of an INSERT ... SELECT, and their parameters from `$first` on.

    asyncpg checks the type of every array element in Python (about half a microsecond each), so
    22 arrays of a batch cost 11 us a job; the jobs of one scheduling call differ only in id and
    data, so every other column goes as one scalar. The id always varies: it gives the row count.
    `fixed` columns take one value for every job, and `per_job` columns one value per job, in place
    of the jobs' own: no job is copied to change them.
    """
    if not jobs:
        return _job_rows_sql(first, (0,)), [[]] + [None] * (len(rows.JOB_COLUMNS) - 1)
    varying: list[int] = []
    arrays: list[list[Any]] = []
    scalars: list[Any] = []
    for c, (name, get, to_pg) in enumerate(_JOB_FIELDS):
        if name in fixed:
            scalars.append(fixed[name])
            continue
        values = per_job[name] if per_job and name in per_job else [get(j) for j in jobs]
        convert = to_pg
        if to_pg is rows.json_text:  # JSON is compared as text: 1 == 1.0 == True, but not in JSON
            values, convert = [rows.json_text(v) for v in values], None
        if c == 0 or values.count(values[0]) != len(values):
            varying.append(c)
            arrays.append(values if convert is None else [convert(v) for v in values])
        else:
            scalars.append(values[0] if convert is None else convert(values[0]))
    return _job_rows_sql(first, tuple(varying)), arrays + scalars


#: Statements that insert jobs are templates: `{rows}` is the `_job_rows` SELECT of the batch, whose
#: parameters follow the statement's own, and `{skip_known}` is empty or `SKIP_KNOWN` (see
#: `new_or_known`).
SKIP_KNOWN = "ON CONFLICT (id) DO NOTHING"


def _statement(template: str, job_rows: str, skip_known: bool) -> str:
    return template.replace("{rows}", job_rows).replace("{skip_known}", SKIP_KNOWN if skip_known else "")


#: `$1` cluster, `$2` the channel, the jobs from `$3`. The uncorrelated sub-select runs once per
#: statement, after the insert, and only notifies if a HeldOnMaster job was really inserted.
_INSERT_JOBS = f"""
    WITH ins AS (
        INSERT INTO jm_jobs (cluster_id, {rows.JOB_SELECT})
        SELECT $1, r.* FROM ({{rows}}) AS r
        {{skip_known}}
        RETURNING id, status
    )
    SELECT id, (SELECT pg_notify($2, 'held') FROM ins WHERE status = {lc.HELD} LIMIT 1) AS woke FROM ins
"""
_INSERT_JOBS_FIRST = 3

#: `$2` the bucket, `$3` the channel, `$4` the bucket topic prefix, the jobs from `$5`. KEY SHARE on
#: the bucket row lets status updates through but makes `remove_empty_bucket` (FOR UPDATE, then a
#: count) wait until these jobs are visible to it.
_QUEUE_JOBS = f"""
    WITH bucket AS (
        SELECT id FROM jm_buckets WHERE id = $2 FOR KEY SHARE
    ),
    ins AS (
        INSERT INTO jm_jobs (cluster_id, {rows.JOB_SELECT})
        SELECT $1, r.* FROM ({{rows}}) AS r WHERE EXISTS (SELECT FROM bucket)
        {{skip_known}}
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM bucket),
        (SELECT pg_notify($3, $4 || $2) FROM ins LIMIT 1) AS woke
"""
_QUEUE_JOBS_FIRST = 5

#: Rows named by ctid (see the PostgreSQL agent's claim for why).
#: `$2` is now: jobs due by then start at once (Processing, attempt counted, started at now), up to
#: `$3` of them; up to `$5` due later, by `$4`, are Queued for the worker's buffer.
#: A take commits without waiting for its WAL flush (`synchronous_commit` off for its own
#: transaction, set from inside the statement, as the PostgreSQL agent's claims do): one lost in a
#: server crash puts its jobs back in the queue, to be taken and run again, as a worker crash would;
#: the outcome write that follows waits for its flush, and so for the take's. The owner's next take
#: then does not wait for the disk: a take per hundred jobs or so, each an fsync, on every bucket.
#: A run begun on a start the crash undid would go uncounted; with `durable_starts` the worker runs
#: them only after `flush_takes` (below), one flush shared by every take answered before it.
_TAKE_QUEUED = f"""
    WITH due AS (
        SELECT ctid FROM jm_jobs
        WHERE bucket_id = $1 AND status = {lc.ASSIGNED} AND scheduled_at <= $2
        ORDER BY scheduled_at LIMIT $3
        FOR UPDATE SKIP LOCKED
    ), soon AS (
        SELECT ctid FROM jm_jobs
        WHERE bucket_id = $1 AND status = {lc.ASSIGNED} AND scheduled_at > $2 AND scheduled_at <= $4
        ORDER BY scheduled_at LIMIT $5
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jm_jobs SET
        status = CASE WHEN scheduled_at <= $2 THEN {lc.PROCESSING} ELSE {lc.QUEUED} END,
        attempts = attempts + CASE WHEN scheduled_at <= $2 THEN 1 ELSE 0 END,
        started_at = CASE WHEN scheduled_at <= $2 THEN $2 ELSE started_at END,
        worker_id = $6, lease_expires_at = $7, version = version + 1
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM due UNION ALL SELECT ctid FROM soon))
        AND (SELECT set_config('synchronous_commit', 'off', true) IS NOT NULL)
    RETURNING {rows.JOB_SELECT}
"""

#: A write that changes nothing but is still logged, so that its commit waits for the WAL flush.
_TOUCH_WORKER = "UPDATE jm_workers SET heartbeat_at = heartbeat_at WHERE id = $1"

_RELEASE_QUEUED = f"""
    WITH moved AS (
        UPDATE jm_jobs SET status = {lc.HELD}, bucket_id = NULL, worker_id = NULL, lease_expires_at = NULL,
            version = version + 1
        WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM jm_jobs WHERE bucket_id = $1 AND status = {lc.ASSIGNED} LIMIT $2
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING 1
    )
    SELECT count(*), (SELECT pg_notify($3, 'held') FROM moved LIMIT 1) AS woke FROM moved
"""

#: Unsaved copies are inserted, saved ones moved if their version held: `$2..$4` the saved ids,
#: versions and whether each starts now, `$5..$8` bucket, worker, lease and start time, the unsaved
#: jobs from `$9`.
_ADOPT = f"""
    WITH ins AS (
        INSERT INTO jm_jobs (cluster_id, {rows.JOB_SELECT})
        SELECT $1, r.* FROM ({{rows}}) AS r
        {{skip_known}}
        RETURNING id
    ),
    moved AS (
        UPDATE jm_jobs j SET status = CASE WHEN f.go THEN {lc.PROCESSING} ELSE {lc.QUEUED} END,
            attempts = j.attempts + CASE WHEN f.go THEN 1 ELSE 0 END,
            started_at = CASE WHEN f.go THEN $8 ELSE j.started_at END,
            bucket_id = $5, worker_id = $6, lease_expires_at = $7, version = j.version + 1
        FROM unnest($2::text[], $3::bigint[], $4::bool[]) AS f(id, version, go)
        WHERE j.id = f.id AND j.version = f.version AND j.status = {lc.ASSIGNED}
        RETURNING j.id
    )
    SELECT id, true AS fresh FROM ins UNION ALL SELECT id, false FROM moved
"""
_ADOPT_FIRST = 9

#: One ordered, limited range of the due index per route, so a claim reads and locks at most
#: `$5` rows per route however many jobs are due; the outer sort then keeps the earliest `$5`.
#: A single range over every route read (and sorted) the whole due backlog on each claim: 0.5 s
#: per claim of 2,000 with 80,000 jobs due, so working off a backlog cost quadratic time.
_CLAIM = f"""
    SELECT c.* FROM unnest($3::text[], $4::smallint[]) AS r(lane, priority)
    CROSS JOIN LATERAL (
        SELECT {rows.JOB_SELECT} FROM jm_jobs
        WHERE cluster_id = $1 AND status = {lc.HELD} AND lane = r.lane AND priority = r.priority
            AND scheduled_at <= $2
        ORDER BY scheduled_at LIMIT $5
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.scheduled_at LIMIT $5
"""

#: `_ASSIGN`, `_START`, `_SUCCEED` and `_RELEASE` join their batch to the job table in functions
#: (migrations 5 and 6, `master/sql/schema/postgres/`), for the reason given at `_SUCCEED`.
_ASSIGN = "SELECT jm_assign($1::text[], $2::bigint[], $3::smallint[], $4::text[], $5::text[], $6::float8[])"

_START = "SELECT id FROM jm_start($1::text[], $2::bigint[], $3::float8, $4::float8) AS id"

#: A retry (status 2) goes back to the master with its new due time and no owner; a final status
#: keeps the last error unless the run brought a new one. Attempt rows are written only for the
#: completions whose compare-and-swap held; `n` ties each to the very completion that was applied.
_COMPLETE = f"""
    WITH c AS (
        SELECT * FROM unnest(
            $1::text[], $2::bigint[], $3::smallint[], $4::float8[], $5::jsonb[],
            $6::text[], $7::integer[], $8::text[], $9::float8[], $10::float8[], $11::text[],
            $12::jsonb[], $13::integer[]
        ) WITH ORDINALITY AS c(id, version, status, scheduled_at, error, a_job_id, attempt,
                               a_worker_id, a_started_at, a_finished_at, outcome, a_error, grant_, n)
    ),
    done AS (
        UPDATE jm_jobs j SET
            status = c.status,
            scheduled_at = CASE WHEN c.status = {lc.HELD} THEN c.scheduled_at ELSE j.scheduled_at END,
            bucket_id = CASE WHEN c.status = {lc.HELD} THEN NULL ELSE j.bucket_id END,
            worker_id = CASE WHEN c.status = {lc.HELD} THEN NULL ELSE j.worker_id END,
            lease_expires_at = NULL,
            finished_at = CASE WHEN c.status = {lc.HELD} THEN j.finished_at ELSE c.a_finished_at END,
            last_error = CASE WHEN c.status = {lc.HELD} THEN c.error
                              ELSE COALESCE(c.error, j.last_error) END,
            attempt_limit = j.attempt_limit + c.grant_,
            version = j.version + 1
        FROM c
        WHERE j.id = c.id AND j.version = c.version
        RETURNING c.n, c.status
    ),
    history AS (
        INSERT INTO jm_attempts ({ATTEMPT_COLUMNS})
        SELECT c.a_job_id, c.attempt, c.a_worker_id, c.a_started_at, c.a_finished_at, c.outcome,
               c.a_error
        FROM c JOIN done ON done.n = c.n
        WHERE c.status <> {lc.SUCCEEDED}
        ON CONFLICT (job_id, attempt) DO UPDATE SET
            worker_id = excluded.worker_id, started_at = excluded.started_at,
            finished_at = excluded.finished_at, outcome = excluded.outcome, error = excluded.error
    )
    SELECT n, (SELECT pg_notify($14, 'held') FROM done WHERE status = {lc.HELD} LIMIT 1) AS woke FROM done
"""

#: The common outcome on its own: three arrays and no attempt row or notification to consider cost
#: a fifth less server time per job than the general statement above. It runs in `jm_succeed` for
#: the planner settings of the function: as a prepared statement, the generic plan PostgreSQL made
#: while the job table was small (a new cluster's first completions) joined the batch by hashing a
#: sequential scan of the whole table, and was kept as the table grew, until an ANALYZE: 62 us a
#: job instead of 13 over a cluster's first 50,000 jobs.
_SUCCEED = "SELECT id FROM jm_succeed($1::text[], $2::bigint[], $3::float8[]) AS id"
#: Successful runs that returned something (migration 8): the others keep `_SUCCEED`.
_SUCCEED_RESULTS = (
    "SELECT id FROM jm_succeed_results($1::text[], $2::bigint[], $3::float8[], $4::jsonb[]) AS id"
)

#: No notification: callers release as part of a larger step and notify once it is over.
_RELEASE = "SELECT id FROM jm_release($1::text[], $2::bigint[]) AS id"

#: One statement, so one snapshot: the cancel flags read are those of the leases being renewed.
_RENEW = f"""
    WITH heartbeat AS (
        UPDATE jm_workers SET heartbeat_at = $2 WHERE id = $1
    ),
    leases AS (
        UPDATE jm_jobs SET lease_expires_at = $3
        WHERE id = ANY($5::text[]) AND worker_id = $1 AND status IN {lc.RENEWED_SQL} AND lease_expires_at < $4
    )
    SELECT id FROM jm_jobs WHERE worker_id = $1 AND status = {lc.PROCESSING} AND cancel_requested
"""

#: Jobs whose lease lapsed, found through the lease index and locked for `recover_expired` to decide
#: their fate (`lifecycle.recover`).
_RECOVER = f"""
    SELECT {lc.EXPIRED_COLUMNS} FROM jm_jobs
    WHERE cluster_id = $1 AND status IN {lc.OWNED_SQL} AND lease_expires_at < $2
    LIMIT $3
    FOR UPDATE SKIP LOCKED
"""

#: The decided recoveries, fenced on version, and the "lost" attempts of those that held.
_APPLY_RECOVERY = f"""
    WITH r AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::float8[], $5::float8[],
                             $6::jsonb[]) AS r(id, version, status, scheduled_at, finished_at, error)
    ),
    moved AS (
        UPDATE jm_jobs j SET
            status = r.status,
            scheduled_at = COALESCE(r.scheduled_at, j.scheduled_at),
            finished_at = r.finished_at,
            bucket_id = NULL, worker_id = NULL, lease_expires_at = NULL,
            last_error = COALESCE(r.error, j.last_error),
            version = j.version + 1
        FROM r
        WHERE j.id = r.id AND j.version = r.version
        RETURNING j.id, j.status
    ),
    lost AS (
        INSERT INTO jm_attempts ({ATTEMPT_COLUMNS})
        SELECT a.* FROM unnest($7::text[], $8::integer[], $9::text[], $10::float8[], $11::float8[],
                               $12::text[], $13::jsonb[])
            AS a(job_id, attempt, worker_id, started_at, finished_at, outcome, error)
        WHERE a.job_id IN (SELECT id FROM moved)
        ON CONFLICT (job_id, attempt) DO UPDATE SET
            worker_id = excluded.worker_id, started_at = excluded.started_at,
            finished_at = excluded.finished_at, outcome = excluded.outcome, error = excluded.error
    )
    SELECT (SELECT pg_notify($14, 'held') FROM moved WHERE status = {lc.HELD} LIMIT 1) AS woke
"""


def _id_order(fences: Sequence[Fence]) -> list[Fence]:
    """Fences sorted by job id, the order every batched statement locks rows in.

    A nested loop over `unnest` locks rows in array order, and an `id = ANY(...)` index scan in id
    order; two batches naming the same jobs in different orders could otherwise deadlock.
    """
    return sorted(fences, key=lambda f: f.job_id)


#: Attempts of a batched write that PostgreSQL aborted as a deadlock victim.
DEADLOCK_ATTEMPTS = 5


async def _batch_write(pool: asyncpg.Pool, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run a batched job write, again if PostgreSQL picked it as a deadlock victim.

    Batches lock rows in id order, but statements that find their rows through another index (a
    take through the queue index, the recovery through the lease index) lock them in that index's
    order; PostgreSQL then aborts one of the two statements whole. Every such write is a
    compare-and-swap, so running it again is safe.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            records: list[asyncpg.Record] = await pool.fetch(sql, *args)
            return records
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_ATTEMPTS:
                raise
            await asyncio.sleep(0.01 * attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _routes(routes: Sequence[Route]) -> tuple[list[str], list[int]]:
    return [lane for lane, _ in routes], [int(priority) for _, priority in routes]


class PostgresMaster(PostgresClient, QueueHost, SqlMasterStore):
    dialect = POSTGRES

    @property
    def sql(self) -> Executor:
        return self.db.executor

    supports_notify = True
    joins_transactions = True

    def __init__(self, url: str, cluster_id: str) -> None:
        super().__init__(url, cluster_id)
        self.channel = channel_name("jm_", cluster_id)
        self._listeners: list[Listener] = []

    async def notify(self, topic: str) -> None:
        await self.pool.execute("SELECT pg_notify($1, $2)", self.channel, topic)

    async def watch_end(self, job_id: str) -> bool:
        """Stamp the job with this cluster's channel: the trigger of migration 8 notifies it when
        the job ends. The version stays, so the job's owner is not fenced out by it."""
        status = await self.pool.execute(
            "UPDATE jm_jobs SET notify_channel = $3 WHERE cluster_id = $1 AND id = $2",
            self.cluster_id,
            job_id,
            self.channel,
        )
        return bool(status != "UPDATE 0")

    # ---- job writes -------------------------------------------------------------------------

    async def _insert(self, jobs: Sequence[Job], conn: Any, **fixed: Any) -> list[str]:
        job_rows, params = _job_rows(jobs, _INSERT_JOBS_FIRST, **fixed)

        async def write(skip_known: bool) -> list[asyncpg.Record]:
            sql = _statement(_INSERT_JOBS, job_rows, skip_known)
            records: list[asyncpg.Record] = await (conn or self.pool).fetch(
                sql, self.cluster_id, self.channel, *params
            )
            return records

        # A failed statement would abort the caller's own transaction: no second try in there.
        records = await (write(True) if conn is not None else new_or_known(write))
        return rows.in_order((j.id for j in jobs), {r[0] for r in records})

    async def insert_jobs(self, jobs: Sequence[Job], connection: Any = None) -> list[str]:
        if not jobs:
            return []
        return await self._insert(jobs, connection, version=1)

    async def adopt(
        self,
        jobs: Sequence[Job],
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        start: StartNow = NO_START,
    ) -> list[str]:
        if not jobs:
            return []
        fresh = [j for j in jobs if j.version == 0]
        saved = sorted((j for j in jobs if j.version > 0), key=lambda j: j.id)
        job_rows, params = _job_rows(
            fresh,
            _ADOPT_FIRST,
            start.adoption_columns(fresh),
            version=1,
            bucket_id=bucket_id,
            worker_id=worker_id,
            lease_expires_at=lease_until,
        )
        records = await new_or_known(
            lambda skip_known: _batch_write(
                self.pool,
                _statement(_ADOPT, job_rows, skip_known),
                self.cluster_id,
                [j.id for j in saved],
                [j.version for j in saved],
                [j.id in start.ids for j in saved],
                bucket_id,
                worker_id,
                lease_until,
                start.at,
                *params,
            )
        )
        inserted = {r[0] for r in records if r[1]}
        moved = {r[0] for r in records if not r[1]}
        return rows.in_order((j.id for j in fresh), inserted) + rows.in_order((j.id for j in saved), moved)

    async def save_pending(
        self, jobs: Sequence[Job], bucket_id: str, worker_id: str, lease_after_due: float
    ) -> list[str]:
        if not jobs:
            return []
        leased = [j.copy(lease_expires_at=j.scheduled_at + lease_after_due) for j in jobs]
        return await self._insert(
            leased,
            None,
            status=int(JobStatus.AssignedToBucket),
            version=1,
            bucket_id=bucket_id,
            worker_id=worker_id,
        )

    # ---- bucket queues (QueueHost) ------------------------------------------------------------

    async def queue_jobs(self, bucket_id: str, jobs: Sequence[Job]) -> bool:
        if not jobs:
            return True
        job_rows, params = _job_rows(
            jobs,
            _QUEUE_JOBS_FIRST,
            status=int(JobStatus.AssignedToBucket),
            version=1,
            bucket_id=bucket_id,
            worker_id=None,
            lease_expires_at=None,
        )
        alive = await new_or_known(
            lambda skip_known: self.pool.fetchval(
                _statement(_QUEUE_JOBS, job_rows, skip_known),
                self.cluster_id,
                bucket_id,
                self.channel,
                BUCKET_TOPIC,
                *params,
            )
        )
        return bool(alive)

    async def take_queued(
        self,
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        *,
        now: float,
        start: int,
        due_before: float,
        limit: int,
    ) -> list[Job]:
        records = await self.pool.fetch(
            _TAKE_QUEUED, bucket_id, now, start, due_before, limit, worker_id, lease_until
        )
        jobs = [rows.job_from_row(r) for r in records]
        jobs.sort(key=lambda j: j.scheduled_at)
        return jobs

    takes_skip_flush = True

    async def flush_takes(self, worker_id: str) -> None:
        """A commit waits for the WAL to be flushed up to it (the server's `synchronous_commit`),
        every earlier take's commit included, but only if its transaction wrote WAL: an xid alone
        (`txid_current()`) does not, and did not flush (found by tests/e2e/test_faults.py). So it
        rewrites the worker's own row as it is, a row no other worker contends for."""
        status = await self.pool.execute(_TOUCH_WORKER, worker_id)
        if status != "UPDATE 1":
            raise JobMasterError(f"worker {worker_id} has no row to write, so its takes' flush is unknown")

    async def release_queued(self, bucket_id: str, limit: int) -> int:
        return int(await self.pool.fetchval(_RELEASE_QUEUED, bucket_id, limit, self.channel))

    async def queued_count(self, bucket_id: str) -> int:
        return int(
            await self.pool.fetchval(
                f"SELECT count(*) FROM jm_jobs WHERE bucket_id = $1 AND status = {lc.ASSIGNED}", bucket_id
            )
        )

    async def next_queued_due(self, bucket_id: str) -> float | None:
        due = await self.pool.fetchval(
            f"SELECT scheduled_at FROM jm_jobs WHERE bucket_id = $1 AND status = {lc.ASSIGNED}"
            " ORDER BY scheduled_at LIMIT 1",
            bucket_id,
        )
        return None if due is None else float(due)

    async def remove_empty_bucket(self, bucket_id: str) -> bool:
        queued = f"SELECT FROM jm_jobs WHERE bucket_id = $1 AND status = {lc.ASSIGNED}"
        return await remove_if_empty(self.pool, "jm_buckets", "id", bucket_id, queued)

    async def claim_due(
        self,
        horizon: float,
        routes: Sequence[Route],
        limit: int,
        assign: Assigner,
    ) -> list[Job]:
        if not routes or limit <= 0:
            return []
        lanes, priorities = _routes(routes)
        async with self.pool.acquire() as conn, conn.transaction():
            found = [
                rows.job_from_row(r)
                for r in await conn.fetch(_CLAIM, self.cluster_id, horizon, lanes, priorities, limit)
            ]
            if not found:
                return []
            by_id = {j.id: j for j in found}
            assignments = assign(found)
            if not assignments:
                return []
            claimed = [by_id[a.job_id] for a in assignments]
            ordered = sorted(assignments, key=lambda a: a.job_id)
            await conn.execute(
                _ASSIGN,
                [a.job_id for a in ordered],
                [by_id[a.job_id].version for a in ordered],
                [int(a.status) for a in ordered],
                [a.bucket_id for a in ordered],
                [a.worker_id for a in ordered],
                [a.lease_until for a in ordered],
            )
        for job, a in zip(claimed, assignments, strict=True):
            lc.assigned(job, a.bucket_id, a.worker_id, a.status, a.lease_until)
        return claimed

    async def start(self, fences: Sequence[Fence], now: float, lease_until: float) -> list[str]:
        if not fences:
            return []
        ordered = _id_order(fences)
        records = await _batch_write(
            self.pool, _START, [f.job_id for f in ordered], [f.version for f in ordered], now, lease_until
        )
        return rows.in_order((f.job_id for f in fences), {r[0] for r in records})

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        if not completions:
            return []
        completions = sorted(completions, key=lambda c: c.job_id)
        succeeded = [c for c in completions if c.status is JobStatus.Succeeded]
        others = [c for c in completions if c.status is not JobStatus.Succeeded]
        done: list[str] = []
        returned = [c for c in succeeded if c.result is not None]
        if returned:
            succeeded = [c for c in succeeded if c.result is None]
            done += await self._succeed(_SUCCEED_RESULTS, returned, [c.result for c in returned])
        if succeeded:
            done += await self._succeed(_SUCCEED, succeeded)
        if others:
            done += await self._complete_others(others)
        return done

    async def _succeed(self, sql: str, batch: list[Completion], *extra: list[Any]) -> list[str]:
        """Mark `batch` Succeeded: `_SUCCEED`, or `_SUCCEED_RESULTS` with the results as `extra`."""
        records = await _batch_write(
            self.pool,
            sql,
            [c.job_id for c in batch],
            [c.version for c in batch],
            [c.attempt.finished_at for c in batch],
            *extra,
        )
        return [r[0] for r in records]

    async def _complete_others(self, completions: list[Completion]) -> list[str]:
        records = await _batch_write(
            self.pool,
            _COMPLETE,
            [c.job_id for c in completions],
            [c.version for c in completions],
            [int(c.status) for c in completions],
            [c.scheduled_at for c in completions],
            [rows.json_text(c.error) for c in completions],
            [c.attempt.job_id for c in completions],
            [c.attempt.attempt for c in completions],
            [c.attempt.worker_id for c in completions],
            [c.attempt.started_at for c in completions],
            [c.attempt.finished_at for c in completions],
            [c.attempt.outcome for c in completions],
            [rows.json_text(c.attempt.error) for c in completions],
            [c.grant for c in completions],
            self.channel,
        )
        return [completions[n - 1].job_id for n in sorted(r[0] for r in records)]

    async def release(self, fences: Sequence[Fence]) -> list[str]:
        if not fences:
            return []
        ordered = _id_order(fences)
        records = await _batch_write(
            self.pool, _RELEASE, [f.job_id for f in ordered], [f.version for f in ordered]
        )
        return rows.in_order((f.job_id for f in fences), {r[0] for r in records})

    async def renew(self, worker_id: str, now: float, lease_until: float, held: Sequence[str]) -> list[str]:
        renew_before = lc.renew_before(now, lease_until)
        records = await _batch_write(self.pool, _RENEW, worker_id, now, lease_until, renew_before, list(held))
        return [r[0] for r in records]

    async def recover_expired(self, now: float, limit: int, retry: RetryPolicy = DEFAULT_RETRY) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            expired = await conn.fetch(_RECOVER, self.cluster_id, now, limit)
            if not expired:
                return 0
            decided = lc.recover_all(expired, now, retry)
            lost = [r.attempt for r in decided if r.attempt is not None]
            await conn.execute(
                _APPLY_RECOVERY,
                [r.job_id for r in decided],
                [r.version for r in decided],
                [int(r.status) for r in decided],
                [r.scheduled_at for r in decided],
                [r.finished_at for r in decided],
                [rows.json_text(r.error) for r in decided],
                [a.job_id for a in lost],
                [a.attempt for a in lost],
                [a.worker_id for a in lost],
                [a.started_at for a in lost],
                [a.finished_at for a in lost],
                [a.outcome for a in lost],
                [rows.json_text(a.error) for a in lost],
                self.channel,
            )
        return len(expired)

    # ---- management --------------------------------------------------------------------------

    # ---- workers and buckets -----------------------------------------------------------------


STORE = PostgresMaster
