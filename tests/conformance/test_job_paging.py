"""Keyset paging of `list_jobs`, on every master backend: a walk from page to page visits each job
once, in the listing order (latest due first, then id descending), whatever the filters, the
statuses (PostgreSQL reads jobs at rest and in flight through different indexes) and the jobs
inserted meanwhile."""

from __future__ import annotations

import dataclasses
import time

from helpers import make_job
from jobmaster.jobs.model import Job, JobFilter, JobStatus
from jobmaster.master.base import MasterStore

#: Every way a job's row can be found: at rest, leased in flight, waiting unleased in a job-table
#: queue, and in flight without a lease (no engine path writes one, but a tool may).
SHAPES: list[tuple[JobStatus, float | None]] = [
    (JobStatus.HeldOnMaster, None),
    (JobStatus.Succeeded, None),
    (JobStatus.Failed, None),
    (JobStatus.Cancelled, None),
    (JobStatus.AssignedToBucket, None),
    (JobStatus.AssignedToBucket, 60.0),
    (JobStatus.Queued, 60.0),
    (JobStatus.Processing, 60.0),
    (JobStatus.Processing, None),
    (JobStatus.Queued, None),
]


def listing_order(jobs: list[Job]) -> list[str]:
    return [j.id for j in sorted(jobs, key=lambda j: (j.scheduled_at, j.id), reverse=True)]


def tied_jobs(count: int, base: float, **fields: object) -> list[Job]:
    """`count` jobs in every status shape, due at one of four times, so ties cross page limits."""
    jobs = []
    for n in range(count):
        status, lease = SHAPES[n % len(SHAPES)]
        job = make_job(status=status, **fields)
        job.scheduled_at = job.original_scheduled_at = base - (n % 4) * 10
        job.lease_expires_at = None if lease is None else time.time() + lease
        jobs.append(job)
    return jobs


async def walk(master: MasterStore, criteria: JobFilter, page: int) -> list[str]:
    """Every page from the criteria's position, each after the last job of the one before."""
    seen: list[str] = []
    after = criteria.after
    while True:
        found = await master.list_jobs(dataclasses.replace(criteria, limit=page, after=after))
        seen += [j.id for j in found]
        if len(found) < page:
            return seen
        after = (found[-1].scheduled_at, found[-1].id)


async def test_pages_visit_every_job_once_in_order(master: MasterStore) -> None:
    jobs = tied_jobs(57, time.time())
    await master.insert_jobs(jobs)
    expected = listing_order(jobs)
    for page in (1, 5, 7, 57, 100):
        assert await walk(master, JobFilter(), page) == expected, page
    first = await master.list_jobs(JobFilter(limit=10))
    assert [j.id for j in first] == expected[:10]
    # a position between two jobs of one due time, and past the last job
    middle = (first[-1].scheduled_at, first[-1].id)
    assert [j.id for j in await master.list_jobs(JobFilter(limit=5, after=middle))] == expected[10:15]
    last = next(j for j in jobs if j.id == expected[-1])
    assert await master.list_jobs(JobFilter(after=(last.scheduled_at, last.id))) == []


async def test_pages_keep_the_filters(master: MasterStore) -> None:
    now = time.time()
    jobs = [
        *tied_jobs(23, now, definition_id="tests.a", metadata={"tenant": "acme"}),
        *tied_jobs(17, now, definition_id="tests.b", lane="Heavy", metadata={"tenant": "other"}),
    ]
    await master.insert_jobs(jobs)
    cases = [
        (JobFilter(statuses=(JobStatus.Succeeded, JobStatus.Processing)), lambda j: j.status in (5, 4)),
        (JobFilter(statuses=(JobStatus.AssignedToBucket,)), lambda j: j.status is JobStatus.AssignedToBucket),
        (JobFilter(definition_id="tests.a"), lambda j: j.definition_id == "tests.a"),
        (JobFilter(lane="Heavy"), lambda j: j.lane == "Heavy"),
        (JobFilter(metadata={"tenant": "other"}), lambda j: j.metadata["tenant"] == "other"),
        (
            JobFilter(statuses=(JobStatus.Queued,), definition_id="tests.b"),
            lambda j: j.status is JobStatus.Queued and j.definition_id == "tests.b",
        ),
    ]
    for criteria, wanted in cases:
        expected = listing_order([j for j in jobs if wanted(j)])
        assert expected, criteria
        assert await walk(master, criteria, 3) == expected, criteria


async def test_a_position_stays_valid_while_jobs_arrive(master: MasterStore) -> None:
    """Jobs inserted between two pages, before, at and after the position, shift no old job: the
    walk shows every old job once, and of the new ones exactly those after the position."""
    now = time.time()
    old = tied_jobs(30, now)
    await master.insert_jobs(old)
    first = await master.list_jobs(JobFilter(limit=12))
    mark = first[-1]
    before, later = make_job(), make_job()
    before.scheduled_at = before.original_scheduled_at = now + 5
    later.scheduled_at = later.original_scheduled_at = mark.scheduled_at - 5
    # at the position's due time: an id above the position's (listed before it) and one below
    above, below = make_job(), make_job()
    above.id, below.id = mark.id + "1", mark.id[:-1]
    for job in (above, below):
        job.scheduled_at = job.original_scheduled_at = mark.scheduled_at
    await master.insert_jobs([before, later, above, below])

    rest = await walk(master, JobFilter(after=(mark.scheduled_at, mark.id)), 4)
    old_ids = {j.id for j in old}
    assert [j.id for j in first] + [i for i in rest if i in old_ids] == listing_order(old)
    assert set(rest) - old_ids == {later.id, below.id}
    assert len(rest) == len(set(rest)) == 18 + 2


async def test_offset_pages_still_work(master: MasterStore) -> None:
    jobs = tied_jobs(12, time.time())
    await master.insert_jobs(jobs)
    expected = listing_order(jobs)
    pages = [await master.list_jobs(JobFilter(limit=5, offset=n)) for n in (0, 5, 10)]
    assert [j.id for page in pages for j in page] == expected
