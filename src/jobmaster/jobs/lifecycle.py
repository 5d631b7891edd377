"""The job lifecycle in one place: which status may go to which, and what each move decides.

The runtime decides where a job goes next and the stores write it; both take their rules from here.
Stores guard their SQL with the status sets rendered below (never a status number of their own), so
a new status or rule is written once, and a test (`tests/unit/test_lifecycle_rules.py`) fails if a
store's SQL spells a status number itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from jobmaster.jobs.model import FINAL_STATUSES, OWNED_STATUSES, Attempt, Job, JobStatus
from jobmaster.jobs.retry import RetryPolicy

_S = JobStatus


@dataclass(frozen=True, slots=True)
class Transition:
    """One named move of a job between statuses, as every store guards it.

    `counts_attempt`: the move starts a run, so `attempts` grows by one. `blocked_by_cancel`: a job
    whose cancel was requested may not take it. `clears_owner`: the job leaves its bucket and worker.
    """

    name: str
    sources: frozenset[JobStatus]
    targets: frozenset[JobStatus]
    counts_attempt: bool = False
    blocked_by_cancel: bool = False
    clears_owner: bool = False


def _t(name: str, sources: Iterable[JobStatus], targets: Iterable[JobStatus], **rules: bool) -> Transition:
    return Transition(name, frozenset(sources), frozenset(targets), **rules)


#: A coordinator hands a due job to a bucket (its agent queue, or straight to the worker's buffer).
CLAIM = _t("claim", {_S.HeldOnMaster}, {_S.AssignedToBucket, _S.Queued})
#: A worker takes a job read from its bucket's queue: buffered (Queued) or run at once (Processing).
ADOPT = _t("adopt", {_S.AssignedToBucket}, {_S.Queued, _S.Processing})
#: A run begins.
START = _t(
    "start", {_S.AssignedToBucket, _S.Queued}, {_S.Processing}, counts_attempt=True, blocked_by_cancel=True
)
#: A worker gives back a job it holds but has not started.
RELEASE = _t("release", {_S.AssignedToBucket, _S.Queued}, {_S.HeldOnMaster}, clears_owner=True)
#: A run failed with attempts left: back to the master, due after the retry back-off.
RETRY = _t("retry", {_S.Processing}, {_S.HeldOnMaster}, clears_owner=True)
#: The handler snoozed: back to the master, due after its delay, and the run is granted back
#: (`attempt_limit` grows by one) so that it spends no retry.
SNOOZE = _t("snooze", {_S.Processing}, {_S.HeldOnMaster}, clears_owner=True)
#: A run ended for good. The job keeps its owner (who ran it last) and its last error, unless the
#: run brought a new one.
FINISH = _t("finish", {_S.Processing}, FINAL_STATUSES)
#: A job whose worker stopped renewing its lease (see `recover`).
RECOVER = _t("recover", OWNED_STATUSES, {_S.HeldOnMaster, _S.Failed, _S.Cancelled}, clears_owner=True)
#: Statuses whose lease a heartbeat extends: in a worker's buffer or running.
RENEWED = frozenset({_S.Queued, _S.Processing})
#: Only a running job can be asked to cancel cooperatively.
CANCELLABLE = frozenset({_S.Processing})

TRANSITIONS = (CLAIM, ADOPT, START, RELEASE, RETRY, SNOOZE, FINISH, RECOVER)


def sql_in(statuses: Iterable[JobStatus]) -> str:
    """A status set as a SQL list, `(3, 4, 6)`: the one way stores spell sets of statuses."""
    return "(" + ", ".join(str(int(s)) for s in sorted(statuses)) + ")"


# ---- statuses as SQL literals: stores interpolate these, never a number of their own -----------

HELD = int(_S.HeldOnMaster)
ASSIGNED = int(_S.AssignedToBucket)
PROCESSING = int(_S.Processing)
SUCCEEDED = int(_S.Succeeded)
QUEUED = int(_S.Queued)
FAILED = int(_S.Failed)
CANCELLED = int(_S.Cancelled)
OWNED_SQL = sql_in(OWNED_STATUSES)
FINAL_SQL = sql_in(FINAL_STATUSES)
STARTABLE_SQL = sql_in(START.sources)
RELEASABLE_SQL = sql_in(RELEASE.sources)
RENEWED_SQL = sql_in(RENEWED)


def renew_before(now: float, lease_until: float) -> float:
    """Leases ending before this are extended by a heartbeat; later ones are left alone.

    Half the lease: a lease renewed on every beat would write every held job's row every beat, and
    one renewed only when nearly gone could lapse while the renewal is under way.
    """
    return now + (lease_until - now) / 2


def assigned(job: Job, bucket_id: str, worker_id: str, status: JobStatus, lease_until: float) -> None:
    """Apply a claim's assignment to the claimed job in place: its version moves on by one."""
    job.status = status
    job.bucket_id = bucket_id
    job.worker_id = worker_id
    job.lease_expires_at = lease_until
    job.version += 1


