"""The master operations that are the same SQL on every database, written once.

Each is one or a few statements off the hot path (management, workers and buckets, upkeep), run
through the handle's `Executor` and spelled through its `Dialect`. The backends keep only what is
measured and per-database: inserting, claiming, starting, completing, releasing and renewing jobs,
applying recoveries, and the bucket queues.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

from jobmaster.cluster.model import Bucket, BucketStatus, WorkerRecord, WorkerStatus
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.model import Attempt, Job, JobFilter, JobStatus, Priority
from jobmaster.master import rows
from jobmaster.master.base import MasterStore, Route, StatusCount
from jobmaster.master.sql import migrations
from jobmaster.master.sql.dialect import Dialect
from jobmaster.master.sql.executor import Executor, Statements

ATTEMPT_COLUMNS = "job_id, attempt, worker_id, started_at, finished_at, outcome, error"

#: Ids per statement where a list of them becomes `IN (?, ...)` (SQLite allows 32,766 parameters,
#: older builds 999).
CHUNK = 500


#: The listing order, a total one (ids are unique), so that a page can start after a position.
LIST_ORDER = "ORDER BY scheduled_at DESC, id DESC LIMIT ? OFFSET ?"


def marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _and(where: str, predicate: str) -> str:
    return f"{where} AND {predicate}" if predicate else where


def list_sql(cluster_id: str, criteria: JobFilter, dialect: Dialect) -> tuple[str, list[Any]]:
    """The page of jobs `criteria` names, in the listing order, and its parameters: one ordered
    read of the listing index, or of each of the dialect's listing parts and then of their merge."""
    where, params = rows.filter_sql(cluster_id, criteria, dialect.filter)
    wanted = set(criteria.statuses)
    parts = [p.predicate for p in dialect.listing if not wanted or p.statuses & wanted]
    end = [criteria.limit, criteria.offset]
    table = "jm_jobs" if criteria.after is None else f"jm_jobs{dialect.seek}"
    if len(parts) == 1:
        query = f"SELECT {rows.JOB_SELECT} FROM {table} WHERE {_and(where, parts[0])} {LIST_ORDER}"
        return dialect.sql(query), [*params, *end]
    # Each part in order up to the page's end, then the page of their merge.
    branch = "(SELECT {} FROM {} WHERE {} ORDER BY scheduled_at DESC, id DESC LIMIT ?)"
    branches = [branch.format(rows.JOB_SELECT, table, _and(where, part)) for part in parts]
    query = f"SELECT {rows.JOB_SELECT} FROM ({' UNION ALL '.join(branches)}) AS page {LIST_ORDER}"
    values = [v for _ in parts for v in (*params, criteria.limit + criteria.offset)]
    return dialect.sql(query), [*values, *end]


