"""The recurring schedules of one app: declaring them in code, adding and operating them at run time,
and reading them back (`jm.recurring`, `jm.add_schedule`, `jm.schedules.*`, the CLI)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from jobmaster.errors import ScheduleError, ScheduleNotFoundError
from jobmaster.handlers.registry import HandlerFunc
from jobmaster.jobs.model import JobStatus, new_job_id
from jobmaster.jobs.options import HandlerOptions, unknown_option
from jobmaster.runtime.hub import HELD
from jobmaster.schedules.declarations import (
    CatchUp,
    Overlap,
    ScheduleSpec,
    check_name,
    declare,
)
from jobmaster.schedules.planning import at, first_after
from jobmaster.schedules.scheduler import SCHEDULES, SchedulerDuty, occurrence_job
from jobmaster.schedules.store import ScheduleRow, ScheduleStore

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

F = TypeVar("F", bound=HandlerFunc)


class RecurringOptions(HandlerOptions, total=False):
    """How a schedule runs besides its timing (`jm.recurring`, `jm.add_schedule`); the job options
    are the handler's (priority, lane, timeout, max_retries, metadata)."""

    tz: str
    data: dict[str, Any] | None
    every: timedelta | float | str | None
    jitter: timedelta | float | str | None
    catch_up: CatchUp
    catch_up_window: timedelta | float | str
    catch_up_limit: int
    overlap: Overlap


RECURRING_OPTION_NAMES = frozenset(RecurringOptions.__annotations__) | frozenset(
    HandlerOptions.__annotations__
)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as `jm.schedules.list()` and `jobmaster schedules` show it."""

    name: str
    handler: str
    source: str
    #: active, paused or retired.
    state: str
    expression: str
    tz: str
    explain: str
    next_run: datetime | None
    last_run: datetime | None
    last_job_id: str | None
    #: The last job's status (`Succeeded`, `Processing`...), `pruned` once it is gone, None before any.
    last_outcome: str | None
    skipped: int
    missed: int
    catch_up: str
    overlap: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 in UTC."""
        document = {name: getattr(self, name) for name in self.__slots__}
        for key in ("next_run", "last_run"):
            value = document[key]
            document[key] = None if value is None else value.isoformat()
        return document


def _state(row: ScheduleRow) -> str:
    if row.retired_at is not None:
        return "retired"
    return "paused" if row.paused else "active"


