"""`list_jobs_page` and the cursor of `list_jobs`, through the public API on every master backend."""

from __future__ import annotations

import pytest

from jobmaster import JobPage, QueryError
from jobmaster.jobs.paging import encode_cursor


async def test_pages_with_cursors_visit_every_job_once(make_app) -> None:
    app = make_app(workers=[])

    @app.handler
    async def noop(n: int) -> None:
        pass

    @app.handler
    async def other() -> None:
        pass

    async with app:
        ids = await app.schedule_many(noop, [{"n": n} for n in range(23)], delay=600)
        others = await app.schedule_many(other, [{}] * 4, delay=600)
        expected = [j.id for j in await app.list_jobs(handler=noop, limit=100)]
        assert sorted(expected) == sorted(ids)

        seen: list[str] = []
        page = await app.list_jobs_page(handler=noop, limit=5)
        while True:
            assert len(page.jobs) == 5 or page.next_cursor is None
            seen += [j.id for j in page.jobs]
            if page.next_cursor is None:
                break
            again = await app.list_jobs(handler=noop, limit=5, after=page.next_cursor)
            page = await app.list_jobs_page(handler=noop, limit=5, after=page.next_cursor)
            assert [j.id for j in again] == [j.id for j in page.jobs]
        assert seen == expected
        # a page that ends exactly at the last job has no next cursor
        whole = await app.list_jobs_page(handler=noop, limit=23)
        assert ([j.id for j in whole.jobs], whole.next_cursor) == (expected, None)
        everything = await app.list_jobs_page(limit=27)
        assert len(everything.jobs) == 27 and everything.next_cursor is None
        assert set(others) < {j.id for j in everything.jobs}


async def test_a_malformed_cursor_is_refused_and_named(make_app) -> None:
    app = make_app(workers=[])

    @app.handler
    async def noop() -> None:
        pass

    async with app:
        await app.schedule(noop, {}, delay=600)
        [job] = await app.list_jobs()
        for bad in ("not a cursor!", "e30", "W251bGwsImEiXQ", "", "W1tdXQ"):
            with pytest.raises(QueryError, match=f"malformed cursor {bad!r}"):
                await app.list_jobs_page(after=bad)
            with pytest.raises(QueryError, match="malformed cursor"):
                await app.list_jobs(after=bad)
        with pytest.raises(QueryError, match="a cursor .after. or an offset, not both"):
            await app.list_jobs(after=encode_cursor(job), offset=1)
        assert await app.list_jobs_page(after=encode_cursor(job)) == JobPage([], None)


def test_the_sync_twin_pages_too(make_app) -> None:
    app = make_app(workers=[])

    @app.handler
    def noop() -> None:
        return None

    ids = app.sync.schedule_many(noop, [{}] * 3, delay=600)
    first = app.sync.list_jobs_page(limit=2)
    assert first.next_cursor is not None
    second = app.sync.list_jobs_page(limit=2, after=first.next_cursor)
    assert second.next_cursor is None
    assert sorted(j.id for j in [*first.jobs, *second.jobs]) == sorted(ids)
    assert [j.id for j in app.sync.list_jobs(limit=2, after=first.next_cursor)] == [second.jobs[0].id]
    app.sync.close()
