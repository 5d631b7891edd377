"""Each dialect's listing parts: a status filter keeps only the parts that can hold its statuses, so
every status must belong to a part, and a part of a dialect with several must say which rows it is."""

from __future__ import annotations

import pytest

from jobmaster.jobs.model import JobStatus
from jobmaster.master.sql.dialect import MYSQL, POSTGRES, SQLITE, Dialect


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES, MYSQL], ids=lambda d: d.name)
def test_every_status_is_in_a_listing_part(dialect: Dialect) -> None:
    covered = set().union(*(part.statuses for part in dialect.listing))
    assert covered == set(JobStatus)
    assert all(part.predicate or len(dialect.listing) == 1 for part in dialect.listing)
