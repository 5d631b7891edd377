"""Management and connection errors are `JobMasterError`s that name the problem; a server that cannot
be reached is named with its URL, never its password."""

from __future__ import annotations

import pytest

from jobmaster import (
    ClusterArchivedError,
    JobMaster,
    JobMasterError,
    NotOpenError,
    QueryError,
    ScheduleError,
    UnavailableError,
)
from jobmaster.events import JobFailed

#: Ports nothing listens on, on this machine's loopback.
UNREACHABLE = {
    "postgresql": "postgresql://user:hush@127.0.0.1:9/jobs",
    "mysql": "mysql://user:hush@127.0.0.1:9/jobs",
}


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
async def test_an_unreachable_master_at_schedule_names_its_url_without_the_password(kind: str) -> None:
    url = UNREACHABLE[kind]
    app = JobMaster("unreachable", url)

    @app.handler
    async def noop() -> None:
        pass

    with pytest.raises(UnavailableError) as raised:
        await app.schedule(noop)
    assert not app.events.wants(JobFailed), "a failed open left the run log subscribed"
    message = str(raised.value)
    assert message.startswith(f"cannot connect to {url.replace(':hush@', ':***@')}: ")
    assert message.endswith("(the master)")
    assert "hush" not in message
    assert isinstance(raised.value, ConnectionError)


async def test_an_unreachable_nats_agent_names_itself(tmp_path) -> None:
    app = JobMaster("unreachable", f"sqlite:///{tmp_path}/jobs.db", agents={"fast": "nats://127.0.0.1:9"})
    with pytest.raises(UnavailableError, match="agent 'fast'.*nats://127.0.0.1:9"):
        await app.open()


async def test_management_errors_are_jobmaster_errors(make_app) -> None:
    app = make_app()
    with pytest.raises(NotOpenError, match="not open"):
        await app.get_job("x")
    async with app:
        with pytest.raises(QueryError, match="limit must be in 1..10000"):
            await app.list_jobs(limit=0)
        with pytest.raises(QueryError, match="unknown status 'Done'"):
            await app.list_jobs(status="Done")
        with pytest.raises(QueryError, match="unknown option 'stauts'; did you mean 'status'"):
            await app.list_jobs(stauts="Failed")  # type: ignore[call-arg]
        with pytest.raises(QueryError, match="timezone-aware"):
            from datetime import datetime

            await app.count_jobs(scheduled_from=datetime(2026, 1, 1))
    for error in (NotOpenError, QueryError, UnavailableError, ClusterArchivedError):
        assert issubclass(error, JobMasterError)


async def test_a_master_that_cannot_join_a_transaction_refuses_connection(make_app, backend) -> None:
    app = make_app()

    @app.handler
    async def noop() -> None:
        pass

    async with app:
        if not app.runtime.master.joins_transactions:
            with pytest.raises(ScheduleError, match="cannot join a caller's transaction"):
                await app.schedule(noop, connection=object())
            assert await app.count_jobs() == 0
        else:
            assert backend in ("postgresql", "mysql")
