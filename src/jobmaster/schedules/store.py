"""Schedules in the master: the same SQL on every database, written once through the master's
executor and dialect (`master/sql`).

Two tables: `jm_schedules` (one row per schedule: its spec, its place in time and its counters) and
`jm_schedule_declarations` (one row per schedule and process that declares it in code, with when that
process last said so). Every change of a schedule's place in time is a compare-and-swap on `next_at`,
so any number of schedulers may pass over the same schedule; the uniqueness of each occurrence's job
is the job table's primary key (see `scheduler.occurrence_id`), not these rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from jobmaster.errors import ConfigError
from jobmaster.jobs.model import JobStatus
from jobmaster.master.base import MasterStore
from jobmaster.master.sql.executor import Row, Statements
from jobmaster.master.sql.store import CHUNK, SqlMasterStore, marks
from jobmaster.schedules.declarations import ScheduleSpec, Source

COLUMNS = (
    "name, source, spec, paused, retired_at, next_at, last_at, last_run_at, triggered_job_id, triggered_at,"
    " skipped, missed, created_at, updated_at"
)
ACTIVE = "paused = 0 AND retired_at IS NULL"


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A schedule as the master holds it."""

    spec: ScheduleSpec
    source: Source
    paused: bool
    retired_at: float | None
    #: The first occurrence no scheduler has dealt with yet.
    next_at: float
    #: The last scheduled occurrence (run, skipped or missed).
    last_at: float | None
    #: The last job of the schedule: of its last run occurrence, or of a later trigger.
    last_job_id: str | None
    #: The jobs to look at for overlap: of the last run occurrence and of the last trigger.
    recent_job_ids: tuple[str, ...]
    skipped: int
    missed: int
    created_at: float
    updated_at: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def active(self) -> bool:
        return not self.paused and self.retired_at is None


@dataclass(frozen=True, slots=True)
class Advance:
    """What a pass made of one due schedule, written only if `next_at` is still `expected`."""

    name: str
    expected: float
    next_at: float
    last_at: float
    #: The occurrence of the last job inserted, if the pass inserted any.
    last_run_at: float | None
    skipped: int
    missed: int


def occurrence_id(cluster_id: str, name: str, occurrence: float) -> str:
    """The job id of one occurrence: its time in milliseconds (12 hex digits, so ids sort by
    occurrence as `new_job_id`'s sort by creation) then 80 bits of a hash of the cluster and the
    schedule's name. The master's primary key on it is the occurrence's uniqueness, and the
    schedule row need not store it: the last run's occurrence names its job."""
    digest = hashlib.blake2b(f"{cluster_id}\0{name}".encode(), digest_size=10).hexdigest()
    return f"{round(occurrence * 1000):012x}{digest}"


def _row(found: Row, cluster_id: str) -> ScheduleRow:
    name, source, spec, paused, retired_at, next_at, last_at, last_run_at, triggered_id, triggered_at = found[
        :10
    ]
    skipped, missed, created, updated = found[10:]
    run_id = None if last_run_at is None else occurrence_id(cluster_id, name, last_run_at)
    recent = tuple(i for i in (run_id, triggered_id) if i is not None)
    last = (
        triggered_id
        if triggered_at is not None and (last_run_at is None or triggered_at > last_run_at)
        else run_id
    )
    return ScheduleRow(
        ScheduleSpec.from_json(name, spec),
        cast(Source, source),
        bool(paused),
        retired_at,
        float(next_at),
        None if last_at is None else float(last_at),
        last,
        recent,
        int(skipped),
        int(missed),
        float(created),
        float(updated),
    )