class Expired(NamedTuple):
    """What recovery reads of a job whose lease lapsed."""

    job_id: str
    version: int
    status: JobStatus
    cancel_requested: bool
    attempts: int
    attempt_limit: int
    started_at: float | None
    worker_id: str | None


#: Columns of `Expired`, in order, for the stores' SELECT.
EXPIRED_COLUMNS = "id, version, status, cancel_requested, attempts, attempt_limit, started_at, worker_id"


def expired_from_row(row: Sequence[Any]) -> Expired:
    return Expired(row[0], row[1], JobStatus(row[2]), bool(row[3]), row[4], row[5], row[6], row[7])


class Recovery(NamedTuple):
    """Where recovery puts one expired job; stores write it fenced on `version`.

    `scheduled_at` None keeps the job's due time; `error` None keeps its last error; `attempt` is
    the "lost" run to record, if it was running. Owner and lease are always cleared.
    """

    job_id: str
    version: int
    status: JobStatus
    scheduled_at: float | None
    finished_at: float | None
    error: dict[str, Any] | None
    attempt: Attempt | None


def lost_worker_error() -> dict[str, Any]:
    return {
        "type": "WorkerLost",
        "message": "the worker running this job stopped renewing its lease (crash or partition)",
        "traceback": None,
    }


def recover(job: Expired, now: float, retry: RetryPolicy) -> Recovery:
    """The recovery of one job whose worker died: the same rule as a run that raised.

    Cancelled if a cancel was requested; a running job loses its run (a "lost" attempt and the
    lost-worker error), then fails if it has no attempt left, or else goes back HeldOnMaster due
    after the retry back-off of that attempt, as `Executor._failure` schedules a failed run: a job
    that kills its worker is not claimed again the moment its lease lapses. A job that was only
    waiting (never started here) goes back HeldOnMaster at its own due time.
    """
    running = job.status is JobStatus.Processing
    attempt = error = None
    if running:
        error = lost_worker_error()
        attempt = Attempt(job.job_id, job.attempts, job.worker_id, job.started_at or now, now, "lost", error)
    if job.cancel_requested:
        return Recovery(job.job_id, job.version, JobStatus.Cancelled, None, now, error, attempt)
    if not running:
        return Recovery(job.job_id, job.version, JobStatus.HeldOnMaster, None, None, None, None)
    if job.attempts >= job.attempt_limit:
        return Recovery(job.job_id, job.version, JobStatus.Failed, None, now, error, attempt)
    due = retry.retry_at(now, max(1, job.attempts))
    return Recovery(job.job_id, job.version, JobStatus.HeldOnMaster, due, None, error, attempt)


def recover_all(expired: Iterable[Sequence[Any]], now: float, retry: RetryPolicy) -> list[Recovery]:
    """`recover` of every row a store read (in `EXPIRED_COLUMNS` order)."""
    return [recover(expired_from_row(row), now, retry) for row in expired]
