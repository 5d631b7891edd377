"""A closed JobMaster opens again on its next call, on its configuration of then."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmaster import JobMaster, NotOpenError


async def test_scheduling_after_close_reopens_on_the_new_configuration(tmp_path: Path) -> None:
    jm = JobMaster("reopen", f"sqlite:///{tmp_path}/first.db")

    @jm.handler
    async def noop() -> None: ...

    first = await jm.schedule(noop)
    await jm.close()
    jm._reconfigure(master=f"sqlite:///{tmp_path}/second.db")
    second = await jm.schedule(noop)  # opened anew: the closed runtime is not reused
    try:
        assert [j.id for j in await jm.list_jobs()] == [second]
        await jm.close()
        with pytest.raises(NotOpenError):  # not the waiter of the closed runtime
            await jm.result(second, timeout=1)
    finally:
        await jm.close()
    async with JobMaster("reopen", f"sqlite:///{tmp_path}/first.db") as earlier:
        assert [j.id for j in await earlier.list_jobs()] == [first]