class ScheduleStore:
    """The schedule operations of one cluster's master."""

    def __init__(self, master: MasterStore) -> None:
        if not isinstance(master, SqlMasterStore):
            raise ConfigError(f"recurring schedules need a SQL master, got {type(master).__name__}")
        self.master = master
        self.dialect = master.dialect
        self.cluster_id = master.cluster_id

    def _sql(self, text: str) -> str:
        return self.dialect.sql(text)

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, name: str) -> ScheduleRow | None:
        found = await self.master.sql.fetch(
            self._sql(f"SELECT {COLUMNS} FROM jm_schedules WHERE cluster_id = ? AND name = ?"),
            (self.cluster_id, name),
        )
        return _row(found[0], self.cluster_id) if found else None

    async def rows(self) -> list[ScheduleRow]:
        found = await self.master.sql.fetch(
            self._sql(f"SELECT {COLUMNS} FROM jm_schedules WHERE cluster_id = ? ORDER BY name"),
            (self.cluster_id,),
        )
        return [_row(r, self.cluster_id) for r in found]

    async def due(self, now: float, limit: int, after: tuple[float, str] | None = None) -> list[ScheduleRow]:
        """Active schedules whose next occurrence is due by `now`, the most overdue first (by
        `next_at`, then name), from after the position `after` of a previous page."""
        seek, params = "", [self.cluster_id, now]
        if after is not None:
            seek = " AND (next_at > ? OR (next_at = ? AND name > ?))"
            params += [after[0], after[0], after[1]]
        found = await self.master.sql.fetch(
            self._sql(
                f"SELECT {COLUMNS} FROM jm_schedules WHERE cluster_id = ? AND next_at <= ? AND {ACTIVE}"
                f"{seek} ORDER BY next_at, name LIMIT ?"
            ),
            [*params, limit],
        )
        return [_row(r, self.cluster_id) for r in found]

    async def next_due(self) -> float | None:
        """The earliest next occurrence of an active schedule, to time the scheduler's sleep."""
        value = await self.master.sql.fetchval(
            self._sql(f"SELECT MIN(next_at) FROM jm_schedules WHERE cluster_id = ? AND {ACTIVE}"),
            (self.cluster_id,),
        )
        return None if value is None else float(value)

    async def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The status of each of `job_ids` the master still holds (pruned ones are left out)."""
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, JobStatus] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            rows = await self.master.sql.fetch(
                self._sql(f"SELECT id, status FROM jm_jobs WHERE id IN ({marks(len(chunk))})"), chunk
            )
            found.update((r[0], JobStatus(r[1])) for r in rows)
        return found

    async def running(self, job_ids: Sequence[str]) -> set[str]:
        """Those of `job_ids` still waiting or running (not in a final status)."""
        return {i for i, status in (await self.statuses(job_ids)).items() if not status.is_final}

    # ---- writes ------------------------------------------------------------------------------

    async def add(self, specs: Sequence[tuple[ScheduleSpec, float]], source: Source, now: float) -> int:
        """Insert schedules (each with its first `next_at`), leaving alone any whose name exists;
        returns how many were new."""
        return await self._insert(self.master.sql, specs, source, now)

    async def _insert(
        self, t: Statements, specs: Sequence[tuple[ScheduleSpec, float]], source: Source, now: float
    ) -> int:
        columns = "cluster_id, name, source, spec, paused, next_at, skipped, missed, created_at, updated_at"
        inserted = 0
        for start in range(0, len(specs), CHUNK // 10):
            chunk = specs[start : start + CHUNK // 10]
            values: list[Any] = []
            for spec, next_at in chunk:
                values += [self.cluster_id, spec.name, source, spec.to_json(), 0, next_at, 0, 0, now, now]
            inserted += await t.execute(
                self._sql(self.dialect.insert_new("jm_schedules", columns, len(chunk))), values
            )
        return inserted

    async def declare(
        self, specs: Sequence[tuple[ScheduleSpec, float]], declarer: str, now: float
    ) -> tuple[list[str], list[str]]:
        """Bring the code schedules of one process into the master: new ones inserted, changed or
        retired ones brought up to date (a changed one starts afresh at its given `next_at`); and
        record that `declarer` declares them. Returns (new or changed names, names refused because
        a dynamic schedule holds them)."""
        stored = {
            r[0]: (r[1], r[2], r[3])
            for r in await self.master.sql.fetch(
                self._sql("SELECT name, source, spec, retired_at FROM jm_schedules WHERE cluster_id = ?"),
                (self.cluster_id,),
            )
        }
        fresh = [(s, n) for s, n in specs if s.name not in stored]
        changed = [
            (s, n)
            for s, n in specs
            if s.name in stored
            and stored[s.name][0] == "code"
            and (stored[s.name][1] != s.to_json() or stored[s.name][2] is not None)
        ]
        refused = [s.name for s, _ in specs if s.name in stored and stored[s.name][0] != "code"]
        update = self._sql(
            "UPDATE jm_schedules SET spec = ?, next_at = ?, retired_at = NULL, updated_at = ?"
            " WHERE cluster_id = ? AND name = ? AND source = 'code'"
        )

        async def write(t: Statements) -> None:
            await self._insert(t, fresh, "code", now)
            for spec, next_at in changed:
                await t.execute(update, (spec.to_json(), next_at, now, self.cluster_id, spec.name))
            await t.execute(
                self._sql("DELETE FROM jm_schedule_declarations WHERE cluster_id = ? AND declarer = ?"),
                (self.cluster_id, declarer),
            )
            names = [s.name for s, _ in specs if s.name not in refused]
            columns = "cluster_id, name, declarer, seen_at"
            for start in range(0, len(names), CHUNK // 4):
                chunk = names[start : start + CHUNK // 4]
                await t.execute(
                    self._sql(self.dialect.insert_new("jm_schedule_declarations", columns, len(chunk))),
                    [v for name in chunk for v in (self.cluster_id, name, declarer, now)],
                )

        await self.master.sql.transaction(write)
        return [s.name for s, _ in (*fresh, *changed)], refused

    async def refresh(self, declarer: str, now: float) -> None:
        """`declarer` still declares its schedules (one statement, whatever their number)."""
        await self.master.sql.execute(
            self._sql(
                "UPDATE jm_schedule_declarations SET seen_at = ? WHERE cluster_id = ? AND declarer = ?"
            ),
            (now, self.cluster_id, declarer),
        )

    async def retire(self, now: float, unseen_since: float) -> list[str]:
        """Retire the code schedules no process has declared since `unseen_since`, and forget those
        declarations; returns the names retired. Dynamic schedules are never retired."""
        stale = (
            "source = 'code' AND retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM"
            " jm_schedule_declarations d WHERE d.cluster_id = jm_schedules.cluster_id"
            " AND d.name = jm_schedules.name AND d.seen_at >= ?)"
        )
        params = (self.cluster_id, unseen_since)

        async def write(t: Statements) -> list[str]:
            found = [
                r[0]
                for r in await t.fetch(
                    self._sql(f"SELECT name FROM jm_schedules WHERE cluster_id = ? AND {stale}"), params
                )
            ]
            if found:
                await t.execute(
                    self._sql(
                        "UPDATE jm_schedules SET retired_at = ?, updated_at = ?"
                        f" WHERE cluster_id = ? AND {stale}"
                    ),
                    (now, now, *params),
                )
            await t.execute(
                self._sql("DELETE FROM jm_schedule_declarations WHERE cluster_id = ? AND seen_at < ?"), params
            )
            return found

        return await self.master.sql.transaction(write)

    async def advance(self, advances: Sequence[Advance], now: float) -> int:
        """Move schedules past the occurrences a pass dealt with, each only if no other scheduler
        moved it first (`next_at` still as read); returns how many moved.

        Schedules that moved alike (the same times and counts: thousands of one expression due at
        one time) move in one statement of up to `CHUNK` names, so a pass over 10,000 of them is a
        few statements, not 10,000 round trips, in one transaction (one commit). Statements run in
        name order, so two schedulers moving the same rows never deadlock.
        """
        groups: dict[tuple[float, float, float, float | None, int, int], list[str]] = {}
        for a in sorted(advances, key=lambda a: a.name):
            key = (a.expected, a.next_at, a.last_at, a.last_run_at, a.skipped, a.missed)
            groups.setdefault(key, []).append(a.name)

        async def write(t: Statements) -> int:
            moved = 0
            for (expected, *values), names in groups.items():
                for start in range(0, len(names), CHUNK):
                    chunk = names[start : start + CHUNK]
                    moved += await t.execute(
                        self._sql(
                            "UPDATE jm_schedules SET next_at = ?, last_at = ?,"
                            " last_run_at = COALESCE(?, last_run_at), skipped = skipped + ?,"
                            " missed = missed + ?, updated_at = ?"
                            f" WHERE cluster_id = ? AND next_at = ? AND name IN ({marks(len(chunk))})"
                        ),
                        [*values, now, self.cluster_id, expected, *chunk],
                    )
            return moved

        return await self.master.sql.transaction(write) if groups else 0

    async def set_paused(self, name: str, paused: bool, next_at: float | None, now: float) -> bool:
        """Pause, or resume from `next_at`; False if there is no such active-or-paused schedule."""
        matched = await self.master.sql.execute(
            self._sql(
                "UPDATE jm_schedules SET paused = ?, next_at = COALESCE(?, next_at), updated_at = ?"
                " WHERE cluster_id = ? AND name = ? AND retired_at IS NULL"
            ),
            (int(paused), next_at, now, self.cluster_id, name),
        )
        return matched > 0

    async def set_triggered(self, name: str, job_id: str, now: float) -> None:
        """Record a manual run, so overlap and the last outcome see it."""
        await self.master.sql.execute(
            self._sql(
                "UPDATE jm_schedules SET triggered_job_id = ?, triggered_at = ?, updated_at = ?"
                " WHERE cluster_id = ? AND name = ?"
            ),
            (job_id, now, now, self.cluster_id, name),
        )

    async def remove(self, name: str) -> bool:
        """Delete a schedule and its declarations; its jobs stay. False if there was none."""

        async def write(t: Statements) -> int:
            await t.execute(
                self._sql("DELETE FROM jm_schedule_declarations WHERE cluster_id = ? AND name = ?"),
                (self.cluster_id, name),
            )
            return await t.execute(
                self._sql("DELETE FROM jm_schedules WHERE cluster_id = ? AND name = ?"),
                (self.cluster_id, name),
            )

        return await self.master.sql.transaction(write) > 0