class SqlMasterStore(MasterStore):
    """A master on a SQL database: the cold path here, the hot path in each backend."""

    dialect: Dialect

    @property
    @abc.abstractmethod
    def sql(self) -> Executor:
        """The executor of the store's open handle."""

    # ---- schema ------------------------------------------------------------------------------

    @classmethod
    def latest_schema_version(cls) -> int:
        return migrations.latest(cls.dialect)

    async def migrate(self) -> int:
        return await migrations.migrate(self.sql, self.dialect)

    async def schema_version(self) -> int:
        return await migrations.schema_version(self.sql, self.dialect)

    # ---- job reads ---------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        found = await self.sql.fetch(
            self.dialect.sql(f"SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE cluster_id = ? AND id = ?"),
            (self.cluster_id, job_id),
        )
        return rows.job_from_row(found[0]) if found else None

    async def list_jobs(self, criteria: JobFilter) -> list[Job]:
        found = await self.sql.fetch(*list_sql(self.cluster_id, criteria, self.dialect))
        return [rows.job_from_row(r) for r in found]

    async def count_jobs(self, criteria: JobFilter) -> int:
        where, params = rows.filter_sql(self.cluster_id, criteria, self.dialect.filter)
        return int(
            await self.sql.fetchval(self.dialect.sql(f"SELECT COUNT(*) FROM jm_jobs WHERE {where}"), params)
        )

    async def count_by_status(self) -> list[StatusCount]:
        found = await self.sql.fetch(
            self.dialect.sql(
                "SELECT status, priority, lane, COUNT(*) FROM jm_jobs WHERE cluster_id = ?"
                " GROUP BY status, priority, lane"
            ),
            (self.cluster_id,),
        )
        return [StatusCount(JobStatus(s), Priority(p), lane, int(n)) for s, p, lane, n in found]

    async def attempt_rows(self, job_id: str) -> list[Attempt]:
        found = await self.sql.fetch(
            self.dialect.sql(
                f"SELECT {ATTEMPT_COLUMNS} FROM jm_attempts WHERE job_id = ? ORDER BY attempt, started_at"
            ),
            (job_id,),
        )
        return [rows.attempt_from_row(r) for r in found]

    async def next_due_at(self, routes: Sequence[Route]) -> float | None:
        if not routes:
            return None
        # Per route, so each minimum is one probe of the due index instead of a scan of every held job.
        d = self.dialect
        branch = (
            f"SELECT MIN({d.due}) AS due FROM jm_jobs WHERE cluster_id = ? AND lane = ? AND priority = ?"
            f" AND {d.held}"
        )
        params: list[Any] = []
        for lane, priority in routes:
            params += [self.cluster_id, lane, int(priority)]
        due = await self.sql.fetchval(
            d.sql(f"SELECT MIN(due) FROM ({' UNION ALL '.join([branch] * len(routes))}) AS routes"), params
        )
        return None if due is None else float(due)

    # ---- job writes off the hot path ---------------------------------------------------------

    async def update_job(self, job_id: str, version: int, changes: dict[str, Any]) -> Job | None:
        unknown = set(changes) - rows.UPDATABLE
        if unknown:
            raise ValueError(f"columns not updatable: {sorted(unknown)}")
        d = self.dialect
        assignments = "".join(f"{name} = ?{d.casts.get(name, '')}, " for name in changes)
        values = [d.value(name, value) for name, value in changes.items()]
        update = d.sql(
            f"UPDATE jm_jobs SET {assignments}version = version + 1"
            " WHERE cluster_id = ? AND id = ? AND version = ?"
        )
        read = d.sql(f"SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE id = ?")

        async def write(t: Statements) -> Job | None:
            if not await t.execute(update, [*values, self.cluster_id, job_id, version]):
                return None
            return rows.job_from_row((await t.fetch(read, (job_id,)))[0])

        return await self.sql.transaction(write)

    async def request_cancel(self, job_id: str, version: int) -> bool:
        matched = await self.sql.execute(
            self.dialect.sql(
                f"UPDATE jm_jobs SET cancel_requested = {self.dialect.true}"
                f" WHERE cluster_id = ? AND id = ? AND version = ? AND status = {lc.PROCESSING}"
            ),
            (self.cluster_id, job_id, version),
        )
        return matched > 0

    async def prune(self, finished_before: float, limit: int) -> int:
        d = self.dialect
        old = d.sql(
            f"SELECT id FROM jm_jobs WHERE cluster_id = ? AND {d.finished_before} LIMIT ?{d.skip_locked}"
        )

        async def write(t: Statements) -> int:
            ids = [r[0] for r in await t.fetch(old, (self.cluster_id, finished_before, limit))]
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                await t.execute(
                    d.sql(f"DELETE FROM jm_attempts WHERE job_id IN ({marks(len(chunk))})"), chunk
                )
                await t.execute(d.sql(f"DELETE FROM jm_jobs WHERE id IN ({marks(len(chunk))})"), chunk)
            return len(ids)

        return await self.sql.transaction(write)

    # ---- workers -----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerRecord) -> None:
        await self.sql.execute(
            self.dialect.sql(self.dialect.upsert("jm_workers", f"cluster_id, {rows.WORKER_COLUMNS}", "id")),
            (self.cluster_id, *rows.worker_to_row(worker)),
        )

    async def set_worker_status(self, worker_id: str, status: WorkerStatus) -> None:
        await self.sql.execute(
            self.dialect.sql("UPDATE jm_workers SET status = ? WHERE id = ?"), (int(status), worker_id)
        )

    async def list_workers(self) -> list[WorkerRecord]:
        found = await self.sql.fetch(
            self.dialect.sql(
                f"SELECT {rows.WORKER_COLUMNS} FROM jm_workers WHERE cluster_id = ? ORDER BY name"
            ),
            (self.cluster_id,),
        )
        return [rows.worker_from_row(r) for r in found]

    async def forget_workers(self, silent_since: float) -> int:
        return await self.sql.execute(
            self.dialect.sql(
                "DELETE FROM jm_workers WHERE cluster_id = ? AND heartbeat_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM jm_buckets b WHERE b.worker_id = jm_workers.id)"
            ),
            (self.cluster_id, silent_since),
        )

    # ---- buckets -----------------------------------------------------------------------------

    async def add_buckets(self, buckets: Iterable[Bucket]) -> None:
        values = [(self.cluster_id, *rows.bucket_to_row(b)) for b in buckets]
        if not values:
            return
        row = f"({marks(len(values[0]))})"
        await self.sql.execute(
            self.dialect.sql(
                f"INSERT INTO jm_buckets (cluster_id, {rows.BUCKET_COLUMNS}) VALUES "
                + ", ".join([row] * len(values))
            ),
            [v for value in values for v in value],
        )

    async def set_bucket_status(
        self,
        bucket_ids: Sequence[str],
        status: BucketStatus,
        expected: BucketStatus | None = None,
        *,
        owner: str | None = None,
        expected_owner: str | None = None,
    ) -> list[str]:
        if not bucket_ids:
            return []
        ids = list(bucket_ids)
        d = self.dialect
        guard = ""
        guard_params: list[Any] = []
        if expected is not None:
            guard += " AND status = ?"
            guard_params.append(int(expected))
        if expected_owner is not None:
            guard += " AND worker_id = ?"
            guard_params.append(expected_owner)
        find = d.sql(f"SELECT id FROM jm_buckets WHERE id IN ({marks(len(ids))}){guard}{d.lock_rows}")

        async def write(t: Statements) -> list[str]:
            moved = rows.in_order(ids, {r[0] for r in await t.fetch(find, [*ids, *guard_params])})
            if moved:
                await t.execute(
                    d.sql(
                        "UPDATE jm_buckets SET status = ?, worker_id = COALESCE(?, worker_id)"
                        f" WHERE id IN ({marks(len(moved))})"
                    ),
                    [int(status), owner, *moved],
                )
            return moved

        return await self.sql.transaction(write)

    async def delete_buckets(self, bucket_ids: Sequence[str]) -> None:
        if bucket_ids:
            await self.sql.execute(
                self.dialect.sql(f"DELETE FROM jm_buckets WHERE id IN ({marks(len(bucket_ids))})"),
                list(bucket_ids),
            )

    async def list_buckets(self, status: BucketStatus | None = None) -> list[Bucket]:
        query = f"SELECT {rows.BUCKET_COLUMNS} FROM jm_buckets WHERE cluster_id = ?"
        params: list[Any] = [self.cluster_id]
        if status is not None:
            query += " AND status = ?"
            params.append(int(status))
        found = await self.sql.fetch(self.dialect.sql(query + " ORDER BY id"), params)
        return [rows.bucket_from_row(r) for r in found]