class Schedules:
    """The recurring schedules of one app (`jm.schedules`)."""

    def __init__(self, app: JobMaster) -> None:
        self._app = app
        #: The scheduler duty of this app's workers; it holds the schedules declared in code.
        self.duty = SchedulerDuty()

    # ---- declaring in code -------------------------------------------------------------------

    def recurring(
        self, expression: str | None = None, *, name: str | None = None, **options: Unpack[RecurringOptions]
    ) -> Callable[[F], F]:
        """Declare a schedule of the decorated handler (a function not registered yet is registered
        with default options); validated now, written to the master when a worker starts."""

        def declare_on(func: F) -> F:
            handler_id = getattr(func, "__jobmaster_id__", None)
            if handler_id is None:
                # A function not registered yet becomes a handler object (callable as the function).
                func = cast(F, self._app.handler(func))
                handler_id = func.__jobmaster_id__  # type: ignore[attr-defined]
            spec = self._spec(handler_id, expression, name, options)
            known = self.duty.declared.get(spec.name)
            if known is not None:
                raise ScheduleError(
                    f"schedule {spec.name!r} is declared twice (handlers {known.handler!r} and"
                    f" {spec.handler!r}): give each schedule its own name=",
                )
            self.duty.declared[spec.name] = spec
            return func

        return declare_on

    def _spec(
        self, handler: str | HandlerFunc, expression: str | None, name: str | None, options: RecurringOptions
    ) -> ScheduleSpec:
        unknown = set(options) - RECURRING_OPTION_NAMES
        if unknown:
            raise ScheduleError(
                unknown_option(sorted(unknown)[0], RECURRING_OPTION_NAMES, f"schedule {name!r}")
            )
        return declare(
            self._app.registry.resolve(handler), expression, name=name, cluster=self._app.config, **options
        )

    # ---- at run time -------------------------------------------------------------------------

    @property
    def store(self) -> ScheduleStore:
        return ScheduleStore(self._app.runtime.master)

    async def add(
        self,
        handler: str | HandlerFunc,
        expression: str | None = None,
        *,
        name: str | None = None,
        **options: Unpack[RecurringOptions],
    ) -> ScheduleInfo:
        """Add a dynamic schedule: kept in the master until removed, never retired by a deploy.
        A name already taken is refused, and nothing is written."""
        await self._app.open()
        spec = self._spec(handler, expression, name, options)
        now = time.time()
        if not await self.store.add([(spec, first_after(spec.timing, now))], "dynamic", now):
            raise ScheduleError(
                f"schedule {spec.name!r} exists already: remove it first, or pick another name"
            )
        await self._app._wake(SCHEDULES)
        return await self.get(spec.name)

    async def remove(self, name: str) -> None:
        """Delete a schedule (its jobs stay). A schedule still declared in code comes back when a
        process that declares it starts; pause it to stop it for good."""
        await self._app.open()
        if not await self.store.remove(check_name(name)):
            raise ScheduleNotFoundError(f"no schedule named {name!r}")

    async def pause(self, name: str) -> ScheduleInfo:
        """Stop inserting occurrences; jobs already inserted still run."""
        return await self._set_paused(name, True, None)

    async def resume(self, name: str) -> ScheduleInfo:
        """Run again from the next occurrence after now: what came due while paused is not run."""
        row = await self._row(name)
        return await self._set_paused(name, False, first_after(row.spec.timing, time.time()))

    async def _set_paused(self, name: str, paused: bool, next_at: float | None) -> ScheduleInfo:
        await self._app.open()
        if not await self.store.set_paused(check_name(name), paused, next_at, time.time()):
            row = await self._row(name)
            raise ScheduleError(f"schedule {name!r} is {_state(row)}: it cannot be paused or resumed")
        if not paused:
            await self._app._wake(SCHEDULES)
        return await self.get(name)

    async def trigger(self, name: str) -> str:
        """Insert a job of the schedule now, with a key of its own (never the key of a scheduled
        occurrence); returns its id."""
        row = await self._row(name)
        now = time.time()
        job = occurrence_job(row.spec, new_job_id(), now, now, triggered=True)
        await self._app.runtime.master.insert_jobs([job])
        await self.store.set_triggered(row.name, job.id, now)
        await self._app._wake(HELD)
        return job.id

    async def get(self, name: str) -> ScheduleInfo:
        return (await self._infos([await self._row(name)]))[0]

    async def list(self) -> builtins.list[ScheduleInfo]:
        await self._app.open()
        return await self._infos(await self.store.rows())

    async def _row(self, name: str) -> ScheduleRow:
        await self._app.open()
        row = await self.store.get(check_name(name))
        if row is None:
            raise ScheduleNotFoundError(f"no schedule named {name!r}")
        return row

    async def _infos(self, rows: builtins.list[ScheduleRow]) -> builtins.list[ScheduleInfo]:
        """The rows as shown, with their last jobs' statuses read in one go."""
        statuses = await self.store.statuses([r.last_job_id for r in rows if r.last_job_id is not None])
        return [_info(row, statuses) for row in rows]


def _info(row: ScheduleRow, statuses: dict[str, JobStatus]) -> ScheduleInfo:
    outcome = None
    if row.last_job_id is not None:
        status = statuses.get(row.last_job_id)
        outcome = "pruned" if status is None else status.name
    spec = row.spec
    return ScheduleInfo(
        name=row.name,
        handler=spec.handler,
        source=row.source,
        state=_state(row),
        expression=spec.expression,
        tz=spec.tz,
        explain=spec.timing.explain(),
        next_run=at(row.next_at) if row.active else None,
        last_run=None if row.last_at is None else at(row.last_at),
        last_job_id=row.last_job_id,
        last_outcome=outcome,
        skipped=row.skipped,
        missed=row.missed,
        catch_up=spec.catch_up.mode,
        overlap=spec.overlap,
        data=dict(spec.data),
    )
