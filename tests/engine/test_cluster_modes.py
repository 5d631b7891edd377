"""The cluster `mode`: Active takes the YES path when it can, Passive only the NO path (every job
through the master), Archived refuses new jobs with a `JobMasterError` and keeps its history."""

from __future__ import annotations

import pytest
from engine_support import Running

from jobmaster import ClusterArchivedError, JobContext, JobMaster, JobMasterError, JobStatus

#: A job's status once scheduled: in a bucket (the YES path: SavePending where the bucket is not the
#: master's own job table), or in the master (the NO path).
YES_PATH = {"AssignedToBucket", "SavePending"}
NO_PATH = {"HeldOnMaster"}


@pytest.mark.parametrize(("mode", "path"), [("Active", YES_PATH), ("Passive", NO_PATH)])
async def test_a_passive_cluster_schedules_through_the_master_only(
    make_app, start, mode: str, path: set[str]
) -> None:
    """With an executor's bucket open and no coordinator, a job due in 5 s goes straight into the
    bucket on an Active cluster, and stays in the master on a Passive one until a coordinator
    claims it; both run once."""
    ran: list[str] = []

    def app(name: str, worker_mode: str) -> JobMaster:
        built = make_app(
            workers=[{"name": name, "mode": worker_mode, "bucket_buffer_lead_time": 0.2}], mode=mode
        )

        @built.handler(name="tests.modes")
        async def task(ctx: JobContext) -> None:
            ran.append(ctx.job_id)

        return built

    executor: Running = await start(app("exec", "execution"))
    job_id = await executor.app.schedule("tests.modes", delay=5)
    assert (await executor.app.get_job(job_id)).status.name in path
    await start(app("coord", "coordinator"))
    await executor.wait_status(job_id, "Succeeded", timeout=60)
    assert ran == [job_id]


async def test_an_archived_cluster_keeps_its_jobs_and_refuses_new_ones(make_app) -> None:
    active = make_app()

    @active.handler(name="tests.archived")
    async def task() -> None:
        pass

    async with active:
        kept = await active.schedule("tests.archived", delay=3600)
    archived = make_app(mode="Archived")
    archived.handler(name="tests.archived")(task)
    async with archived:
        assert (await archived.get_job(kept)).status is JobStatus.HeldOnMaster
        with pytest.raises(ClusterArchivedError, match="is Archived: scheduling is disabled") as refused:
            await archived.schedule("tests.archived")
        assert isinstance(refused.value, JobMasterError)
        with pytest.raises(ClusterArchivedError):
            await archived.schedule_many("tests.archived", [{}, {}])
        assert await archived.count_jobs() == 1
