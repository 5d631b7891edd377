"""Embedded SQLite master: the zero-setup default, also the standalone agent's database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from jobmaster.db.sqlite import SqliteClient
from jobmaster.errors import ScheduleError
from jobmaster.jobs import codec
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.model import (
    Attempt,
    Completion,
    Job,
    JobStatus,
)
from jobmaster.jobs.retry import DEFAULT_RETRY, RetryPolicy
from jobmaster.master import rows
from jobmaster.master.base import (
    NO_START,
    Assigner,
    Fence,
    QueueHost,
    Route,
    StartNow,
)
from jobmaster.master.sql.dialect import SQLITE
from jobmaster.master.sql.executor import Executor
from jobmaster.master.sql.store import SqlMasterStore

SCHEMES = ("sqlite",)


def _routes_sql(routes: Sequence[Route]) -> tuple[str, list[Any]]:
    clause = " OR ".join("(lane = ? AND priority = ?)" for _ in routes)
    params: list[Any] = []
    for lane, priority in routes:
        params += [lane, int(priority)]
    return f"({clause})", params


def _claim_sql(cluster_id: str, horizon: float, routes: Sequence[Route], limit: int) -> tuple[str, list[Any]]:
    """One ordered, limited range of the due index per route, then the earliest `limit` of them.

    A single range over every route read and sorted the whole due backlog on each claim, so
    working off a large backlog took quadratic time.
    """
    branch = (
        f"SELECT * FROM (SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE cluster_id = ? AND lane = ?"
        f" AND priority = ? AND status = {lc.HELD} AND scheduled_at <= ? ORDER BY scheduled_at LIMIT ?)"
    )
    params: list[Any] = []
    for lane, priority in routes:
        params += [cluster_id, lane, int(priority), horizon, limit]
    return " UNION ALL ".join([branch] * len(routes)) + " ORDER BY scheduled_at LIMIT ?", [*params, limit]


def _placed(
    jobs: Sequence[Job],
    status: JobStatus,
    bucket_id: str,
    worker_id: str | None,
    lease: Callable[[Job], float | None],
) -> list[Job]:
    """New rows (version 1) of `jobs` placed in a bucket, as they are to be inserted."""
    return [
        j.copy(status=status, version=1, bucket_id=bucket_id, worker_id=worker_id, lease_expires_at=lease(j))
        for j in jobs
    ]


_INSERT_JOB = (
    f"INSERT INTO jm_jobs (cluster_id, {rows.JOB_SELECT}) "
    f"VALUES (?, {', '.join('?' for _ in rows.JOB_COLUMNS)})"
)


#: The VALUES of a succeed statement: its row of placeholders, the SET of a result, the values.
_PLAIN = ("(?, ?, ?)", "", attrgetter("job_id", "version", "attempt.finished_at"))
_RESULTS = (
    "(?, ?, ?, ?)",
    " result = v.column4,",
    attrgetter("job_id", "version", "attempt.finished_at", "result"),
)


class SqliteMaster(SqliteClient, QueueHost, SqlMasterStore):
    dialect = SQLITE

    @property
    def sql(self) -> Executor:
        return self.db.executor

    # ---- job writes -------------------------------------------------------------------------

    def _insert_missing(self, conn: sqlite3.Connection, jobs: Sequence[Job]) -> list[str]:
        existing: set[str] = set()
        ids = [j.id for j in jobs]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            existing.update(
                r[0] for r in conn.execute(f"SELECT id FROM jm_jobs WHERE id IN ({marks})", chunk)
            )
        fresh = [j for j in jobs if j.id not in existing]
        conn.executemany(_INSERT_JOB, [(self.cluster_id, *rows.job_to_row(j)) for j in fresh])
        return [j.id for j in fresh]

    async def insert_jobs(self, jobs: Sequence[Job], connection: Any = None) -> list[str]:
        if connection is not None:
            raise ScheduleError("connection=: a SQLite master cannot join a caller's transaction")
        stored = [j.copy(version=1) for j in jobs]
        return await self.db.transaction(lambda conn: self._insert_missing(conn, stored))

    async def adopt(
        self,
        jobs: Sequence[Job],
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        start: StartNow = NO_START,
    ) -> list[str]:
        owner = dict(version=1, bucket_id=bucket_id, worker_id=worker_id, lease_expires_at=lease_until)
        fresh = [start.adopted(j, **owner) for j in jobs if j.version == 0]
        saved = [j for j in jobs if j.version > 0]

        def write(conn: sqlite3.Connection) -> list[str]:
            owned = self._insert_missing(conn, fresh)
            for job in saved:
                go = job.id in start.ids
                cursor = conn.execute(
                    "UPDATE jm_jobs SET status = ?, attempts = attempts + ?,"
                    " started_at = CASE WHEN ? THEN ? ELSE started_at END, bucket_id = ?,"
                    " worker_id = ?, lease_expires_at = ?, version = version + 1"
                    f" WHERE id = ? AND version = ? AND status = {lc.ASSIGNED}",
                    (
                        int(JobStatus.Processing if go else JobStatus.Queued),
                        int(go),
                        go,
                        start.at,
                        bucket_id,
                        worker_id,
                        lease_until,
                        job.id,
                        job.version,
                    ),
                )
                if cursor.rowcount:
                    owned.append(job.id)
            return owned

        return await self.db.transaction(write)

    async def save_pending(
        self, jobs: Sequence[Job], bucket_id: str, worker_id: str, lease_after_due: float
    ) -> list[str]:
        stored = _placed(
            jobs, JobStatus.AssignedToBucket, bucket_id, worker_id, lambda j: j.scheduled_at + lease_after_due
        )
        return await self.db.transaction(lambda conn: self._insert_missing(conn, stored))

    # ---- bucket queues (QueueHost) ------------------------------------------------------------

    async def queue_jobs(self, bucket_id: str, jobs: Sequence[Job]) -> bool:
        stored = _placed(jobs, JobStatus.AssignedToBucket, bucket_id, None, lambda _: None)

        def write(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM jm_buckets WHERE id = ?", (bucket_id,)).fetchone() is None:
                return False
            self._insert_missing(conn, stored)
            return True

        return await self.db.transaction(write)

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
        queue = f"SELECT id FROM jm_jobs WHERE bucket_id = ? AND status = {lc.ASSIGNED}"

        def take(conn: sqlite3.Connection) -> list[Job]:
            started = conn.execute(
                f"UPDATE jm_jobs SET status = {lc.PROCESSING}, attempts = attempts + 1, started_at = ?,"
                " worker_id = ?, lease_expires_at = ?, version = version + 1"
                f" WHERE id IN ({queue} AND scheduled_at <= ? ORDER BY scheduled_at LIMIT ?)"
                f" RETURNING {rows.JOB_SELECT}",
                (now, worker_id, lease_until, bucket_id, now, start),
            ).fetchall()
            queued = conn.execute(
                f"UPDATE jm_jobs SET status = {lc.QUEUED}, worker_id = ?, lease_expires_at = ?,"
                f" version = version + 1 WHERE id IN ({queue} AND scheduled_at > ?"
                f" AND scheduled_at <= ? ORDER BY scheduled_at LIMIT ?) RETURNING {rows.JOB_SELECT}",
                (worker_id, lease_until, bucket_id, now, due_before, limit),
            ).fetchall()
            jobs = [rows.job_from_row(r) for r in started + queued]
            jobs.sort(key=lambda j: j.scheduled_at)
            return jobs

        return await self.db.transaction_if(
            f"{queue} AND scheduled_at <= ? AND (? OR scheduled_at > ?) LIMIT 1",
            (bucket_id, due_before if limit else now, start > 0, now),
            take,
        )

    async def release_queued(self, bucket_id: str, limit: int) -> int:
        def release(conn: sqlite3.Connection) -> int:
            return conn.execute(
                f"UPDATE jm_jobs SET status = {lc.HELD}, bucket_id = NULL, worker_id = NULL,"
                " lease_expires_at = NULL, version = version + 1 WHERE id IN"
                f" (SELECT id FROM jm_jobs WHERE bucket_id = ? AND status = {lc.ASSIGNED} LIMIT ?)",
                (bucket_id, limit),
            ).rowcount

        return await self.db.transaction(release)

    async def queued_count(self, bucket_id: str) -> int:
        def count(conn: sqlite3.Connection) -> int:
            query = f"SELECT COUNT(*) FROM jm_jobs WHERE bucket_id = ? AND status = {lc.ASSIGNED}"
            return int(conn.execute(query, (bucket_id,)).fetchone()[0])

        return await self.db.run(count)

    async def next_queued_due(self, bucket_id: str) -> float | None:
        def read(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                f"SELECT MIN(scheduled_at) FROM jm_jobs WHERE bucket_id = ? AND status = {lc.ASSIGNED}",
                (bucket_id,),
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self.db.run(read)

    async def remove_empty_bucket(self, bucket_id: str) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            query = f"SELECT 1 FROM jm_jobs WHERE bucket_id = ? AND status = {lc.ASSIGNED} LIMIT 1"
            if conn.execute(query, (bucket_id,)).fetchone() is not None:
                return False
            conn.execute("DELETE FROM jm_buckets WHERE id = ?", (bucket_id,))
            return True

        return await self.db.transaction(remove)

    async def claim_due(
        self,
        horizon: float,
        routes: Sequence[Route],
        limit: int,
        assign: Assigner,
    ) -> list[Job]:
        if not routes:
            return []
        route_sql, route_params = _routes_sql(routes)

        claim_sql, claim_params = _claim_sql(self.cluster_id, horizon, routes, limit)

        def claim(conn: sqlite3.Connection) -> list[Job]:
            found = [rows.job_from_row(r) for r in conn.execute(claim_sql, claim_params)]
            if not found:
                return []
            by_id = {j.id: j for j in found}
            claimed: list[Job] = []
            for a in assign(found):
                job = by_id[a.job_id]
                conn.execute(
                    "UPDATE jm_jobs SET status = ?, bucket_id = ?, worker_id = ?,"
                    " lease_expires_at = ?, version = version + 1 WHERE id = ? AND version = ?",
                    (int(a.status), a.bucket_id, a.worker_id, a.lease_until, job.id, job.version),
                )
                lc.assigned(job, a.bucket_id, a.worker_id, a.status, a.lease_until)
                claimed.append(job)
            return claimed

        return await self.db.transaction_if(
            f"SELECT 1 FROM jm_jobs WHERE cluster_id = ? AND status = {lc.HELD} AND scheduled_at <= ?"
            f" AND {route_sql} LIMIT 1",
            [self.cluster_id, horizon, *route_params],
            claim,
        )

    @staticmethod
    def _holding(conn: sqlite3.Connection, fences: Sequence[Fence], condition: str = "1") -> set[str]:
        """Ids whose version still matches (and `condition` holds), read under the write lock.

        The caller holds BEGIN IMMEDIATE, so nothing can change between this read and its writes:
        the compare-and-swap is the read, and the writes can then run as one executemany.
        """
        wanted = {f.job_id: f.version for f in fences}
        ids = list(wanted)
        holding: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for job_id, version in conn.execute(
                f"SELECT id, version FROM jm_jobs WHERE id IN ({marks}) AND {condition}", chunk
            ):
                if wanted[job_id] == version:
                    holding.add(job_id)
        return holding

    async def start(self, fences: Sequence[Fence], now: float, lease_until: float) -> list[str]:
        def write(conn: sqlite3.Connection) -> list[str]:
            holding = self._holding(conn, fences, f"status IN {lc.STARTABLE_SQL} AND cancel_requested = 0")
            started = [f.job_id for f in fences if f.job_id in holding]
            conn.executemany(
                f"UPDATE jm_jobs SET status = {lc.PROCESSING}, attempts = attempts + 1, started_at = ?,"
                " lease_expires_at = ?, version = version + 1 WHERE id = ?",
                [(now, lease_until, job_id) for job_id in started],
            )
            return started

        return await self.db.transaction(write)

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        def write(conn: sqlite3.Connection) -> list[str]:
            others = [c for c in completions if c.status is not JobStatus.Succeeded]
            holding = self._succeed(conn, [c for c in completions if c.status is JobStatus.Succeeded])
            holding |= self._holding(conn, [Fence(c.job_id, c.version) for c in others])
            done = [c for c in completions if c.job_id in holding]
            for c in others:
                if c.job_id not in holding:
                    continue
                error = codec.dumps(c.error).decode() if c.error is not None else None
                if c.status is JobStatus.HeldOnMaster:
                    conn.execute(
                        f"UPDATE jm_jobs SET status = {lc.HELD}, scheduled_at = ?, bucket_id = NULL,"
                        " worker_id = NULL, lease_expires_at = NULL, last_error = ?,"
                        " attempt_limit = attempt_limit + ?, version = version + 1 WHERE id = ?",
                        (c.scheduled_at, error, c.grant, c.job_id),
                    )
                else:
                    conn.execute(
                        "UPDATE jm_jobs SET status = ?, finished_at = ?, lease_expires_at = NULL,"
                        " last_error = COALESCE(?, last_error), version = version + 1 WHERE id = ?",
                        (int(c.status), c.attempt.finished_at, error, c.job_id),
                    )
                self._record_attempt(conn, c.attempt)
            return [c.job_id for c in done]

        return await self.db.transaction(write)

    @staticmethod
    def _succeed(conn: sqlite3.Connection, completions: Sequence[Completion]) -> set[str]:
        """The common outcome as one compare-and-swap statement per chunk (UPDATE ... FROM VALUES):
        a read of every version and then an update per job cost two index probes per job. Runs that
        returned something go in statements of their own, so the others' keep their text."""
        returned = [c for c in completions if c.result is not None]
        if not returned:
            return SqliteMaster._succeed_chunks(conn, completions, with_result=False)
        plain = [c for c in completions if c.result is None]
        done = SqliteMaster._succeed_chunks(conn, plain, with_result=False)
        return done | SqliteMaster._succeed_chunks(conn, returned, with_result=True)

    @staticmethod
    def _succeed_chunks(
        conn: sqlite3.Connection, completions: Sequence[Completion], with_result: bool
    ) -> set[str]:
        done: set[str] = set()
        marks, store, fields = _RESULTS if with_result else _PLAIN
        for start in range(0, len(completions), 300):
            chunk = completions[start : start + 300]
            values = ", ".join(marks for _ in chunk)
            params = [v for c in chunk for v in fields(c)]
            done.update(
                row[0]
                for row in conn.execute(
                    f"UPDATE jm_jobs SET status = {lc.SUCCEEDED}, finished_at = v.column3,"
                    f" lease_expires_at = NULL,{store}"
                    f" version = version + 1 FROM (VALUES {values}) AS v"
                    " WHERE jm_jobs.id = v.column1 AND jm_jobs.version = v.column2 RETURNING jm_jobs.id",
                    params,
                )
            )
        return done

    @staticmethod
    def _record_attempt(conn: sqlite3.Connection, a: Attempt) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO jm_attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                a.job_id,
                a.attempt,
                a.worker_id,
                a.started_at,
                a.finished_at,
                a.outcome,
                codec.dumps(a.error).decode() if a.error is not None else None,
            ),
        )

    async def release(self, fences: Sequence[Fence]) -> list[str]:
        def write(conn: sqlite3.Connection) -> list[str]:
            released = []
            for fence in fences:
                cursor = conn.execute(
                    f"UPDATE jm_jobs SET status = {lc.HELD}, bucket_id = NULL, worker_id = NULL,"
                    " lease_expires_at = NULL, version = version + 1"
                    f" WHERE id = ? AND version = ? AND status IN {lc.RELEASABLE_SQL}",
                    (fence.job_id, fence.version),
                )
                if cursor.rowcount:
                    released.append(fence.job_id)
            return released

        return await self.db.transaction(write)

    async def renew(self, worker_id: str, now: float, lease_until: float, held: Sequence[str]) -> list[str]:
        renew_before = lc.renew_before(now, lease_until)
        ids = list(held)

        def write(conn: sqlite3.Connection) -> list[str]:
            conn.execute("UPDATE jm_workers SET heartbeat_at = ? WHERE id = ?", (now, worker_id))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(
                    f"UPDATE jm_jobs SET lease_expires_at = ? WHERE id IN ({', '.join('?' for _ in chunk)})"
                    f" AND worker_id = ? AND status IN {lc.RENEWED_SQL} AND lease_expires_at < ?",
                    [lease_until, *chunk, worker_id, renew_before],
                )
            return [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM jm_jobs WHERE worker_id = ? AND status = {lc.PROCESSING}"
                    " AND cancel_requested = 1",
                    (worker_id,),
                )
            ]

        return await self.db.transaction(write)

    async def recover_expired(self, now: float, limit: int, retry: RetryPolicy = DEFAULT_RETRY) -> int:
        def write(conn: sqlite3.Connection) -> int:
            expired = conn.execute(
                f"SELECT {lc.EXPIRED_COLUMNS} FROM jm_jobs WHERE cluster_id = ? AND status IN {lc.OWNED_SQL}"
                " AND lease_expires_at < ? LIMIT ?",
                (self.cluster_id, now, limit),
            ).fetchall()
            for r in lc.recover_all(expired, now, retry):
                held = conn.execute(
                    "UPDATE jm_jobs SET status = ?, scheduled_at = COALESCE(?, scheduled_at),"
                    " finished_at = ?, bucket_id = NULL, worker_id = NULL, lease_expires_at = NULL,"
                    " last_error = COALESCE(?, last_error), version = version + 1"
                    " WHERE id = ? AND version = ?",
                    (
                        int(r.status),
                        r.scheduled_at,
                        r.finished_at,
                        rows.json_text(r.error),
                        r.job_id,
                        r.version,
                    ),
                ).rowcount
                if held and r.attempt is not None:
                    self._record_attempt(conn, r.attempt)
            return len(expired)

        return await self.db.transaction(write)

    # ---- management --------------------------------------------------------------------------

    # ---- workers and buckets -----------------------------------------------------------------


STORE = SqliteMaster
